// The CLI's run cost: run.json's "cost" written without disturbing the rest,
// read back alone, summarised in one line; where the catalogue comes from; the
// check made before a run exists.
#include "cli/run_cost.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "util/fs.h"

namespace ns::cli {
namespace {

using nlohmann::json;

class RunCostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("ns_run_cost_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    ASSERT_TRUE(MakeDirs(dir_).ok());
    ::unsetenv("NIGHTSHIFT_CATALOGUE");
  }
  void TearDown() override {
    (void)RemoveTree(dir_);
    ::unsetenv("NIGHTSHIFT_CATALOGUE");
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    EXPECT_TRUE(WriteFileAtomic(path, text).ok());
    return path;
  }
  std::string dir_;
};

// The shape the scheduler writes: a head key per line, compact steps.
const char kRunJson[] =
    "{\n"
    "  \"run_id\": \"r1\",\n"
    "  \"status\": \"succeeded\",\n"
    "  \"steps\": [\n"
    "    {\"step\":\"a\",\"tasks\":[{\"task_id\":\"a\",\"cost\":\"not the run's\"}]}\n"
    "  ]\n"
    "}\n";

TEST_F(RunCostTest, WriteAddsCostAndKeepsEveryOtherByte) {
  std::string path = Write("run.json", kRunJson);
  json cost{{"actual", 0.5}, {"currency", "USD"}};
  ASSERT_TRUE(WriteRunCost(path, cost).ok());
  std::string text = ReadFile(path).value();
  std::string head(kRunJson, sizeof kRunJson - 4);  // up to "  ]" without "\n}\n"
  EXPECT_EQ(text.substr(0, head.size()), head);
  EXPECT_EQ(text.substr(head.size()), ",\n  \"cost\": {\"actual\":0.5,\"currency\":\"USD\"}\n}\n");
  json expected = json::parse(kRunJson);
  expected["cost"] = cost;
  EXPECT_EQ(json::parse(text), expected);

  auto back = ReadRunCost(path);
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back.value(), cost);
}

TEST_F(RunCostTest, WriteTwiceReplacesTheCost) {
  std::string path = Write("run.json", kRunJson);
  ASSERT_TRUE(WriteRunCost(path, {{"actual", 1}}).ok());
  ASSERT_TRUE(WriteRunCost(path, {{"actual", 2}}).ok());
  json j = json::parse(ReadFile(path).value());
  EXPECT_EQ(j["cost"], json({{"actual", 2}}));
  json expected = json::parse(kRunJson);
  expected["cost"] = {{"actual", 2}};
  EXPECT_EQ(j, expected);
}

TEST_F(RunCostTest, WriteIntoAnEmptyObject) {
  std::string path = Write("run.json", "{ }\n");
  ASSERT_TRUE(WriteRunCost(path, {{"actual", 1}}).ok());
  EXPECT_EQ(json::parse(ReadFile(path).value()), json({{"cost", {{"actual", 1}}}}));
}

