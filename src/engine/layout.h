// The on-disk layout of a root folder (see docs/architecture.md):
//   <root>/nightshift.db, runs/<run_id>/{run.json,pipeline.yaml,<step>/...,_logs/},
//   checkpoints/<run_id>/<task>/.
// Pure functions; thread-safe.
#pragma once

#include <set>
#include <string>

#include "util/clock.h"

namespace ns {

struct Layout {
  std::string root;  // absolute

  std::string Db() const { return root + "/nightshift.db"; }
  std::string RunDir(const std::string& run) const { return root + "/runs/" + run; }
  std::string StepDir(const std::string& run, const std::string& step) const {
    return RunDir(run) + "/" + step;
  }
  std::string StagingDir(const std::string& run) const { return RunDir(run) + "/_staging"; }
  std::string LogsDir(const std::string& run) const { return RunDir(run) + "/_logs"; }
  // <step>[.<item>].<attempt>.out / .err
  std::string LogPath(const std::string& run, const std::string& task_key, int attempt,
                      const char* stream) const {
    return LogsDir(run) + "/" + task_key + "." + std::to_string(attempt) + "." + stream;
  }
  std::string CheckpointDir(const std::string& run, const std::string& task_key) const {
    return root + "/checkpoints/" + run + "/" + task_key;
  }
  std::string RunCheckpoints(const std::string& run) const { return root + "/checkpoints/" + run; }
};

// Sortable, unique: UTC time + random suffix, e.g. 20261126T170512Z-3f9a1c.
std::string NewRunId(TimeMs now);
// A safe, readable folder name for a foreach item, unique among `taken` (which it
// extends): characters outside [A-Za-z0-9._-] become '_', no leading dot, at most
// 80 characters, "-2", "-3"... on collision.
std::string ItemFolderName(const std::string& raw, std::set<std::string>* taken);

}  // namespace ns
