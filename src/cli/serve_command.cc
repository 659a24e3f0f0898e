// `nightshift submit`: jobs into the queue of `nightshift serve` (one, or one per manifest entry).
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/remote.h"
#include "server/server.h"
#include "spec/manifest.h"
#include "spec/parser.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/json.h"
#include "util/strings.h"

namespace ns::cli {

namespace {

// One submission: straight into the store when no server runs on the root.
// Returns an exit code; `job` and `created` describe the job.
int SubmitOne(const nlohmann::json& body, const std::string& root, const std::string& url, Store* store,
              nlohmann::json* job, bool* created) {
  if (url.empty()) {
    server::Submission s;
    Status st = server::ParseSubmission(DumpJson(body), &s);
    if (!st.ok()) {
      for (const auto& line : Split(st.message(), '\n')) PrintError(line);
      return kExitBadInput;
    }
    std::string problems;
    auto r = server::SubmitJob(store, s, root, RealClock().Now(), &problems);
    if (!r.ok()) {
      for (const auto& line : Split(problems.empty() ? r.status().message() : problems, '\n')) PrintError(line);
      return problems.empty() ? kExitEngine : kExitBadInput;
    }
    *job = server::JobJson(r.value().first);
    *created = r.value().second;
    return kExitOk;
  }
  int rc = kExitOk;
  auto j = PostToServer(url, root, "/api/v1/jobs", body, &rc);
  if (!j) return rc;
  *job = (*j)["job"];
  *created = j->value("created", false);
  return kExitOk;
}

// --manifest: one body per entry, every problem reported at once. The entry's
// path goes to `param` (--manifest-param, else the pipeline's one required
// path param not set with -p); its fields go to the params of the same name.
int ManifestBodies(const SubmitOptions& o, const nlohmann::json& base, std::vector<nlohmann::json>* bodies) {
  spec::Diagnostics diags(o.file);
  auto pl = spec::ParsePipelineFile(o.file, &diags);
  if (!pl) {
    for (const auto& line : Split(diags.Format(), '\n')) if (!line.empty()) PrintError(line);
    return kExitBadInput;
  }
  std::string param = o.manifest_param;
  if (param.empty()) {
    std::vector<std::string> candidates;
    for (const auto& p : pl->params) {
      if (p.type == spec::ParamType::kPath && p.required && !base["params"].contains(p.name)) candidates.push_back(p.name);
    }
    if (candidates.size() != 1) {
      PrintError("--manifest: say which param gets each entry's path with --manifest-param NAME (" + o.file +
                 (candidates.empty() ? " has no required path param left unset" : " has several: " + Join(candidates, ", ")) +
                 ")");
      return kExitBadInput;
    }
    param = candidates[0];
  } else if (!pl->FindParam(param)) {
    PrintError("--manifest-param " + param + ": " + o.file + " has no such param");
    return kExitBadInput;
  }
  auto m = spec::LoadManifest(o.manifest);
  if (!m.ok()) {
    for (const auto& line : Split(m.status().message(), '\n')) PrintError(line);
    return kExitBadInput;
  }
  std::set<std::string> unused;
  std::string file = AbsolutePath(o.manifest);
  for (const auto& e : m.value().entries) {
    nlohmann::json b = base;
    b["params"][param] = e.path;
    for (auto it = e.fields.begin(); it != e.fields.end(); ++it) {
      if (it.key() == "source-ref") continue;
      if (!pl->FindParam(it.key()) || it.key() == param) {
        unused.insert(it.key());
        continue;
      }
      b["params"][it.key()] = it->is_string() ? it->get<std::string>() : it->dump();
    }
    // One job per entry, ever: submitting the manifest again queues only new entries.
    std::string key = (o.key.empty() ? "manifest:" + file : o.key) + ":" + e.path;
    if (key.size() > 200) {
      Hasher h;
      h.Add(key);
      key = (o.key.empty() ? "manifest" : o.key.substr(0, 100)) + ":" + BaseName(e.path).substr(0, 60) + ":" + h.HexDigest();
    }
    b["key"] = key;
    bodies->push_back(std::move(b));
  }
  if (!unused.empty()) {
    std::cerr << "nightshift: manifest fields that are not params of " << pl->name << " were not passed: "
              << Join({unused.begin(), unused.end()}, ", ") << "\n";
  }
  return kExitOk;
}

}  // namespace

int SubmitCommand(const SubmitOptions& o) {
  nlohmann::json body = {{"pipeline", AbsolutePath(o.file)}, {"params", nlohmann::json::object()},
                         {"priority", o.priority}, {"max_attempts", o.max_attempts}};
  for (const auto& kv : o.params) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      PrintError("-p " + kv + ": expected NAME=VALUE");
      return kExitBadInput;
    }
    body["params"][kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  if (!o.deadline.empty()) body["deadline"] = o.deadline;
  if (!o.key.empty() && o.manifest.empty()) body["key"] = o.key;
  std::vector<nlohmann::json> bodies;
  if (o.manifest.empty()) {
    bodies.push_back(body);
  } else {
    int rc = ManifestBodies(o, body, &bodies);
    if (rc != kExitOk) return rc;
  }
  std::string root = ResolveRoot(o.root);
  std::string url = o.server.empty() ? LocalServerUrl(root) : o.server;
  std::unique_ptr<Store> store;
  if (url.empty()) {
    // No server runs on this root: the jobs go straight into its store and
    // run when one starts.
    Status made = MakeDirs(root);
    store = made.ok() ? OpenStoreOrReport(root, true) : nullptr;
    if (!made.ok()) PrintError("cannot create root folder " + root + ": " + made.message());
    if (!store) return kExitBadInput;
    if (!o.json) {
      std::cerr << "no server runs on " << root << ": the job" << (bodies.size() == 1 ? " waits" : "s wait")
                << " in its queue for `nightshift serve --root " << root << "`\n";
    }
  }
  nlohmann::json all = nlohmann::json::array();
  int queued = 0, known = 0;
  for (const auto& b : bodies) {
    nlohmann::json job;
    bool created = false;
    int rc = SubmitOne(b, root, url, store.get(), &job, &created);
    if (rc != kExitOk) {
      if (bodies.size() > 1) {
        PrintError("entry " + b["key"].get<std::string>() + " was not queued; " + std::to_string(queued) +
                   " new jobs were queued before it (submitting the manifest again queues the rest)");
      }
      return rc;
    }
    (created ? queued : known) += 1;
    if (o.json) {
      all.push_back({{"job", job}, {"created", created}});
      continue;
    }
    if (bodies.size() > 20) continue;
    if (created) {
      std::cout << "job " << job.value("id", "") << " queued (" << job.value("state", "") << ")\n";
    } else {
      std::cout << "job " << job.value("id", "") << " already has key " << job.value("key", "") << " ("
                << job.value("state", "") << (job.value("run_id", "").empty() ? "" : ", run " + job.value("run_id", ""))
                << "); nothing new was queued\n";
    }
  }
  if (o.json) {
    std::cout << (o.manifest.empty() ? DumpJson(all[0], 2) : DumpJson(all, 2)) << "\n";
  } else if (!o.manifest.empty()) {
    std::cout << bodies.size() << " manifest entries: " << queued << " jobs queued, " << known
              << " already queued before\n";
  }
  return kExitOk;
}

}  // namespace ns::cli
