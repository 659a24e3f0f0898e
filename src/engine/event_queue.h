// EventQueue: how the scheduler is woken. Executors push attempt results and the
// CLI (signal thread) or server pushes a cancel request; the scheduler waits on it
// with a deadline (its next retry) through the Clock, so it never polls.
//
// Thread-safe. Must outlive the executors that report into it.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>

#include "exec/executor.h"
#include "util/clock.h"

namespace ns {

class EventQueue : public ExecutorListener {
 public:
  explicit EventQueue(Clock* clock) : clock_(clock) {}
  void OnAttemptFinished(const AttemptResult& result) override;
  void RequestCancel();
  bool cancel_requested();
  // Something outside asked the engine to look at the store (`nightshift
  // preempt`): wakes Wait; TakePoll says whether it was asked since last time.
  void RequestPoll();
  bool TakePoll();
  // Something for the engine's host arrived (a job was submitted): wakes Wait
  // without asking the runs to look at the store.
  void RequestWake();
  // Blocks until a result is queued, a cancel is requested, or `deadline` passes.
  // Returns every queued result (possibly none).
  std::deque<AttemptResult> Wait(TimeMs deadline);

 private:
  Clock* clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<AttemptResult> results_;  // GUARDED_BY(mu_)
  bool cancel_ = false;                // GUARDED_BY(mu_)
  bool cancel_seen_ = false;           // GUARDED_BY(mu_)
  bool poll_ = false;                  // GUARDED_BY(mu_)
  bool wake_ = false;                  // GUARDED_BY(mu_)
};

}  // namespace ns
