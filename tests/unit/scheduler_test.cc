// The scheduler driven by a fake executor and a fake clock: whole DAGs in
// milliseconds, no processes, no sleeping.
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <thread>

#include "engine/engine.h"
#include "fake_executor.h"
#include "spec/parser.h"
#include "util/fs.h"

namespace ns {

using testing::EnvOf;
using testing::FakeExecutor;

namespace {

struct Recorder : RunObserver {
  std::vector<RunEvent> events;
  int running = 0, max_running = 0;
  void OnEvent(const RunEvent& e) override {
    events.push_back(e);
    if (e.kind == RunEvent::Kind::kTaskStarted) max_running = std::max(max_running, ++running);
    if (e.kind == RunEvent::Kind::kTaskFinished && e.status != "cached") --running;
  }
  std::vector<std::string> Finished(const std::string& status) const {
    std::vector<std::string> out;
    for (const auto& e : events)
      if (e.kind == RunEvent::Kind::kTaskFinished && e.status == status) out.push_back(e.task_id);
    return out;
  }
};

AttemptResult Ok() {
  AttemptResult r;
  r.outcome = AttemptOutcome::kSucceeded;
  r.exit_code = 0;
  return r;
}

AttemptResult Exit(int code) {
  AttemptResult r;
  r.exit_code = code;
  r.outcome = code == 75 ? AttemptOutcome::kRetryable : AttemptOutcome::kFailed;
  r.message = "exit code " + std::to_string(code);
  return r;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (std::filesystem::temp_directory_path() /
             ("ns_sched_" + std::to_string(::getpid()) + "_" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_);
    store_ = std::move(Store::Open(root_ + "/nightshift.db").value());
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // Parses, resolves params and runs to the end with `behaviour`.
  RunStatus RunPipeline(const std::string& yaml, FakeExecutor::Behaviour behaviour,
                        std::vector<std::pair<std::string, std::string>> params = {},
                        bool resume = false, Capacity cap = {2, 0, 0}) {
    spec::Diagnostics d("p.yaml");
    pipeline_ = spec::ParsePipelineText(yaml, root_ + "/p.yaml", &d);
    EXPECT_TRUE(pipeline_) << d.Format();
    auto values = spec::ResolveParams(*pipeline_, params);
    EXPECT_TRUE(values.ok()) << values.status().message();
    RunConfig cfg;
    cfg.layout = Layout{root_};
    cfg.run_id = "run1";
    cfg.resume = resume;
    cfg.params = values.value();
    cfg.path_env = "/usr/bin:/bin";
    cfg.seed = 42;
    EventQueue q(&clock_);
    exec_ = std::make_unique<FakeExecutor>(&q, cap, std::move(behaviour));
    rec_ = Recorder();
    Scheduler s(*pipeline_, cfg, store_.get(), exec_.get(), &clock_, &q, &rec_);
    auto r = s.Run();
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? r.value() : RunStatus::kFailed;
  }

  std::vector<std::string> SubmittedTasks() const {
    std::vector<std::string> out;
    for (const auto& s : exec_->submitted) out.push_back(EnvOf(s, "NIGHTSHIFT_TASK_ID"));
    return out;
  }

  std::string root_;
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::optional<spec::Pipeline> pipeline_;
  std::unique_ptr<FakeExecutor> exec_;
  Recorder rec_;
};

const char* kDiamond = R"(name: d
steps:
  a: {run: echo a}
  b: {needs: [a], run: echo b}
  c: {needs: [a], run: echo c}
  d: {needs: [b, c], run: echo d}
)";

}  // namespace

TEST_F(SchedulerTest, RunsTheDagInDependencyOrder) {
  EXPECT_EQ(RunPipeline(kDiamond, [](const AttemptSpec&) { return Ok(); }), RunStatus::kSucceeded);
  auto order = SubmittedTasks();
  ASSERT_EQ(order.size(), 4u);
  EXPECT_EQ(order.front(), "a");
  EXPECT_EQ(order.back(), "d");
  EXPECT_TRUE(PathExists(root_ + "/runs/run1/run.json"));
  EXPECT_TRUE(PathExists(root_ + "/runs/run1/d/_task.json"));
}

TEST_F(SchedulerTest, CommitsOutputsAndFansOutOverCommittedFiles) {
  const char* spec = R"(name: f
steps:
  split: {run: split}
  each:
    needs: [split]
    foreach: ${steps.split.output}/*.part
    run: work ${item}
  join:
    needs: [each]
    run: join ${steps.each.output}
)";
  auto b = [](const AttemptSpec& s) {
    std::string out = EnvOf(s, "NIGHTSHIFT_OUTPUT_DIR");
    if (s.argv[0] == "split") {
      for (int i = 0; i < 50; ++i) std::ofstream(out + "/p" + std::to_string(i) + ".part") << i;
      std::ofstream(out + "/ignored.txt") << "x";
    } else if (s.argv[0] == "work") {
      std::ofstream(out + "/result") << s.argv[1];
    }
    return Ok();
  };
  EXPECT_EQ(RunPipeline(spec, b), RunStatus::kSucceeded);
  EXPECT_EQ(exec_->submitted.size(), 52u);
  EXPECT_TRUE(PathExists(root_ + "/runs/run1/each/p7/result"));
  EXPECT_EQ(ReadFile(root_ + "/runs/run1/each/p7/result").value(), root_ + "/runs/run1/split/p7.part");
  EXPECT_EQ(exec_->submitted.back().argv[1], root_ + "/runs/run1/each");
  // Each attempt's output folder is private: never the final place.
  for (const auto& s : exec_->submitted)
    EXPECT_NE(EnvOf(s, "NIGHTSHIFT_OUTPUT_DIR").find("/_staging/"), std::string::npos);
  EXPECT_FALSE(PathExists(root_ + "/runs/run1/_staging"));
}

TEST_F(SchedulerTest, RespectsCpuCapacity) {
  std::string spec = "name: c\nsteps:\n  w:\n    foreach: [a, b, c, d, e, f]\n    run: echo\n"
                     "    resources: {cpus: 1}\n";
  RunPipeline(spec, [](const AttemptSpec&) { return Ok(); }, {}, false, {2, 0, 0});
  EXPECT_EQ(rec_.max_running, 2);
  std::string big = "name: c\nsteps:\n  w:\n    foreach: [a, b, c, d]\n    run: echo\n"
                    "    resources: {cpus: 2}\n";
  RunPipeline(big, [](const AttemptSpec&) { return Ok(); }, {}, false, {2, 0, 0});
  EXPECT_EQ(rec_.max_running, 1);
}

TEST_F(SchedulerTest, ATaskThatCanNeverFitFailsInsteadOfWaitingForever) {
  // Preflight refuses such a step in `nightshift run`; the scheduler must not
  // hang on one either (a capacity that shrank, another caller).
  std::string spec = "name: c\nsteps:\n  w:\n    run: echo\n    resources: {cpus: 4}\n"
                     "  after:\n    needs: [w]\n    run: echo\n";
  RunStatus st = RunPipeline(spec, [](const AttemptSpec&) { return Ok(); }, {}, false, {2, 0, 0});
  EXPECT_EQ(st, RunStatus::kFailed);
  ASSERT_EQ(rec_.Finished("failed").size(), 1u);
  bool named = false;
  for (const auto& e : rec_.events) named |= e.message.find("can never start") != std::string::npos;
  EXPECT_TRUE(named);
  EXPECT_EQ(exec_->submitted.size(), 0u);
}

TEST_F(SchedulerTest, RetriesRetryableWithExponentialBackoffAndJitter) {
  const char* spec = "name: r\nsteps:\n  a:\n    run: flaky\n    retry: {max_attempts: 4, backoff: 10s}\n";
  int calls = 0;
  std::vector<TimeMs> starts;
  auto b = [&](const AttemptSpec&) {
    starts.push_back(clock_.Now());
    return ++calls < 4 ? Exit(75) : Ok();
  };
  EXPECT_EQ(RunPipeline(spec, b), RunStatus::kSucceeded);
  ASSERT_EQ(starts.size(), 4u);
  // Delays: base*2^(n-1), half fixed and half random ("equal jitter").
  for (int n = 1; n <= 3; ++n) {
    TimeMs gap = starts[n] - starts[n - 1];
    TimeMs base = 10000LL << (n - 1);
    EXPECT_GE(gap, base / 2) << n;
    EXPECT_LE(gap, base) << n;
  }
  auto attempts = store_->ListAttempts("run1");
  ASSERT_TRUE(attempts.ok());
  ASSERT_EQ(attempts->size(), 4u);
  EXPECT_EQ(attempts->at(0).status, "retryable");
  EXPECT_GT(attempts->at(0).pid, 0) << "the pid is recorded, so a lost attempt can be found";
  EXPECT_EQ(attempts->at(3).status, "succeeded");
}

TEST_F(SchedulerTest, PlainFailureIsNotRetriedUnlessThePolicySaysSo) {
  const char* once = "name: r\nsteps:\n  a: {run: bad}\n";
  EXPECT_EQ(RunPipeline(once, [](const AttemptSpec&) { return Exit(1); }), RunStatus::kFailed);
  EXPECT_EQ(exec_->submitted.size(), 1u);
  const char* retry_failed = "name: r\nsteps:\n  a:\n    run: bad\n    retry: {max_attempts: 3, on: [failed]}\n";
  std::filesystem::remove_all(root_ + "/runs");
  store_ = std::move(Store::Open(root_ + "/other.db").value());
  EXPECT_EQ(RunPipeline(retry_failed, [](const AttemptSpec&) { return Exit(1); }), RunStatus::kFailed);
  EXPECT_EQ(exec_->submitted.size(), 3u);
}

TEST_F(SchedulerTest, TimeoutAndSignalAreClassifiedByPolicy) {
  const char* spec = "name: r\nsteps:\n  a:\n    run: slow\n    retry: {max_attempts: 2, on: [timed_out]}\n"
                     "  b:\n    run: killed\n    retry: {max_attempts: 2, on: [retryable]}\n";
  auto b = [](const AttemptSpec& s) {
    AttemptResult r;
    r.outcome = s.argv[0] == "slow" ? AttemptOutcome::kTimedOut : AttemptOutcome::kSignal;
    return r;
  };
  EXPECT_EQ(RunPipeline(spec, b), RunStatus::kFailed);
  int slow = 0, killed = 0;
  for (const auto& s : exec_->submitted) (s.argv[0] == "slow" ? slow : killed)++;
  EXPECT_EQ(slow, 2);
  EXPECT_EQ(killed, 1);
}

TEST_F(SchedulerTest, FailureSkipsDependentsButIndependentWorkContinues) {
  const char* spec = R"(name: f
steps:
  a: {run: bad}
  b: {needs: [a], run: echo}
  c: {run: echo}
  d: {needs: [c], run: echo}
)";
  auto b = [](const AttemptSpec& s) { return s.argv[0] == "bad" ? Exit(2) : Ok(); };
  EXPECT_EQ(RunPipeline(spec, b), RunStatus::kFailed);
  auto tasks = SubmittedTasks();
  EXPECT_EQ(tasks.size(), 3u);
  EXPECT_EQ(std::count(tasks.begin(), tasks.end(), "b"), 0);
  EXPECT_EQ(std::count(tasks.begin(), tasks.end(), "d"), 1);
}

TEST_F(SchedulerTest, ResumeReusesUnchangedTasksAndRecomputesWhatAParamAffects) {
  const char* spec = R"(name: r
params:
  x: {type: string, default: one}
  y: {type: string, default: two}
steps:
  ax:
    run: echo ${params.x}
  ay:
    run: echo ${params.y}
  fan:
    foreach: [p, q, r]
    run: echo ${item} ${params.y}
  after: {needs: [ax], run: echo done}
)";
  auto ok = [](const AttemptSpec&) { return Ok(); };
  EXPECT_EQ(RunPipeline(spec, ok), RunStatus::kSucceeded);
  EXPECT_EQ(exec_->submitted.size(), 6u);
  // Same inputs: everything is reused.
  EXPECT_EQ(RunPipeline(spec, ok, {}, true), RunStatus::kSucceeded);
  EXPECT_EQ(exec_->submitted.size(), 0u);
  EXPECT_EQ(rec_.Finished("cached").size(), 6u);
  // x changes: ax and its dependent rerun, nothing else.
  EXPECT_EQ(RunPipeline(spec, ok, {{"x", "uno"}}, true), RunStatus::kSucceeded);
  auto rerun = SubmittedTasks();
  std::sort(rerun.begin(), rerun.end());
  EXPECT_EQ(rerun, (std::vector<std::string>{"after", "ax"}));
}

TEST_F(SchedulerTest, ResumeRerunsFailedTasksOnly) {
  const char* spec = "name: r\nsteps:\n  w:\n    foreach: [a, b, c]\n    run: work ${item}\n";
  EXPECT_EQ(RunPipeline(spec, [](const AttemptSpec& s) { return s.argv[1] == "b" ? Exit(1) : Ok(); }),
            RunStatus::kFailed);
  EXPECT_EQ(RunPipeline(spec, [](const AttemptSpec&) { return Ok(); }, {}, true), RunStatus::kSucceeded);
  EXPECT_EQ(SubmittedTasks(), (std::vector<std::string>{"w/b"}));
  // Attempt numbers continue, so earlier logs are kept.
  EXPECT_EQ(EnvOf(exec_->submitted[0], "NIGHTSHIFT_ATTEMPT"), "2");
}

TEST_F(SchedulerTest, ResumeWithFewerItemsDropsTheOnesThatAreGone) {
  const char* spec = R"(name: r
params:
  l: {type: list, default: [a, b, c]}
steps:
  w:
    foreach: ${params.l}
    run: work ${item}
)";
  auto ok = [](const AttemptSpec& s) {
    std::ofstream(EnvOf(s, "NIGHTSHIFT_OUTPUT_DIR") + "/out") << "x";
    return Ok();
  };
  EXPECT_EQ(RunPipeline(spec, ok), RunStatus::kSucceeded);
  EXPECT_TRUE(PathExists(root_ + "/runs/run1/w/c/out"));
  EXPECT_EQ(RunPipeline(spec, ok, {{"l", "a,b"}}, true), RunStatus::kSucceeded);
  EXPECT_EQ(exec_->submitted.size(), 0u);
  EXPECT_FALSE(PathExists(root_ + "/runs/run1/w/c"));
  auto tasks = store_->ListTasks("run1");
  ASSERT_TRUE(tasks.ok());
  std::vector<std::string> ids;
  for (const auto& t : tasks.value()) ids.push_back(t.task_id);
  EXPECT_EQ(ids, (std::vector<std::string>{"w/a", "w/b"}));
}

TEST_F(SchedulerTest, FingerprintCoversInputFileContents) {
  std::string input = root_ + "/input.txt";
  std::ofstream(input) << "v1";
  std::string spec = "name: r\nparams:\n  f: {type: path}\nsteps:\n  a:\n    run: cat ${params.f}\n";
  auto ok = [](const AttemptSpec&) { return Ok(); };
  RunPipeline(spec, ok, {{"f", input}});
  RunPipeline(spec, ok, {{"f", input}}, true);
  EXPECT_EQ(exec_->submitted.size(), 0u);
  std::ofstream(input) << "v2";
  RunPipeline(spec, ok, {{"f", input}}, true);
  EXPECT_EQ(exec_->submitted.size(), 1u);
}

TEST_F(SchedulerTest, CancelStopsRunningAndPendingTasks) {
  const char* spec = "name: c\nsteps:\n  w:\n    foreach: [a, b, c, d]\n    run: work\n  z: {needs: [w], run: echo}\n";
  spec::Diagnostics d("p.yaml");
  pipeline_ = spec::ParsePipelineText(spec, root_ + "/p.yaml", &d);
  RunConfig cfg;
  cfg.layout = Layout{root_};
  cfg.run_id = "run1";
  cfg.params = spec::ResolveParams(*pipeline_, {}).value();
  EventQueue q(&clock_);
  FakeExecutor exec(&q, {2, 0, 0}, [](const AttemptSpec&) { return Ok(); });
  exec.hold = true;  // attempts stay "running" until cancelled
  Recorder rec;
  Scheduler s(*pipeline_, cfg, store_.get(), &exec, &clock_, &q, &rec);
  std::thread canceller([&] {
    while (exec.SubmittedCount() < 2) std::this_thread::yield();
    q.RequestCancel();
    // The executor answers cancels with cancelled results.
    std::vector<uint64_t> ids;
    while ((ids = exec.CancelledIds()).size() < 2) std::this_thread::yield();
    for (uint64_t id : {ids[0], ids[1]}) {
      AttemptResult r;
      r.id = id;
      r.outcome = AttemptOutcome::kCancelled;
      q.OnAttemptFinished(r);
    }
  });
  auto r = s.Run();
  canceller.join();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), RunStatus::kCancelled);
  EXPECT_EQ(exec.submitted.size(), 2u);
  EXPECT_EQ(rec.Finished("cancelled").size(), 4u);
  auto run_json = ReadFile(root_ + "/runs/run1/run.json");
  ASSERT_TRUE(run_json.ok());
  EXPECT_NE(run_json->find("\"status\": \"cancelled\""), std::string::npos);
}

TEST_F(SchedulerTest, StepContractEnvironment) {
  const char* spec = R"(name: e
params:
  name: {type: string, default: "a b; echo pwned"}
steps:
  a:
    run: prog --name ${params.name}
    env: {MINE: "${run.id}-x"}
    checkpoint: true
  b:
    run: prog
)";
  ::setenv("SECRET_FROM_SHELL", "leak", 1);
  RunPipeline(spec, [](const AttemptSpec&) { return Ok(); });
  ::unsetenv("SECRET_FROM_SHELL");
  const AttemptSpec& s = exec_->submitted.at(0);
  EXPECT_EQ(s.argv, (std::vector<std::string>{"prog", "--name", "a b; echo pwned"}));
  EXPECT_EQ(EnvOf(s, "MINE"), "run1-x");
  EXPECT_EQ(EnvOf(s, "NIGHTSHIFT_RUN_ID"), "run1");
  EXPECT_EQ(EnvOf(s, "NIGHTSHIFT_STEP"), "a");
  EXPECT_EQ(EnvOf(s, "NIGHTSHIFT_ATTEMPT"), "1");
  EXPECT_EQ(EnvOf(s, "NIGHTSHIFT_PARAM_NAME"), "a b; echo pwned");
  EXPECT_EQ(EnvOf(s, "NIGHTSHIFT_CHECKPOINT_DIR"), root_ + "/checkpoints/run1/a");
  EXPECT_EQ(EnvOf(s, "NIGHTSHIFT_ATTEMPT_UID"), "run1/a/1");
  // TMPDIR is the scratch folder of the attempt's slot, reused by later attempts.
  EXPECT_NE(EnvOf(s, "TMPDIR").find("/_staging/tmp."), std::string::npos);
  // A step that does not declare `checkpoint: true` gets no checkpoint folder.
  const AttemptSpec* b = nullptr;
  for (const auto& x : exec_->submitted)
    if (EnvOf(x, "NIGHTSHIFT_STEP") == "b") b = &x;
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(EnvOf(*b, "NIGHTSHIFT_CHECKPOINT_DIR"), "");
  EXPECT_FALSE(PathExists(root_ + "/checkpoints/run1/b"));
  EXPECT_EQ(EnvOf(s, "SECRET_FROM_SHELL"), "");
  EXPECT_EQ(EnvOf(s, "NIGHTSHIFT_CPUS"), "1");
  EXPECT_EQ(s.cwd, EnvOf(s, "NIGHTSHIFT_OUTPUT_DIR"));
}

// ---------------------------------------------------------------- spot capacity

AttemptResult Preempted() {
  AttemptResult r;
  r.outcome = AttemptOutcome::kPreempted;
  r.exit_code = 75;
  r.message = "preempted";
  return r;
}

TEST_F(SchedulerTest, PreemptionsNeverSpendTheRetryBudgetAndMoveTheTaskToOnDemand) {
  const char* spec = R"(name: s
steps:
  work:
    run: detect
    spot: true
    max_interruptions: 2
    checkpoint: true
    retry: {max_attempts: 1}
)";
  RunStatus st = RunPipeline(spec, [](const AttemptSpec& a) {
    return a.capacity_class == "spot" ? Preempted() : Ok();
  });
  EXPECT_EQ(st, RunStatus::kSucceeded);
  ASSERT_EQ(exec_->submitted.size(), 3u);
  EXPECT_EQ(exec_->submitted[0].capacity_class, "spot");
  EXPECT_EQ(exec_->submitted[1].capacity_class, "spot");
  EXPECT_EQ(exec_->submitted[2].capacity_class, "on-demand");
  // The checkpoint folder is the same for every attempt.
  EXPECT_EQ(EnvOf(exec_->submitted[0], "NIGHTSHIFT_CHECKPOINT_DIR"),
            EnvOf(exec_->submitted[2], "NIGHTSHIFT_CHECKPOINT_DIR"));
  auto attempts = store_->ListAttempts("run1");
  ASSERT_TRUE(attempts.ok());
  std::string outcomes;
  for (const auto& a : attempts.value()) outcomes += a.status + "/" + a.capacity_class + " ";
  EXPECT_EQ(outcomes, "preempted/spot preempted/spot succeeded/on-demand ");
}

TEST_F(SchedulerTest, TheInterruptionCountSurvivesAResume) {
  const char* spec = R"(name: s
steps:
  work:
    run: detect
    spot: true
    max_interruptions: 2
    retry: {max_attempts: 1}
)";
  // First run: preempted twice on spot, then fails on on-demand.
  RunStatus st = RunPipeline(spec, [](const AttemptSpec& a) {
    return a.capacity_class == "spot" ? Preempted() : Exit(1);
  });
  EXPECT_EQ(st, RunStatus::kFailed);
  ASSERT_EQ(exec_->submitted.size(), 3u);
  // The resume goes straight to on-demand: two interruptions were recorded.
  st = RunPipeline(spec, [](const AttemptSpec&) { return Ok(); }, {}, /*resume=*/true);
  EXPECT_EQ(st, RunStatus::kSucceeded);
  ASSERT_EQ(exec_->submitted.size(), 1u);
  EXPECT_EQ(exec_->submitted[0].capacity_class, "on-demand");
  EXPECT_EQ(EnvOf(exec_->submitted[0], "NIGHTSHIFT_ATTEMPT"), "4");
}

