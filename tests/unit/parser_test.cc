#include "spec/parser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/strings.h"

namespace ns::spec {

namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Reported(const Diagnostics& d) {
  std::vector<std::string> out;
  for (const auto& x : d.items())
    out.push_back(std::to_string(x.pos.line) + ":" + std::to_string(x.pos.column) + ": " + x.message);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// Every file in spec_cases/ is a pipeline followed by "# expect: L:C: message"
// lines: exactly those diagnostics must be reported (none for a valid file).
TEST(SpecCases, EachFixtureReportsExactlyItsExpectedErrors) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(NS_SPEC_CASES)) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    std::string text = Slurp(entry.path());
    std::vector<std::string> expected;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);)
      if (StartsWith(line, "# expect: ")) expected.push_back(line.substr(10));
    std::sort(expected.begin(), expected.end());
    Diagnostics d(entry.path().filename());
    auto p = ParsePipelineText(text, entry.path(), &d);
    EXPECT_EQ(p.has_value(), expected.empty()) << entry.path();
    EXPECT_EQ(Reported(d), expected) << entry.path() << "\n" << d.Format();
  }
  EXPECT_GE(files, 7);
}

TEST(Parser, HintsSuggestTheClosestName) {
  Diagnostics d("p.yaml");
  ParsePipelineText("name: x\nsteps:\n  a:\n    rn: echo\n", "p.yaml", &d);
  std::string f = d.Format();
  EXPECT_NE(f.find("p.yaml:4:5: error: unknown key 'rn' in step 'a'"), std::string::npos) << f;
  EXPECT_NE(f.find("hint: did you mean 'run'?"), std::string::npos) << f;
}

TEST(Parser, DefaultsApplyAndStepsOverride) {
  Diagnostics d("p.yaml");
  auto p = ParsePipelineText(R"(name: x
defaults:
  resources: {cpus: 2, memory: 1GiB}
  retry: {max_attempts: 4, backoff: 3s, on: [failed]}
  env: {A: "1", B: "2"}
steps:
  a:
    run: echo
    env: {B: "3"}
    resources: {cpus: 0.5}
)", "p.yaml", &d);
  ASSERT_TRUE(p) << d.Format();
  const Step& s = p->steps[0];
  EXPECT_DOUBLE_EQ(s.resources.cpus, 0.5);
  EXPECT_EQ(s.resources.memory_bytes, 1ll << 30);
  EXPECT_EQ(s.retry.max_attempts, 4);
  EXPECT_EQ(s.retry.backoff_ms, 3000);
  EXPECT_EQ(s.retry.on, static_cast<unsigned>(kRetryFailed));
  ASSERT_EQ(s.env.size(), 2u);
  EXPECT_EQ(s.env[1].name, "B");
  EXPECT_EQ(s.env[1].raw, "3");
}

TEST(Parser, TopologicalOrderAndForeachKinds) {
  Diagnostics d("p.yaml");
  auto p = ParsePipelineText(R"(name: x
params:
  l: {type: list, default: [a]}
steps:
  c:
    needs: [b]
    foreach: ${steps.b.output}/*/x.json
    run: echo ${item}
  b:
    needs: [a]
    foreach: ${params.l}
    run: echo ${item}
  a:
    foreach: [p, q]
    run: echo ${item}
)", "p.yaml", &d);
  ASSERT_TRUE(p) << d.Format();
  std::vector<std::string> order;
  for (size_t i : p->topo_order) order.push_back(p->steps[i].id);
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(p->FindStep("a")->foreach.kind, ForeachKind::kLiteral);
  EXPECT_EQ(p->FindStep("b")->foreach.kind, ForeachKind::kParam);
  EXPECT_EQ(p->FindStep("c")->foreach.kind, ForeachKind::kGlob);
  EXPECT_EQ(p->FindStep("c")->foreach.pattern, "*/x.json");
}

TEST(Parser, GlobMayNotLeaveTheStepOutput) {
  Diagnostics d("p.yaml");
  auto p = ParsePipelineText("name: x\nsteps:\n  a: {run: echo}\n  b:\n    needs: [a]\n"
                             "    foreach: ${steps.a.output}/../../*\n    run: echo\n",
                             "p.yaml", &d);
  EXPECT_FALSE(p);
  EXPECT_NE(d.Format().find("must stay inside the step's output"), std::string::npos);
}

}  // namespace ns::spec
