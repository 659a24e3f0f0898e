#include "engine/cost.h"

#include <gtest/gtest.h>

#include <cmath>

namespace ns::cost {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;
constexpr int64_t kMinute = 60'000;

// Round figures, so that every cost below is a product a person can check.
const char* kCatalogue = R"(prices_date: 2025-01-01
source: made up for the test
instances:
  - {name: small,  cpus: 2, memory: 4GiB,  on_demand_per_hour: 0.10, spot_per_hour: 0.04}
  - {name: medium, cpus: 4, memory: 16GiB, on_demand_per_hour: 0.20, spot_per_hour: 0.08}
  - {name: big,    cpus: 8, memory: 32GiB, on_demand_per_hour: 0.40, spot_per_hour: 0.12}
  - {name: gpu,    cpus: 4, memory: 16GiB, gpus: 1, on_demand_per_hour: 1.00, spot_per_hour: 0.30}
)";

InstanceCatalogue Catalogue() {
  auto c = ParseCatalogue(kCatalogue, "test.yaml");
  EXPECT_TRUE(c.ok()) << c.status().message();
  return std::move(c).value();
}

int64_t Cents(double money) { return std::llround(money * 100); }

// The error message of parsing `text`, or "" when it parses.
std::string ErrorOf(const std::string& text) {
  auto c = ParseCatalogue(text, "cat.yaml");
  return c.ok() ? "" : c.status().message();
}

TEST(CostTest, ReadsACatalogue) {
  InstanceCatalogue c = Catalogue();
  ASSERT_EQ(c.instances().size(), 4u);
  EXPECT_EQ(c.prices_date(), "2025-01-01");
  EXPECT_EQ(c.source(), "made up for the test");
  EXPECT_EQ(c.currency(), "USD");
  const Instance& gpu = c.instances()[3];
  EXPECT_EQ(gpu.name, "gpu");
  EXPECT_EQ(gpu.cpus, 4);
  EXPECT_EQ(gpu.memory_bytes, 16 * kGiB);
  EXPECT_EQ(gpu.gpus, 1);
  EXPECT_EQ(gpu.on_demand_per_hour, 1.00);
  EXPECT_EQ(gpu.spot_per_hour, 0.30);
  EXPECT_EQ(c.instances()[0].gpus, 0);  // gpus may be left out
}

TEST(CostTest, ShippedExampleCatalogueLoads) {
  auto c = LoadCatalogue(std::string(NS_EXAMPLES) + "/instances.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_GE(c->instances().size(), 5u);
  EXPECT_FALSE(c->prices_date().empty());
  EXPECT_FALSE(c->source().empty());
  bool has_gpu = false;
  for (const auto& i : c->instances()) has_gpu |= i.gpus > 0;
  EXPECT_TRUE(has_gpu);
}

TEST(CostTest, CheapestFittingDependsOnResourcesAndClass) {
  InstanceCatalogue c = Catalogue();
  auto name = [&](Resources r, CapacityClass k) {
    const Instance* i = c.CheapestFitting(r, k);
    return i ? i->name : "(none)";
  };
  EXPECT_EQ(name({1, 1 * kGiB, 0}, CapacityClass::kOnDemand), "small");
  EXPECT_EQ(name({2, 4 * kGiB, 0}, CapacityClass::kOnDemand), "small");       // exactly fits
  EXPECT_EQ(name({2, 4 * kGiB + 1, 0}, CapacityClass::kOnDemand), "medium");  // one byte more
  EXPECT_EQ(name({0.5, 1 * kGiB, 1}, CapacityClass::kOnDemand), "gpu");
  EXPECT_EQ(name({16, 1 * kGiB, 0}, CapacityClass::kOnDemand), "(none)");

  // The cheapest at spot prices need not be the cheapest on demand.
  auto two = ParseCatalogue(R"(prices_date: x
source: y
instances:
  - {name: a, cpus: 2, memory: 4GiB, on_demand_per_hour: 0.10, spot_per_hour: 0.09}
  - {name: b, cpus: 4, memory: 8GiB, on_demand_per_hour: 0.12, spot_per_hour: 0.03}
)",
                            "two.yaml");
  ASSERT_TRUE(two.ok()) << two.status().message();
  EXPECT_EQ(two->CheapestFitting({1, kGiB, 0}, CapacityClass::kOnDemand)->name, "a");
  EXPECT_EQ(two->CheapestFitting({1, kGiB, 0}, CapacityClass::kSpot)->name, "b");
}

