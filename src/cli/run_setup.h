// The steps of starting a run that `nightshift run` and `nightshift serve`
// share: the root, store and executor (SetUp), every check that can be made
// before a run exists (Check), and creating or taking the run (Create).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "engine/cost.h"
#include "engine/event_queue.h"
#include "engine/layout.h"
#include "engine/scheduler.h"
#include "exec/slurm_executor.h"
#include "spec/parser.h"
#include "store/store.h"
#include "util/clock.h"

namespace ns::cli {

// One line of an error report: printed by the CLI, kept in a job's message by the server.
using Report = std::function<void(const std::string& line)>;
void ReportToStderr(const std::string& line);

// "07:00": the next 07:00 local time after `now`; "6h", "90m": now plus that.
std::optional<TimeMs> ParseDeadline(const std::string& text, TimeMs now);

// Whether the engine that owns `r` may still be driving it (alive here, on
// another host, or unverifiable): then nobody else may take the run.
bool OwnerMayBeAlive(const RunRow& r, std::string* who);

// What every run of one `nightshift run` shares: the root and its store, the
// clock, the event queue and the executor's capacity.
struct Shared {
  std::string root;
  Layout layout;
  std::unique_ptr<Store> store;
  RealClock clock;
  EventQueue events{&clock};
  std::unique_ptr<SlurmExecutor> slurm;
  Capacity cap;
  std::string path_env;
};

// One run, checked and configured, before anything is created for it.
struct Prepared {
  std::string file;
  std::optional<spec::Pipeline> pipeline;
  std::optional<RunRow> previous;  // --resume
  RunConfig cfg;
  std::optional<cost::InstanceCatalogue> catalogue;
  std::string catalogue_path;
  std::string label;  // before each progress line of a batch
};

// The flags every run of the command shares: executor, capacity, root.
// Prints what is wrong; returns an exit code.
int SetUp(const RunOptions& o, Shared* sh);

// Everything that can be checked before a run exists: the spec, its params
// (a resumed run's, overridden by `params`), programs and resources, the
// instance catalogue, the run's flags. Nothing is created. Returns an exit code.
int Check(const RunOptions& o, const std::string& file, const std::vector<std::string>& params,
          const std::string& resume, Shared* sh, Prepared* p, const Report& report = ReportToStderr);

// Creates the run (its row and folder) or takes the resumed one; `also`, when
// set, runs inside the same transaction (the server leases the job there).
int Create(Shared* sh, Prepared* p, const std::function<Status()>& also = nullptr,
           const Report& report = ReportToStderr);

// Bills the run that just ended on `catalogue` and records the result in its
// run.json; returns the one-line summary.
std::string RecordCost(Store* store, const Layout& layout, const std::string& run_id,
                       const cost::InstanceCatalogue& catalogue, const std::string& path, TimeMs now);

}  // namespace ns::cli
