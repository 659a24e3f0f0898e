// The Slurm executor's pure parts: the attempt spec and result record survive
// the trip through JSON byte for byte, sbatch gets what the step asks for, and
// the settings file reports mistakes with their place. (The executor against a
// real cluster: tests/slurm/.)
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "cli/slurm_config.h"
#include "exec/attempt_file.h"
#include "exec/slurm_executor.h"
#include "util/fs.h"

namespace ns {
namespace {

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(AttemptFile, SpecRoundTripKeepsBytesThatAreNotUtf8) {
  AttemptSpec s;
  s.uid = "run/step/item/2";
  s.argv = {"prog", std::string("caf\xe9", 4), std::string("a\0b", 3), "\xff\xfe"};
  s.env = {"PATH=/bin", std::string("X=\x80\x81", 4), "Y=ünïcödé"};
  s.cwd = "/root/runs/r/_staging/step.2";
  s.stdout_path = "/o";
  s.stderr_path = "/e";
  s.cpus = 1.5;
  s.memory_bytes = 3LL << 30;
  s.gpus = 2;
  s.timeout_ms = 90000;
  s.grace_ms = 5000;
  s.capacity_class = "spot";
  s.fingerprint = "abc";
  s.record_prefix = "/root/runs/r/_jobs/step.2";
  auto back = AttemptSpecFromJson(AttemptSpecToJson(s));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back.value().argv, s.argv);
  EXPECT_EQ(back.value().env, s.env);
  EXPECT_EQ(back.value().uid, s.uid);
  EXPECT_EQ(back.value().cpus, 1.5);
  EXPECT_EQ(back.value().memory_bytes, s.memory_bytes);
  EXPECT_EQ(back.value().gpus, 2);
  EXPECT_EQ(back.value().timeout_ms, 90000);
  EXPECT_EQ(back.value().capacity_class, "spot");
  EXPECT_EQ(back.value().fingerprint, "abc");
  EXPECT_EQ(back.value().record_prefix, s.record_prefix);
}

TEST(AttemptFile, BadSpecsAreErrorsNotCrashes) {
  EXPECT_FALSE(AttemptSpecFromJson("").ok());
  EXPECT_FALSE(AttemptSpecFromJson("[1]").ok());
  EXPECT_FALSE(AttemptSpecFromJson(R"({"uid": 3})").ok());
  EXPECT_FALSE(AttemptRecordFromJson(R"({"uid": "x", "outcome": "exploded"})").ok());
  AttemptSpec s;
  s.argv = {"x"};
  std::string text = AttemptSpecToJson(s);
  text.replace(text.find("\"x\""), 3, "{\"hex\": \"zz\"}");
  EXPECT_FALSE(AttemptSpecFromJson(text).ok());
}

TEST(AttemptFile, RecordRoundTrip) {
  AttemptRecord r;
  r.uid = "run/t/1";
  r.result.outcome = AttemptOutcome::kRetryable;
  r.result.exit_code = 75;
  r.result.duration_ms = 1234;
  r.result.message = std::string("bad \xff byte", 10);
  r.node = "n2";
  r.job_id = "42";
  r.restart_count = 1;
  r.interrupted_by = 15;
  auto back = AttemptRecordFromJson(AttemptRecordToJson(r));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back.value().result.outcome, AttemptOutcome::kRetryable);
  EXPECT_EQ(back.value().result.exit_code, 75);
  EXPECT_EQ(back.value().result.message, r.result.message);
  EXPECT_EQ(back.value().interrupted_by, 15);
  EXPECT_EQ(back.value().job_id, "42");
}

