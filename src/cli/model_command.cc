// `nightshift model push|list|show|rm|verify`: the model registry (docs/models.md).
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/commands.h"
#include "engine/models.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strings.h"

namespace ns::cli {

using json = nlohmann::json;

namespace {

json RowJson(const ModelRow& r, const std::string& dir) {
  json meta = json::parse(r.meta_json, nullptr, false);
  return {{"name", r.name},
          {"version", r.version},
          {"ref", r.name + "@" + std::to_string(r.version)},
          {"digest", r.digest},
          {"size_bytes", r.size_bytes},
          {"files", r.files},
          {"meta", meta.is_object() ? meta : json::object()},
          {"source", r.source},
          {"created_at", r.created_at},
          {"dir", dir}};
}

// "players@3" -> (players, 3); NAME alone or @latest resolves to the newest.
int ResolveOrReport(models::Registry& reg, const std::string& text, ModelRow* row) {
  auto ref = models::ParseModelRef(text);
  if (!ref.ok()) {
    PrintError(ref.status().message());
    return kExitBadInput;
  }
  auto r = reg.Resolve(ref.value());
  if (!r.ok()) {
    PrintError(r.status().message());
    return r.status().code() == StatusCode::kNotFound ? kExitBadInput : kExitEngine;
  }
  *row = r.value();
  return kExitOk;
}

}  // namespace

int ModelCommand(const ModelOptions& o) {
  std::string root = ResolveRoot(o.root);
  bool writes = o.action == "push" || o.action == "rm";
  if (o.action == "push") {
    Status made = MakeDirs(root);
    if (!made.ok()) {
      PrintError("cannot create root folder " + root + ": " + made.message() + "; pass --root DIR with a folder you can write");
      return kExitBadInput;
    }
  }
  auto store = OpenStoreOrReport(root, writes);
  if (!store) return kExitBadInput;
  models::Registry reg(store.get(), root);
  RealClock clock;

  if (o.action == "push") {
    json meta = json::object();
    for (const auto& kv : o.meta) {
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0 || !IsValidUtf8(kv)) {
        PrintError("--meta " + DumpJson(kv) + ": expected KEY=VALUE, in UTF-8");
        return kExitBadInput;
      }
      meta[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    auto pushed = reg.Push(o.name, o.path, o.version, meta.dump(), clock.Now());
    if (!pushed.ok()) {
      PrintError("model push " + o.name + ": " + pushed.status().message());
      return pushed.status().code() == StatusCode::kIoError ? kExitEngine : kExitBadInput;
    }
    const ModelRow& r = pushed.value().row;
    std::string ref = r.name + "@" + std::to_string(r.version);
    if (o.json) {
      json j = RowJson(r, reg.VersionDir(r.name, r.version));
      j["created"] = pushed.value().created;
      j["repaired"] = pushed.value().repaired;
      std::cout << DumpJson(j) << "\n";
    } else if (pushed.value().created) {
      std::cout << "pushed " << ref << " (" << r.digest.substr(0, 19) << ", " << r.files << " file"
                << (r.files == 1 ? "" : "s") << ", " << FormatBytes(r.size_bytes) << ")\n";
    } else if (pushed.value().repaired) {
      std::cout << ref << " holds this content but its files were damaged: they are whole again (" << r.digest.substr(0, 19)
                << ")\n";
    } else {
      std::cout << ref << " already holds this content (" << r.digest.substr(0, 19) << "); nothing pushed\n";
    }
    return kExitOk;
  }

  if (o.action == "list") {
    auto rows = store->ListModels(o.name);
    if (!rows.ok()) {
      PrintError(rows.status().message());
      return kExitEngine;
    }
    if (o.json) {
      json a = json::array();
      for (const auto& r : rows.value()) a.push_back(RowJson(r, reg.VersionDir(r.name, r.version)));
      std::cout << DumpJson(a) << "\n";
      return kExitOk;
    }
    if (rows.value().empty()) {
      std::cout << "no models in " << reg.Dir() << (o.name.empty() ? "" : " named " + o.name)
                << "; add one with: nightshift model push NAME PATH\n";
      return kExitOk;
    }
    std::printf("%-32s %-8s %-21s %10s %6s  %s\n", "MODEL", "VERSION", "DIGEST", "SIZE", "FILES", "PUSHED");
    for (const auto& r : rows.value()) {
      std::printf("%-32s %-8lld %-21s %10s %6lld  %s\n", r.name.c_str(), static_cast<long long>(r.version),
                  r.digest.substr(0, 19).c_str(), FormatBytes(r.size_bytes).c_str(), static_cast<long long>(r.files),
                  FormatTime(r.created_at).c_str());
    }
    return kExitOk;
  }

  ModelRow row;
  int rc = ResolveOrReport(reg, o.name, &row);
  if (rc != kExitOk) return rc;
  std::string ref = row.name + "@" + std::to_string(row.version);

  if (o.action == "rm") {
    if (o.name.find('@') == std::string::npos || EndsWith(o.name, "@latest")) {
      PrintError("model rm " + o.name + ": name the version to remove, e.g. " + ref);
      return kExitBadInput;
    }
    Status st = reg.Remove(row.name, row.version, clock.Now());
    if (!st.ok()) {
      PrintError("model rm " + ref + ": " + st.message());
      return st.code() == StatusCode::kInvalidArgument ? kExitBadInput : kExitEngine;
    }
    std::cout << "removed " << ref << " (its number is not given again)\n";
    return kExitOk;
  }

  if (o.action == "verify") {
    Status st = reg.Verify(row.name, row.version, true);
    if (!st.ok()) {
      PrintError(st.message());
      return kExitRunFailed;
    }
    std::cout << ref << ": every file matches its sha256\n";
    return kExitOk;
  }

  // show
  auto files = reg.Files(row.name, row.version);
  auto users = store->RunsUsingModel(row.name, row.version, false);
  if (o.json) {
    json j = RowJson(row, reg.VersionDir(row.name, row.version));
    json jf = json::array();
    if (files.ok()) {
      for (const auto& f : files.value()) jf.push_back({{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}});
    }
    j["file_list"] = jf;
    j["runs"] = users.ok() ? json(users.value()) : json::array();
    std::cout << DumpJson(j) << "\n";
    return kExitOk;
  }
  std::cout << ref << "\n  digest   " << row.digest << "\n  folder   " << reg.VersionDir(row.name, row.version)
            << "\n  size     " << FormatBytes(row.size_bytes) << " in " << row.files << " file"
            << (row.files == 1 ? "" : "s") << "\n  pushed   " << FormatTime(row.created_at) << " from "
            << row.source << "\n";
  json meta = json::parse(row.meta_json, nullptr, false);
  if (meta.is_object()) {
    for (auto it = meta.begin(); it != meta.end(); ++it) {
      std::cout << "  meta     " << it.key() << "=" << (it->is_string() ? it->get<std::string>() : it->dump()) << "\n";
    }
  }
  if (files.ok()) {
    for (const auto& f : files.value()) {
      std::cout << "  file     " << f.sha256.substr(0, 16) << "  " << FormatBytes(f.size) << "  " << f.path << "\n";
    }
  }
  if (users.ok() && !users.value().empty()) {
    std::cout << "  runs     " << Join(users.value(), ", ") << "\n";
  }
  return kExitOk;
}

}  // namespace ns::cli
