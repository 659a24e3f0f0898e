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
// Prints "nightshift: <msg>" to stderr.
void PrintError(const std::string& msg);
std::string FormatTime(int64_t ms);  // local "YYYY-MM-DD HH:MM:SS"

}  // namespace ns::cli