TEST_F(SchedulerTest, TheSpotMarketPreemptsWithinTheEstimateAndIsReproducible) {
  const char* spec = R"(name: s
steps:
  work:
    foreach: [a, b, c, d, e, f, g, h]
    run: detect
    spot: true
    max_interruptions: 1
    notice: 30s
)";
  auto run_once = [&](uint64_t seed) {
    spec::Diagnostics d("p.yaml");
    pipeline_ = spec::ParsePipelineText(spec, root_ + "/p.yaml", &d);
    RunConfig cfg;
    cfg.layout = Layout{root_};
    cfg.run_id = "market" + std::to_string(seed);
    cfg.params = spec::ResolveParams(*pipeline_, {}).value();
    cfg.preempt_rate = 0.5;
    cfg.preempt_seed = seed;
    EventQueue q(&clock_);
    // Spot attempts run until the market preempts them (held); on-demand ones end at once.
    FakeExecutor exec(&q, {8, 0, 0}, [](const AttemptSpec&) { return Ok(); });
    exec.hold_if = [](const AttemptSpec& a) { return a.capacity_class == "spot"; };
    Recorder rec;
    TimeMs start = clock_.Now();
    Scheduler s(*pipeline_, cfg, store_.get(), &exec, &clock_, &q, &rec);
    std::vector<std::string> classes;
    // Spot attempts the market never preempts stay held: end them when the
    // scheduler has nothing else to wait for (all preemptions fired).
    // The fake clock jumps to each preemption at once, so after a moment of real
    // time every drawn preemption has fired; the spot attempts the market
    // spared are still held: end them.
    std::thread finisher([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      exec.ReleaseHeld();
    });
    auto r = s.Run();
    finisher.join();
    EXPECT_TRUE(r.ok());
    std::string pattern;
    for (const auto& [id, notice] : exec.preempted) {
      EXPECT_EQ(notice, 30000);
      pattern += std::to_string(id) + ",";
    }
    // Every preemption came within the estimate (one minute: no history).
    EXPECT_LE(clock_.Now() - start, kDefaultEstimateMs + 1);
    return pattern;
  };
  std::string a = run_once(7), b = run_once(7);
  EXPECT_FALSE(a.empty()) << "at rate 0.5 some of 8 spot attempts are preempted";
  EXPECT_EQ(a, b) << "the same seed preempts the same attempts";
}

