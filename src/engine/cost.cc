#include "engine/cost.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "spec/diagnostics.h"
#include "spec/yaml_loader.h"
#include "util/fs.h"
#include "util/strings.h"

namespace ns::cost {

namespace {

using spec::Diagnostics;
using spec::Excerpt;
using spec::SourcePos;

constexpr double kMsPerHour = 3'600'000.0;

SourcePos PosOf(const YAML::Node& n) {
  YAML::Mark m = n.Mark();
  if (m.is_null()) return {0, 0};
  return {m.line + 1, m.column + 1};
}

// A whole scalar as a finite double ("0.192", "2", "1e-3"); nullopt otherwise.
std::optional<double> ParseDouble(std::string_view s) {
  s = Trim(s);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

// Reads one instance's fields, reporting each problem; fills `out` as far as it can.
class InstanceReader {
 public:
  InstanceReader(const YAML::Node& node, Diagnostics* d) : node_(node), d_(d) {}

  bool Read(Instance* out) {
    static const std::vector<std::string> kKeys = {
        "name", "cpus", "memory", "gpus", "on_demand_per_hour", "spot_per_hour"};
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
      if (std::find(kKeys.begin(), kKeys.end(), key) != kKeys.end()) continue;
      auto near = DidYouMean(key, kKeys);
      Error(it->first, "unknown field '" + Excerpt(key) + "' in an instance",
            near ? "did you mean '" + *near + "'?" : "an instance has " + Join(kKeys, ", "));
    }
    if (auto n = Required("name")) {
      out->name = n->Scalar();
      if (out->name.empty())
        Error(*n, "an instance's name is empty", "write its type, e.g. m6i.large");
    }
    if (auto n = Required("cpus", "how many vCPUs, e.g. cpus: 4")) {
      auto v = ParseDouble(n->Scalar());
      if (!v || *v <= 0) {
        Error(*n, "cpus '" + Excerpt(n->Scalar()) + "' is not a positive number", "e.g. cpus: 4");
      } else {
        out->cpus = *v;
      }
    }
    if (auto n = Required("memory", "e.g. memory: 16GiB")) {
      auto v = ParseMemoryBytes(n->Scalar());
      if (!v || *v <= 0) {
        Error(*n, "memory '" + Excerpt(n->Scalar()) + "' is not a size",
              "write a number and a unit: 512MiB, 16GiB, 1TiB");
      } else {
        out->memory_bytes = *v;
      }
    }
    if (YAML::Node n = node_["gpus"]) {  // optional: most instances have none
      int v = -1;
      std::string s = n.IsScalar() ? n.Scalar() : "";
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < 0) {
        Error(n, "gpus '" + Excerpt(s) + "' is not a whole number of 0 or more", "e.g. gpus: 1");
      } else {
        out->gpus = v;
      }
    }
    auto on_demand = Price("on_demand_per_hour");
    auto spot = Price("spot_per_hour");
    if (on_demand) out->on_demand_per_hour = *on_demand;
    if (spot) out->spot_per_hour = *spot;
    if (on_demand && spot && *spot > *on_demand) {
      Error(node_["spot_per_hour"],
            "spot_per_hour " + FormatDouble(*spot) + " is above on_demand_per_hour " +
                FormatDouble(*on_demand),
            "spot capacity is the cheaper class; check the two figures are not swapped");
    }
    return ok_;
  }

 private:
  void Error(const YAML::Node& at, std::string msg, std::string hint) {
    d_->Error(PosOf(at), std::move(msg), std::move(hint));
    ok_ = false;
  }

  // The scalar field `key`, or nullopt after reporting that it is missing or
  // not a scalar.
  std::optional<YAML::Node> Required(const std::string& key, const std::string& example = "") {
    YAML::Node n = node_[key];
    if (!n) {
      Error(node_, "instance is missing '" + key + "'",
            example.empty() ? "every instance has name, cpus, memory, on_demand_per_hour and "
                              "spot_per_hour"
                            : example);
      return std::nullopt;
    }
    if (n.IsNull()) {
      Error(n, "'" + key + "' has no value", example);
      return std::nullopt;
    }
    if (!n.IsScalar()) {
      Error(n, "'" + key + "' must be a single value, not a list or mapping", example);
      return std::nullopt;
    }
    return n;
  }

  std::optional<double> Price(const std::string& key) {
    auto n = Required(key, "the price per hour as a plain number, e.g. " + key + ": 0.192");
    if (!n) return std::nullopt;
    const std::string& s = n->Scalar();
    auto v = ParseDouble(s);
    if (!v) {
      Error(*n, key + " '" + Excerpt(s) + "' is not a number",
            "write the price per hour as a plain number without a currency sign, e.g. 0.192");
      return std::nullopt;
    }
    if (*v < 0) {
      Error(*n, key + " " + Excerpt(s) + " is negative", "a price is 0 or more");
      return std::nullopt;
    }
    return v;
  }

