#include "util/clock.h"

namespace ns {

TimeMs RealClock::Now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void RealClock::WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                          TimeMs deadline) {
  if (deadline == kForever) {
    cv.wait(lock);
    return;
  }
  cv.wait_until(lock, std::chrono::system_clock::time_point(std::chrono::milliseconds(deadline)));
}

TimeMs FakeClock::Now() {
  std::lock_guard<std::mutex> g(mu_);
  return now_;
}

void FakeClock::Advance(TimeMs ms) {
  std::lock_guard<std::mutex> g(mu_);
  now_ += ms;
}

void FakeClock::WaitUntil(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                          TimeMs deadline) {
  if (deadline == kForever) {
    cv.wait(lock);
    return;
  }
  std::lock_guard<std::mutex> g(mu_);
  if (deadline > now_) now_ = deadline;
}

}  // namespace ns
