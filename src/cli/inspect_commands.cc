// `nightshift runs`, `show`, `logs` and `cancel`: read the store and the run folder.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/run_cost.h"
#include "engine/layout.h"
#include "util/json.h"
#include "util/fs.h"
#include "util/process.h"
#include "util/clock.h"
#include "util/strings.h"

namespace ns::cli {

namespace {

int64_t NowMs() { return RealClock().Now(); }

std::optional<RunRow> FindRun(Store* store, const std::string& id, const std::string& root) {
  auto r = store->GetRun(id);
  if (!r.ok()) {
    PrintError(r.status().message());
    return std::nullopt;
  }
  if (!r.value()) {
    PrintError("no run '" + id + "' in " + root + " (see `nightshift runs`)");
    return std::nullopt;
  }
  return *r.value();
}

std::string Duration(const RunRow& r) {
  int64_t end = r.finished_at ? r.finished_at : NowMs();
  return FormatDurationMs(end - r.created_at);
}

constexpr size_t kChunk = 64 << 10;

// One log file being printed: where it goes and how far it has been read.
struct Log {
  Log(std::string p, std::FILE* o) : path(std::move(p)), out(o) {}
  ~Log() {
    if (fd >= 0) ::close(fd);
  }
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  std::string path;
  std::FILE* out;
  int fd = -1;  // owned; -1: not opened (absent so far)
  int64_t offset = 0;
};

// Opens a log for reading without blocking and only if it is a regular file
// (a FIFO or a device planted at a log's path must not hang `logs`). A missing
// log reads as empty: the engine creates a log only when the attempt writes.
// Returns the fd, -1 if there is nothing to read, or an error.
Result<int> OpenLog(const std::string& path) {
  // stat first: merely opening a FIFO would wake a writer waiting for a reader.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return -1;
    return Status::FromErrno("cannot read log " + path, errno);
  }
  if (!S_ISREG(st.st_mode)) return Status::IoError("log " + path + " is not a regular file");
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    if (errno == ENOENT) return -1;
    return Status::FromErrno("cannot read log " + path, errno);
  }
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::IoError("log " + path + " is not a regular file");
  }
  return fd;
}

