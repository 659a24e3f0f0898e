// LocalExecutor: runs attempts as processes on this machine.
//
// Each attempt runs in its own process group with the exact environment it is
// given, stdin from /dev/null and stdout/stderr through pipes that the monitor
// thread splices into the log files, created on the first byte. The child dies
// with the engine (PR_SET_PDEATHSIG). One monitor thread waits on pidfds and
// pipes with epoll (no polling), enforces timeouts (SIGTERM to the group, then
// SIGKILL after the grace period) and reports results with rusage, after the
// logs are complete. When the leader exits, what is left of its process group
// is killed; the engine is a child subreaper, so descendants that left the
// group (setsid, daemons) are re-parented to it and killed too, once they are
// proven to be the attempt's by NIGHTSHIFT_ATTEMPT_UID in their environment.
//
// Thread safety: Submit is called from one thread at a time; Cancel is safe from
// any thread. The destructor kills every attempt still running and every
// descendant of them it can find, and joins the monitor thread.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "exec/executor.h"

namespace ns {

class LocalExecutor : public Executor {
 public:
  // Errors: epoll, eventfd or the subreaper flag are unavailable.
  static Result<std::unique_ptr<LocalExecutor>> Create(ExecutorListener* listener, Capacity capacity);
  ~LocalExecutor() override;

  Capacity capacity() const override { return capacity_; }
  Result<int64_t> Submit(const AttemptSpec& spec) override;
  void Cancel(uint64_t id) override;
  void Preempt(uint64_t id, int64_t notice_ms) override;

  // cpus online, physical memory, and /dev/nvidiaN devices.
  static Capacity MachineCapacity();

 private:
  struct Child;
  LocalExecutor(ExecutorListener* listener, Capacity capacity);
  void MonitorLoop();
  void Wake();
  // Kills our children that carry the uid of an attempt that is not running
  // (all: of any attempt) and reaps children that are not attempt leaders.
  // Returns how many it signalled.
  int SweepOrphans(bool all);
  static std::string ArgListTooLong(const AttemptSpec& spec);

  ExecutorListener* listener_;
  Capacity capacity_;
  int epoll_fd_ = -1;
  int null_fd_ = -1;
  std::map<std::string, std::string> programs_;  // PATH + name -> resolved path (Submit's thread)
  int wake_fd_ = -1;
  std::mutex mu_;
  std::map<uint64_t, std::unique_ptr<Child>> children_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                                // GUARDED_BY(mu_)
  std::set<std::string> starting_;  // uids being spawned; GUARDED_BY(mu_)
  std::map<pid_t, int> orphans_;    // killed leftovers -> pidfd, until reaped (monitor thread)
  std::thread monitor_;
};

}  // namespace ns
