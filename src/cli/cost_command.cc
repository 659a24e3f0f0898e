// `nightshift cost RUN`: what a run cost on the instances of a catalogue, against
// the same run all on-demand and one machine sized for its heaviest step.
//
// Reads the run's attempts from the store (read-only), each step's resources from
// runs/<run>/<step>/_task.json (written when a step ends) or, for a step still
// running, from the run's copy of its pipeline; the billing is engine/cost.h.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cli/cli.h"
#include "cli/commands.h"
#include "engine/cost.h"
#include "engine/layout.h"
#include "spec/parser.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strings.h"

namespace ns::cli {

namespace {

using cost::CapacityClass;

// The attempt's capacity class as the store recorded it. Rows from before
// capacity classes (and builds whose AttemptRow has no such field yet) are
// on-demand: that is the only capacity nightshift had then.
template <typename Row>
CapacityClass ClassOf(const Row& a) {
  if constexpr (requires { a.capacity_class; }) {
    return cost::ParseCapacityClass(a.capacity_class).value_or(CapacityClass::kOnDemand);
  } else {
    return CapacityClass::kOnDemand;
  }
}

std::string StepOf(const std::string& task_id) { return task_id.substr(0, task_id.find('/')); }

// --catalogue, else $NIGHTSHIFT_CATALOGUE, else <root>/instances.yaml; "" if none.
std::string CataloguePath(const std::string& flag, const std::string& root) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("NIGHTSHIFT_CATALOGUE");
  if (env && *env) return env;
  std::string in_root = root + "/instances.yaml";
  return PathExists(in_root) ? in_root : "";
}

// The resources of each step in `steps`: from its _task.json, else from the
// run's pipeline.yaml (a step still running has no _task.json yet). Steps found
// in neither are left out. Errors: a _task.json that cannot be read or parsed.
Result<std::map<std::string, cost::Resources>> StepResources(const Layout& layout,
                                                             const std::string& run_id,
                                                             const std::set<std::string>& steps) {
  std::map<std::string, cost::Resources> out;
  std::set<std::string> missing;
  for (const auto& step : steps) {
    std::string path = layout.StepDir(run_id, step) + "/_task.json";
    if (!PathExists(path)) {
      missing.insert(step);
      continue;
    }
    auto text = ReadFile(path);
    if (!text.ok()) return text.status();
    auto j = nlohmann::json::parse(text.value(), nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("resources") ||
        !j["resources"].is_object()) {
      return Status::IoError(path + " is not a task record with \"resources\" (was it edited?)");
    }
    const auto& r = j["resources"];
    out[step] = {r.value("cpus", 0.0), r.value("memory_bytes", int64_t{0}), r.value("gpus", 0)};
  }
  if (missing.empty()) return out;
  spec::Diagnostics diags(layout.RunDir(run_id) + "/pipeline.yaml");
  auto pipeline = spec::ParsePipelineFile(diags.file(), &diags);
  if (!pipeline) return out;  // reported as unbilled by the caller
  for (const auto& s : pipeline->steps) {
    if (missing.count(s.id))
      out[s.id] = {s.resources.cpus, s.resources.memory_bytes, s.resources.gpus};
  }
  return out;
}

// Money to the cent from 1 up, to a hundredth of a cent below (a short run
// costs fractions of a cent).
std::string Money(double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, v >= 1 || v == 0 ? "%.2f" : "%.4f", v);
  return buf;
}

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

  std::string path = CataloguePath(o.catalogue, root);
  if (path.empty()) {
    PrintError(
        "no instance catalogue: pass --catalogue FILE, set NIGHTSHIFT_CATALOGUE, or put one at " +
        root +
        "/instances.yaml (examples/instances.yaml in the nightshift sources is a "
        "start; check its prices first)");
    return kExitBadInput;
  }
  auto catalogue = cost::LoadCatalogue(path);
  if (!catalogue.ok()) {
    if (catalogue.status().code() == StatusCode::kIoError) {
      PrintError(catalogue.status().message());
    } else {
      std::cerr << catalogue.status().message() << "\n";
    }
    return kExitBadInput;
  }

  auto attempts = store->ListAttempts(run.run_id);
  if (!attempts.ok()) {
    PrintError(attempts.status().message());
    return kExitEngine;
  }
  // An attempt still running is billed up to now while its engine runs; one
  // whose engine is gone has no end to bill (a resume marks it lost).
  bool running = DisplayStatus(run) == "running";
  int64_t now = RealClock().Now();
  std::set<std::string> steps;
  for (const auto& a : attempts.value()) steps.insert(StepOf(a.task_id));
  Layout layout{root};
  auto resources = StepResources(layout, run.run_id, steps);
  if (!resources.ok()) {
    PrintError(resources.status().message());
    return kExitEngine;
  }

  // Steps are listed in the order they first ran.
  std::vector<AttemptRow> rows = std::move(attempts).value();
  std::stable_sort(rows.begin(), rows.end(), [](const AttemptRow& x, const AttemptRow& y) {
    return x.started_at < y.started_at;
  });
  std::vector<cost::AttemptUsage> usage;
  std::set<std::string> unbilled;
  for (const auto& a : rows) {
    std::string step = StepOf(a.task_id);
    auto r = resources.value().find(step);
    if (r == resources.value().end()) {
      unbilled.insert(step);
      continue;
    }
    int64_t end =
        a.finished_at ? a.finished_at : (running && a.status == "running" ? now : a.started_at);
    usage.push_back({step, r->second, ClassOf(a), end - a.started_at, a.status});
  }
  // The wall time ends when the run did; a stopped run (its engine gone, no
  // end recorded) ended with its last attempt as far as billing can tell.
  int64_t wall_end = run.finished_at;
  if (!wall_end && running) wall_end = now;
  if (!wall_end) {
    wall_end = run.created_at;
    for (const auto& a : rows) wall_end = std::max(wall_end, a.finished_at);
  }
  int64_t wall = wall_end - run.created_at;
  auto rc = cost::ComputeRunCost(*catalogue, usage, wall);
  if (!rc.ok()) {
    PrintError("run " + run.run_id + ", catalogue " + path + ":\n" + rc.status().message());
    return kExitBadInput;
  }
  const cost::RunCost& c = rc.value();
  const std::string& cur = catalogue->currency();

  if (o.json) {
    nlohmann::json js = nlohmann::json::array();
    for (const auto& s : c.steps) {
      js.push_back({{"step", s.step},
                    {"attempts", s.attempts},
                    {"spot_attempts", s.spot_attempts},
                    {"duration_ms", s.duration_ms},
                    {"instances", s.instances},
                    {"cost", s.cost},
                    {"on_demand_cost", s.on_demand_cost},
                    {"lost_ms", s.lost_ms},
                    {"lost_cost", s.lost_cost}});
    }
    nlohmann::json j{{"run_id", run.run_id},
                     {"status", DisplayStatus(run)},
                     {"partial", running},
                     {"catalogue",
                      {{"file", AbsolutePath(path)},
                       {"prices_date", catalogue->prices_date()},
                       {"source", catalogue->source()}}},
                     {"currency", cur},
                     {"run_wall_ms", c.run_wall_ms},
                     {"actual", c.actual},
                     {"all_on_demand", c.all_on_demand},
                     {"monolithic", c.monolithic},
                     {"monolithic_instance", c.monolithic_instance},
                     {"savings_percent", c.savings_percent},
                     {"lost_ms", c.lost_ms},
                     {"lost_cost", c.lost_cost},
                     {"steps", js},
                     {"unbilled_steps", unbilled}};
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
    std::set<std::string> list = unbilled;
    std::cout
        << "not billed: " << Join(std::vector<std::string>(list.begin(), list.end()), ", ")
        << " (no resources recorded: no _task.json, and the run's pipeline.yaml does not name "
           "them)\n";
  }
  return kExitOk;
}

}  // namespace ns::cli
