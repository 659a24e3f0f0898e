// `nightshift task-exec SPEC.json`: runs one attempt where the engine is not
// (a Slurm node), exactly as the local executor would run it on the engine's
// machine: same environment, log files, process group, timeout, subreaper;
// program lookup happens here, on the node. When the attempt ends it writes
// the result record <record_prefix>.result (atomically) beside the spec, which
// is how the engine learns the outcome without asking the cluster.
//
// SIGTERM or SIGINT to the wrapper (scancel, a preemption notice, Slurm's time
// limit) goes on to the attempt's process group: SIGTERM, then SIGKILL after
// its grace. The record then says it was interrupted; the engine decides why.
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <condition_variable>
#include <iostream>
#include <mutex>
#include <thread>

#include "cli/cli.h"
#include "cli/commands.h"
#include "exec/attempt_file.h"
#include "exec/local_executor.h"
#include "util/fs.h"
#include "util/process.h"
#include "util/strings.h"

namespace ns::cli {

namespace {

class OneResult : public ExecutorListener {
 public:
  void OnAttemptFinished(const AttemptResult& r) override {
    std::lock_guard<std::mutex> lock(mu_);
    result_ = r;
    done_ = true;
    cv_.notify_all();
  }
  AttemptResult Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
    return result_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  AttemptResult result_;  // GUARDED_BY(mu_)
  bool done_ = false;     // GUARDED_BY(mu_)
};

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = ::getenv(name);
  return v && *v ? v : fallback;
}

// Sets NAME=value in an environment list, replacing an entry of that name.
void SetEnv(std::vector<std::string>* env, const std::string& name, const std::string& value) {
  for (auto& e : *env) {
    if (StartsWith(e, name + "=")) {
      e = name + "=" + value;
      return;
    }
  }
  env->push_back(name + "=" + value);
}

int WriteRecord(const std::string& prefix, const AttemptRecord& rec) {
  Status st = WriteFileAtomic(prefix + ".result", AttemptRecordToJson(rec));
  if (!st.ok()) {
    std::cerr << "nightshift task-exec: cannot write the result record: " << st.message() << "\n";
    return kExitEngine;
  }
  return kExitOk;
}

}  // namespace

int TaskExecCommand(const std::string& spec_path) {
  AttemptRecord rec;
  rec.node = EnvOr("SLURMD_NODENAME", HostName());
  rec.job_id = EnvOr("SLURM_JOB_ID", "");
  rec.restart_count = std::atoi(EnvOr("SLURM_RESTART_COUNT", "0").c_str());
  // Without a readable spec the record goes where the spec's name says, so the
  // engine still hears why.
  std::string prefix = EndsWith(spec_path, ".json") ? spec_path.substr(0, spec_path.size() - 5) : spec_path;
  auto text = ReadFile(spec_path);
  Result<AttemptSpec> parsed = text.ok() ? AttemptSpecFromJson(text.value()) : Result<AttemptSpec>(text.status());
  if (!parsed.ok()) {
    std::string why = "nightshift task-exec on " + rec.node + ": cannot read the attempt spec " + spec_path + ": " +
                      parsed.status().message() +
                      " (the root folder must be shared by every node at the same path; see docs/slurm.md)";
    std::cerr << why << "\n";
    rec.result.outcome = AttemptOutcome::kFailed;
    rec.result.message = why;
    (void)WriteRecord(prefix, rec);
    return kExitBadInput;
  }
  AttemptSpec spec = std::move(parsed.value());
  rec.uid = spec.uid;
  if (!spec.record_prefix.empty()) prefix = spec.record_prefix;

  // A job Slurm requeued (submitted with --requeue despite nightshift's
  // --no-requeue) starts again from an empty output folder.
  if (rec.restart_count > 0 && !spec.cwd.empty()) {
    if (auto names = ListDir(spec.cwd); names.ok()) {
      for (const auto& n : names.value()) (void)RemoveTree(spec.cwd + "/" + n);
    }
  }
  // Scratch space on the node, not on the shared folder.
  std::string tmp_base = EnvOr("TMPDIR", "/tmp");
  std::string tmpl = tmp_base + "/nightshift-task.XXXXXX";
  std::string tmp_dir;
  if (char* made = ::mkdtemp(tmpl.data())) tmp_dir = made;
  if (!tmp_dir.empty()) SetEnv(&spec.env, "TMPDIR", tmp_dir);
  // Where it runs, for the step's own logs.
  SetEnv(&spec.env, "NIGHTSHIFT_NODE", rec.node);
  if (!rec.job_id.empty()) SetEnv(&spec.env, "SLURM_JOB_ID", rec.job_id);
  // On a cluster the scheduler picks the GPUs (--gres): use what it set.
  if (spec.gpus > 0) {
    if (const char* gpus = ::getenv("CUDA_VISIBLE_DEVICES")) {
      SetEnv(&spec.env, "CUDA_VISIBLE_DEVICES", gpus);
      SetEnv(&spec.env, "NIGHTSHIFT_GPUS", gpus);
    }
  }

  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  OneResult listener;
  Capacity cap{spec.cpus, spec.memory_bytes, spec.gpus};
  auto executor = LocalExecutor::Create(&listener, cap);
  if (!executor.ok()) {
    rec.result.outcome = AttemptOutcome::kFailed;
    rec.result.message = "nightshift task-exec on " + rec.node + ": " + executor.status().message();
    (void)RemoveTree(tmp_dir);
    (void)WriteRecord(prefix, rec);
    return kExitEngine;
  }
  spec.id = 1;
  auto pid = executor.value()->Submit(spec);
  if (!pid.ok()) {
    rec.result.outcome = AttemptOutcome::kFailed;
    rec.result.message = pid.status().message() + " (on node " + rec.node + ")";
    executor.value().reset();
    (void)RemoveTree(tmp_dir);
    (void)WriteRecord(prefix, rec);
    return kExitRunFailed;
  }
  std::mutex mu;
  int interrupted = 0;
  std::thread signals([&] {
    while (true) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGUSR1) return;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (interrupted) continue;
        interrupted = sig;
      }
      executor.value()->Cancel(1);
    }
  });
  AttemptResult r = listener.Wait();
  pthread_kill(signals.native_handle(), SIGUSR1);
  signals.join();
  // A SIGTERM that reached the step first (scancel signals every process of
  // the job) may still be pending here: it was an interruption all the same.
  sigset_t pending;
  sigemptyset(&pending);
  if (sigpending(&pending) == 0 && !interrupted) {
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
      if (sigismember(&pending, sig)) {
        interrupted = sig;
        break;
      }
    }
  }
  executor.value().reset();  // kills and reaps what the attempt left behind
  (void)RemoveTree(tmp_dir);
  rec.result = r;
  rec.interrupted_by = interrupted;
  int rc = WriteRecord(prefix, rec);
  if (rc != kExitOk) return rc;
  if (r.outcome == AttemptOutcome::kSucceeded) return kExitOk;
  return r.exit_code > 0 ? r.exit_code : kExitRunFailed;
}

}  // namespace ns::cli
