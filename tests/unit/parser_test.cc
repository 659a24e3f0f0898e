#include "spec/parser.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "spec/limits.h"
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

// Parses `text`; the diagnostics are returned, `ok` says whether it gave a Pipeline.
Diagnostics Check(const std::string& text, bool* ok = nullptr) {
  Diagnostics d("p.yaml");
  auto p = ParsePipelineText(text, "/tmp/p.yaml", &d);
  if (ok) *ok = p.has_value();
  return d;
}

// "s0" with no needs, then "sI" needing "sI-1", written last step first.
std::string ReversedChain(int n) {
  std::string text = "name: chain\nsteps:\n";
  for (int i = n - 1; i >= 1; --i)
    text += "  s" + std::to_string(i) + ":\n    needs: [s" + std::to_string(i - 1) +
            "]\n    run: echo\n";
  return text + "  s0:\n    run: echo\n";
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

// Hostile and huge inputs: each gives one clear diagnostic (or parses), never a
// crash. Before the fixes these overflowed the stack (std::regex, a recursive
// cycle check) or used gigabytes (aliases).

TEST(ParserLimits, LongFlowLineWithATypoIsOneDiagnostic) {
  // 30 KB on one line; the missing '}' once sent a std::regex over the whole line.
  std::string line = "steps: {";
  for (int i = 0; line.size() < 30000; ++i)
    line += "s" + std::to_string(i) + ": {run: echo " + std::to_string(i) + "}, ";
  line += "bad: {run: echo ${params.x}, }";
  Diagnostics d = Check("name: x\n" + line + "\n");
  ASSERT_EQ(d.size(), 1u) << d.Format();
  EXPECT_EQ(d.items()[0].pos.line, 2);
  EXPECT_TRUE(StartsWith(d.items()[0].message, "malformed YAML: ")) << d.Format();
  EXPECT_NE(d.items()[0].hint.find("must be quoted"), std::string::npos) << d.Format();
}

TEST(ParserLimits, NamesLongerThanTheLimitAreRefused) {
  std::string big(100000, 'a');
  std::string env(100000, 'A');
  struct Case {
    std::string text;
    int line, column;
    std::string what;
  } cases[] = {
      {"name: x\nsteps:\n  ? " + big + "\n  : run: echo\n", 3, 5, "step id"},
      {"name: x\nparams:\n  ? " + big + "\n  : {type: string}\nsteps:\n  a: {run: echo}\n", 3, 5,
       "param name"},
      {"name: x\nsteps:\n  a:\n    run: echo\n    env:\n      ? " + env + "\n      : v\n", 6, 9,
       "environment variable name"},
  };
  for (const auto& c : cases) {
    bool ok = true;
    Diagnostics d = Check(c.text, &ok);
    EXPECT_FALSE(ok);
    ASSERT_EQ(d.size(), 1u) << d.Format().substr(0, 2000);
    const Diagnostic& x = d.items()[0];
    EXPECT_EQ(x.pos.line, c.line) << c.what;
    EXPECT_EQ(x.pos.column, c.column) << c.what;
    EXPECT_TRUE(StartsWith(x.message, c.what + " '")) << x.message.substr(0, 200);
    EXPECT_NE(x.message.find("(100000 characters)' is longer than 128 characters"),
              std::string::npos)
        << x.message.substr(0, 200);
    EXPECT_LT(d.Format().size(), 400u);  // the name is not printed in full
  }
}

TEST(ParserLimits, NamesAtTheLimitAreFine) {
  std::string id(kMaxNameLength, 's'), param(kMaxNameLength, 'p'), env(kMaxNameLength, 'E');
  bool ok = false;
  Diagnostics d =
      Check("name: x\nparams:\n  " + param + ": {type: string}\nsteps:\n  " + id +
                ":\n    run: echo ${params." + param + "}\n    env:\n      " + env + ": v\n",
            &ok);
  EXPECT_TRUE(ok) << d.Format();
}

TEST(ParserLimits, ScriptWithDollarBraceAndManySpaces) {
  std::string spaces(100000, ' ');
  bool ok = false;
  Diagnostics d = Check("name: x\nsteps:\n  a:\n    script: \"${" + spaces + "\"\n", &ok);
  EXPECT_TRUE(ok) << d.Format().substr(0, 2000);  // not a template: nothing to report

  d = Check("name: x\nsteps:\n  a:\n    script: \"echo ${" + spaces + "params.x}\"\n", &ok);
  EXPECT_FALSE(ok);
  ASSERT_EQ(d.size(), 1u) << d.Format().substr(0, 2000);
  EXPECT_EQ(d.items()[0].message,
            "step 'a': templates are not substituted inside a script (found '${params....')");
  EXPECT_EQ(d.items()[0].pos.line, 4);
}

TEST(ParserLimits, LongChainOfNeedsValidates) {
  // Written last step first, so that a recursive depth-first search would go
  // 30,000 calls deep.
  Diagnostics d("p.yaml");
  auto p = ParsePipelineText(ReversedChain(30000), "/tmp/p.yaml", &d);
  ASSERT_TRUE(p) << d.Format().substr(0, 2000);
  ASSERT_EQ(p->topo_order.size(), 30000u);
  for (size_t k = 0; k < p->topo_order.size(); ++k)
    ASSERT_EQ(p->steps[p->topo_order[k]].id, "s" + std::to_string(k));
}

TEST(ParserLimits, LongCycleIsOneShortDiagnostic) {
  std::string text = ReversedChain(30000);
  text.replace(text.rfind("  s0:\n"), std::string::npos,
               "  s0:\n    needs: [s29999]\n    run: echo\n");
  Diagnostics d = Check(text);
  ASSERT_EQ(d.size(), 1u) << d.Format().substr(0, 2000);
  const std::string& m = d.items()[0].message;
  EXPECT_TRUE(StartsWith(m, "cycle in needs: s29999 -> s29998 -> ")) << m;
  EXPECT_NE(m.find("-> ... (29981 more) -> "), std::string::npos) << m;
  EXPECT_TRUE(EndsWith(m, " -> s0 -> s29999")) << m;
}

TEST(ParserLimits, TopologicalOrderSweepsTheFileInOrder) {
  // Each sweep over the file takes the steps whose needs are all taken.
  Diagnostics d("p.yaml");
  auto p = ParsePipelineText(R"(name: x
steps:
  x: {needs: [y], run: echo}
  d: {run: echo}
  y: {needs: [d], run: echo}
  w: {needs: [x, d], run: echo}
  a: {run: echo}
)",
                             "/tmp/p.yaml", &d);
  ASSERT_TRUE(p) << d.Format();
  std::vector<std::string> order;
  for (size_t i : p->topo_order) order.push_back(p->steps[i].id);
  EXPECT_EQ(order, (std::vector<std::string>{"d", "y", "a", "x", "w"}));
}

