#include "video/report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "util/fs.h"

namespace ns::video {
namespace {

TEST(Report, Base64KnownVectors) {
  EXPECT_EQ(Base64(""), "");
  EXPECT_EQ(Base64("f"), "Zg==");
  EXPECT_EQ(Base64("fo"), "Zm8=");
  EXPECT_EQ(Base64("foo"), "Zm9v");
  EXPECT_EQ(Base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64(std::string("\xff\x00\x10", 3)), "/wAQ");
}

TEST(Report, HtmlEscape) {
  EXPECT_EQ(HtmlEscape("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
}

// The cost section: what `nightshift cost RUN --json` says, as a person reads
// it; a file that is not that JSON is an error naming it.
TEST(Report, ShowsTheCostOfTheRun) {
  std::string dir = (std::filesystem::temp_directory_path() / ("ns_report_" + std::to_string(::getpid()))).string();
  ASSERT_TRUE(MakeDirs(dir + "/analyse").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/analyse/summary.json",
                              R"({"video": "m.mp4", "tracks_analysed": 0, "tracks_total": 0, "teams": [], "tracks": []})")
                  .ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/cost.json", R"({"actual": 0.0123, "all_on_demand": 0.03, "monolithic": 0.05,
    "monolithic_instance": "c6i.2xlarge", "savings_percent": 75.4, "lost_ms": 4200, "lost_cost": 0.0009,
    "currency": "USD", "partial": true,
    "steps": [{"step": "detect", "attempts": 5, "spot_attempts": 4, "duration_ms": 61000,
               "instances": ["c6i.large"], "cost": 0.011}],
    "catalogue": {"source": "list <prices>", "prices_date": "2025"}})")
                  .ok());
  ReportOptions o;
  o.analysis = dir + "/analyse";
  o.cost = dir + "/cost.json";
  o.out_dir = dir + "/report";
  auto path = RunReport(o);
  ASSERT_TRUE(path.ok()) << path.status().message();
  std::string html = ReadFile(*path).value();
  EXPECT_NE(html.find("<h2>Cost so far</h2>"), std::string::npos);
  EXPECT_NE(html.find("<b>0.0123 USD</b>"), std::string::npos) << html;
  EXPECT_NE(html.find("0.0500 USD (c6i.2xlarge"), std::string::npos);
  EXPECT_NE(html.find("75%"), std::string::npos);
  EXPECT_NE(html.find("4.2 s, 0.0009 USD"), std::string::npos);
  EXPECT_NE(html.find("<td>detect</td><td>5</td><td>4</td><td>61.0</td><td>c6i.large</td>"), std::string::npos);
  EXPECT_NE(html.find("list &lt;prices&gt;"), std::string::npos);  // escaped

  ASSERT_TRUE(WriteFileAtomic(dir + "/cost.json", R"({"actual": "lots"})").ok());
  auto bad = RunReport(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(dir + "/cost.json"), std::string::npos) << bad.status().message();
  ASSERT_TRUE(WriteFileAtomic(dir + "/cost.json", "not json").ok());
  EXPECT_FALSE(RunReport(o).ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ns::video
