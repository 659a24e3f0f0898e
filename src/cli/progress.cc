#include "cli/progress.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string_view>
#include <nlohmann/json.hpp>

#include "util/json.h"
#include "util/clock.h"
#include "util/strings.h"

namespace ns::cli {

namespace {

int64_t NowMs() { return RealClock().Now(); }

// "progress <0..1> [message]": the part after "progress ", or nullopt.
std::optional<std::string> ProgressText(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!StartsWith(line, "progress ")) return std::nullopt;
  std::string text(line.substr(9));
  char* end = nullptr;
  double f = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || (*end != 0 && *end != ' ') || !(f >= 0 && f <= 1)) return std::nullopt;
  return text;
}

}  // namespace

void ProgressTail::Poll() {
  // stat first: merely opening a FIFO would wake a writer waiting for a reader.
  // The fstat after the open catches a swap in between.
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;  // none yet, or not a file
  int fd = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return;
  }
  if (st.st_dev != dev_ || st.st_ino != ino_ || st.st_size < offset_) {
    dev_ = st.st_dev;
    ino_ = st.st_ino;
    offset_ = 0;
    partial_.clear();
    skipping_ = false;
  }
  int64_t end = st.st_size;
  if (end - offset_ > kMaxPollBytes) {
    offset_ = end - kMaxPollBytes;
    partial_.clear();
    skipping_ = true;  // landed mid-line, most likely
  }
  char buf[kMaxPollBytes];
  while (offset_ < end) {
    ssize_t n = ::pread(fd, buf, static_cast<size_t>(end - offset_), static_cast<off_t>(offset_));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    Consume(buf, static_cast<size_t>(n));
    offset_ += n;
  }
  ::close(fd);
}

void ProgressTail::Consume(const char* data, size_t n) {
  std::string_view rest(data, n);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    if (nl == std::string_view::npos) {
      if (!skipping_) partial_.append(rest);
      if (partial_.size() > kMaxLineBytes) partial_.clear(), skipping_ = true;
      return;
    }
    if (!skipping_) {
      partial_.append(rest.substr(0, nl));
      if (auto text = ProgressText(partial_)) latest_ = std::move(*text);
    }
    partial_.clear();
    skipping_ = false;
    rest.remove_prefix(nl + 1);
  }
}

Progress::Progress(Mode mode, std::string run_id, std::vector<std::string> step_order, std::string label)
    : mode_(mode), run_id_(std::move(run_id)), order_(std::move(step_order)), label_(std::move(label)) {
  for (const auto& s : order_) steps_[s];
  if (mode_ == Mode::kTty) {
    redraw_ = std::thread([this] {
      while (!stop_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        Tick();
      }
    });
  }
}

Progress::~Progress() { Stop(); }

void Progress::Stop() {
  if (stop_.exchange(true)) return;
  if (redraw_.joinable()) redraw_.join();
  if (mode_ == Mode::kTty) Tick();
}

void Progress::Tick() {
  std::map<std::string, std::string> file_of;  // step -> the progress file shown
  {
    std::lock_guard<std::mutex> g(mu_);
    for (const auto& [id, v] : steps_)
      if (!v.progress_files.empty()) file_of[id] = v.progress_files.begin()->second;
  }
  // Unlocked: reading files may be slow; the scheduler thread waits for mu_.
  std::map<std::string, std::string> text_of;
  std::map<std::string, ProgressTail> kept;
  for (const auto& [id, path] : file_of) {
    auto it = tails_.find(path);
    auto& tail = kept.emplace(path, it != tails_.end() ? std::move(it->second) : ProgressTail(path))
                     .first->second;
    tail.Poll();
    text_of[id] = tail.latest();
  }
  tails_ = std::move(kept);  // forget files no longer shown
  std::lock_guard<std::mutex> g(mu_);
  for (auto& [id, v] : steps_) v.progress = text_of.count(id) ? text_of[id] : "";
  Redraw();
}

std::string Progress::StepLine(const std::string& id, const StepView& v, int64_t now) {
  char buf[256];
  if (v.total < 0) {
    std::snprintf(buf, sizeof buf, "  %-16s %s", id.c_str(), v.status.c_str());
    return buf;
  }
  const int width = 24;
  int finished = v.done + v.cached + v.failed + v.cancelled;
  int fill = v.total > 0 ? finished * width / v.total : width;
  std::string bar(static_cast<size_t>(fill), '#');
  bar += std::string(static_cast<size_t>(width - fill), '.');
  int64_t end = v.finished ? v.finished : now;
  std::snprintf(buf, sizeof buf, "  %-16s [%s] %d/%d done  %d running  %d failed  %d cached  %s  %s",
                id.c_str(), bar.c_str(), v.done + v.cached, v.total, v.running, v.failed, v.cached,
                FormatDurationMs(end - v.started).c_str(), v.status.c_str());
  std::string line = buf;
  if (!v.progress_files.empty() && !v.progress.empty()) line += "  | " + v.progress.substr(0, 60);
  return line;
}

