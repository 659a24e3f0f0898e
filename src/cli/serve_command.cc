// `nightshift submit`: one job into the queue of `nightshift serve`.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/remote.h"
#include "server/server.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strings.h"

namespace ns::cli {

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
  if (!o.key.empty()) body["key"] = o.key;
  std::string root = ResolveRoot(o.root);
  std::string url = o.server.empty() ? LocalServerUrl(root) : o.server;
  nlohmann::json job;
  bool created = false;
  if (url.empty()) {
    // No server runs on this root: the job goes straight into its store and
    // runs when one starts.
    auto store = OpenStoreOrReport(root, true);
    if (!store) return kExitBadInput;
    server::Submission s;
    Status st = server::ParseSubmission(DumpJson(body), &s);
    if (!st.ok()) {
      for (const auto& line : Split(st.message(), '\n')) PrintError(line);
      return kExitBadInput;
    }
    std::string problems;
    auto r = server::SubmitJob(store.get(), s, root, RealClock().Now(), &problems);
    if (!r.ok()) {
      for (const auto& line : Split(problems.empty() ? r.status().message() : problems, '\n')) PrintError(line);
      return problems.empty() ? kExitEngine : kExitBadInput;
    }
    job = server::JobJson(r.value().first);
    created = r.value().second;
    if (!o.json) {
      std::cerr << "no server runs on " << root << ": the job waits in its queue for `nightshift serve --root "
                << root << "`\n";
    }
  } else {
    int rc = kExitOk;
    auto j = PostToServer(url, root, "/api/v1/jobs", body, &rc);
    if (!j) return rc;
    job = (*j)["job"];
    created = j->value("created", false);
  }
  if (o.json) {
    std::cout << DumpJson({{"job", job}, {"created", created}}, 2) << "\n";
  } else if (created) {
    std::cout << "job " << job.value("id", "") << " queued (" << job.value("state", "") << ")\n";
  } else {
    std::cout << "job " << job.value("id", "") << " already has key " << job.value("key", "") << " ("
              << job.value("state", "") << (job.value("run_id", "").empty() ? "" : ", run " + job.value("run_id", ""))
              << "); nothing new was queued\n";
  }
  return kExitOk;
}

}  // namespace ns::cli
