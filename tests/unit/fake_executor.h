// FakeExecutor: the seam for scheduler unit tests. Submit decides the outcome at
// once through a user function and queues the result; it may also write files
// into the attempt's output folder to stand for the program's outputs.
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "engine/event_queue.h"
#include "exec/executor.h"

namespace ns::testing {

class FakeExecutor : public Executor {
 public:
  using Behaviour = std::function<AttemptResult(const AttemptSpec&)>;
  FakeExecutor(EventQueue* q, Capacity cap, Behaviour b) : q_(q), cap_(cap), b_(std::move(b)) {}
  Capacity capacity() const override { return cap_; }
  Result<int64_t> Submit(const AttemptSpec& spec) override;
  void Cancel(uint64_t id) override {
    std::lock_guard<std::mutex> g(mu_);
    cancelled.push_back(id);
  }
  // Queues a kPreempted result for a running (held) attempt, as the local
  // executor reports one after its notice.
  void Preempt(uint64_t id, int64_t notice_ms) override;
  // Reports every held attempt with the result its behaviour chose.
  void ReleaseHeld();
  std::vector<std::pair<uint64_t, int64_t>> preempted;
  // For a test thread watching the scheduler's thread (the fields below are
  // for reading after Run() returns).
  size_t SubmittedCount() {
    std::lock_guard<std::mutex> g(mu_);
    return submitted.size();
  }
  std::vector<uint64_t> CancelledIds() {
    std::lock_guard<std::mutex> g(mu_);
    return cancelled;
  }

  std::vector<AttemptSpec> submitted;
  std::vector<uint64_t> cancelled;
  bool hold = false;  // when set, results are kept in `held` instead of queued
  std::function<bool(const AttemptSpec&)> hold_if;  // when set, holds the attempts it says

  std::vector<AttemptResult> held;

 private:
  std::mutex mu_;
  EventQueue* q_;
  Capacity cap_;
  Behaviour b_;
};

// Value of NAME in a spec's environment ("" if absent).
std::string EnvOf(const AttemptSpec& spec, const std::string& name);

}  // namespace ns::testing
