// Scheduler: runs one run of a pipeline to its end.
//
// It expands steps into tasks as their needs complete (a foreach over an
// upstream step's files can only be expanded then), fingerprints each task,
// reuses committed outputs of unchanged tasks on resume, fits ready tasks to
// the executor's free capacity (cpus, memory, gpus), starts attempts, commits
// an attempt's private output folder atomically on success, retries with
// exponential backoff and jitter as the step's policy says, and records every
// state change in the store, one transaction per batch of events.
//
// It never forks, sleeps or reads the wall clock itself: the Executor, the
// Clock and the EventQueue come through the constructor (all borrowed; they
// must outlive the Scheduler). Run() (or an Engine driving Start, Absorb,
// Launch and Finish) is called from one thread; the only cross-thread entries
// are the EventQueue's RequestCancel and RequestPoll.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "engine/cost.h"
#include "engine/event_queue.h"
#include "engine/layout.h"
#include "engine/models.h"
#include "exec/executor.h"
#include "spec/params.h"
#include "spec/pipeline.h"
#include "store/store.h"
#include "util/clock.h"

namespace ns {

enum class RunStatus { kSucceeded, kFailed, kCancelled };
const char* RunStatusName(RunStatus s);

// Where a task stands. The names are what the store, run.json and _task.json say.
enum class TaskState { kPending, kRunning, kRetrying, kSucceeded, kCached, kFailed, kCancelled };
const char* TaskStateName(TaskState s);
// Done: nothing more will run for it.
inline bool IsFinal(TaskState s) {
  return s == TaskState::kSucceeded || s == TaskState::kCached || s == TaskState::kFailed ||
         s == TaskState::kCancelled;
}
enum class StepStatus { kWaiting, kRunning, kSucceeded, kFailed, kSkipped, kCancelled };
const char* StepStatusName(StepStatus s);

struct RunConfig {
  Layout layout;
  std::string run_id;
  bool resume = false;  // reuse committed outputs of this run's unchanged tasks
  spec::ParamValues params;
  std::string path_env;  // PATH given to steps
  uint64_t seed = 0;     // for backoff jitter
  // The executor's attempts outlive the engine and run elsewhere (Slurm jobs):
  // each attempt gets record files under <run>/_jobs/, and on resume the
  // attempts the previous engine left "running" are adopted through
  // Executor::Adopt instead of being recorded lost (the caller must then not
  // mark them lost itself).
  bool remote = false;
  // Tests only: the engine SIGKILLs itself right after its first spawn, to
  // show that a launch is recorded before it happens.
  bool fault_kill_after_spawn = false;

  // Capacity classes. By default the executor's cpus serve both spot and
  // on-demand attempts; with spot_cpus >= 0 and on_demand_cpus >= 0 each class
  // has cpus of its own (memory and gpus stay shared).
  double spot_cpus = -1;
  double on_demand_cpus = -1;
  // A reproducible spot market (--preempt RATE[,seed=N]): each spot attempt is
  // preempted with probability `preempt_rate`, at a moment drawn uniformly over
  // its step's estimated duration (history in the store, else
  // kDefaultEstimateMs). 0: no market.
  double preempt_rate = 0;
  uint64_t preempt_seed = 1;
  // Wall-clock deadline (ms since the epoch; 0: none). When the critical-path
  // estimate of the run's finish plus a margin passes it, the run's spot tasks
  // that have not started move to on-demand, and run.json says why.
  TimeMs deadline = 0;
  // Among the runs of one engine, a higher priority launches first.
  int priority = 0;
  // The instance catalogue the run is billed on ("": none); steps get it as
  // NIGHTSHIFT_CATALOGUE, so a report step can show the cost so far.
  std::string catalogue;