// Copies `fd` from `*offset` to its current end to `out` in kChunk pieces, so
// a log of any size costs one chunk of memory. Advances `*offset`.
Status CopyToEnd(int fd, int64_t* offset, std::FILE* out, const std::string& path) {
  std::vector<char> buf(kChunk);
  while (true) {
    ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(*offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("cannot read log " + path, errno);
    if (n == 0) break;
    std::fwrite(buf.data(), 1, static_cast<size_t>(n), out);
    *offset += n;
  }
  std::fflush(out);
  return Status::Ok();
}

// The offset where the last `lines` lines of `fd` begin (a final line without
// a newline counts), found by reading backwards one chunk at a time.
Result<int64_t> TailOffset(int fd, int lines, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Status::FromErrno("cannot read log " + path, errno);
  int64_t end = st.st_size;
  if (lines <= 0) return end;
  std::vector<char> buf(kChunk);
  int64_t pos = end;
  bool last_byte = true;  // a newline ending the file closes the last line
  int seen = 0;
  while (pos > 0) {
    size_t want = static_cast<size_t>(std::min<int64_t>(pos, static_cast<int64_t>(kChunk)));
    ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(pos - static_cast<int64_t>(want)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("cannot read log " + path, errno);
    if (n != static_cast<ssize_t>(want)) break;  // truncated meanwhile: start over from 0
    pos -= static_cast<int64_t>(want);
    for (size_t i = want; i-- > 0;) {
      if (buf[i] == '\n' && !last_byte && ++seen == lines) return pos + static_cast<int64_t>(i) + 1;
      last_byte = false;
    }
  }
  return 0;
}

// Whether a followed attempt can still write: false once the attempt or the
// run is over, or once the run's engine is gone (it cannot record the end).
bool AttemptMayWrite(Store* store, const std::string& run_id, const std::string& task_id,
                     int attempt) {
  auto run = store->GetRun(run_id);
  if (!run.ok()) return true;  // a busy database: ask again later
  if (!run.value() || run.value()->status != "running") return false;
  if (RunEngineState(*run.value()) == EngineState::kGone) return false;
  auto attempts = store->ListAttempts(run_id);
  if (!attempts.ok()) return true;
  for (const auto& a : attempts.value())
    if (a.task_id == task_id && a.attempt == attempt) return a.status == "running";
  return false;
}

// `cancel` of a run whose engine is gone: nothing to signal; the run is marked
// cancelled, unless meanwhile it ended or another engine took it over.
int MarkEngineGone(Store* store, const RunRow& run) {
  bool marked = false;
  Status st = store->Transaction([&]() -> Status {
    auto now = store->GetRun(run.run_id);
    if (!now.ok()) return now.status();
    if (!now.value() || now.value()->status != "running" || now.value()->owner != run.owner ||
        now.value()->pid != run.pid) {
      return Status::Ok();
    }
    marked = true;
    return store->UpdateRun(run.run_id, "cancelled", NowMs(), "cancelled; its engine process was gone");
  });
  if (!st.ok()) {
    PrintError(st.message());
    return kExitEngine;
  }
  if (!marked) {
    PrintError("run " + run.run_id + " changed meanwhile (it ended or was resumed); see `nightshift show " +
               run.run_id + "`");
    return kExitBadInput;
  }
  std::cout << "run " << run.run_id
            << ": its engine is gone (no process was signalled); marked cancelled\n";
  return kExitOk;
}

}  // namespace

int RunsCommand(const InspectOptions& o) {
  std::string root = ResolveRoot(o.root);
  auto store = OpenStoreForReading(root);
  if (!store) return kExitBadInput;
  auto runs = store->ListRuns(o.limit);
  if (!runs.ok()) {
    PrintError(runs.status().message());
    return kExitEngine;
  }
  if (o.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& r : runs.value())
      arr.push_back({{"run_id", r.run_id}, {"pipeline", r.pipeline}, {"status", DisplayStatus(r)},
                     {"created_at", r.created_at}, {"finished_at", r.finished_at}});
    std::cout << DumpJson(arr, 2) << "\n";
    return kExitOk;
  }
  std::printf("%-24s  %-20s  %-10s  %-19s  %9s  %s\n", "RUN", "PIPELINE", "STATUS", "STARTED",
              "DURATION", "TASKS");
  for (const auto& r : runs.value()) {
    auto tasks = store->ListTasks(r.run_id);
    int64_t done = 0, total = 0;
    std::map<std::string, int64_t> rows;
    if (tasks.ok()) {
      for (const auto& t : tasks.value()) {
        ++rows[t.step];
        done += t.status == "succeeded" || t.status == "cached";
      }
    }
    // Tasks that have not finished have no row yet: count them from the expansion.
    auto expanded = store->StepTaskCounts(r.run_id);
    if (expanded.ok()) {
      for (const auto& [step, n] : expanded.value()) rows[step] = std::max(rows[step], n);
    }
    for (const auto& [step, n] : rows) total += n;
    std::printf("%-24s  %-20s  %-10s  %-19s  %9s  %lld/%lld\n", r.run_id.c_str(), r.pipeline.c_str(),
                DisplayStatus(r).c_str(), FormatTime(r.created_at).c_str(), Duration(r).c_str(),
                static_cast<long long>(done), static_cast<long long>(total));
  }
  return kExitOk;
}