// A small run, checked by hand:
//
//   step    asks for             class      minutes  outcome    instance  $/h   cost
//   probe   1 cpu, 1 GiB         on-demand  36       succeeded  small     0.10  0.10*0.6  = 0.06
//   detect  4 cpus, 8 GiB        spot       30       preempted  medium    0.08  0.08*0.5  = 0.04
//   detect  4 cpus, 8 GiB        spot       60       succeeded  medium    0.08  0.08*1.0  = 0.08
//   detect  4 cpus, 8 GiB        on-demand  15       succeeded  medium    0.20  0.20*0.25 = 0.05
//   embed   2 cpus, 8 GiB, 1 gpu spot       30       succeeded  gpu       0.30  0.30*0.5  = 0.15
//
//   actual          0.06 + 0.04 + 0.08 + 0.05 + 0.15                       = 0.38
//   all on-demand   probe 0.06 + detect 0.20*1.75 = 0.35 + embed 1.00*0.5 = 0.91
//   monolithic      max 4 cpus, 8 GiB, 1 gpu -> gpu at 1.00/h for the 3 h wall = 3.00
//   savings         (3.00 - 0.38) / 3.00 = 87.33 %
//   work lost       the preempted detect attempt: 1800 s, 0.04
TEST(CostTest, HandCheckedRun) {
  InstanceCatalogue c = Catalogue();
  const Resources probe{1, 1 * kGiB, 0}, detect{4, 8 * kGiB, 0}, embed{2, 8 * kGiB, 1};
  const auto spot = CapacityClass::kSpot, od = CapacityClass::kOnDemand;
  std::vector<AttemptUsage> attempts = {
      {"probe", probe, od, 36 * kMinute, "succeeded"},
      {"detect", detect, spot, 30 * kMinute, "preempted"},
      {"detect", detect, spot, 60 * kMinute, "succeeded"},
      {"detect", detect, od, 15 * kMinute, "succeeded"},
      {"embed", embed, spot, 30 * kMinute, "succeeded"},
  };
  auto r = ComputeRunCost(c, attempts, 180 * kMinute);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(Cents(r->actual), 38);
  EXPECT_EQ(Cents(r->all_on_demand), 91);
  EXPECT_EQ(Cents(r->monolithic), 300);
  EXPECT_EQ(r->monolithic_instance, "gpu");
  EXPECT_EQ(r->run_wall_ms, 180 * kMinute);
  EXPECT_NEAR(r->savings_percent, 87.333, 0.001);
  EXPECT_EQ(r->lost_ms, 30 * kMinute);
  EXPECT_EQ(Cents(r->lost_cost), 4);

  ASSERT_EQ(r->steps.size(), 3u);
  const StepCost& d = r->steps[1];
  EXPECT_EQ(d.step, "detect");
  EXPECT_EQ(d.attempts, 3);
  EXPECT_EQ(d.spot_attempts, 2);
  EXPECT_EQ(d.duration_ms, 105 * kMinute);
  EXPECT_EQ(d.instances, std::vector<std::string>{"medium"});
  EXPECT_EQ(Cents(d.cost), 17);
  EXPECT_EQ(Cents(d.on_demand_cost), 35);
  EXPECT_EQ(d.lost_ms, 30 * kMinute);
  EXPECT_EQ(r->steps[0].step, "probe");
  EXPECT_EQ(Cents(r->steps[0].cost), 6);
  EXPECT_EQ(r->steps[2].instances, std::vector<std::string>{"gpu"});
  EXPECT_EQ(Cents(r->steps[2].cost), 15);
}

TEST(CostTest, AllOnDemandRunCostsTheSameBothWays) {
  InstanceCatalogue c = Catalogue();
  auto r = ComputeRunCost(
      c, {{"a", {1, kGiB, 0}, CapacityClass::kOnDemand, 60 * kMinute, "succeeded"}}, 60 * kMinute);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->actual, r->all_on_demand);
  EXPECT_EQ(Cents(r->monolithic), 10);  // small for one hour
  EXPECT_NEAR(r->savings_percent, 0, 1e-9);
  EXPECT_EQ(r->lost_ms, 0);
}

TEST(CostTest, NoInstanceFittingAStepNamesTheStep) {
  InstanceCatalogue c = Catalogue();
  Status st = CheckFits(
      c, {{"probe", {1, kGiB, 0}}, {"train", {16, 8 * kGiB, 0}}, {"render", {1, kGiB, 2}}});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("step 'train' asks for 16 cpus, 8.0 GiB, which no instance"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("step 'render' asks for 1 cpu, 1.0 GiB, 2 gpus"), std::string::npos)
      << st.message();
  EXPECT_EQ(st.message().find("'probe'"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("the largest is gpu"), std::string::npos) << st.message();

  auto r =
      ComputeRunCost(c, {{"train", {16, kGiB, 0}, CapacityClass::kSpot, 1000, "succeeded"}}, 1000);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("step 'train'"), std::string::npos);
}

