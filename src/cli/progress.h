// Progress: how a run looks while it runs.
//
// On a terminal: one bar per step (done, running, failed, cached, elapsed) and
// the latest progress line of the step's running tasks, redrawn by a small
// thread a few times a second. Otherwise: plain lines, one per notable event.
// With --json: one JSON object per event. Thread-safe: OnEvent is called on the
// scheduler's thread, the redraw thread only reads under the mutex.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/scheduler.h"

namespace ns::cli {

class Progress : public RunObserver {
 public:
  enum class Mode { kTty, kPlain, kJson };
  Progress(Mode mode, std::string run_id, std::vector<std::string> step_order);
  ~Progress() override;
  void OnEvent(const RunEvent& e) override;
  void Stop();  // final redraw; joins the redraw thread

 private:
  struct StepView {
    int total = -1;  // -1: not started
    int done = 0, running = 0, failed = 0, cached = 0, retrying = 0, cancelled = 0;
    std::string status = "waiting";
    int64_t started = 0, finished = 0;
    std::map<std::string, std::string> progress_files;  // running task -> file
  };
  void Redraw();
  std::string StepLine(const std::string& id, const StepView& v, int64_t now);

  Mode mode_;
  std::string run_id_;
  std::vector<std::string> order_;
  std::mutex mu_;
  std::map<std::string, StepView> steps_;  // GUARDED_BY(mu_)
  int lines_drawn_ = 0;                    // GUARDED_BY(mu_)
  std::atomic<bool> stop_{false};
  std::thread redraw_;
};

}  // namespace ns::cli