int ShowCommand(const InspectOptions& o) {
  std::string root = ResolveRoot(o.root);
  auto store = OpenStoreForReading(root);
  if (!store) return kExitBadInput;
  auto run = FindRun(store.get(), o.run_id, root);
  if (!run) return kExitBadInput;
  auto tasks = store->ListTasks(run->run_id);
  auto attempts = store->ListAttempts(run->run_id);
  if (!tasks.ok() || !attempts.ok()) {
    PrintError(!tasks.ok() ? tasks.status().message() : attempts.status().message());
    return kExitEngine;
  }
  struct StepSummary {
    std::map<std::string, int> by_status;
    int tasks = 0, attempts = 0;
    int64_t first = 0, last = 0, busy = 0;
    std::vector<std::string> failures;
  };
  std::vector<std::string> order;
  std::map<std::string, StepSummary> steps;
  std::map<std::string, int> attempts_of;
  for (const auto& a : attempts.value()) attempts_of[a.task_id]++;
  for (const auto& t : tasks.value()) {
    if (!steps.count(t.step)) order.push_back(t.step);
    StepSummary& s = steps[t.step];
    s.by_status[t.status]++;
    s.tasks++;
    s.attempts += attempts_of[t.task_id];
    if (t.started_at && (!s.first || t.started_at < s.first)) s.first = t.started_at;
    if (t.finished_at > s.last) s.last = t.finished_at;
    if (t.finished_at && t.started_at && t.status != "cached") s.busy += t.finished_at - t.started_at;
    if (t.status == "failed") s.failures.push_back(t.task_id + ": " + t.message);
  }
  // Tasks without a row have not finished: running if an attempt is in flight,
  // else pending.
  std::map<std::string, int> running_of;  // step -> tasks with an attempt running and no row
  {
    std::set<std::string> with_row;
    for (const auto& t : tasks.value()) with_row.insert(t.task_id);
    std::set<std::string> counted;
    for (const auto& a : attempts.value()) {
      if (a.status != "running" || with_row.count(a.task_id) || !counted.insert(a.task_id).second) continue;
      running_of[a.task_id.substr(0, a.task_id.find('/'))]++;
      attempts_of[a.task_id];  // keep
    }
  }
  auto expanded = store->StepTaskCounts(run->run_id);
  if (expanded.ok()) {
    for (const auto& [step, n] : expanded.value()) {
      if (!steps.count(step)) order.push_back(step);
      StepSummary& s = steps[step];
      int missing = static_cast<int>(n) - s.tasks;
      if (missing <= 0) continue;
      int running = std::min(missing, running_of[step]);
      if (running > 0) s.by_status["running"] += running;
      if (missing - running > 0) s.by_status["pending"] += missing - running;
      s.tasks += missing;
    }
  }
  // The cost `nightshift run` recorded at the end of the run, if it had a
  // catalogue (a run.json that is missing or unreadable just has no cost here).
  nlohmann::json cost;
  if (auto c = ReadRunCost(Layout{root}.RunDir(run->run_id) + "/run.json"); c.ok()) cost = c.value();
  if (o.json) {
    nlohmann::json j{{"run_id", run->run_id}, {"pipeline", run->pipeline}, {"status", DisplayStatus(*run)},
                     {"created_at", run->created_at}, {"finished_at", run->finished_at},
                     {"params", nlohmann::json::parse(run->params_json, nullptr, false)}};
    nlohmann::json ts = nlohmann::json::array();
    for (const auto& t : tasks.value())
      ts.push_back({{"task_id", t.task_id}, {"step", t.step}, {"item", t.item}, {"status", t.status},
                    {"attempts", t.attempts}, {"fingerprint", t.fingerprint},
                    {"started_at", t.started_at}, {"finished_at", t.finished_at}, {"message", t.message}});
    j["tasks"] = ts;
    if (!cost.is_null()) j["cost"] = cost;
    std::cout << DumpJson(j, 2) << "\n";
    return kExitOk;
  }
  std::cout << "run       " << run->run_id << "\n"
            << "pipeline  " << run->pipeline << " (" << run->pipeline_file << ")\n"
            << "status    " << DisplayStatus(*run)
            << (DisplayStatus(*run) == "stopped" ? " (its engine is gone; continue with --resume)" : "")
            << (run->message.empty() ? "" : ": " + run->message) << "\n"
            << "started   " << FormatTime(run->created_at) << "   duration " << Duration(*run) << "\n"
            << "params    " << run->params_json << "\n";
  if (!cost.is_null()) std::cout << "cost      " << CostSummary(cost) << "\n";
  // The deadline, when the run had one: whether it was met, and why spot work
  // moved to on-demand.
  if (auto text = ReadFile(Layout{root}.RunDir(run->run_id) + "/run.json");
      text.ok() && text.value().size() < (64u << 20)) {
    auto j = nlohmann::json::parse(text.value(), nullptr, false);
    if (j.is_object() && j.contains("deadline") && j["deadline"].is_object()) {
      const auto& d = j["deadline"];
      std::string met = !d.contains("met") || d["met"].is_null() ? "pending"
                        : d["met"].get<bool>()                   ? "met"
                                                                 : "missed";
      std::cout << "deadline  " << FormatTime(d.value("at", int64_t{0})) << " (" << met << ")";
      if (d.value("escalated", false)) {
        std::cout << "; escalated at " << FormatTime(d.value("escalated_at", int64_t{0})) << ": "
                  << d.value("reason", std::string());
      }
      std::cout << "\n";
    }
  }
  std::cout << "outputs   " << Layout{root}.RunDir(run->run_id) << "\n\n";
  std::printf("%-18s %-10s %6s %9s %9s %9s  %s\n", "STEP", "STATUS", "TASKS", "ATTEMPTS", "WALL",
              "TASK-SUM", "BREAKDOWN");
  for (const auto& id : order) {
    const StepSummary& s = steps[id];
    std::string status = s.by_status.count("failed")      ? "failed"
                         : s.by_status.count("running")   ? "running"
                         : s.by_status.count("retrying")  ? "running"
                         : s.by_status.count("pending")   ? "pending"
                         : s.by_status.count("cancelled") ? "cancelled"
                                                          : "succeeded";
    std::string breakdown;
    for (const auto& [k, v] : s.by_status) breakdown += std::to_string(v) + " " + k + "  ";
    std::printf("%-18s %-10s %6d %9d %9s %9s  %s\n", id.c_str(), status.c_str(), s.tasks, s.attempts,
                s.first ? FormatDurationMs(s.last - s.first).c_str() : "-",
                FormatDurationMs(s.busy).c_str(), breakdown.c_str());
    for (size_t i = 0; i < s.failures.size() && i < 5; ++i) std::printf("    %s\n", s.failures[i].c_str());
    if (s.failures.size() > 5) std::printf("    ... and %zu more\n", s.failures.size() - 5);
  }
  return kExitOk;
}

