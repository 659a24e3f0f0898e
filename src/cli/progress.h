// Progress: how a run looks while it runs.
//
// On a terminal: one bar per step (done, running, failed, cached, elapsed) and
// the latest progress line of the step's running tasks, redrawn by a small
// thread a few times a second. Otherwise: plain lines, one per notable event.
// With --json: one JSON object per event. Thread-safe: OnEvent is called on the
// scheduler's thread; the redraw thread reads progress files without holding
// the mutex (a slow or hostile file never delays OnEvent) and draws under it.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/scheduler.h"

namespace ns::cli {

// The latest `progress <0..1> [message]` line of a file a task appends to, read
// incrementally. Each Poll reads only the bytes added since the previous one,
// and at most kMaxPollBytes of them: when more arrived it skips to the newest
// (only the last line matters). Only a regular file is read, opened without
// blocking, so a FIFO or device at the path is ignored. A truncated or replaced
// file is read again from its start. Not thread-safe.
class ProgressTail {
 public:
  static constexpr int64_t kMaxPollBytes = 64 << 10;
  static constexpr size_t kMaxLineBytes = 4096;  // a longer "line" is skipped

  explicit ProgressTail(std::string path) : path_(std::move(path)) {}
  void Poll();
  // The latest progress line without "progress "; "" until one is seen.
  const std::string& latest() const { return latest_; }

 private:
  void Consume(const char* data, size_t n);

  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
  int64_t offset_ = 0;
  std::string partial_;    // an unfinished last line
  bool skipping_ = false;  // dropping bytes up to the next newline
  std::string latest_;
};

class Progress : public RunObserver {
 public:
  enum class Mode { kTty, kPlain, kJson };
  // `label`: put before every plain line (a batch prints several runs' lines).
  Progress(Mode mode, std::string run_id, std::vector<std::string> step_order, std::string label = "");
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
    std::string progress;  // latest line of the first running task's file
  };
  // One redraw: reads the progress files outside mu_, then draws under it.
  void Tick();
  void Redraw();  // needs mu_
  std::string StepLine(const std::string& id, const StepView& v, int64_t now);

  Mode mode_;
  std::string run_id_;
  std::vector<std::string> order_;
  std::string label_;
  std::mutex mu_;
  std::map<std::string, StepView> steps_;  // GUARDED_BY(mu_)
  int lines_drawn_ = 0;                    // GUARDED_BY(mu_)
  // Progress file -> its tail; used by the redraw thread only (and by Stop
  // after joining it).
  std::map<std::string, ProgressTail> tails_;
  std::atomic<bool> stop_{false};
  std::thread redraw_;
};

}  // namespace ns::cli
