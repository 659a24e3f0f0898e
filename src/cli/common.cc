#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "cli/cli.h"
#include "util/fs.h"
#include "util/process.h"

namespace ns::cli {

void PrintError(const std::string& msg) { std::cerr << "nightshift: " << msg << "\n"; }

std::string ResolveRoot(const std::string& flag) {
  if (!flag.empty()) return AbsolutePath(flag);
  const char* env = ::getenv("NIGHTSHIFT_ROOT");
  if (env && *env) return AbsolutePath(env);
  return AbsolutePath(".");
}

std::unique_ptr<Store> OpenStoreForReading(const std::string& root) {
  std::string db = root + "/nightshift.db";
  if (!PathExists(db)) {
    PrintError("no nightshift database in " + root +
               " (nothing has run there yet; pass --root or set NIGHTSHIFT_ROOT)");
    return nullptr;
  }
  auto s = Store::Open(db, Store::Mode::kReadOnly);
  if (!s.ok()) {
    PrintError(s.status().message());
    return nullptr;
  }
  return std::move(s.value());
}

EngineState RunEngineState(const RunRow& run) {
  ProcessIdentity id = ProcessIdentity::Parse(run.owner);
  std::string here = HostName();
  if (id.pid > 0 && id.start_ticks > 0) {
    if (id.host != here) return EngineState::kElsewhere;
    if (!IsForeign(id)) return IsAlive(id) ? EngineState::kAlive : EngineState::kGone;
    // Same host, other boot: the machine rebooted since. Unless this boot's id
    // is unknown: then only the pid is left to go by.
    if (!BootId().empty()) return EngineState::kGone;
  }
  // No identity: judge by host and pid, which proves absence but not presence.
  if (run.host != here) return EngineState::kElsewhere;
  if (run.pid <= 0) return EngineState::kGone;
  if (::kill(static_cast<pid_t>(run.pid), 0) != 0 && errno == ESRCH) return EngineState::kGone;
  return EngineState::kUnverified;
}

std::string DisplayStatus(const RunRow& run) {
  if (run.status == "running" && RunEngineState(run) == EngineState::kGone) return "stopped";
  return run.status;
}

std::unique_ptr<Store> OpenStoreOrReport(const std::string& root, bool create) {
  std::string db = root + "/nightshift.db";
  if (!create && !PathExists(db)) {
    PrintError("no nightshift database in " + root +
               " (nothing has run there yet; pass --root or set NIGHTSHIFT_ROOT)");
    return nullptr;
  }
  auto s = Store::Open(db);
  if (!s.ok()) {
    PrintError(s.status().message());
    return nullptr;
  }
  return std::move(s.value());
}

std::string FormatTime(int64_t ms) {
  if (ms <= 0) return "-";
  time_t t = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  localtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

}  // namespace ns::cli
