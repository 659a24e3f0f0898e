#include "cli/run_cost.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <set>

#include "cli/cli.h"
#include "spec/parser.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strings.h"

namespace ns::cli {

namespace {

using cost::CapacityClass;
using nlohmann::json;

std::string StepOf(const std::string& task_id) { return task_id.substr(0, task_id.find('/')); }

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
    auto j = json::parse(text.value(), nullptr, false);
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

// A store error is never InvalidArgument here: callers read that code as "the
// catalogue does not fit" (exit 2), and a database problem is the engine's (exit 3).
Status AsEngineError(const Status& st) {
  if (st.code() != StatusCode::kInvalidArgument) return st;
  return Status(StatusCode::kIoError, st.message());
}

}  // namespace

std::string CataloguePath(const std::string& flag, const std::string& recorded,
                          const std::string& root) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("NIGHTSHIFT_CATALOGUE");
  if (env && *env) return env;
  if (!recorded.empty() && PathExists(recorded)) return recorded;
  std::string in_root = root + "/instances.yaml";
  return PathExists(in_root) ? in_root : "";
}

std::optional<cost::InstanceCatalogue> LoadCatalogueOrReport(const std::string& path) {
  auto catalogue = cost::LoadCatalogue(path);
  if (catalogue.ok()) return std::move(catalogue).value();
  if (catalogue.status().code() == StatusCode::kIoError) {
    PrintError(catalogue.status().message());
  } else {
    std::cerr << catalogue.status().message() << "\n";  // file:line:col: error: ... lines
  }
  return std::nullopt;
}

Status CheckCostable(const cost::InstanceCatalogue& catalogue,
                     const std::vector<cost::StepResources>& steps) {
  // A zero-length attempt per step through ComputeRunCost: the same checks
  // that billing the finished run makes, so a run that starts can be billed.
  std::vector<cost::AttemptUsage> probe;
  for (const auto& s : steps) probe.push_back({s.step, s.resources, CapacityClass::kOnDemand, 0, ""});
  auto rc = cost::ComputeRunCost(catalogue, probe, 0);
  return rc.ok() ? Status::Ok() : rc.status();
}

Result<RunCostReport> CostOfRun(Store* store, const Layout& layout, const RunRow& run,
                                const cost::InstanceCatalogue& catalogue, int64_t now) {
  auto attempts = store->ListAttempts(run.run_id);
  if (!attempts.ok()) return AsEngineError(attempts.status());
  RunCostReport report;
  // An attempt still running is billed up to now while its engine runs; one
  // whose engine is gone has no end to bill (a resume marks it lost).
  report.partial = DisplayStatus(run) == "running";
  std::set<std::string> steps;
  for (const auto& a : attempts.value()) steps.insert(StepOf(a.task_id));
  auto resources = StepResources(layout, run.run_id, steps);
  if (!resources.ok()) return AsEngineError(resources.status());

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
    int64_t end = a.finished_at ? a.finished_at
                                : (report.partial && a.status == "running" ? now : a.started_at);
    // Rows from before capacity classes (schema < 3) read as on-demand: the
    // only capacity nightshift had then.
    CapacityClass cls =
        cost::ParseCapacityClass(a.capacity_class).value_or(CapacityClass::kOnDemand);
    usage.push_back({step, r->second, cls, end - a.started_at, a.status});
  }
  report.unbilled_steps.assign(unbilled.begin(), unbilled.end());
  // The wall time ends when the run did; a stopped run (its engine gone, no
  // end recorded) ended with its last attempt as far as billing can tell.
  int64_t wall_end = run.finished_at;
  if (!wall_end && report.partial) wall_end = now;
  if (!wall_end) {
    wall_end = run.created_at;
    for (const auto& a : rows) wall_end = std::max(wall_end, a.finished_at);
  }
  auto rc = cost::ComputeRunCost(catalogue, usage, wall_end - run.created_at);
  if (!rc.ok()) return rc.status();
  report.cost = std::move(rc).value();
  return report;
}

namespace {

json CatalogueJson(const cost::InstanceCatalogue& catalogue, const std::string& path) {
  return {{"file", AbsolutePath(path)},
          {"prices_date", catalogue.prices_date()},
          {"source", catalogue.source()}};
}

}  // namespace