TEST(SlurmExecutor, SbatchGetsTheStepsResourcesAndNoShell) {
  SlurmConfig c;
  c.partitions = {{"spot", "cheap"}, {"on-demand", "safe"}};
  c.account = "lab";
  c.sbatch_args = {"--exclude=n9"};
  c.nightshift = "/opt/it's here/nightshift";
  AttemptSpec s;
  s.uid = "R/detect/seg_0001/3";
  s.cpus = 1.5;
  s.memory_bytes = 1LL << 30;
  s.gpus = 1;
  s.timeout_ms = 30 * 60000;
  s.grace_ms = 10000;
  s.capacity_class = "spot";
  s.record_prefix = "/shared/runs/R/_jobs/detect.seg_0001.3";
  auto a = SlurmExecutor::SbatchArgv(c, s);
  EXPECT_EQ(a.front(), "sbatch");
  EXPECT_TRUE(Has(a, "--cpus-per-task=2"));
  EXPECT_TRUE(Has(a, "--mem=1024M"));
  EXPECT_TRUE(Has(a, "--gres=gpu:1"));
  EXPECT_TRUE(Has(a, "--time=32"));  // 30m + 10s grace, rounded up, + 1 minute
  EXPECT_TRUE(Has(a, "--partition=cheap"));
  EXPECT_TRUE(Has(a, "--account=lab"));
  EXPECT_TRUE(Has(a, "--no-requeue"));
  EXPECT_TRUE(Has(a, "--exclude=n9"));
  EXPECT_TRUE(Has(a, "--job-name=ns/R/detect/seg_0001/3"));
  EXPECT_EQ(a.back(), s.record_prefix + ".sh");
  // With a timeout the wrapper ends the step: no time-limit notice.
  for (const auto& x : a) EXPECT_NE(x.rfind("--signal", 0), 0u) << x;
  s.timeout_ms = 0;
  s.capacity_class = "on-demand";
  s.memory_bytes = 0;
  a = SlurmExecutor::SbatchArgv(c, s);
  EXPECT_TRUE(Has(a, "--partition=safe"));
  EXPECT_TRUE(Has(a, "--mem=512M"));  // default_memory
  EXPECT_TRUE(Has(a, "--signal=B:TERM@120"));
  for (const auto& x : a) EXPECT_NE(x.rfind("--time", 0), 0u) << x;
  // The script quotes the paths it execs.
  std::string script = SlurmExecutor::JobScript(c, s);
  EXPECT_NE(script.find("exec '/opt/it'\\''s here/nightshift' task-exec '/shared/runs/R/_jobs/detect.seg_0001.3.json'"),
            std::string::npos)
      << script;
}

class SlurmConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() / ("ns_slurm_cfg_" + std::to_string(::getpid()))).string();
  }
  void TearDown() override { (void)::unlink(path_.c_str()); }
  Status Load(const std::string& text, SlurmConfig* c) {
    EXPECT_TRUE(WriteFileAtomic(path_, text).ok());
    return cli::LoadSlurmConfig(path_, c);
  }
  std::string path_;
};

TEST_F(SlurmConfigTest, ReadsEveryKey) {
  SlurmConfig c;
  Status st = Load(
      "partitions: {spot: s1, on-demand: o1}\naccount: a\nqos: q\nsbatch_args: [--x, --y=1]\n"
      "nightshift: /n\ndefault_memory: 2GiB\npoll_interval: 500ms\nrecord_grace: 10s\nnotice: 2m\n",
      &c);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(c.partitions["spot"], "s1");
  EXPECT_EQ(c.partitions["on-demand"], "o1");
  EXPECT_EQ(c.qos, "q");
  EXPECT_EQ(c.sbatch_args, (std::vector<std::string>{"--x", "--y=1"}));
  EXPECT_EQ(c.default_memory_bytes, 2LL << 30);
  EXPECT_EQ(c.poll_ms, 500);
  EXPECT_EQ(c.record_grace_ms, 10000);
  EXPECT_EQ(c.notice_s, 120);
}

TEST_F(SlurmConfigTest, MistakesNameTheLineAndSayWhatToWrite) {
  SlurmConfig c;
  Status st = Load("account: a\npartitons: {spot: s}\n", &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(":2:1:"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("unknown key 'partitons'"), std::string::npos) << st.message();
  st = Load("partitions: {cheap: s}\n", &c);
  EXPECT_NE(st.message().find("unknown capacity class 'cheap'"), std::string::npos) << st.message();
  st = Load("default_memory: lots\npoll_interval: -1s\n", &c);
  EXPECT_NE(st.message().find("default_memory: bad size 'lots'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("poll_interval: bad duration"), std::string::npos) << st.message();
  st = Load("sbatch_args: --exclusive\n", &c);
  EXPECT_NE(st.message().find("expected a list"), std::string::npos) << st.message();
  st = Load("[1, 2]\n", &c);
  EXPECT_FALSE(st.ok());
  EXPECT_FALSE(cli::LoadSlurmConfig("/nonexistent/slurm.yaml", &c).ok());
}

}  // namespace
}  // namespace ns
