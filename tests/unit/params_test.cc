#include "spec/params.h"

#include <gtest/gtest.h>

#include "spec/parser.h"

namespace ns::spec {

namespace {

Pipeline Parse(const std::string& text) {
  Diagnostics d("p.yaml");
  auto p = ParsePipelineText(text, "/tmp/p.yaml", &d);
  EXPECT_TRUE(p) << d.Format();
  return *p;
}

const char* kSpec = R"(name: x
params:
  n: {type: int, default: 3}
  f: {type: bool, default: false}
  r: {type: number, default: 0.5}
  l: {type: list, default: [a, b]}
  v: {type: path, required: true}
  s: {type: string, default: hi}
steps:
  a: {run: echo}
)";

}  // namespace

TEST(Params, DefaultsOverridesAndTypes) {
  Pipeline p = Parse(kSpec);
  auto v = ResolveParams(p, {{"v", "/tmp"}, {"n", "7"}, {"l", "x,y,z"}, {"f", "yes"}});
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ(v->at("n").scalar, "7");
  EXPECT_EQ(v->at("f").scalar, "true");
  EXPECT_EQ(v->at("r").scalar, "0.5");
  EXPECT_EQ(v->at("l").list, (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(v->at("v").scalar, "/tmp");
  auto j = ResolveParams(p, {{"v", "/tmp"}, {"l", R"(["a,b", "c"])"}});
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->at("l").list, (std::vector<std::string>{"a,b", "c"}));
}

TEST(Params, AllErrorsAtOnce) {
  Pipeline p = Parse(kSpec);
  auto v = ResolveParams(p, {{"n", "seven"}, {"nn", "1"}, {"f", "perhaps"}});
  ASSERT_FALSE(v.ok());
  const std::string& m = v.status().message();
  EXPECT_NE(m.find("-p n: expected an integer, got 'seven'"), std::string::npos) << m;
  EXPECT_NE(m.find("no param 'nn' (did you mean 'n'?)"), std::string::npos) << m;
  EXPECT_NE(m.find("-p f: expected true or false"), std::string::npos) << m;
  EXPECT_NE(m.find("param 'v' is required"), std::string::npos) << m;
}

TEST(Params, MissingPathIsAnError) {
  Pipeline p = Parse(kSpec);
  auto v = ResolveParams(p, {{"v", "/no/such/file.mp4"}});
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("no such file or folder '/no/such/file.mp4'"), std::string::npos);
}

TEST(Params, ToJson) {
  ParamValues in;
  in["a"] = {ParamType::kString, "x y", {}};
  in["b"] = {ParamType::kList, "", {"1", "2"}};
  EXPECT_EQ(ParamValuesToJson(in), R"({"a":"x y","b":["1","2"]})");
}

}  // namespace ns::spec