json CostJson(const RunCostReport& report, const cost::InstanceCatalogue& catalogue,
              const std::string& catalogue_path) {
  const cost::RunCost& c = report.cost;
  json steps = json::array();
  for (const auto& s : c.steps) {
    steps.push_back({{"step", s.step},
                     {"attempts", s.attempts},
                     {"spot_attempts", s.spot_attempts},
                     {"duration_ms", s.duration_ms},
                     {"instances", s.instances},
                     {"cost", s.cost},
                     {"on_demand_cost", s.on_demand_cost},
                     {"lost_ms", s.lost_ms},
                     {"lost_cost", s.lost_cost}});
  }
  return {{"partial", report.partial},
          {"catalogue", CatalogueJson(catalogue, catalogue_path)},
          {"currency", catalogue.currency()},
          {"run_wall_ms", c.run_wall_ms},
          {"actual", c.actual},
          {"all_on_demand", c.all_on_demand},
          {"monolithic", c.monolithic},
          {"monolithic_instance", c.monolithic_instance},
          {"savings_percent", c.savings_percent},
          {"lost_ms", c.lost_ms},
          {"lost_cost", c.lost_cost},
          {"steps", steps},
          {"unbilled_steps", report.unbilled_steps}};
}

json CostErrorJson(const cost::InstanceCatalogue& catalogue, const std::string& catalogue_path,
                   const std::string& error) {
  return {{"catalogue", CatalogueJson(catalogue, catalogue_path)},
          {"currency", catalogue.currency()},
          {"error", error}};
}

std::string Money(double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, v >= 1 || v == 0 ? "%.2f" : "%.4f", v);
  return buf;
}

std::string CostSummary(const json& cost) {
  if (!cost.is_object()) return "not recorded";
  auto num = [&](const char* key) {
    auto it = cost.find(key);
    return it != cost.end() && it->is_number() ? it->get<double>() : 0.0;
  };
  auto str = [&](const char* key) {
    auto it = cost.find(key);
    return it != cost.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (cost.contains("error")) return "not computed: " + str("error");
  std::string out = Money(num("actual")) + " " + str("currency");
  auto partial = cost.find("partial");
  if (partial != cost.end() && partial->is_boolean() && partial->get<bool>()) out += " so far";
  out += " (all on-demand " + Money(num("all_on_demand"));
  if (!str("monolithic_instance").empty()) {
    double savings = num("savings_percent");
    char pct[32];
    std::snprintf(pct, sizeof pct, "%.0f%% %s", std::fabs(savings), savings >= 0 ? "saved" : "more");
    out += ", monolithic " + Money(num("monolithic")) + ": " + pct;
  }
  auto lost_ms = static_cast<int64_t>(num("lost_ms"));
  if (lost_ms > 0) out += "; " + FormatDurationMs(lost_ms) + " of work lost to preemptions";
  out += ")";
  auto unbilled = cost.find("unbilled_steps");
  if (unbilled != cost.end() && unbilled->is_array() && !unbilled->empty()) {
    std::vector<std::string> names;
    for (const auto& n : *unbilled) {
      if (n.is_string()) names.push_back(n.get<std::string>());
    }
    out += "; not billed: " + Join(names, ", ");
  }
  return out;
}

namespace {

// The top-level "cost" of a run.json's text (null if none). The parser builds
// no other value.
Result<json> CostIn(const std::string& text, const std::string& path) {
  auto keep_cost = [](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key) return parsed == "cost";
    return true;
  };
  json j = json::parse(text, keep_cost, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Invalid(path + " is not a JSON object (was it edited?)");
  }
  auto it = j.find("cost");
  return it == j.end() ? json() : *it;
}

}  // namespace

Result<json> ReadRunCost(const std::string& path) {
  if (!PathExists(path)) return Status::NotFound(path + ": no such file");
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  return CostIn(text.value(), path);
}

std::string RecordedCatalogue(const json& cost) {
  if (!cost.is_object()) return "";
  auto c = cost.find("catalogue");
  if (c == cost.end() || !c->is_object()) return "";
  auto f = c->find("file");
  return f != c->end() && f->is_string() ? f->get<std::string>() : "";
}

Status WriteRunCost(const std::string& path, const json& cost) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status();
  std::string out = std::move(text).value();
  auto existing = CostIn(out, path);
  if (!existing.ok()) return existing.status();
  if (!existing.value().is_null()) {
    // Only a second call gets here: rewrite from the parse, order kept.
    auto j = nlohmann::ordered_json::parse(out, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Status::Invalid(path + " is not a JSON object");
    j["cost"] = nlohmann::ordered_json::parse(DumpJson(cost));
    return WriteFileAtomic(path, j.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
  }
  // A JSON object: its last non-blank character is the closing brace.
  size_t close = out.find_last_not_of(" \t\r\n");
  size_t before = close == 0 ? std::string::npos : out.find_last_not_of(" \t\r\n", close - 1);
  if (close == std::string::npos || out[close] != '}' || before == std::string::npos) {
    return Status::Invalid(path + " is not a JSON object");
  }
  std::string field = "  \"cost\": " + DumpJson(cost) + "\n}\n";
  out.erase(before + 1);
  out += out[before] == '{' ? "\n" + field : ",\n" + field;
  return WriteFileAtomic(path, out);
}

}  // namespace ns::cli
