// `nightshift runs`, `show`, `logs` and `cancel`: read the store and the run folder.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/cli.h"
#include "cli/commands.h"
#include "engine/layout.h"
#include "util/fs.h"
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

// A run marked running whose engine process is gone (killed, machine rebooted)
// is shown as such: it continues only with --resume.
std::string DisplayStatus(const RunRow& r) {
  if (r.status != "running") return r.status;
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  if (r.host == host && r.pid > 0 && ::kill(static_cast<pid_t>(r.pid), 0) != 0) return "stopped";
  return r.status;
}

std::string Duration(const RunRow& r) {
  int64_t end = r.finished_at ? r.finished_at : NowMs();
  return FormatDurationMs(end - r.created_at);
}

}  // namespace

int RunsCommand(const InspectOptions& o) {
  std::string root = ResolveRoot(o.root);
  auto store = OpenStoreOrReport(root, false);
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
    std::cout << arr.dump(2) << "\n";
    return kExitOk;
  }
  std::printf("%-24s  %-20s  %-10s  %-19s  %9s  %s\n", "RUN", "PIPELINE", "STATUS", "STARTED",
              "DURATION", "TASKS");
  for (const auto& r : runs.value()) {
    auto tasks = store->ListTasks(r.run_id);
    int done = 0, total = 0;
    if (tasks.ok()) {
      for (const auto& t : tasks.value()) {
        ++total;
        done += t.status == "succeeded" || t.status == "cached";
      }
    }
    std::printf("%-24s  %-20s  %-10s  %-19s  %9s  %d/%d\n", r.run_id.c_str(), r.pipeline.c_str(),
                DisplayStatus(r).c_str(), FormatTime(r.created_at).c_str(), Duration(r).c_str(), done,
                total);
  }
  return kExitOk;
}

int ShowCommand(const InspectOptions& o) {
  std::string root = ResolveRoot(o.root);
  auto store = OpenStoreOrReport(root, false);
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
  if (o.json) {
    nlohmann::json j{{"run_id", run->run_id}, {"pipeline", run->pipeline}, {"status", run->status},
                     {"created_at", run->created_at}, {"finished_at", run->finished_at},
                     {"params", nlohmann::json::parse(run->params_json, nullptr, false)}};
    nlohmann::json ts = nlohmann::json::array();
    for (const auto& t : tasks.value())
      ts.push_back({{"task_id", t.task_id}, {"step", t.step}, {"item", t.item}, {"status", t.status},
                    {"attempts", t.attempts}, {"fingerprint", t.fingerprint},
                    {"started_at", t.started_at}, {"finished_at", t.finished_at}, {"message", t.message}});
    j["tasks"] = ts;
    std::cout << j.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "run       " << run->run_id << "\n"
            << "pipeline  " << run->pipeline << " (" << run->pipeline_file << ")\n"
            << "status    " << DisplayStatus(*run)
            << (DisplayStatus(*run) == "stopped" ? " (its engine is gone; continue with --resume)" : "")
            << (run->message.empty() ? "" : ": " + run->message) << "\n"
            << "started   " << FormatTime(run->created_at) << "   duration " << Duration(*run) << "\n"
            << "params    " << run->params_json << "\n"
            << "outputs   " << Layout{root}.RunDir(run->run_id) << "\n\n";
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
  auto store = OpenStoreOrReport(root, false);
  if (!store) return kExitBadInput;
  auto run = FindRun(store.get(), o.run_id, root);
  if (!run) return kExitBadInput;
  std::string task_id = o.item.empty() ? o.step : o.step + "/" + o.item;
  auto tasks = store->ListTasks(run->run_id);
  if (!tasks.ok()) {
    PrintError(tasks.status().message());
    return kExitEngine;
  }
  const TaskRow* task = nullptr;
  std::vector<std::string> items;
  for (const auto& t : tasks.value()) {
    if (t.task_id == task_id) task = &t;
    if (t.step == o.step && !t.item.empty()) items.push_back(t.item);
  }
  if (!task) {
    if (!items.empty() && o.item.empty()) {
      PrintError("step '" + o.step + "' has " + std::to_string(items.size()) +
                 " items; pick one with --item (e.g. --item " + items.front() + ")");
    } else {
      PrintError("run " + run->run_id + " has no task '" + task_id + "'");
    }
    return kExitBadInput;
  }
  int attempt = o.attempt > 0 ? o.attempt : task->attempts;
  if (attempt <= 0) {
    PrintError("task '" + task_id + "' has not started an attempt yet");
    return kExitBadInput;
  }
  std::string key = o.item.empty() ? o.step : o.step + "." + o.item;
  Layout L{root};
  std::vector<std::string> files;
  if (o.stream != "err") files.push_back(L.LogPath(run->run_id, key, attempt, "out"));
  if (o.stream != "out") files.push_back(L.LogPath(run->run_id, key, attempt, "err"));
  if (!o.follow) {
    for (const auto& f : files) {
      auto text = ReadFile(f);
      if (!text.ok()) {
        PrintError("no log " + f);
        return kExitBadInput;
      }
      if (files.size() > 1) std::cout << "==> " << BaseName(f) << " <==\n";
      std::cout << text.value();
    }
    return kExitOk;
  }
  // --follow: print what arrives until the attempt has finished.
  std::vector<std::streamoff> offsets(files.size(), 0);
  while (true) {
    bool finished = true;
    auto attempts = store->ListAttempts(run->run_id);
    if (attempts.ok()) {
      for (const auto& a : attempts.value())
        if (a.task_id == task_id && a.attempt == attempt && a.status == "running") finished = false;
    }
    for (size_t i = 0; i < files.size(); ++i) {
      std::ifstream in(files[i], std::ios::binary);
      if (!in) continue;
      in.seekg(offsets[i]);
      std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      offsets[i] += static_cast<std::streamoff>(chunk.size());
      (i == 0 && o.stream != "err" ? std::cout : std::cerr) << chunk << std::flush;
    }
    if (finished) return kExitOk;
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
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  bool alive = run->host == host && run->pid > 0 && ::kill(static_cast<pid_t>(run->pid), 0) == 0;
  if (!alive) {
    Status st = store->Transaction([&]() -> Status {
      return store->UpdateRun(run->run_id, "cancelled", NowMs(), "cancelled; its engine process was gone");
    });
    if (!st.ok()) {
      PrintError(st.message());
      return kExitEngine;
    }
    std::cout << "run " << run->run_id << " cancelled (its engine process was no longer running)\n";
    return kExitOk;
  }
  ::kill(static_cast<pid_t>(run->pid), SIGTERM);
  std::cout << "cancelling run " << run->run_id << " (engine pid " << run->pid << ")..." << std::flush;
  for (int i = 0; i < 600; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto r = store->GetRun(run->run_id);
    if (r.ok() && r.value() && r.value()->status != "running") {
      std::cout << " " << r.value()->status << "\n";
      return kExitOk;
    }
  }
  std::cout << " still stopping (tasks are in their grace period)\n";
  return kExitOk;
}

}  // namespace ns::cli