  const YAML::Node node_;  // a handle; const so that [] never inserts
  Diagnostics* d_;
  bool ok_ = true;
};

std::string TrimNewline(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

std::string Describe(const Resources& r) {
  std::string s =
      FormatDouble(r.cpus) + (r.cpus == 1 ? " cpu, " : " cpus, ") + FormatBytes(r.memory_bytes);
  if (r.gpus > 0) s += ", " + std::to_string(r.gpus) + (r.gpus == 1 ? " gpu" : " gpus");
  return s;
}

// "the largest instance on offer", for errors: most gpus, then cpus, then memory.
std::string LargestOnOffer(const InstanceCatalogue& c) {
  const Instance* best = nullptr;
  for (const auto& i : c.instances()) {
    if (!best || std::tie(i.gpus, i.cpus, i.memory_bytes) >
                     std::tie(best->gpus, best->cpus, best->memory_bytes)) {
      best = &i;
    }
  }
  if (!best) return "the catalogue is empty";
  return "the largest is " + best->name + " (" +
         Describe({best->cpus, best->memory_bytes, best->gpus}) + ")";
}

}  // namespace

const char* CapacityClassName(CapacityClass c) {
  switch (c) {
    case CapacityClass::kOnDemand:
      return "on-demand";
    case CapacityClass::kSpot:
      return "spot";
  }
  return "on-demand";
}

std::optional<CapacityClass> ParseCapacityClass(std::string_view name) {
  if (name == "on-demand") return CapacityClass::kOnDemand;
  if (name == "spot") return CapacityClass::kSpot;
  return std::nullopt;
}

bool Instance::Fits(const Resources& r) const {
  return r.cpus <= cpus + 1e-9 && r.memory_bytes <= memory_bytes && r.gpus <= gpus;
}

InstanceCatalogue::InstanceCatalogue(std::vector<Instance> instances, std::string prices_date,
                                     std::string source, std::string currency)
    : instances_(std::move(instances)),
      prices_date_(std::move(prices_date)),
      source_(std::move(source)),
      currency_(std::move(currency)) {}

const Instance* InstanceCatalogue::CheapestFitting(const Resources& r, CapacityClass c) const {
  const Instance* best = nullptr;
  for (const auto& i : instances_) {
    if (!i.Fits(r)) continue;
    if (!best || std::make_tuple(i.PricePerHour(c), i.cpus, i.memory_bytes) <
                     std::make_tuple(best->PricePerHour(c), best->cpus, best->memory_bytes)) {
      best = &i;
    }
  }
  return best;
}

Result<InstanceCatalogue> ParseCatalogue(const std::string& text, const std::string& file) {
  Diagnostics d(file);
  auto root = spec::LoadYaml(text, &d);
  if (!root) return Status::Invalid(TrimNewline(d.Format()));
  const YAML::Node& top = *root;  // const: [] on a missing key must not insert it
  if (!top.IsMap()) {
    d.Error(PosOf(top), "an instance catalogue is a mapping",
            "start with prices_date:, source: and instances: (see examples/instances.yaml)");
    return Status::Invalid(TrimNewline(d.Format()));
  }
  static const std::vector<std::string> kTop = {"prices_date", "source", "currency", "instances"};
  for (auto it = top.begin(); it != top.end(); ++it) {
    std::string key = it->first.IsScalar() ? it->first.Scalar() : "";
    if (std::find(kTop.begin(), kTop.end(), key) != kTop.end()) continue;
    auto near = DidYouMean(key, kTop);
    d.Error(PosOf(it->first), "unknown field '" + Excerpt(key) + "'",
            near ? "did you mean '" + *near + "'?" : "the top level has " + Join(kTop, ", "));
  }
  // Where the prices come from is part of the figures: both are required.
  auto text_field = [&](const std::string& key, const std::string& hint) -> std::string {
    YAML::Node n = top[key];
    if (!n) {
      d.Error(PosOf(top), "missing '" + key + "'", hint);
      return "";
    }
    if (!n.IsScalar() || Trim(n.Scalar()).empty()) {
      d.Error(PosOf(n), "'" + key + "' must be a non-empty text", hint);
      return "";
    }
    return n.Scalar();
  };
  std::string date =
      text_field("prices_date", "when the prices were read, e.g. prices_date: 2025-06-01");
  std::string source = text_field("source", "where the prices come from (a price list, a URL)");
  std::string currency = "USD";
  if (top["currency"]) currency = text_field("currency", "e.g. currency: USD");

  std::vector<Instance> instances;
  YAML::Node list = top["instances"];
  if (!list) {
    d.Error(PosOf(top), "missing 'instances'", "list the instance types under instances:");
  } else if (!list.IsSequence() || list.size() == 0) {
    d.Error(PosOf(list), "'instances' must be a non-empty list",
            "each item: {name, cpus, memory, gpus, on_demand_per_hour, spot_per_hour}");
  } else {
    std::map<std::string, SourcePos> seen;
    for (const auto& node : list) {
      if (!node.IsMap()) {
        d.Error(PosOf(node), "an instance must be a mapping",
                "e.g. {name: m6i.large, cpus: 2, memory: 8GiB, on_demand_per_hour: 0.096, "
                "spot_per_hour: 0.0384}");
        continue;
      }
      Instance inst;
      bool ok = InstanceReader(node, &d).Read(&inst);
      if (!inst.name.empty()) {
        auto [it, fresh] = seen.emplace(inst.name, PosOf(node["name"]));
        if (!fresh) {
          d.Error(PosOf(node["name"]), "instance '" + Excerpt(inst.name) + "' is listed twice",
                  "first at line " + std::to_string(it->second.line) + "; remove or rename one");
          ok = false;
        }
      }
      if (ok) instances.push_back(std::move(inst));
    }
  }
  if (!d.empty()) return Status::Invalid(TrimNewline(d.Format()));
  return InstanceCatalogue(std::move(instances), std::move(date), std::move(source),
                           std::move(currency));
}

Result<InstanceCatalogue> LoadCatalogue(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) {
    return Status::IoError("cannot read instance catalogue " + path + ": " +
                           text.status().message());
  }
  return ParseCatalogue(text.value(), path);
}