void Progress::Redraw() {
  int64_t now = NowMs();
  std::string out;
  if (lines_drawn_ > 0) out += "\x1b[" + std::to_string(lines_drawn_) + "A";
  out += "\x1b[2Knightshift run " + run_id_ + "\n";
  for (const auto& id : order_) out += "\x1b[2K" + StepLine(id, steps_[id], now) + "\n";
  lines_drawn_ = static_cast<int>(order_.size()) + 1;
  std::fputs(out.c_str(), stderr);
  std::fflush(stderr);
}

void Progress::OnEvent(const RunEvent& e) {
  std::lock_guard<std::mutex> g(mu_);
  int64_t now = NowMs();
  StepView& v = steps_[e.step];
  using K = RunEvent::Kind;
  switch (e.kind) {
    case K::kStepStarted:
      v.total = e.total;
      v.started = now;
      v.status = "running";
      break;
    case K::kTaskStarted:
      v.running++;
      if (e.attempt > 1 && v.retrying > 0) v.retrying--;
      v.progress_files[e.task_id] = e.progress_file;
      break;
    case K::kTaskFinished:
      if (e.status != "cached" && e.status != "cancelled" && v.progress_files.erase(e.task_id)) v.running--;
      if (e.status == "cancelled" && v.progress_files.erase(e.task_id)) v.running--;
      if (e.status == "succeeded") v.done++;
      else if (e.status == "cached") v.cached++;
      else if (e.status == "failed") v.failed++;
      else if (e.status == "retrying") v.retrying++;
      else if (e.status == "cancelled") v.cancelled++;
      break;
    case K::kStepFinished:
      v.status = e.status;
      v.finished = now;
      if (v.total < 0) v.total = 0, v.started = now;
      break;
    case K::kRunFinished:
      break;
  }
  if (mode_ == Mode::kJson) {
    static const char* kKinds[] = {"step_started", "task_started", "task_finished", "step_finished",
                                   "run_finished"};
    nlohmann::json j{{"event", kKinds[static_cast<int>(e.kind)]}, {"run_id", run_id_}, {"time", now}};
    if (!e.step.empty()) j["step"] = e.step;
    if (!e.task_id.empty()) j["task_id"] = e.task_id;
    if (!e.item.empty()) j["item"] = e.item;
    if (e.attempt) j["attempt"] = e.attempt;
    if (!e.status.empty()) j["status"] = e.status;
    if (!e.message.empty()) j["message"] = e.message;
    if (e.kind == K::kStepStarted || e.kind == K::kStepFinished) j["tasks"] = e.total;
    if (e.duration_ms) j["duration_ms"] = e.duration_ms;
    std::cout << DumpJson(j) << "\n" << std::flush;
    return;
  }
  if (mode_ == Mode::kPlain) {
    std::string line;
    bool small = v.total >= 0 && v.total <= 50;
    switch (e.kind) {
      case K::kStepStarted:
        line = "step " + e.step + ": started, " + std::to_string(e.total) + " task" + (e.total == 1 ? "" : "s");
        break;
      case K::kTaskStarted:
        if (small && e.attempt > 1) line = "task " + e.task_id + ": attempt " + std::to_string(e.attempt) + " started";
        break;
      case K::kTaskFinished:
        if (e.status == "failed" || e.status == "retrying" || (small && e.status != "cancelled")) {
          line = "task " + e.task_id + ": " + e.status;
          if (e.status != "cached") line += " (attempt " + std::to_string(e.attempt) + ", " + FormatDurationMs(e.duration_ms) + ")";
          if (!e.message.empty() && e.status != "succeeded") line += ": " + e.message;
        }
        break;
      case K::kStepFinished:
        line = "step " + e.step + ": " + e.status;
        if (v.total > 0) {
          line += " (" + std::to_string(v.done) + " done, " + std::to_string(v.cached) + " cached, " +
                  std::to_string(v.failed) + " failed of " + std::to_string(v.total) + ", " +
                  FormatDurationMs(e.duration_ms) + ")";
        }
        if (!e.message.empty()) line += ": " + e.message;
        break;
      case K::kRunFinished:
        break;
    }
    if (!line.empty()) std::cerr << label_ << line << "\n";
    return;
  }
  if (e.kind == K::kTaskFinished && (e.status == "failed" || e.status == "retrying")) {
    // Failures scroll above the bars so they stay readable.
    if (lines_drawn_ > 0) std::fputs(("\x1b[" + std::to_string(lines_drawn_) + "A\x1b[J").c_str(), stderr);
    lines_drawn_ = 0;
    std::fprintf(stderr, "task %s: %s (attempt %d): %s\n", e.task_id.c_str(), e.status.c_str(),
                 e.attempt, e.message.c_str());
  }
}

}  // namespace ns::cli
