// The server's pieces that need no network: the job queue in the store,
// submissions, paths kept inside a run folder, and the event hub.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "server/files.h"
#include "server/hub.h"
#include "server/server.h"
#include "store/store.h"

namespace ns {
namespace {

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ns_server_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto s = Store::Open((dir_ / "nightshift.db").string());
    ASSERT_TRUE(s.ok()) << s.status().message();
    store_ = std::move(s.value());
    std::ofstream(dir_ / "p.yaml") << "name: p\nparams:\n  n: {type: int, default: 1}\nsteps:\n  a:\n    run: echo ${params.n}\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& rel) { return (dir_ / rel).string(); }
  JobRow Job(const std::string& id, int priority, int64_t created, const std::string& key = "") {
    JobRow j;
    j.job_id = id;
    j.key = key;
    j.pipeline_file = "/p.yaml";
    j.params_json = "{}";
    j.priority = priority;
    j.state = "pending";
    j.created_at = j.updated_at = created;
    return j;
  }
  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(ServerTest, OneJobPerKeyEver) {
  auto a = store_->SubmitJob(Job("j1", 0, 1, "k"));
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a.value().second);
  JobRow done = a.value().first;
  done.state = "succeeded";
  ASSERT_TRUE(store_->UpdateJob(done).ok());
  auto b = store_->SubmitJob(Job("j2", 0, 2, "k"));
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b.value().second);
  EXPECT_EQ(b.value().first.job_id, "j1");
  EXPECT_EQ(b.value().first.state, "succeeded");
  // Jobs without a key never collide.
  EXPECT_TRUE(store_->SubmitJob(Job("j3", 0, 3)).value().second);
  EXPECT_TRUE(store_->SubmitJob(Job("j4", 0, 4)).value().second);
  EXPECT_EQ(store_->ListJobs("", 100).value().size(), 3u);
}

