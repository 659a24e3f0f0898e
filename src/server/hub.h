// EventHub: the server's state changes, fanned out to Server-Sent Events
// streams. The engine thread and HTTP threads Publish; each stream reads what
// came after the last id it sent, waiting on a condition variable (no timer
// polls). The newest kCapacity events are kept, so a client that reconnects
// with Last-Event-ID within that window misses nothing.
//
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace ns::server {

struct HubEvent {
  int64_t id = 0;
  std::string kind;  // job, run, step, task
  std::string data;  // JSON
};

class EventHub {
 public:
  static constexpr size_t kCapacity = 4096;

  void Publish(const std::string& kind, const std::string& data);
  // Events with id > `after`, waiting up to `wait_ms` for the first. Empty on
  // timeout or once stopped.
  std::vector<HubEvent> Since(int64_t after, int wait_ms);
  int64_t last_id();
  // Wakes every waiter for good (the server is stopping).
  void Stop();
  bool stopped();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<HubEvent> events_;  // GUARDED_BY(mu_)
  int64_t next_id_ = 1;          // GUARDED_BY(mu_)
  bool stopped_ = false;         // GUARDED_BY(mu_)
};

}  // namespace ns::server