TEST(ParserLimits, ManyMisspeltNeedsStayFast) {
  // Did-you-mean over 10,000 ids for each of 10,000 needs was quadratic.
  std::string text = "name: x\nsteps:\n";
  for (int i = 0; i < 10000; ++i)
    text += "  s" + std::to_string(i) + ": {needs: [gone-" + std::to_string(i) + "], run: echo}\n";
  Diagnostics d = Check(text);
  ASSERT_EQ(d.size(), 10000u);
  EXPECT_EQ(d.items()[0].message, "step 's0' needs unknown step 'gone-0'");
  EXPECT_NE(d.items()[0].hint.find("(10000 in all)"), std::string::npos) << d.items()[0].hint;
}

TEST(ParserLimits, AliasBombsAreRefused) {
  // "Billion laughs": nine lists of nine aliases of the list before, 9^9 scalars.
  std::string text = "name: bomb\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int k = 1; k < 9; ++k) {
    std::string prev = "*l" + std::to_string(k - 1);
    text += "l" + std::to_string(k) + ": &l" + std::to_string(k) + " [" + prev;
    for (int j = 1; j < 9; ++j) text += ", " + prev;
    text += "]\n";
  }
  text += "steps:\n  a:\n    foreach: *l8\n    run: echo ${item}\n";
  Diagnostics d = Check(text);
  ASSERT_EQ(d.size(), 1u) << d.Format();
  EXPECT_EQ(d.items()[0].message, "the YAML expands to more than 1,000,000 nodes (aliases?)");
  EXPECT_GT(d.items()[0].pos.line, 1);

  // A 50 KB scalar aliased 12,000 times: a 100 KB file, 600 MB once copied.
  text = "name: bomb\nsteps:\n  a:\n    foreach: [&s " + std::string(50000, 'x');
  for (int j = 0; j < 12000; ++j) text += ", *s";
  text += "]\n    run: echo ${item}\n";
  d = Check(text);
  ASSERT_EQ(d.size(), 1u) << d.Format().substr(0, 2000);
  EXPECT_EQ(d.items()[0].message, "the YAML expands to more than 16 MiB of text (aliases?)");
  EXPECT_EQ(d.items()[0].pos.line, 4);
}

