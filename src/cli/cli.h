// The nightshift command line. Each command lives in its own file and returns a
// documented exit code (see kExit* below and docs/cli.md).
#pragma once

#include <string>

#include "store/store.h"
#include "util/status.h"

namespace ns::cli {

constexpr int kExitOk = 0;
constexpr int kExitRunFailed = 1;   // the run ended with a failed or skipped step
constexpr int kExitBadInput = 2;    // invalid pipeline, params, flags, unknown run, unwritable root
constexpr int kExitEngine = 3;      // the engine itself failed (database, file system mid-run)
constexpr int kExitCancelled = 130;  // the run was cancelled (Ctrl-C or `nightshift cancel`)

int Main(int argc, char** argv);

// Root folder: --root, else $NIGHTSHIFT_ROOT, else the current folder. Absolute.
std::string ResolveRoot(const std::string& flag);
// Opens <root>/nightshift.db; prints the error and returns null on failure.
std::unique_ptr<Store> OpenStoreOrReport(const std::string& root, bool create);
// Opens <root>/nightshift.db read-only (for commands that only read: runs, show,
// logs): never creates or migrates it, and works on read-only media. Prints the
// error and returns null on failure.
std::unique_ptr<Store> OpenStoreForReading(const std::string& root);

// Where the engine that owns a run (RunRow::owner, a ProcessIdentity) stands,
// as far as this machine can tell. Only kAlive proves a process is the engine.
enum class EngineState {
  kAlive,       // on this host and boot, with the recorded pid and start time
  kGone,        // exited (its pid may name another process now), or the machine rebooted
  kElsewhere,   // on another host: cannot be judged from here
  kUnverified,  // no identity recorded (older nightshift): a process holds the
                // recorded pid on this host, but it may be an unrelated one
};
EngineState RunEngineState(const RunRow& run);
// The run's status for display: "stopped" for a run marked running whose
// engine is gone, else RunRow::status.
std::string DisplayStatus(const RunRow& run);
// Prints "nightshift: <msg>" to stderr.
void PrintError(const std::string& msg);
std::string FormatTime(int64_t ms);  // local "YYYY-MM-DD HH:MM:SS"

}  // namespace ns::cli