  // Pinned when the run starts (cli/run_setup.cc), kept by a resume, recorded
  // in run.json and part of each task's fingerprint. Per step id: the models
  // it uses (docs/models.md) and the image it runs in (docs/containers.md).
  std::map<std::string, std::vector<models::Pinned>> models;
  struct Image {
    std::string ref;  // as the step gave it
    std::string id;   // podman's image id (sha256 hex): what runs
  };
  std::map<std::string, Image> images;
  // How podman is called for steps with an image.
  struct Containers {
    std::string nightshift = "nightshift";  // the binary that runs `container-exec` where attempts run
    std::string conf;     // CONTAINERS_CONF
    std::string storage;  // "": podman's default storage; else --root DIR/storage --runroot DIR/run
  } containers;
  // Per step id: the manifest file its foreach iterates (docs/manifests.md),
  // and the content hash it had when the run started.
  std::map<std::string, std::string> manifests;
  std::map<std::string, std::string> manifest_digests;
};

// run.json's "models": {step: {alias: {name, version, ref, digest, dir}}}.
nlohmann::json PinsJson(const std::map<std::string, std::vector<models::Pinned>>& pins);

using cost::CapacityClass;
using cost::CapacityClassName;

// A step never seen before is estimated at one minute per task.
constexpr int64_t kDefaultEstimateMs = 60000;

// What the CLI (or a server) is told as the run moves. Called on the scheduler's
// thread; must not call back into the scheduler.
struct RunEvent {
  enum class Kind { kStepStarted, kTaskStarted, kTaskFinished, kStepFinished, kRunFinished };
  Kind kind;
  std::string step;
  std::string task_id;
  std::string item;
  int attempt = 0;
  std::string status;  // task or step status, e.g. "succeeded", "cached", "retrying"
  std::string message;
  int total = 0;          // kStepStarted: number of tasks
  int64_t duration_ms = 0;
  std::string progress_file;  // kTaskStarted
};

class RunObserver {
 public:
  virtual ~RunObserver() = default;
  virtual void OnEvent(const RunEvent& e) = 0;
};

// What the executor has free, shared by every run an engine drives: cpus,
// memory and gpus, the cpus of each capacity class when the classes have cpus
// of their own, and the attempt handles (unique across the runs).
struct CapacityPool {
  CapacityPool(const Capacity& total, double spot_cpus, double on_demand_cpus);
  Capacity total;
  Capacity free;
  bool separate_classes = false;
  double class_cpus[2] = {0, 0};       // by CapacityClass, when separate_classes
  double class_free_cpus[2] = {0, 0};
  std::vector<bool> gpu_busy;
  uint64_t next_handle = 1;
};

class Scheduler {
 public:
  // `pool`: shared with the other runs of an Engine (borrowed); null: the run
  // has the executor to itself (its capacity, split as config says).
  Scheduler(const spec::Pipeline& pipeline, RunConfig config, Store* store, Executor* executor,
            Clock* clock, EventQueue* events, RunObserver* observer, CapacityPool* pool = nullptr);
  ~Scheduler();

  // Runs to the end. A failed step is a RunStatus, not an error; errors are the
  // engine's own (the store or the run folder became unusable).
  Result<RunStatus> Run();

  // Driving the run from an Engine, which shares one EventQueue and one pool
  // among many runs: Start once, then rounds (Absorb the run's results, then
  // Launch, in the engine's order of runs) until Done, then Finish. Run() is
  // exactly this for one run. An error from Start, Absorb or Launch goes to
  // Fail: the run's attempts are cancelled, their results still absorbed, and
  // Finish reports the error once none is left.
  Status Start();
  Status Absorb(const std::deque<AttemptResult>& results, bool cancel_requested, bool poll);
  Status Launch();
  void Fail(const Status& st);
  bool Done() const;
  TimeMs NextWake() const;  // earliest retry or drawn preemption; kForever if none
  bool Owns(uint64_t handle) const { return running_.count(handle) > 0; }
  Result<RunStatus> Finish();
  // Ordering among runs: escalated runs (a deadline in danger) first, then by
  // priority, then the earliest deadline.
  bool escalated() const { return escalated_; }
  int priority() const { return config_.priority; }
  TimeMs deadline() const { return config_.deadline; }
  const std::string& run_id() const { return config_.run_id; }
  // Cancels this run at its next Absorb (its attempts get SIGTERM, then
  // SIGKILL after their grace): how a server that drives it hands over a
  // user's cancel, even one made before Start.
  void Cancel() { cancel_asked_ = true; }