TEST_F(SchedulerTest, ATightDeadlineMovesSpotTasksToOnDemandAndSaysWhy) {
  const char* spec = R"(name: d
steps:
  work:
    foreach: [a, b, c, d]
    run: detect
    spot: true
  report:
    needs: [work]
    run: report
    spot: true
)";
  auto run = [&](const std::string& id, TimeMs deadline) {
    spec::Diagnostics d("p.yaml");
    pipeline_ = spec::ParsePipelineText(spec, root_ + "/p.yaml", &d);
    RunConfig cfg;
    cfg.layout = Layout{root_};
    cfg.run_id = id;
    cfg.params = spec::ResolveParams(*pipeline_, {}).value();
    cfg.deadline = deadline;
    EventQueue q(&clock_);
    FakeExecutor exec(&q, {2, 0, 0}, [](const AttemptSpec&) { return Ok(); });
    Recorder rec;
    Scheduler s(*pipeline_, cfg, store_.get(), &exec, &clock_, &q, &rec);
    EXPECT_TRUE(s.Run().ok());
    std::vector<std::string> classes;
    for (const auto& a : exec.submitted) classes.push_back(a.capacity_class);
    return classes;
  };
  // Never seen: a minute per task, two waves of `work` then `report`: about 3 min.
  auto relaxed = run("relaxed", clock_.Now() + 10 * 3600 * 1000);
  EXPECT_EQ(relaxed, std::vector<std::string>(5, "spot"));
  auto tight = run("tight", clock_.Now() + 60 * 1000);
  EXPECT_EQ(tight, std::vector<std::string>(5, "on-demand"));
  auto text = ReadFile(root_ + "/runs/tight/run.json");
  ASSERT_TRUE(text.ok());
  auto j = nlohmann::json::parse(text.value());
  EXPECT_TRUE(j["deadline"]["escalated"].get<bool>());
  EXPECT_NE(j["deadline"]["reason"].get<std::string>().find("passes the deadline"), std::string::npos);
  EXPECT_FALSE(j["deadline"]["estimates"].empty());
  auto relaxed_json = nlohmann::json::parse(ReadFile(root_ + "/runs/relaxed/run.json").value());
  EXPECT_FALSE(relaxed_json["deadline"]["escalated"].get<bool>());
  EXPECT_TRUE(relaxed_json["deadline"]["met"].get<bool>());
}