TEST(CostTest, MonolithicMachineMustHoldEveryStepsLargestNeed) {
  // Each step fits some instance, but none has 8 cpus and a gpu.
  InstanceCatalogue c = Catalogue();
  auto r = ComputeRunCost(c,
                          {{"cpu", {8, kGiB, 0}, CapacityClass::kOnDemand, 1000, "succeeded"},
                           {"gpu", {1, kGiB, 1}, CapacityClass::kOnDemand, 1000, "succeeded"}},
                          2000);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("monolithic"), std::string::npos) << r.status().message();
}

TEST(CostTest, NegativePriceIsAnErrorWithItsPlace) {
  std::string e = ErrorOf(R"(prices_date: x
source: y
instances:
  - name: a
    cpus: 2
    memory: 4GiB
    on_demand_per_hour: -0.10
    spot_per_hour: 0.04
)");
  EXPECT_NE(e.find("cat.yaml:7:25: error: on_demand_per_hour -0.10 is negative"), std::string::npos)
      << e;
}

TEST(CostTest, MalformedPriceIsAnError) {
  std::string e = ErrorOf(R"(prices_date: x
source: y
instances:
  - {name: a, cpus: 2, memory: 4GiB, on_demand_per_hour: $0.10, spot_per_hour: 0.0.4}
)");
  EXPECT_NE(e.find("cat.yaml:4:58: error: on_demand_per_hour '$0.10' is not a number"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("spot_per_hour '0.0.4' is not a number"), std::string::npos) << e;
  EXPECT_NE(e.find("hint: write the price per hour as a plain number"), std::string::npos) << e;
}

TEST(CostTest, MissingFieldsAreErrors) {
  std::string e = ErrorOf(R"(source: y
instances:
  - name: a
    cpus: 2
    on_demand_per_hour: 0.10
)");
  EXPECT_NE(e.find("cat.yaml:1:1: error: missing 'prices_date'"), std::string::npos) << e;
  EXPECT_NE(e.find("cat.yaml:3:5: error: instance is missing 'memory'"), std::string::npos) << e;
  EXPECT_NE(e.find("instance is missing 'spot_per_hour'"), std::string::npos) << e;
  EXPECT_NE(ErrorOf("prices_date: x\nsource: y\n").find("missing 'instances'"), std::string::npos);
  e = ErrorOf(
      "prices_date: x\nsource: y\ninstances:\n  - {name: a, cpus: 1, memory: 1GiB, "
      "on_demand_per_hour: 0.1, spot_per_hour:}\n");
  EXPECT_NE(e.find("cat.yaml:4:"), std::string::npos) << e;
  EXPECT_NE(e.find("'spot_per_hour' has no value"), std::string::npos) << e;
}

TEST(CostTest, EveryProblemIsReportedTogether) {
  std::string e = ErrorOf(R"(prices_date: x
source: y
instances:
  - {name: a, cpus: 2, memory: 4GiB, on_demand_per_hour: 0.10, spot_per_hour: 0.20}
  - {name: a, cpus: 0, memory: lots, gpus: -1, on_demand_per_hour: 0.1, spot_per_hour: 0.1}
  - {name: c, cpu: 2, memory: 4GiB, on_demand_per_hour: 0.1, spot_per_hour: 0.1}
)");
  EXPECT_NE(e.find("4:"), std::string::npos);
  EXPECT_NE(e.find("spot_per_hour 0.2 is above on_demand_per_hour 0.1"), std::string::npos) << e;
  EXPECT_NE(e.find("instance 'a' is listed twice"), std::string::npos) << e;
  EXPECT_NE(e.find("cpus '0' is not a positive number"), std::string::npos) << e;
  EXPECT_NE(e.find("memory 'lots' is not a size"), std::string::npos) << e;
  EXPECT_NE(e.find("gpus '-1'"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown field 'cpu' in an instance"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'cpus'?"), std::string::npos) << e;
}

TEST(CostTest, NotACatalogue) {
  EXPECT_NE(ErrorOf("[1, 2]").find("cat.yaml:1:1: error: an instance catalogue is a mapping"),
            std::string::npos);
  EXPECT_NE(ErrorOf("a: [").find("cat.yaml:"), std::string::npos);
  auto missing = LoadCatalogue("/nonexistent/instances.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kIoError);
  EXPECT_NE(missing.status().message().find("/nonexistent/instances.yaml"), std::string::npos);
}

TEST(CostTest, CapacityClassNames) {
  EXPECT_STREQ(CapacityClassName(CapacityClass::kSpot), "spot");
  EXPECT_STREQ(CapacityClassName(CapacityClass::kOnDemand), "on-demand");
  EXPECT_EQ(ParseCapacityClass("spot"), CapacityClass::kSpot);
  EXPECT_EQ(ParseCapacityClass("on-demand"), CapacityClass::kOnDemand);
  EXPECT_EQ(ParseCapacityClass("ondemand"), std::nullopt);
}

}  // namespace
}  // namespace ns::cost