 private:

  struct Task;
  struct StepState;

  Status ExpandStep(size_t step_index);
  // (folder name, value) of each item; a manifest's also gives each entry's fields.
  Status ExpandItems(size_t step_index, std::vector<std::pair<std::string, std::string>>* items,
                     std::vector<nlohmann::json>* fields);
  // The command that runs `argv` in the step's image (docs/containers.md).
  std::vector<std::string> ContainerArgv(const spec::Step& step, const Task& t, const AttemptSpec& spec) const;
  Result<std::vector<std::string>> RenderArgv(const spec::Step& step, const Task& t);
  Result<std::vector<std::pair<std::string, std::string>>> RenderEnv(const spec::Step& step,
                                                                     const Task& t);
  spec::Resolver MakeResolver(const Task& t);
  Result<std::string> Fingerprint(const spec::Step& step, const Task& t,
                                  const std::vector<std::pair<std::string, std::string>>& env);
  Status LaunchReady();
  void SpawnPending();
  Result<int64_t> Spawn(Task& t);
  Result<AttemptSpec> MakeSpec(Task& t);
  // A task whose attempt the previous engine left running: adopt it, or record
  // it lost (and stop it). True when adopted (the task is running).
  Result<bool> AdoptRunning(Task& t);
  Status ResolveUnadopted();
  std::string RecordPrefix(const std::string& key, int attempt) const;
  // "<run>/<task>/<attempt>": unique across runs and attempts.
  std::string AttemptUid(const std::string& task_id, int attempt) const;
  Status PrepareParamEnv();
  Status LoadPrevious();
  static bool IsSafeStepName(const std::string& step);
  Status Flush();
  Status HandleResult(const AttemptResult& r);
  void ReleaseCapacity(Task& t);
  Status FinishTask(Task& t, TaskState state, const std::string& message);
  Status OnStepDone(size_t step_index);
  Status SaveTask(const Task& t);
  // One attempt as the store, run.json and _task.json record it; "running" is
  // the launch (the intent), recorded before the process exists.
  AttemptRow MakeAttemptRow(const Task& t, const AttemptResult& r, const std::string& status);
  Status SaveAttempt(const AttemptRow& a);
  Status Event(const std::string& kind, const Task* t, const std::string& data);
  Status CancelEverything();
  Status WriteRunJson(const std::string& status);
  Status WriteTaskJson(size_t step_index);
  std::string TaskJson(const Task& t) const;
  std::string OutputDirOf(const Task& t) const;
  std::string AttemptStaging(const Task& t) const;
  std::string SlotDir(int slot) const;
  static void RemoveAttemptStaging(const std::string& staging);
  bool Fits(const spec::Resources& r, CapacityClass cls) const;
  bool FitsEmpty(const spec::Resources& r, CapacityClass cls) const;
  CapacityClass ClassFor(const Task& t) const;
  int64_t EstimateMs(size_t step_index);
  // A task's estimated duration: per second of its input video when it has
  // some and the step has history of that kind, else per task.
  int64_t EstimateTaskMs(const Task& t);
  double MsPerInputSecond(size_t step_index);
  int64_t InputMs(size_t step_index, const Task& t);
  void SchedulePreemption(const Task& t);
  Status FirePreemptions();
  Status ReadPreemptRequests();
  Status ReadCancelRequests();
  double NextRandom(uint64_t* state);
  // The critical-path estimate of when the run finishes: per step, its tasks
  // not yet finished in waves of what fits the executor, times the step's
  // estimated task duration; steps in sequence along `needs`.
  TimeMs EstimateFinish();
  Status CheckDeadline();
  int64_t Backoff(const spec::RetryPolicy& p, int attempt);

