#include "engine/event_queue.h"

namespace ns {

void EventQueue::OnAttemptFinished(const AttemptResult& result) {
  {
    std::lock_guard<std::mutex> g(mu_);
    results_.push_back(result);
  }
  cv_.notify_all();
}

void EventQueue::RequestCancel() {
  {
    std::lock_guard<std::mutex> g(mu_);
    cancel_ = true;
  }
  cv_.notify_all();
}

bool EventQueue::cancel_requested() {
  std::lock_guard<std::mutex> g(mu_);
  return cancel_;
}

void EventQueue::RequestPoll() {
  {
    std::lock_guard<std::mutex> g(mu_);
    poll_ = true;
  }
  cv_.notify_all();
}

bool EventQueue::TakePoll() {
  std::lock_guard<std::mutex> g(mu_);
  bool p = poll_;
  poll_ = false;
  return p;
}

void EventQueue::RequestWake() {
  {
    std::lock_guard<std::mutex> g(mu_);
    wake_ = true;
  }
  cv_.notify_all();
}

std::deque<AttemptResult> EventQueue::Wait(TimeMs deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  if (results_.empty() && !(cancel_ && !cancel_seen_) && !poll_ && !wake_) clock_->WaitUntil(lock, cv_, deadline);
  if (cancel_) cancel_seen_ = true;
  wake_ = false;
  std::deque<AttemptResult> out;
  out.swap(results_);
  return out;
}
}  // namespace ns