TEST(ParserLimits, HugeDocumentsWithoutAliasesAreRefusedBeforeBuildingNodes) {
  // 1,200,000 scalars in 2.4 MB: yaml-cpp would build about 500 MB of nodes.
  std::string text = "name: x\nsteps: {a: {run: echo}}\ndescription: [a";
  for (int i = 1; i < 1200000; ++i) text += ",a";
  text += "]\n";
  Diagnostics d = Check(text);
  ASSERT_EQ(d.size(), 1u) << d.Format().substr(0, 2000);
  EXPECT_EQ(d.items()[0].message, "the YAML has more than 1,000,000 nodes");
  EXPECT_EQ(d.items()[0].pos.line, 3);
}

TEST(ParserLimits, ModestAliasesAreFine) {
  bool ok = false;
  Diagnostics d = Check(R"(name: x
steps:
  a:
    run: echo
    resources: &small {cpus: 2, memory: 1GiB}
    env: &env {A: "1", B: "2"}
  b:
    needs: [a]
    run: echo
    resources: *small
    env: *env
)",
                        &ok);
  EXPECT_TRUE(ok) << d.Format();
}

TEST(ParserLimits, DeepFlowNestingIsRefusedBeforeYamlCpp) {
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  Diagnostics d = Check("name: x\nsteps: " + deep + "\n");
  ASSERT_EQ(d.size(), 1u) << d.Format();
  EXPECT_EQ(d.items()[0].message, "lists or mappings nest deeper than 64 levels");
  EXPECT_EQ(d.items()[0].pos.line, 2);
  EXPECT_EQ(d.items()[0].pos.column, 8 + kMaxFlowDepth);

  std::string maps;
  for (int i = 0; i < 1000; ++i) maps += "{a: ";
  d = Check("name: x\nsteps: " + maps + "b" + std::string(1000, '}') + "\n");
  ASSERT_EQ(d.size(), 1u) << d.Format();
  EXPECT_EQ(d.items()[0].message, "lists or mappings nest deeper than 64 levels");

  // At the limit the pre-scan lets it through (and the parser says what is wrong).
  std::string ok_depth = std::string(kMaxFlowDepth, '[') + std::string(kMaxFlowDepth, ']');
  d = Check("name: x\ndescription: " + ok_depth + "\nsteps: {a: {run: echo}}\n");
  ASSERT_EQ(d.size(), 1u) << d.Format();
  EXPECT_EQ(d.items()[0].message, "description must be a string, found a list");
}

TEST(ParserLimits, BracketsInScalarsDoNotCountAsNesting) {
  std::string many(200, '[');
  bool ok = false;
  Diagnostics d = Check(
      "name: x\n"
      "description: '" +
          many +
          "'\n"
          "steps:\n"
          "  a:\n"
          "    run: echo a[1] \"" +
          many + "\" # " + many +
          "\n"
          "  b:\n"
          "    script: |\n"
          "      [[ -f x ]] && echo " +
          many +
          "\n"
          "      echo '{{{{'\n"
          "    env: {X: \"" +
          many + "\", Y: '" + many +
          "'}\n"
          "  c:\n"
          "    - x" +
          many + "\n",
      &ok);
  ASSERT_EQ(d.size(), 1u) << d.Format();  // only c's shape, no nesting error
  EXPECT_EQ(d.items()[0].message, "step 'c' must be a mapping, found a list");
}

TEST(ParserLimits, DeepBlockNestingIsOneDiagnostic) {
  // Indentation nests too; yaml-cpp's own guard stops it, and we say so.
  std::string text = "name: x\nsteps:\n";
  for (int i = 0; i < 1000; ++i) text += std::string(i + 1, ' ') + "- \n";
  Diagnostics d = Check(text);
  ASSERT_EQ(d.size(), 1u) << d.Format();
  EXPECT_NE(d.items()[0].message.find("levels deep"), std::string::npos) << d.Format();
}

TEST(ParserLimits, FilesOverTheLimitAreRefusedUnread) {
  std::string text =
      "name: x\ndescription: " + std::string(kMaxFileBytes, 'x') + "\nsteps: {a: {run: echo}}\n";
  Diagnostics d = Check(text);
  ASSERT_EQ(d.size(), 1u) << d.Format().substr(0, 2000);
  EXPECT_NE(d.items()[0].message.find("more than the limit of 16 MiB"), std::string::npos);

  std::string path = ::testing::TempDir() + "/ns_big_pipeline.yaml";
  std::ofstream(path) << text;
  Diagnostics f(path);
  EXPECT_FALSE(ParsePipelineFile(path, &f));
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f.items()[0].message, d.items()[0].message);
  std::filesystem::remove(path);
}

}  // namespace ns::spec
