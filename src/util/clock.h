// Clock: the only way engine code reads time or waits.
//
// The scheduler never calls sleep or reads the wall clock itself; it gets a Clock.
// RealClock uses std::chrono::system_clock. FakeClock is for tests: time only moves
// when Advance() is called or when a waiter would block until a deadline, in which
// case time jumps to that deadline at once. All methods are thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace ns {

// Milliseconds since the Unix epoch.
using TimeMs = int64_t;
constexpr TimeMs kForever = INT64_MAX;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimeMs Now() = 0;
  // Waits on `cv` (with `lock` held) until notified or until `deadline` passes.
  // Spurious wakeups are allowed; callers re-check their condition.
  virtual void WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                         TimeMs deadline) = 0;
};

class RealClock : public Clock {
 public:
  TimeMs Now() override;
  void WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 TimeMs deadline) override;
};

class FakeClock : public Clock {
 public:
  explicit FakeClock(TimeMs start = 1'700'000'000'000) : now_(start) {}
  TimeMs Now() override;
  void Advance(TimeMs ms);
  // Never blocks for a finite deadline: jumps time forward to it.
  void WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 TimeMs deadline) override;

 private:
  std::mutex mu_;
  TimeMs now_;  // GUARDED_BY(mu_)
};

}  // namespace ns
