#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <iostream>

#include "cli/cli.h"
#include "util/fs.h"

namespace ns::cli {

void PrintError(const std::string& msg) { std::cerr << "nightshift: " << msg << "\n"; }

std::string ResolveRoot(const std::string& flag) {
  if (!flag.empty()) return AbsolutePath(flag);
  const char* env = ::getenv("NIGHTSHIFT_ROOT");
  if (env && *env) return AbsolutePath(env);
  return AbsolutePath(".");
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