  const spec::Pipeline& pipeline_;
  RunConfig config_;
  Store* store_;
  Executor* executor_;
  Clock* clock_;
  EventQueue* events_;
  RunObserver* observer_;

  std::vector<std::unique_ptr<Task>> tasks_;
  std::vector<std::vector<size_t>> needs_;       // step -> the steps it needs
  std::vector<std::vector<size_t>> dependents_;  // step -> the steps that need it
  std::deque<size_t> done_queue_;                // finished steps whose dependents to wake
  bool draining_ = false;
  std::vector<StepState> steps_;
  std::map<uint64_t, size_t> running_;  // attempt handle -> task index
  std::priority_queue<std::pair<TimeMs, size_t>, std::vector<std::pair<TimeMs, size_t>>,
                      std::greater<>>
      retry_heap_;
  std::map<std::string, std::pair<std::string, std::string>> previous_;  // task -> (status, fp)
  std::map<std::string, int> previous_attempts_;
  std::map<std::string, std::vector<AttemptRow>> previous_history_;
  // remote: task -> key and attempt left "running" by the previous engine, not yet adopted or lost
  std::map<std::string, std::pair<std::string, AttemptRow>> unresolved_running_;
  std::map<std::string, std::string> input_hash_cache_;
  models::Registry registry_{nullptr, ""};  // checks the pinned models before each attempt
  // A param value longer than this is passed as NIGHTSHIFT_PARAM_<NAME>_FILE
  // (Linux refuses any one environment string over 128 KiB).
  static constexpr size_t kMaxParamEnvBytes = 32 * 1024;

  // Store writes of the current round, applied by Flush in one transaction.
  std::vector<std::function<Status()>> writes_;
  std::vector<size_t> to_spawn_;                // decided and recorded, not yet spawned
  std::deque<AttemptResult> local_results_;     // spawns that failed, handled next round
  std::vector<std::pair<std::string, std::string>> param_env_;
  std::vector<int> free_slots_;                 // scratch folders (TMPDIR) not in use
  std::vector<bool> slot_made_;
  int next_slot_ = 0;
  std::unique_ptr<CapacityPool> own_pool_;  // when no engine shares one
  CapacityPool* pool_;
  Status failed_ = Status::Ok();  // set by Fail
  bool failing_ = false;
  // Preemptions the spot market has drawn: (when, attempt handle).
  std::priority_queue<std::pair<TimeMs, uint64_t>, std::vector<std::pair<TimeMs, uint64_t>>,
                      std::greater<>>
      preempt_heap_;
  uint64_t market_rng_ = 1;
  std::map<size_t, int64_t> estimate_ms_;  // step -> estimated duration of a task
  std::map<size_t, double> ms_per_input_s_;  // step -> run time per second of input video (0: unknown)
  std::map<std::string, int64_t> media_ms_cache_;  // file -> milliseconds of video
  int64_t preempt_requests_seen_ = 0;       // id of the last preempt_requested event handled
  int64_t cancel_requests_seen_ = 0;        // id of the last cancel_requested event handled
  // Deadline: how the finish estimate moved, and the escalation.
  struct Estimate {
    TimeMs at;
    TimeMs finish;
  };
  std::vector<Estimate> estimates_;
  bool escalated_ = false;
  TimeMs escalated_at_ = 0;
  std::string escalation_reason_;
  bool finished_since_estimate_ = true;
  uint64_t rng_;
  bool cancelling_ = false;
  bool cancel_asked_ = false;  // Cancel() was called
  std::string run_dir_;
  TimeMs started_at_ = 0;
};

}  // namespace ns