TEST_F(SchedulerTest, ATaskTooBigForItsClassPoolFailsInsteadOfWaitingForever) {
  // --spot-cpus 4 --on-demand-cpus 1: a 3-cpu on-demand step fits the machine (5)
  // but never its class.
  const char* spec = "name: c\nsteps:\n  big:\n    run: echo\n    resources: {cpus: 3}\n"
                     "  small:\n    run: echo\n    spot: true\n    resources: {cpus: 3}\n";
  spec::Diagnostics d("p.yaml");
  pipeline_ = spec::ParsePipelineText(spec, root_ + "/p.yaml", &d);
  RunConfig cfg;
  cfg.layout = Layout{root_};
  cfg.run_id = "pools";
  cfg.params = spec::ResolveParams(*pipeline_, {}).value();
  cfg.spot_cpus = 4;
  cfg.on_demand_cpus = 1;
  EventQueue q(&clock_);
  FakeExecutor exec(&q, {5, 0, 0}, [](const AttemptSpec&) { return Ok(); });
  Recorder rec;
  Scheduler s(*pipeline_, cfg, store_.get(), &exec, &clock_, &q, &rec);
  auto r = s.Run();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), RunStatus::kFailed);
  EXPECT_EQ(rec.Finished("failed"), std::vector<std::string>{"big"});
  ASSERT_EQ(exec.submitted.size(), 1u);
  EXPECT_EQ(exec.submitted[0].capacity_class, "spot");
}