Status CheckFits(const InstanceCatalogue& catalogue, const std::vector<StepResources>& steps) {
  std::vector<std::string> misfits;
  std::set<std::string> named;
  for (const auto& s : steps) {
    if (catalogue.CheapestFitting(s.resources, CapacityClass::kOnDemand)) continue;
    if (!named.insert(s.step).second) continue;
    misfits.push_back("step '" + s.step + "' asks for " + Describe(s.resources) +
                      ", which no instance in the catalogue has");
  }
  if (misfits.empty()) return Status::Ok();
  return Status::Invalid(Join(misfits, "\n") + "\n    hint: " + LargestOnOffer(catalogue) +
                         "; add an instance that fits, or lower the step's resources");
}

Result<RunCost> ComputeRunCost(const InstanceCatalogue& catalogue,
                               const std::vector<AttemptUsage>& attempts, int64_t run_wall_ms) {
  std::vector<StepResources> wanted;
  Resources heaviest;
  for (const auto& a : attempts) {
    wanted.push_back({a.step, a.resources});
    heaviest.cpus = std::max(heaviest.cpus, a.resources.cpus);
    heaviest.memory_bytes = std::max(heaviest.memory_bytes, a.resources.memory_bytes);
    heaviest.gpus = std::max(heaviest.gpus, a.resources.gpus);
  }
  NS_RETURN_IF_ERROR(CheckFits(catalogue, wanted));

  RunCost rc;
  rc.run_wall_ms = std::max<int64_t>(run_wall_ms, 0);
  std::map<std::string, size_t> index;  // step -> rc.steps
  for (const auto& a : attempts) {
    auto [it, fresh] = index.emplace(a.step, rc.steps.size());
    if (fresh) rc.steps.push_back(StepCost{a.step});
    StepCost& s = rc.steps[it->second];
    const Instance* at_class = catalogue.CheapestFitting(a.resources, a.capacity_class);
    const Instance* on_demand = catalogue.CheapestFitting(a.resources, CapacityClass::kOnDemand);
    int64_t ms = std::max<int64_t>(a.duration_ms, 0);
    double hours = static_cast<double>(ms) / kMsPerHour;
    double cost = at_class->PricePerHour(a.capacity_class) * hours;
    double od = on_demand->on_demand_per_hour * hours;
    s.attempts++;
    s.spot_attempts += a.capacity_class == CapacityClass::kSpot;
    s.duration_ms += ms;
    s.cost += cost;
    s.on_demand_cost += od;
    if (std::find(s.instances.begin(), s.instances.end(), at_class->name) == s.instances.end()) {
      s.instances.push_back(at_class->name);
    }
    if (a.outcome == "preempted") {
      s.lost_ms += ms;
      s.lost_cost += cost;
    }
  }
  for (const auto& s : rc.steps) {
    rc.actual += s.cost;
    rc.all_on_demand += s.on_demand_cost;
    rc.lost_ms += s.lost_ms;
    rc.lost_cost += s.lost_cost;
  }
  if (!attempts.empty()) {
    const Instance* mono = catalogue.CheapestFitting(heaviest, CapacityClass::kOnDemand);
    if (!mono) {
      return Status::Invalid(
          "no instance in the catalogue has " + Describe(heaviest) +
          " at once, the machine the monolithic baseline needs (the largest cpus, memory and "
          "gpus of any step)\n    hint: " +
          LargestOnOffer(catalogue) + "; add an instance that has all three");
    }
    rc.monolithic_instance = mono->name;
    rc.monolithic = mono->on_demand_per_hour * static_cast<double>(rc.run_wall_ms) / kMsPerHour;
  }
  if (rc.monolithic > 0) rc.savings_percent = 100.0 * (rc.monolithic - rc.actual) / rc.monolithic;
  return rc;
}

}  // namespace ns::cost
