#include "server/hub.h"

#include <chrono>

namespace ns::server {

void EventHub::Publish(const std::string& kind, const std::string& data) {
  {
    std::lock_guard<std::mutex> g(mu_);
    events_.push_back({next_id_++, kind, data});
    while (events_.size() > kCapacity) events_.pop_front();
  }
  cv_.notify_all();
}

std::vector<HubEvent> EventHub::Since(int64_t after, int wait_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  auto ready = [&] { return stopped_ || (!events_.empty() && events_.back().id > after); };
  if (!ready()) cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), ready);
  std::vector<HubEvent> out;
  if (stopped_) return out;
  for (auto it = events_.rbegin(); it != events_.rend() && it->id > after; ++it) out.push_back(*it);
  return {out.rbegin(), out.rend()};
}

int64_t EventHub::last_id() {
  std::lock_guard<std::mutex> g(mu_);
  return next_id_ - 1;
}

void EventHub::Stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopped_ = true;
  }
  cv_.notify_all();
}

bool EventHub::stopped() {
  std::lock_guard<std::mutex> g(mu_);
  return stopped_;
}

}  // namespace ns::server
