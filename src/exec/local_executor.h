// LocalExecutor: runs attempts as processes on this machine.
//
// Each attempt runs in its own process group with the exact environment it is
// given, stdin from /dev/null and stdout/stderr appended to its log files. The
// child dies with the engine (PR_SET_PDEATHSIG). One monitor thread waits on
// pidfds with epoll (no polling), enforces timeouts (SIGTERM to the group, then
// SIGKILL after the grace period) and reports results with rusage. When the
// leader exits, what is left of its process group is killed.
//
// Thread safety: Submit is called from one thread at a time; Cancel is safe from any thread. The destructor
// kills every attempt still running and joins the monitor thread.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "exec/executor.h"

namespace ns {

class LocalExecutor : public Executor {
 public:
  // `capacity` defaults to this machine's (see MachineCapacity).
  LocalExecutor(ExecutorListener* listener, Capacity capacity);
  ~LocalExecutor() override;

  Capacity capacity() const override { return capacity_; }
  Result<int64_t> Submit(const AttemptSpec& spec) override;
  void Cancel(uint64_t id) override;

  // cpus online, physical memory, and /dev/nvidiaN devices.
  static Capacity MachineCapacity();

 private:
  struct Child;
  void MonitorLoop();
  void Wake();

  ExecutorListener* listener_;
  Capacity capacity_;
  int epoll_fd_ = -1;
  int null_fd_ = -1;
  std::map<std::string, std::string> programs_;  // PATH + name -> resolved path (Submit's thread)
  int wake_fd_ = -1;
  std::mutex mu_;
  std::map<uint64_t, std::unique_ptr<Child>> children_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                                // GUARDED_BY(mu_)
  std::thread monitor_;
};

}  // namespace ns
