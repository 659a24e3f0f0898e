#include "spec/template.h"

#include <gtest/gtest.h>

namespace ns::spec {

TEST(SplitWords, QuotesAndBackslashes) {
  auto w = SplitWords(R"(prog --a "x y" 'p q' c\ d "e\"f" '' end)");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w.value(), (std::vector<std::string>{"prog", "--a", "x y", "p q", "c d", "e\"f", "", "end"}));
}

TEST(SplitWords, Errors) {
  EXPECT_FALSE(SplitWords("echo 'open").ok());
  EXPECT_FALSE(SplitWords("echo \"open").ok());
  EXPECT_FALSE(SplitWords("echo \\").ok());
}

TEST(Template, ParsesReferences) {
  auto t = ParseTemplate("--in=${params.video}:${steps.seg.output}/${item}-${run.id}$${x}");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->parts.size(), 9u);
  EXPECT_EQ(t->parts[1].kind, RefKind::kParam);
  EXPECT_EQ(t->parts[1].name, "video");
  EXPECT_EQ(t->parts[3].kind, RefKind::kStepOutput);
  EXPECT_EQ(t->parts[3].name, "seg");
  EXPECT_EQ(t->parts[5].kind, RefKind::kItem);
  EXPECT_EQ(t->parts[6].literal, "-");
  EXPECT_EQ(t->parts[7].kind, RefKind::kRunId);
  EXPECT_EQ(t->parts[8].literal, "${x}");
}

TEST(Template, RejectsUnknownAndUnterminated) {
  EXPECT_FALSE(ParseTemplate("${params}").ok());
  EXPECT_FALSE(ParseTemplate("${steps.a.input}").ok());
  EXPECT_FALSE(ParseTemplate("${env.HOME}").ok());
  EXPECT_FALSE(ParseTemplate("${params.x").ok());
}

TEST(Template, WholeWordListExpandsAndValuesStayOneArgument) {
  Resolver r = [](const TemplatePart& p) -> Result<RefValue> {
    RefValue v;
    if (p.name == "files") {
      v.is_list = true;
      v.list = {"a b", "c"};
    } else {
      v.scalar = "x; rm -rf / $(evil)";
    }
    return v;
  };
  auto list = RenderWord(ParseTemplate("${params.files}").value(), r);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list.value(), (std::vector<std::string>{"a b", "c"}));
  auto one = RenderWord(ParseTemplate("--name=${params.name}").value(), r);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one.value(), (std::vector<std::string>{"--name=x; rm -rf / $(evil)"}));
}

}  // namespace ns::spec
