// Cost: what a run's attempts cost on public cloud instances, and what the same
// run would have cost all on-demand or on one machine sized for its heaviest step.
//
// An InstanceCatalogue is a list of instance types (cpus, memory, gpus, on-demand
// and spot price per hour) with the date and source of its prices, read from a
// YAML file (docs/cli.md, "Cost"; examples/instances.yaml). Every attempt is billed
// for its duration on the cheapest instance that fits its resources, at the price
// of its capacity class. Prices are in the catalogue's currency per hour; money
// is a double (sums of a few thousand products, shown to the cent).
//
// This module knows nothing of the store, the spec or the scheduler: callers pass
// plain values (step ids, resources, durations, outcomes). Everything here is a
// pure function of its arguments or a const method: thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace ns::cost {

// The two capacity classes, with one name table (the words of the store's
// attempts.capacity_class column and of docs): "on-demand" and "spot".
enum class CapacityClass { kOnDemand, kSpot };
const char* CapacityClassName(CapacityClass c);
std::optional<CapacityClass> ParseCapacityClass(std::string_view name);

// What a step asks for (its `resources:`).
struct Resources {
  double cpus = 0;
  int64_t memory_bytes = 0;
  int gpus = 0;
};

struct Instance {
  std::string name;
  double cpus = 0;
  int64_t memory_bytes = 0;
  int gpus = 0;
  double on_demand_per_hour = 0;
  double spot_per_hour = 0;

  double PricePerHour(CapacityClass c) const {
    return c == CapacityClass::kSpot ? spot_per_hour : on_demand_per_hour;
  }
  // Whether a task asking for `r` fits on one such instance.
  bool Fits(const Resources& r) const;
};

class InstanceCatalogue {
 public:
  InstanceCatalogue(std::vector<Instance> instances, std::string prices_date, std::string source,
                    std::string currency);

  const std::vector<Instance>& instances() const { return instances_; }
  const std::string& prices_date() const { return prices_date_; }
  const std::string& source() const { return source_; }
  const std::string& currency() const { return currency_; }  // "USD" unless the file says

  // The cheapest instance that fits `r` at the price of class `c`; on a tie the
  // smaller one (fewer cpus, then less memory), then the first listed. Null when
  // none fits. The pointer lives as long as the catalogue.
  const Instance* CheapestFitting(const Resources& r, CapacityClass c) const;

 private:
  std::vector<Instance> instances_;
  std::string prices_date_;
  std::string source_;
  std::string currency_;
};

// Reads a catalogue file. Every problem is reported at once, one line each as
// "file:line:col: error: what\n    hint: what to do": not a mapping, an unknown or
// missing field, a malformed or negative price, a spot price above the on-demand
// one, bad cpus/memory/gpus, two instances with one name, no instances. An
// unreadable file is an IoError; every other problem is InvalidArgument.
Result<InstanceCatalogue> LoadCatalogue(const std::string& path);
// The same for text as if read from `file` (tests, and LoadCatalogue itself).
Result<InstanceCatalogue> ParseCatalogue(const std::string& text, const std::string& file);

// One step and what it asks for.
struct StepResources {
  std::string step;
  Resources resources;
};

// Ok when every step fits some instance of the catalogue; otherwise an
// InvalidArgument naming each step that fits none, with what it asks for and
// the largest instance on offer.
Status CheckFits(const InstanceCatalogue& catalogue, const std::vector<StepResources>& steps);

// One attempt as billed: what its step asks for, where it ran and for how long.
struct AttemptUsage {
  std::string step;
  Resources resources;
  CapacityClass capacity_class = CapacityClass::kOnDemand;
  int64_t duration_ms = 0;
  std::string outcome;  // the attempt's status; "preempted" is work lost
};

struct StepCost {
  std::string step;
  int attempts = 0;
  int spot_attempts = 0;
  int64_t duration_ms = 0;             // billed time, all attempts
  std::vector<std::string> instances;  // where its attempts were billed, in order of first use
  double cost = 0;                     // at each attempt's class's price
  double on_demand_cost = 0;           // the same attempts at on-demand prices
  int64_t lost_ms = 0;                 // in preempted attempts
  double lost_cost = 0;
};

struct RunCost {
  double actual = 0;         // every attempt at its class's price
  double all_on_demand = 0;  // every attempt at on-demand prices
  double monolithic = 0;     // one machine for the heaviest step, on-demand, for the wall time
  std::string monolithic_instance;
  int64_t run_wall_ms = 0;
  double savings_percent = 0;  // of `actual` against `monolithic`; 0 when that is 0
  int64_t lost_ms = 0;         // work lost to preemptions
  double lost_cost = 0;
  std::vector<StepCost> steps;  // in order of first appearance in the attempts
};

// Bills `attempts` and the run's wall time. The monolithic machine is the
// cheapest instance (on-demand) with at least the largest cpus, the largest
// memory and the largest gpus any of the steps asks for. Fails (InvalidArgument,
// as CheckFits) when an attempt or that machine fits no instance: a cost that
// leaves a step out would look cheaper than it is.
Result<RunCost> ComputeRunCost(const InstanceCatalogue& catalogue,
                               const std::vector<AttemptUsage>& attempts, int64_t run_wall_ms);

}  // namespace ns::cost
