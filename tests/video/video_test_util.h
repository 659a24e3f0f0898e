// Helpers for the nightshift-video integration tests: run the real binary, read its
// outputs, find the footage (skipping with a clear message when it is absent).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace ns::video::testing_util {

struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
};

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs nightshift-video with `args` (and optional "VAR=value" environment), with a
// timeout so that a hang fails the test instead of blocking it, and, with
// `max_memory_mb` > 0, a limit on its address space so that a run away read fails
// the test instead of filling the machine's memory.
inline RunResult RunVideo(const std::vector<std::string>& args, const std::string& dir,
                          const std::vector<std::string>& env = {}, int timeout_s = 120,
                          int max_memory_mb = 0) {
  std::string cmd = "cd " + Quote(dir) + " && ";
  if (max_memory_mb > 0) cmd += "ulimit -v " + std::to_string(max_memory_mb * 1024) + " && ";
  cmd += "env";
  for (const auto& e : env) cmd += " " + Quote(e);
  cmd += " timeout -s KILL " + std::to_string(timeout_s) + " " + Quote(NS_VIDEO_BIN);
  for (const auto& a : args) cmd += " " + Quote(a);
  cmd += " >" + Quote(dir + "/.out") + " 2>" + Quote(dir + "/.err");
  int rc = std::system(cmd.c_str());
  RunResult r;
  r.code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = Slurp(dir + "/.out");
  r.err = Slurp(dir + "/.err");
  return r;
}

inline int Shell(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

inline nlohmann::json ReadJson(const std::string& path) {
  return nlohmann::json::parse(Slurp(path), nullptr, false);
}

inline std::vector<nlohmann::json> ReadJsonLines(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

inline bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// A fresh folder for one test.
inline std::string TestDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string dir = ::testing::TempDir() + "/nsv_" + info->test_suite_name() + "_" + info->name();
  Shell("rm -rf " + Quote(dir) + " && mkdir -p " + Quote(dir));
  return dir;
}

inline std::string SharedData() { return NS_SHARED_DATA; }

}  // namespace ns::video::testing_util

#define REQUIRE_VTEST()                                                                       \
  do {                                                                                        \
    if (!::ns::video::testing_util::Exists(NS_VTEST))                                         \
      GTEST_SKIP() << NS_VTEST << " is missing: install Debian's opencv-doc (scripts/setup)"; \
  } while (0)

#define REQUIRE_SHARED(rel)                                                                      \
  do {                                                                                           \
    if (!::ns::video::testing_util::Exists(::ns::video::testing_util::SharedData() + "/" + rel)) \
      GTEST_SKIP() << "../shared/data/" << rel << " is absent (test data outside the repository)"; \
  } while (0)