TEST_F(ServerTest, ConcurrentSubmissionsOfOneKeyMakeOneJob) {
  std::vector<std::thread> threads;
  std::atomic<int> created{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto s = Store::Open(Path("nightshift.db"));
      ASSERT_TRUE(s.ok());
      for (int i = 0; i < 20; ++i) {
        auto r = s.value()->SubmitJob(Job("j" + std::to_string(t) + "-" + std::to_string(i), 0, i, "key-" + std::to_string(i)));
        ASSERT_TRUE(r.ok()) << r.status().message();
        created += r.value().second;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 20);
  EXPECT_EQ(store_->ListJobs("", 1000).value().size(), 20u);
}

TEST_F(ServerTest, LeasableJobsByPriorityThenAgeAndExpiredLeases) {
  ASSERT_TRUE(store_->SubmitJob(Job("old", 0, 1)).ok());
  ASSERT_TRUE(store_->SubmitJob(Job("urgent", 9, 5)).ok());
  ASSERT_TRUE(store_->SubmitJob(Job("new", 0, 3)).ok());
  JobRow held = Job("held", 0, 0);
  ASSERT_TRUE(store_->SubmitJob(held).ok());
  held.state = "leased";
  held.lease_owner = "host:1:2:boot";
  held.lease_expires = 1000;
  ASSERT_TRUE(store_->UpdateJob(held).ok());
  auto before = store_->LeasableJobs(999, 10).value();
  ASSERT_EQ(before.size(), 3u);
  EXPECT_EQ(before[0].job_id, "urgent");
  EXPECT_EQ(before[1].job_id, "old");
  EXPECT_EQ(before[2].job_id, "new");
  auto after = store_->LeasableJobs(1001, 10).value();  // the lease expired
  ASSERT_EQ(after.size(), 4u);
  EXPECT_EQ(after[1].job_id, "held");
  EXPECT_EQ(store_->RenewLeases("host:1:2:boot", 5000).value(), 1);
  EXPECT_EQ(store_->LeasableJobs(1001, 10).value().size(), 3u);
  EXPECT_EQ(store_->LeasableJobs(1001, 2).value().size(), 2u);
}

TEST_F(ServerTest, JobOfRunFindsTheJobThatWillResumeIt) {
  JobRow j = Job("j", 0, 1);
  j.resume = "run-1";
  ASSERT_TRUE(store_->SubmitJob(j).ok());
  auto found = store_->JobOfRun("run-1");
  ASSERT_TRUE(found.ok() && found.value());
  EXPECT_EQ(found.value()->job_id, "j");
  EXPECT_FALSE(store_->JobOfRun("run-2").value());
}

TEST_F(ServerTest, SubmissionParsingReportsEveryProblem) {
  server::Submission s;
  Status st = server::ParseSubmission(R"({"params": [], "priority": "x", "max_attempts": 0, "extra": 1})", &s);
  ASSERT_FALSE(st.ok());
  for (const char* want : {"params:", "priority:", "max_attempts:", "unknown field 'extra'", "pipeline: required"}) {
    EXPECT_NE(st.message().find(want), std::string::npos) << want << " in " << st.message();
  }
  EXPECT_FALSE(server::ParseSubmission("{", &s).ok());
  EXPECT_FALSE(server::ParseSubmission("[]", &s).ok());
  server::Submission ok;
  ASSERT_TRUE(server::ParseSubmission(R"({"pipeline": "p.yaml", "params": {"n": 3}, "deadline": "6h", "key": "k"})", &ok).ok());
  EXPECT_EQ(ok.pipeline, "p.yaml");
  EXPECT_EQ(ok.key, "k");
}

TEST_F(ServerTest, SubmitJobChecksThePipelineAndParamsFirst) {
  server::Submission s;
  s.pipeline = "p.yaml";
  s.params = {{"n", "many"}};
  std::string problems;
  auto bad = server::SubmitJob(store_.get(), s, dir_.string(), 1000, &problems);
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(problems.find("n"), std::string::npos) << problems;
  EXPECT_TRUE(store_->ListJobs("", 10).value().empty());
  s.params = {{"n", 7}};
  auto good = server::SubmitJob(store_.get(), s, dir_.string(), 1000, &problems);
  ASSERT_TRUE(good.ok()) << problems;
  EXPECT_EQ(good.value().first.pipeline_file, Path("p.yaml"));
  EXPECT_EQ(good.value().first.params_json, R"({"n":7})");
  // A FIFO is never read.
  ASSERT_EQ(::mkfifo(Path("fifo.yaml").c_str(), 0600), 0);
  s.pipeline = "fifo.yaml";
  problems.clear();
  EXPECT_FALSE(server::SubmitJob(store_.get(), s, dir_.string(), 1000, &problems).ok());
  EXPECT_NE(problems.find("not a regular file"), std::string::npos) << problems;
}

TEST_F(ServerTest, ResolveInsideKeepsPathsInTheRunFolder) {
  std::filesystem::create_directories(dir_ / "run/step");
  std::ofstream(dir_ / "run/step/out.txt") << "x";
  std::ofstream(dir_ / "secret") << "s";
  std::filesystem::create_symlink(dir_ / "secret", dir_ / "run/step/out-link");
  std::filesystem::create_symlink("out.txt", dir_ / "run/step/in-link");
  std::string base = Path("run");
  EXPECT_TRUE(server::ResolveInside(base, "step/out.txt").ok());
  EXPECT_TRUE(server::ResolveInside(base, "").ok());
  EXPECT_TRUE(server::ResolveInside(base, "step/in-link").ok());
  for (const char* bad : {"../secret", "step/../../secret", "/etc/passwd", "step/out-link"}) {
    auto r = server::ResolveInside(base, bad);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(server::ResolveInside(base, std::string("step/out.txt\0x", 14)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(server::ResolveInside(base, "step/missing").status().code(), StatusCode::kNotFound);
}

TEST(EventHubTest, StreamsSeeEventsAfterTheirPositionAndWakeOnPublish) {
  server::EventHub hub;
  hub.Publish("job", "{}");
  int64_t pos = hub.last_id();
  std::vector<server::HubEvent> got;
  std::thread reader([&] { got = hub.Since(pos, 5000); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  hub.Publish("run", R"({"run_id":"r"})");
  reader.join();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, "run");
  EXPECT_EQ(got[0].id, pos + 1);
  EXPECT_TRUE(hub.Since(hub.last_id(), 10).empty());  // times out
  for (size_t i = 0; i < server::EventHub::kCapacity + 10; ++i) hub.Publish("task", "{}");
  EXPECT_EQ(hub.Since(0, 0).size(), server::EventHub::kCapacity);
  std::thread stopped([&] { got = hub.Since(hub.last_id(), 60000); });
  hub.Stop();
  stopped.join();
  EXPECT_TRUE(got.empty());
}

}  // namespace
}  // namespace ns
