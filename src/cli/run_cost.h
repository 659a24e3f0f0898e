// The cost of one run as the CLI reports it: `nightshift cost RUN`, the end of
// `nightshift run` (which also records it in runs/<run>/run.json) and `show`.
// One code path bills a run for all three (engine/cost.h does the arithmetic);
// one JSON object and one summary line describe it.
//
// Functions here read the store, run folders and the environment; they keep no
// state and are safe to call from any one thread at a time per Store.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/cost.h"
#include "engine/layout.h"
#include "store/store.h"
#include "util/status.h"

namespace ns::cli {

// Where the catalogue comes from: `flag` (--catalogue), else
// $NIGHTSHIFT_CATALOGUE, else `recorded` (the file a run was costed with, from
// its run.json) if that file still exists, else <root>/instances.yaml if it
// exists. "" when there is none.
std::string CataloguePath(const std::string& flag, const std::string& recorded,
                          const std::string& root);

// Loads the catalogue at `path`. On failure prints every problem to stderr
// (file:line:col for a malformed file) and returns nullopt: the caller exits 2.
std::optional<cost::InstanceCatalogue> LoadCatalogueOrReport(const std::string& path);

// Checks before a run exists that it can be billed on `catalogue`: every step
// fits an instance (the error names each step that fits none) and one instance
// can hold the heaviest step's cpus, memory and gpus at once (the monolithic
// baseline). InvalidArgument otherwise.
Status CheckCostable(const cost::InstanceCatalogue& catalogue,
                     const std::vector<cost::StepResources>& steps);

struct RunCostReport {
  cost::RunCost cost;
  std::vector<std::string> unbilled_steps;  // steps with attempts but no resources on record
  bool partial = false;                     // the run is still running: billed up to `now`
};

// Bills the attempts of `run` on `catalogue`. Each step's resources come from
// runs/<run>/<step>/_task.json or, for a step still running, from the run's
// pipeline.yaml; steps found in neither are left unbilled and listed. An
// attempt still running is billed up to `now` while the run's engine runs.
// Errors: InvalidArgument when an attempt or the monolithic machine fits no
// instance (exit 2); kIoError (or the store's code) when the store or a
// _task.json cannot be read (exit 3).
Result<RunCostReport> CostOfRun(Store* store, const Layout& layout, const RunRow& run,
                                const cost::InstanceCatalogue& catalogue, int64_t now);

// The "cost" object of run.json; `nightshift cost --json` prints the same
// object with the run's id and status. Figures are unrounded; durations in ms.
nlohmann::json CostJson(const RunCostReport& report, const cost::InstanceCatalogue& catalogue,
                        const std::string& catalogue_path);
// The "cost" object recorded when a run could not be billed: the catalogue and
// why, so that `nightshift cost RUN` finds the same catalogue later.
nlohmann::json CostErrorJson(const cost::InstanceCatalogue& catalogue,
                             const std::string& catalogue_path, const std::string& error);

// A CostJson object in one line, after the word "cost":
//   "0.38 USD (all on-demand 0.91, monolithic 3.00: 87% saved; 30m00s of work
//    lost to preemptions)"
// or "not computed: <why>" for a CostErrorJson. Never throws on odd input.
std::string CostSummary(const nlohmann::json& cost);

// Money to the cent from 1 up, to a hundredth of a cent below (a short run
// costs fractions of a cent).
std::string Money(double v);

// The top-level "cost" of the run.json at `path`, or null when it has none.
// Nothing else of the file is kept in memory (a 100,000-task run.json is tens
// of MB). NotFound without the file; InvalidArgument when it is not a JSON object.
Result<nlohmann::json> ReadRunCost(const std::string& path);
// The catalogue file recorded in a "cost" object; "" if none.
std::string RecordedCatalogue(const nlohmann::json& cost);

// Sets "cost" in the run.json at `path` to `cost` and writes the file back
// atomically (WriteFileAtomic). Every other field keeps its text and place: the
// object is appended before the closing brace. A "cost" already there (the
// engine rewrites run.json without one, so only a second call) is replaced and
// the file rewritten from its parse: the same fields in the same order, other
// spacing. InvalidArgument when the file is not a JSON object.
Status WriteRunCost(const std::string& path, const nlohmann::json& cost);

}  // namespace ns::cli
