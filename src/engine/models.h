// The model registry (docs/models.md): immutable, content-addressed model
// versions under <root>/models/<name>/<version>/, indexed in the store.
//
// A version's files are listed in <root>/models/<name>/<version>.json with the
// sha256 of each and the stat of each as it was pushed (inode, size, mtime,
// ctime). Verify() compares the stat, which no write can leave unchanged, and
// hashes again only a file whose stat moved: a model is checked before every
// task that uses it for the cost of a few stat(2) calls, and a changed or
// corrupted file is named. Not thread-safe (it uses the caller's Store).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "spec/model_ref.h"
#include "store/store.h"
#include "util/status.h"

namespace ns::models {

using spec::IsModelName;
using spec::ModelRef;
using spec::ParseModelRef;

// A pinned model as a run records it (run.json "models").
struct Pinned {
  std::string alias;  // the step's name for it: NIGHTSHIFT_MODEL_DIR_<ALIAS>
  std::string name;
  int64_t version = 0;
  std::string digest;
  std::string dir;  // absolute
  std::string requested;  // the reference as the step gave it ("players@latest")
  std::string meta_json = "{}";  // the version's --meta, for the step (NIGHTSHIFT_MODEL_META_<ALIAS>)
};

class Registry {
 public:
  // `root` is the nightshift root (absolute); `store` is borrowed.
  Registry(Store* store, std::string root);

  std::string Dir() const { return root_ + "/models"; }
  std::string VersionDir(const std::string& name, int64_t version) const;

  struct Pushed {
    ModelRow row;
    bool created = false;   // false: this content was already name@row.version
    bool repaired = false;  // that version's files were damaged and are whole again
  };
  // Copies `path` (a file, or a folder of regular files) into the registry,
  // hashing as it copies. Identical content to a version of `name` that is not
  // removed is a no-op. `version` 0: the next number; else a number `name` has
  // never used. `meta_json` is a JSON object of strings.
  Result<Pushed> Push(const std::string& name, const std::string& path, int64_t version,
                      const std::string& meta_json, int64_t now_ms);
  // The version a reference names (latest: the newest not removed).
  Result<ModelRow> Resolve(const ModelRef& ref);
  // Removes name@version's files and marks its row removed. Refused (Invalid)
  // while a run that is not finished pinned it.
  Status Remove(const std::string& name, int64_t version, int64_t now_ms);
  // Checks name@version's files against its manifest, and the manifest
  // against `digest` (the pinned one; "": the manifest's own): a missing,
  // added or changed file is an error that names it. `full`: hash every file.
  Status Verify(const std::string& name, int64_t version, bool full = false, const std::string& digest = "") const;

  // The manifest's file list: (relative path, size, sha256 hex).
  struct File {
    std::string path;
    int64_t size = 0;
    std::string sha256;
  };
  Result<std::vector<File>> Files(const std::string& name, int64_t version) const;

 private:
  Status VerifyManifest(const std::string& name, int64_t version, bool full, const std::string& digest) const;

  Store* store_;
  std::string root_;
};

// sha256 of a regular file's bytes, as lowercase hex.
Result<std::string> Sha256File(const std::string& path);

}  // namespace ns::models
