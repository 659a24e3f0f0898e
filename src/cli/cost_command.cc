// `nightshift cost RUN`: what a run cost on the instances of a catalogue, against
// the same run all on-demand and one machine sized for its heaviest step.
//
// The billing is CostOfRun (cli/run_cost.h), the same code `nightshift run` uses
// to record a run's cost in its run.json; this file only prints it.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/run_cost.h"
#include "engine/cost.h"
#include "engine/layout.h"
#include "util/clock.h"
#include "util/json.h"
#include "util/strings.h"

namespace ns::cli {

namespace {

std::string ClassesOf(const cost::StepCost& s) {
  if (s.spot_attempts == 0) return "on-demand";
  if (s.spot_attempts == s.attempts) return "spot";
  return std::to_string(s.spot_attempts) + " spot, " +
         std::to_string(s.attempts - s.spot_attempts) + " on-demand";
}

std::string Seconds(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(ms) / 1000.0);
  return buf;
}

}  // namespace

int CostCommand(const CostOptions& o) {
  std::string root = ResolveRoot(o.root);
  auto store = OpenStoreForReading(root);
  if (!store) return kExitBadInput;
  auto found = store->GetRun(o.run_id);
  if (!found.ok()) {
    PrintError(found.status().message());
    return kExitEngine;
  }
  if (!found.value()) {
    PrintError("no run '" + o.run_id + "' in " + root + " (see `nightshift runs`)");
    return kExitBadInput;
  }
  const RunRow run = *found.value();

  // A run costed at its end recorded the catalogue it used (runs/<run>/run.json).
  Layout layout{root};
  std::string recorded;
  if (auto j = ReadRunCost(layout.RunDir(run.run_id) + "/run.json"); j.ok()) {
    recorded = RecordedCatalogue(j.value());
  }
  std::string path = CataloguePath(o.catalogue, recorded, root);
  if (path.empty()) {
    PrintError(
        "no instance catalogue: pass --catalogue FILE, set NIGHTSHIFT_CATALOGUE, or put one at " +
        root +
        "/instances.yaml (examples/instances.yaml in the nightshift sources is a "
        "start; check its prices first)");
    return kExitBadInput;
  }
  auto catalogue = LoadCatalogueOrReport(path);
  if (!catalogue) return kExitBadInput;

  auto report = CostOfRun(store.get(), layout, run, *catalogue, RealClock().Now());
  if (!report.ok()) {
    if (report.status().code() != StatusCode::kInvalidArgument) {
      PrintError(report.status().message());
      return kExitEngine;
    }
    PrintError("run " + run.run_id + ", catalogue " + path + ":\n" + report.status().message());
    return kExitBadInput;
  }
  bool running = report.value().partial;
  const std::vector<std::string>& unbilled = report.value().unbilled_steps;
  const cost::RunCost& c = report.value().cost;
  const std::string& cur = catalogue->currency();

  if (o.json) {
    nlohmann::json j{{"run_id", run.run_id}, {"status", DisplayStatus(run)}};
    j.update(CostJson(report.value(), *catalogue, path));
    std::cout << DumpJson(j, 2) << "\n";
    return kExitOk;
  }

  std::cout << "run        " << run.run_id << " (" << DisplayStatus(run) << ")\n"
            << "catalogue  " << path << "\n"
            << "prices     " << catalogue->prices_date() << ", " << cur << " per hour; "
            << catalogue->source() << "\n\n";
  std::printf("%-18s %8s %10s  %-22s %-14s %12s\n", "STEP", "ATTEMPTS", "SECONDS", "CLASS",
              "INSTANCE", ("COST " + cur).c_str());
  for (const auto& s : c.steps) {
    std::printf("%-18s %8d %10s  %-22s %-14s %12s\n", s.step.c_str(), s.attempts,
                Seconds(s.duration_ms).c_str(), ClassesOf(s).c_str(),
                Join(s.instances, ",").c_str(), Money(s.cost).c_str());
  }
  std::cout << "\n";
  std::printf("actual          %12s %s%s\n", Money(c.actual).c_str(), cur.c_str(),
              running ? "  (so far: the run is still running)" : "");
  std::printf("all on-demand   %12s %s\n", Money(c.all_on_demand).c_str(), cur.c_str());
  if (!c.monolithic_instance.empty()) {
    std::printf("monolithic      %12s %s  (%s on-demand for the run's wall time, %s)\n",
                Money(c.monolithic).c_str(), cur.c_str(), c.monolithic_instance.c_str(),
                FormatDurationMs(c.run_wall_ms).c_str());
    std::printf("savings         %11.1f%%  against the monolithic baseline\n", c.savings_percent);
  }
  std::printf("work lost       %12s %s  (%s s in preempted attempts)\n", Money(c.lost_cost).c_str(),
              cur.c_str(), Seconds(c.lost_ms).c_str());
  if (!unbilled.empty()) {
    std::cout
        << "not billed: " << Join(unbilled, ", ")
        << " (no resources recorded: no _task.json, and the run's pipeline.yaml does not name "
           "them)\n";
  }
  return kExitOk;
}

}  // namespace ns::cli