int LogsCommand(const InspectOptions& o) {
  std::string root = ResolveRoot(o.root);
  auto store = OpenStoreForReading(root);
  if (!store) return kExitBadInput;
  auto run = FindRun(store.get(), o.run_id, root);
  if (!run) return kExitBadInput;
  std::string task_id = o.item.empty() ? o.step : o.step + "/" + o.item;
  auto tasks = store->ListTasks(run->run_id);
  auto attempts = store->ListAttempts(run->run_id);
  if (!tasks.ok() || !attempts.ok()) {
    PrintError(!tasks.ok() ? tasks.status().message() : attempts.status().message());
    return kExitEngine;
  }
  // A task is known by its row or, while its first attempt runs, by the
  // attempt rows alone.
  bool known = false;
  int latest = 0;
  std::set<std::string> items;
  for (const auto& t : tasks.value()) {
    if (t.task_id == task_id) known = true, latest = std::max(latest, t.attempts);
    if (t.step == o.step && !t.item.empty()) items.insert(t.item);
  }
  for (const auto& a : attempts.value()) {
    if (a.task_id == task_id) known = true, latest = std::max(latest, a.attempt);
    if (StartsWith(a.task_id, o.step + "/")) items.insert(a.task_id.substr(o.step.size() + 1));
  }
  if (!known) {
    if (!items.empty() && o.item.empty()) {
      PrintError("step '" + o.step + "' has " + std::to_string(items.size()) +
                 " items; pick one with --item (e.g. --item " + *items.begin() + ")");
    } else {
      PrintError("run " + run->run_id + " has no task '" + task_id + "'");
    }
    return kExitBadInput;
  }
  int attempt = o.attempt > 0 ? o.attempt : latest;
  if (attempt <= 0) {
    PrintError("task '" + task_id + "' has not started an attempt yet");
    return kExitBadInput;
  }
  std::string key = o.item.empty() ? o.step : o.step + "." + o.item;
  Layout L{root};
  std::vector<std::unique_ptr<Log>> logs;
  // With -f the streams keep their own channels; without it both go to stdout
  // under a header each.
  if (o.stream != "err")
    logs.push_back(std::make_unique<Log>(L.LogPath(run->run_id, key, attempt, "out"), stdout));
  if (o.stream != "out") {
    logs.push_back(std::make_unique<Log>(L.LogPath(run->run_id, key, attempt, "err"),
                                         o.follow ? stderr : stdout));
  }
  // Opens a log not opened yet; at the first opening --tail picks the start.
  auto open = [&](Log& log) -> Status {
    if (log.fd >= 0) return Status::Ok();
    auto fd = OpenLog(log.path);
    if (!fd.ok()) return fd.status();
    log.fd = fd.value();
    if (log.fd >= 0 && o.tail >= 0) {
      auto start = TailOffset(log.fd, o.tail, log.path);
      if (!start.ok()) return start.status();
      log.offset = start.value();
    }
    return Status::Ok();
  };
  auto copy = [&](Log& log) -> Status {
    NS_RETURN_IF_ERROR(open(log));
    return log.fd < 0 ? Status::Ok() : CopyToEnd(log.fd, &log.offset, log.out, log.path);
  };
  if (!o.follow) {
    for (auto& log : logs) {
      if (logs.size() > 1) std::fprintf(stdout, "==> %s <==\n", BaseName(log->path).c_str());
      Status st = copy(*log);
      if (!st.ok()) {
        PrintError(st.message());
        return kExitEngine;
      }
    }
    return kExitOk;
  }
  // --follow: print what arrives until the attempt can no longer write (asked
  // about once a second), then what remains.
  int64_t next_check = 0;
  while (true) {
    bool over = false;
    if (NowMs() >= next_check) {
      over = !AttemptMayWrite(store.get(), run->run_id, task_id, attempt);
      next_check = NowMs() + 1000;
    }
    for (auto& log : logs) {
      Status st = copy(*log);
      if (!st.ok()) {
        PrintError(st.message());
        return kExitEngine;
      }
    }
    if (over) return kExitOk;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int CancelCommand(const InspectOptions& o) {
  std::string root = ResolveRoot(o.root);
  auto store = OpenStoreOrReport(root, false);
  if (!store) return kExitBadInput;
  auto run = FindRun(store.get(), o.run_id, root);
  if (!run) return kExitBadInput;
  if (run->status != "running") {
    PrintError("run " + run->run_id + " is not running (it " + run->status + ")");
    return kExitBadInput;
  }
  // Only a process proven to be the run's engine (same pid *and* start time,
  // on this host and boot) is signalled: a bare pid may belong to anyone now.
  ProcessIdentity owner = ProcessIdentity::Parse(run->owner);
  switch (RunEngineState(*run)) {
    case EngineState::kElsewhere:
      PrintError("run " + run->run_id + " is driven by an engine on host " +
                 (owner.pid > 0 ? owner.host : run->host) + " (pid " +
                 std::to_string(owner.pid > 0 ? owner.pid : run->pid) +
                 "); run `nightshift cancel " + run->run_id + "` there. Nothing was signalled.");
      return kExitBadInput;
    case EngineState::kUnverified:
      PrintError("run " + run->run_id +
                 " was started by an older nightshift that did not record its engine's identity; "
                 "pid " + std::to_string(run->pid) +
                 " is alive on this host but may be an unrelated process, so nothing was "
                 "signalled. If it is the engine, stop it with Ctrl-C or `kill " +
                 std::to_string(run->pid) + "`.");
      return kExitBadInput;
    case EngineState::kGone:
      return MarkEngineGone(store.get(), *run);
    case EngineState::kAlive:
      break;
  }
  // The request names the run (an engine may drive several: a batch); SIGUSR2
  // makes the engine read it, as for `nightshift preempt`.
  Status asked = store->AppendEvent({0, run->run_id, NowMs(), "cancel_requested", "", 0, ""});
  if (!asked.ok()) {
    PrintError("cannot cancel run " + run->run_id + ": " + asked.message());
    return kExitEngine;
  }
  Status sent = SignalIdentity(owner, SIGUSR2);
  if (sent.code() == StatusCode::kNotFound) return MarkEngineGone(store.get(), *run);  // just exited
  if (!sent.ok()) {
    PrintError("cannot cancel run " + run->run_id + ": " + sent.message());
    return kExitBadInput;
  }
  std::cout << "cancelling run " << run->run_id << " (engine pid " << owner.pid << ")..." << std::flush;
  for (int i = 0; i < 600; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    bool alive = IsAlive(owner);  // before the read: an engine that recorded the end shows it
    auto r = store->GetRun(run->run_id);
    if (r.ok() && r.value() && r.value()->status != "running") {
      std::cout << " " << r.value()->status << "\n";
      return kExitOk;
    }
    if (r.ok() && r.value() && !alive) {
      std::cout << " its engine exited without recording the end; the run shows as stopped "
                   "(continue it with --resume)\n";
      return kExitOk;
    }
  }
  std::cout << " still stopping (tasks are in their grace period)\n";
  return kExitOk;
}

}  // namespace ns::cli

namespace ns::cli {

int PreemptCommand(const InspectOptions& o, const std::string& task) {
  std::string root = ResolveRoot(o.root);
  auto store = OpenStoreOrReport(root, false);
  if (!store) return kExitBadInput;
  auto run = FindRun(store.get(), o.run_id, root);
  if (!run) return kExitBadInput;
  if (run->status != "running" || RunEngineState(*run) != EngineState::kAlive) {
    PrintError("run " + run->run_id + " has no live engine on this host; nothing to preempt");
    return kExitBadInput;
  }
  auto attempts = store->ListAttempts(run->run_id);
  if (!attempts.ok()) {
    PrintError(attempts.status().message());
    return kExitEngine;
  }
  bool running = false;
  for (const auto& a : attempts.value()) running |= a.task_id == task && a.status == "running";
  if (!running) {
    PrintError("task '" + task + "' of run " + run->run_id +
               " has no running attempt (see `nightshift show " + run->run_id + "`)");
    return kExitBadInput;
  }
  // The request goes through the store; SIGUSR2 tells the engine to look.
  Status st = store->Transaction([&]() -> Status {
    return store->AppendEvent({0, run->run_id, RealClock().Now(), "preempt_requested", task, 0, ""});
  });
  if (st.ok()) st = SignalIdentity(ProcessIdentity::Parse(run->owner), SIGUSR2);
  if (!st.ok()) {
    PrintError("cannot preempt " + task + ": " + st.message());
    return kExitEngine;
  }
  std::cout << "preemption notice sent to " << task << " of run " << run->run_id << "\n";
  return kExitOk;
}

}  // namespace ns::cli