// ---------------------------------------------------------------- Engine

// Two runs over one pool of one cpu: the higher priority launches first, the
// capacity is never exceeded across runs, every result reaches its own run and
// both end with the right status.
TEST_F(SchedulerTest, EngineSharesOnePoolAmongRunsByPriority) {
  const char* yaml = R"(name: p
steps:
  a: {resources: {cpus: 1}, run: echo a}
  b: {needs: [a], resources: {cpus: 1}, run: echo b}
)";
  spec::Diagnostics d("p.yaml");
  pipeline_ = spec::ParsePipelineText(yaml, root_ + "/p.yaml", &d);
  ASSERT_TRUE(pipeline_) << d.Format();
  EventQueue q(&clock_);
  exec_ = std::make_unique<FakeExecutor>(&q, Capacity{1, 0, 0}, [](const AttemptSpec& s) {
    return EnvOf(s, "NIGHTSHIFT_RUN_ID") == "low" && EnvOf(s, "NIGHTSHIFT_STEP") == "b" ? Exit(3) : Ok();
  });
  CapacityPool pool(exec_->capacity(), -1, -1);
  Recorder both;  // one observer for both runs: it sees the pool's whole use
  auto config = [&](const std::string& id, int priority) {
    RunConfig cfg;
    cfg.layout = Layout{root_};
    cfg.run_id = id;
    cfg.params = spec::ResolveParams(*pipeline_, {}).value();
    cfg.path_env = "/usr/bin:/bin";
    cfg.priority = priority;
    return cfg;
  };
  Scheduler low(*pipeline_, config("low", 0), store_.get(), exec_.get(), &clock_, &q, &both, &pool);
  Scheduler high(*pipeline_, config("high", 9), store_.get(), exec_.get(), &clock_, &q, &both, &pool);
  Engine engine(&q);
  engine.Add(&low);
  engine.Add(&high);
  auto results = engine.Run();
  ASSERT_EQ(results.size(), 2u);
  ASSERT_TRUE(results[0].ok() && results[1].ok());
  EXPECT_EQ(results[0].value(), RunStatus::kFailed);  // its b exits 3
  EXPECT_EQ(results[1].value(), RunStatus::kSucceeded);
  ASSERT_EQ(exec_->submitted.size(), 4u);
  // One cpu: the first launch is the high-priority run's.
  EXPECT_EQ(EnvOf(exec_->submitted[0], "NIGHTSHIFT_RUN_ID"), "high");
  // Handles are unique across the runs.
  std::set<uint64_t> ids;
  for (const auto& s : exec_->submitted) ids.insert(s.id);
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(both.max_running, 1);  // never more than the one cpu, across the runs
  EXPECT_EQ(pool.free.cpus, 1);     // all returned
  EXPECT_EQ(both.Finished("failed"), std::vector<std::string>{"b"});
  EXPECT_EQ(both.Finished("succeeded").size(), 3u);
}

}  // namespace ns
