// The local executor with real processes: outcomes, timeouts, cancel, logs
// created on the first byte, and descendants that leave the attempt's group.
// Also built under ThreadSanitizer (the monitor thread and the caller's).
#include "exec/local_executor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <filesystem>

#include "engine/event_queue.h"
#include "util/fs.h"
#include "util/process.h"

namespace ns {
namespace {

class LocalExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("ns_exec_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto e = LocalExecutor::Create(&events_, Capacity{2, 0, 0});
    ASSERT_TRUE(e.ok()) << e.status().message();
    exec_ = std::move(e.value());
  }
  void TearDown() override {
    exec_.reset();
    std::filesystem::remove_all(dir_);
  }

  AttemptSpec Spec(uint64_t id, std::vector<std::string> argv) {
    AttemptSpec s;
    s.id = id;
    s.uid = "test-" + std::to_string(::getpid()) + "/" + std::to_string(id);
    s.argv = std::move(argv);
    s.env = {"PATH=/usr/bin:/bin", "NIGHTSHIFT_ATTEMPT_UID=" + s.uid};
    s.cwd = dir_;
    s.stdout_path = dir_ + "/" + std::to_string(id) + ".out";
    s.stderr_path = dir_ + "/" + std::to_string(id) + ".err";
    s.grace_ms = 500;
    return s;
  }

  AttemptResult WaitFor(uint64_t id) {
    while (true) {
      for (auto& r : events_.Wait(kForever)) {
        if (r.id == id) return r;
        pending_.push_back(r);
      }
    }
  }

  RealClock clock_;
  EventQueue events_{&clock_};
  std::unique_ptr<LocalExecutor> exec_;
  std::vector<AttemptResult> pending_;
  std::string dir_;
};

TEST_F(LocalExecutorTest, OutcomesAndLogsCreatedOnTheFirstByte) {
  ASSERT_TRUE(exec_->Submit(Spec(1, {"sh", "-c", "echo out; exit 0"})).ok());
  AttemptResult r = WaitFor(1);
  EXPECT_EQ(r.outcome, AttemptOutcome::kSucceeded);
  EXPECT_EQ(ReadFile(dir_ + "/1.out").value(), "out\n");
  EXPECT_FALSE(PathExists(dir_ + "/1.err")) << "a stream with no bytes makes no file";

  ASSERT_TRUE(exec_->Submit(Spec(2, {"sh", "-c", "echo err >&2; exit 75"})).ok());
  r = WaitFor(2);
  EXPECT_EQ(r.outcome, AttemptOutcome::kRetryable);
  EXPECT_EQ(ReadFile(dir_ + "/2.err").value(), "err\n");

  ASSERT_TRUE(exec_->Submit(Spec(3, {"sh", "-c", "exit 3"})).ok());
  EXPECT_EQ(WaitFor(3).outcome, AttemptOutcome::kFailed);
}

TEST_F(LocalExecutorTest, BigOutputIsComplete) {
  // 8 MiB through the pipe: more than its buffer, all of it in the log.
  ASSERT_TRUE(exec_->Submit(Spec(1, {"sh", "-c", "head -c 8388608 /dev/zero"})).ok());
  EXPECT_EQ(WaitFor(1).outcome, AttemptOutcome::kSucceeded);
  EXPECT_EQ(std::filesystem::file_size(dir_ + "/1.out"), 8388608u);
}

TEST_F(LocalExecutorTest, TimeoutAndCancel) {
  AttemptSpec s = Spec(1, {"sleep", "30"});
  s.timeout_ms = 200;
  ASSERT_TRUE(exec_->Submit(s).ok());
  ASSERT_TRUE(exec_->Submit(Spec(2, {"sleep", "30"})).ok());
  exec_->Cancel(2);
  EXPECT_EQ(WaitFor(2).outcome, AttemptOutcome::kCancelled);
  EXPECT_EQ(WaitFor(1).outcome, AttemptOutcome::kTimedOut);
}

TEST_F(LocalExecutorTest, ProgramNotFoundStartsNothing) {
  auto r = exec_->Submit(Spec(1, {"no-such-program-here"}));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("not found"), std::string::npos);
}

TEST_F(LocalExecutorTest, DescendantsThatLeaveTheGroupEndWithTheAttempt) {
  // setsid puts the daemon in a session (and group) of its own: only the
  // subreaper and the attempt uid in its environment find it.
  std::string mark = dir_ + "/daemon.pid";
  ASSERT_TRUE(exec_->Submit(Spec(1, {"sh", "-c",
                                     "setsid sh -c 'echo $$ > " + mark + "; exec sleep 300' "
                                     "</dev/null >/dev/null 2>&1 & sleep 0.3"}))
                  .ok());
  EXPECT_EQ(WaitFor(1).outcome, AttemptOutcome::kSucceeded);
  auto pid_text = ReadFile(mark);
  ASSERT_TRUE(pid_text.ok());
  pid_t daemon = static_cast<pid_t>(std::stol(pid_text.value()));
  // It is killed and reaped: its pid stops naming a live process.
  for (int i = 0; i < 100 && ProcessStartTicks(daemon) != 0; ++i) ::usleep(20000);
  EXPECT_EQ(ProcessStartTicks(daemon), 0) << "the daemon (pid " << daemon << ") outlived its attempt";
}

TEST_F(LocalExecutorTest, AnUnrelatedChildIsNeverTouched) {
  // A child of ours without an attempt uid (the engine's own helpers) is left alone.
  pid_t pid = 0;
  char arg0[] = "sleep", arg1[] = "5";
  char* argv[] = {arg0, arg1, nullptr};
  ASSERT_EQ(::posix_spawn(&pid, "/bin/sleep", nullptr, nullptr, argv, environ), 0);
  ASSERT_TRUE(exec_->Submit(Spec(1, {"true"})).ok());
  EXPECT_EQ(WaitFor(1).outcome, AttemptOutcome::kSucceeded);
  ::usleep(100000);
  EXPECT_EQ(::kill(pid, 0), 0) << "the sweep killed a process that was not an attempt's";
  ::kill(pid, SIGKILL);
}

TEST(ProcessIdentity, TellsAReusedPidApart) {
  ProcessIdentity self = SelfIdentity();
  EXPECT_TRUE(IsAlive(self));
  ProcessIdentity other = self;
  other.start_ticks += 1;  // the same pid, started at another time: someone else
  EXPECT_FALSE(IsAlive(other));
  EXPECT_FALSE(SignalIdentity(other, 0).ok());
  EXPECT_TRUE(SignalIdentity(self, 0).ok());
  ProcessIdentity parsed = ProcessIdentity::Parse(self.ToString());
  EXPECT_EQ(parsed.pid, self.pid);
  EXPECT_EQ(parsed.start_ticks, self.start_ticks);
  EXPECT_EQ(parsed.boot_id, self.boot_id);
  EXPECT_EQ(parsed.host, self.host);
  ProcessIdentity elsewhere = self;
  elsewhere.host = "another-host";
  EXPECT_TRUE(IsForeign(elsewhere));
  EXPECT_FALSE(IsAlive(elsewhere));
}

}  // namespace
}  // namespace ns
