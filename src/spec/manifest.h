// Manifests: lists of input files (docs/manifests.md). Two forms:
//   a JSON array: [{"prefix": "/data/"}, "a.mp4", "b/c.mp4"] (the prefix is optional;
//     a key is appended to it as it is, and a relative result is relative to
//     the manifest's folder);
//   JSON Lines ("augmented"): one object per line with "source-ref" and any
//     other fields, e.g. {"source-ref": "m1.mp4", "team": "home"}.
// Thread-safe (pure functions over the file system).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "util/status.h"

namespace ns::spec {

struct ManifestEntry {
  int line = 0;          // JSON Lines: its line; JSON array: its element (1-based)
  std::string key;       // as written ("b/c.mp4")
  std::string path;      // absolute, lexically normal
  nlohmann::json fields;  // an object: JSON Lines fields (with "source-ref"); {} for an array
  std::string name;      // relative to the manifest's folder, else the file name
};

struct Manifest {
  std::string file;
  bool lines = false;  // JSON Lines (else a JSON array)
  std::vector<ManifestEntry> entries;
};

// Reads and checks a manifest: bad JSON, an entry that is not a path, a file
// that does not exist or is not a regular file or folder, a duplicate. Every
// problem is reported at once, one per line ("FILE:LINE: what; what to do"),
// at most kMaxManifestProblems of them.
constexpr int kMaxManifestProblems = 100;
Result<Manifest> LoadManifest(const std::string& file);

// A readable name for an entry's task folder: its path relative to the
// manifest's folder (else its file name), without the extension ("b/c.mp4" ->
// "b/c", which the caller makes a folder name such as "b_c").
std::string ManifestItemName(const ManifestEntry& e);

}  // namespace ns::spec
