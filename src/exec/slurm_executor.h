// SlurmExecutor: runs attempts as Slurm batch jobs, one job per attempt.
//
// Submit writes the attempt's spec (<record_prefix>.json) and a two-line job
// script into the run folder, which must be shared by every node at the same
// path, and queues it; the monitor thread submits with `sbatch` (cpus, memory,
// gpus, time limit from the step, partition from the capacity class, a job
// name that names run, step, item and attempt). The job body is `nightshift
// task-exec`, which runs the attempt as the local executor would and writes a
// result record (<record_prefix>.result). The monitor learns that a job ended
// from its record (inotify, and a stat at each poll for shared file systems
// that do not notify), and asks Slurm about every live job in one `squeue` per
// poll interval, to catch what a record cannot say: a job cancelled while
// pending, a node that went down, a time or memory limit, a job that never
// started. A restarted engine re-attaches with Adopt (by job name) instead of
// submitting again.
//
// Thread safety: as Executor. Submit, Adopt and Abandon are called from one
// thread; Cancel and Preempt from any. Results go to the listener from the
// monitor thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "exec/attempt_file.h"
#include "exec/executor.h"

namespace ns {

struct SlurmConfig {
  // Partition of each capacity class ("spot", "on-demand"). A class with no
  // partition uses Slurm's default partition.
  std::map<std::string, std::string> partitions;
  std::string account;
  std::string qos;
  std::vector<std::string> sbatch_args;  // given to sbatch as they are (no shell)
  std::string nightshift;                // the nightshift binary as the nodes see it
  int64_t default_memory_bytes = 512LL << 20;  // --mem for steps that do not say
  int64_t poll_ms = 1000;                      // one squeue per interval, while jobs live
  int64_t record_grace_ms = 3000;              // how long a record may lag its job's end
  int64_t notice_s = 120;                      // --signal=B:TERM@notice before the time limit
};

struct SlurmPartition {
  std::string name;
  bool is_default = false;
  double cpus = 0;            // all nodes of the partition, whatever their state
  int64_t memory_bytes = 0;   // the largest node's
  int gpus = 0;               // the largest node's
  std::set<std::string> nodes;
};

class SlurmExecutor : public Executor {
 public:
  // Asks Slurm (sinfo) for the partitions; errors say how to reach a cluster.
  static Result<std::unique_ptr<SlurmExecutor>> Create(ExecutorListener* listener, SlurmConfig config);
  ~SlurmExecutor() override;

  Capacity capacity() const override { return capacity_; }
  // Cpus of the partition of `capacity_class` (all its nodes).
  double ClassCpus(const std::string& capacity_class) const;
  // The nightshift binary as the nodes see it (the settings' `nightshift`).
  const std::string& NightshiftOnNodes() const { return config_.nightshift; }
  Result<int64_t> Submit(const AttemptSpec& spec) override;
  void Cancel(uint64_t id) override;
  void Preempt(uint64_t id, int64_t notice_ms) override;
  bool Adopt(const AttemptSpec& spec) override;
  void Abandon(const AttemptSpec& spec) override;

  // How many times each Slurm command ran: sbatch, squeue, scancel, sinfo.
  std::vector<std::pair<std::string, int64_t>> Stats() const override;

  // The job name of an attempt: "ns/" + its uid (run/step[/item]/attempt).
  static std::string JobName(const AttemptSpec& spec);
  // The batch script of an attempt: exec of `nightshift task-exec SPEC`.
  static std::string JobScript(const SlurmConfig& config, const AttemptSpec& spec);
  static std::vector<std::string> SbatchArgv(const SlurmConfig& config, const AttemptSpec& spec);

 private:
  enum class Intent { kNone, kCancel, kPreempt };
  struct Counts {
    int64_t sbatch = 0, squeue = 0, scancel = 0, sinfo = 0;
  };
  struct Job {
    AttemptSpec spec;
    std::string name;
    int64_t job_id = 0;  // 0: not submitted yet
    Intent intent = Intent::kNone;
    int64_t kill_at = 0;  // preemption: when the notice ends (steady ms)
    bool scancel_sent = false;
    std::string state;  // last Slurm state seen
    std::string reason;
    std::string node;
    int64_t submitted_at = 0;
    int64_t terminal_at = 0;  // when Slurm first said it ended (steady ms)
    std::optional<AttemptRecord> record;
    bool adopted = false;
  };
  struct SlurmJobInfo {
    int64_t job_id;
    std::string state, reason, node, name;
  };

  SlurmExecutor(ExecutorListener* listener, SlurmConfig config);
  void MonitorLoop();
  void Wake();
  void SubmitQueued();
  void ReadNotifications();
  void CheckRecords(bool all);
  bool LoadRecord(Job& job);
  void PollSlurm();
  void SendSignals();
  // Decides the outcome of a job that ended; false when it must wait (for the
  // record, or for Slurm to say why it was interrupted).
  bool Decide(uint64_t id, Job& job, int64_t now, std::vector<AttemptResult>* out);
  Result<std::vector<SlurmJobInfo>> ListJobs();
  void Deliver(std::vector<AttemptResult>* results);
  std::string SlurmOutputTail(const Job& job) const;
  bool OverMemory(const Job& job) const;

  ExecutorListener* listener_;
  SlurmConfig config_;
  Capacity capacity_;
  std::vector<SlurmPartition> partitions_;
  std::string user_;
  int inotify_fd_ = -1;
  int wake_fd_ = -1;
  std::map<std::string, int> watches_;  // folder -> watch (Submit's thread and monitor, under mu_)
  std::map<int, std::string> watch_dirs_;

  mutable std::mutex mu_;
  std::map<uint64_t, Job> jobs_;           // GUARDED_BY(mu_)
  std::deque<uint64_t> to_submit_;         // GUARDED_BY(mu_)
  bool stopping_ = false;                  // GUARDED_BY(mu_)
  Counts counts_;                          // GUARDED_BY(mu_)
  // Jobs Slurm knew when the first Adopt asked (a restarted engine's view).
  std::optional<std::vector<SlurmJobInfo>> snapshot_;  // Adopt's thread
  int64_t squeue_failures_ = 0;  // consecutive failed polls (monitor thread)
  std::thread monitor_;
};

}  // namespace ns