TEST_F(RunCostTest, NotAnObjectIsRefusedAndLeftAlone) {
  for (const std::string bad : {"[1, 2]\n", "{\"a\": 1\n", "", "{\"a\": 1} trailing"}) {
    std::string path = Write("run.json", bad);
    Status st = WriteRunCost(path, {{"actual", 1}});
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(ReadFile(path).value(), bad);
    EXPECT_EQ(ReadRunCost(path).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(ReadRunCost(dir_ + "/none.json").status().code(), StatusCode::kNotFound);
}

TEST_F(RunCostTest, ReadWithoutCostIsNull) {
  // A "cost" inside a task is not the run's.
  auto c = ReadRunCost(Write("run.json", kRunJson));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c.value().is_null());
  EXPECT_EQ(RecordedCatalogue(c.value()), "");
  EXPECT_EQ(RecordedCatalogue({{"catalogue", {{"file", "/x/i.yaml"}}}}), "/x/i.yaml");
  EXPECT_EQ(RecordedCatalogue({{"catalogue", "/x/i.yaml"}}), "");
}

TEST(CostSummaryTest, OneLine) {
  // Money to the cent from 1 up, to a hundredth of a cent below (as `cost`).
  json c{{"actual", 1.38},          {"all_on_demand", 3.91},
         {"monolithic", 11.0},      {"monolithic_instance", "big"},
         {"savings_percent", 87.45}, {"lost_ms", 1800000},
         {"currency", "USD"},       {"partial", false},
         {"unbilled_steps", json::array()}};
  EXPECT_EQ(CostSummary(c),
            "1.38 USD (all on-demand 3.91, monolithic 11.00: 87% saved; 30m00s of work lost to "
            "preemptions)");
  c["lost_ms"] = 0;
  c["savings_percent"] = -25.0;
  c["actual"] = 13.75;
  c["all_on_demand"] = 0.0912;
  EXPECT_EQ(CostSummary(c), "13.75 USD (all on-demand 0.0912, monolithic 11.00: 25% more)");
  c["partial"] = true;
  c["unbilled_steps"] = {"x", "y"};
  c["monolithic_instance"] = "";  // no attempts: no baseline
  EXPECT_EQ(CostSummary(c), "13.75 USD so far (all on-demand 0.0912); not billed: x, y");
  EXPECT_EQ(CostSummary({{"error", "why"}}), "not computed: why");
  // Odd input never throws.
  EXPECT_EQ(CostSummary(json::array()), "not recorded");
  EXPECT_EQ(CostSummary({{"actual", "a lot"}, {"unbilled_steps", {1, "z"}}}),
            "0.00  (all on-demand 0.00); not billed: z");
}

TEST(CostSummaryTest, Money) {
  EXPECT_EQ(Money(0), "0.00");
  EXPECT_EQ(Money(0.00123), "0.0012");
  EXPECT_EQ(Money(1.234), "1.23");
}

TEST_F(RunCostTest, CataloguePathOrder) {
  std::string recorded = Write("recorded.yaml", "x");
  EXPECT_EQ(CataloguePath("", "", dir_), "");
  EXPECT_EQ(CataloguePath("", dir_ + "/gone.yaml", dir_), "");  // recorded but removed
  std::string in_root = Write("instances.yaml", "x");
  EXPECT_EQ(CataloguePath("", "", dir_), in_root);
  EXPECT_EQ(CataloguePath("", recorded, dir_), recorded);
  ::setenv("NIGHTSHIFT_CATALOGUE", "/env.yaml", 1);
  EXPECT_EQ(CataloguePath("", recorded, dir_), "/env.yaml");
  EXPECT_EQ(CataloguePath("flag.yaml", recorded, dir_), "flag.yaml");
}

TEST(CheckCostableTest, NamesStepsAndTheMonolithicMachine) {
  cost::InstanceCatalogue c({{"compute", 4, 2LL << 30, 0, 0.2, 0.1},
                             {"memory", 1, 16LL << 30, 0, 0.2, 0.1}},
                            "2025-01-01", "test", "USD");
  EXPECT_TRUE(CheckCostable(c, {{"a", {4, 1LL << 30, 0}}, {"b", {4, 2LL << 30, 0}}}).ok());
  Status st = CheckCostable(c, {{"a", {8, 1LL << 30, 0}}, {"b", {1, 1LL << 30, 0}}});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("step 'a' asks for 8 cpus"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find("'b'"), std::string::npos) << st.message();
  // Each step fits, but no one machine has 4 cpus and 8 GiB.
  st = CheckCostable(c, {{"a", {4, 1LL << 30, 0}}, {"b", {1, 8LL << 30, 0}}});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("monolithic baseline"), std::string::npos) << st.message();
  EXPECT_TRUE(CheckCostable(c, {}).ok());
}

}  // namespace
}  // namespace ns::cli
