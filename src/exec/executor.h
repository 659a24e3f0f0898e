// Executor: where attempts run. The scheduler knows executors only through this
// interface (local processes today; Slurm and others implement the same).
//
// Thread safety: Submit, Cancel and capacity may be called from one thread (the
// scheduler's). Results are delivered to the ExecutorListener from any thread;
// the listener must be thread-safe and must outlive the executor.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "util/status.h"

namespace ns {

enum class AttemptOutcome {
  kSucceeded,  // exit 0
  kFailed,     // non-zero exit other than 75
  kRetryable,  // exit 75 (EX_TEMPFAIL)
  kTimedOut,   // exceeded its timeout; SIGTERM, grace, SIGKILL
  kSignal,     // killed by a signal nobody in the engine sent
  kCancelled,  // the run was cancelled
  kLost,       // the engine lost track of it (crash); retried like kRetryable
  kPreempted,  // its capacity was taken away (Preempt, a spot notice): never a failure
};
const char* OutcomeName(AttemptOutcome o);

struct AttemptSpec {
  uint64_t id = 0;  // the caller's handle, echoed in the result
  // Unique across runs and attempts ("<run_id>/<task_id>/<attempt>"); the child
  // and its descendants carry it as NIGHTSHIFT_ATTEMPT_UID, which is how the
  // executor proves a process is this attempt's before it signals it.
  std::string uid;
  std::vector<std::string> argv;  // argv[0] is resolved on the env's PATH
  std::vector<std::string> env;   // "NAME=value"; the whole environment of the child
  std::string cwd;
  // Created on the first byte the attempt writes there: an attempt that prints
  // nothing leaves no log file.
  std::string stdout_path;
  std::string stderr_path;
  double cpus = 1;
  int64_t memory_bytes = 0;
  int gpus = 0;
  int64_t timeout_ms = 0;  // 0: none
  int64_t grace_ms = 10000;
  std::string capacity_class = "on-demand";  // or "spot"
  // What the attempt computes (the task's fingerprint): a restarted engine
  // adopts a job it left running only if it still computes the same.
  std::string fingerprint;
  // A path prefix in the run folder where an executor may keep this attempt's
  // own files (the Slurm executor: <prefix>.json, the job's spec for
  // `nightshift task-exec`, and <prefix>.result, its result record).
  std::string record_prefix;
  // Folders the attempt may read but never change (the models it pins): the
  // local executor binds each over itself read-only in a private mount
  // namespace of the child.
  std::vector<std::string> readonly_paths;
};

struct AttemptResult {
  uint64_t id = 0;
  AttemptOutcome outcome = AttemptOutcome::kFailed;
  int exit_code = -1;
  int signal = 0;
  int64_t pid = 0;
  int64_t duration_ms = 0;
  int64_t max_rss_kb = 0;
  int64_t cpu_ms = 0;
  std::string message;
};

struct Capacity {
  double cpus = 1;
  int64_t memory_bytes = 0;  // 0: not counted
  int gpus = 0;
};

class ExecutorListener {
 public:
  virtual ~ExecutorListener() = default;
  virtual void OnAttemptFinished(const AttemptResult& result) = 0;
};

class Executor {
 public:
  virtual ~Executor() = default;
  virtual Capacity capacity() const = 0;
  // Starts an attempt and returns its pid (0 when not known). Errors (program not
  // found, cannot open log files) mean nothing was started and no result follows.
  virtual Result<int64_t> Submit(const AttemptSpec& spec) = 0;
  // Ends a running attempt: SIGTERM, then SIGKILL after its grace period. Its
  // result follows with outcome kCancelled. Unknown ids are ignored.
  virtual void Cancel(uint64_t id) = 0;
  // Takes a running attempt's capacity away, as a spot market does: SIGTERM
  // (the notice), then SIGKILL after `notice_ms`. Its result follows with
  // outcome kPreempted, whatever its exit code. Unknown ids are ignored.
  virtual void Preempt(uint64_t id, int64_t notice_ms) = 0;

  // Re-attaching after a restart. An executor whose attempts outlive the engine
  // (Slurm jobs) takes back an attempt the previous engine recorded as running:
  // true when it is still running or has finished with a result not yet
  // reported, which then follows as for any Submit with `spec.id`. False when
  // it is gone (the caller records it lost) or the executor cannot re-attach
  // (local processes die with their engine).
  virtual bool Adopt(const AttemptSpec& spec) {
    (void)spec;
    return false;
  }
  // An attempt the previous engine left running that this engine will not
  // adopt (its task is no longer wanted): stop it if it still runs.
  virtual void Abandon(const AttemptSpec& spec) { (void)spec; }
  // Counts of the executor's own work for run.json (the Slurm executor: how
  // many sbatch, squeue, scancel and sinfo it ran). Thread-safe.
  virtual std::vector<std::pair<std::string, int64_t>> Stats() const { return {}; }
};

}  // namespace ns
