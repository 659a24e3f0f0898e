#include "video/calibrate.h"

#include <gtest/gtest.h>

#include "video/motion.h"

namespace ns::video {
namespace {

// A camera looking down a 105 x 68 m pitch at an angle: pitch -> image.
const cv::Matx33d kToImage(8.0, 2.5, 120.0, 0.0, -3.0, 560.0, 0.0, 0.004, 1.0);

std::vector<PointPair> Pairs(const std::vector<cv::Point2d>& pitch) {
  std::vector<PointPair> out;
  int line = 0;
  for (const auto& p : pitch) out.push_back({Apply(kToImage, p), p, ++line});
  return out;
}

TEST(Calibrate, FourPairsGiveTheExactHomography) {
  auto fit = FitHomography(Pairs({{0, 0}, {105, 0}, {105, 68}, {0, 68}}), "p.txt");
  ASSERT_TRUE(fit.ok()) << fit.status().message();
  EXPECT_LT(fit->max, 1e-6);
  // Any other point of the pitch comes back where it was.
  cv::Point2d centre = Apply(fit->h, Apply(kToImage, {52.5, 34}));
  EXPECT_NEAR(centre.x, 52.5, 1e-6);
  EXPECT_NEAR(centre.y, 34, 1e-6);
}

TEST(Calibrate, MorePairsAverageClickErrorAndReportEachPair) {
  auto pairs = Pairs({{0, 0}, {105, 0}, {105, 68}, {0, 68}, {52.5, 34}, {16.5, 13.85}, {88.5, 54.15}});
  const double jitter[7][2] = {{1, -1}, {-1, 0.5}, {0.5, 1}, {-0.5, -1}, {1, 1}, {-1, 0}, {0, -1}};
  for (size_t i = 0; i < pairs.size(); ++i) pairs[i].image += cv::Point2d(jitter[i][0], jitter[i][1]);
  auto fit = FitHomography(pairs, "p.txt");
  ASSERT_TRUE(fit.ok());
  ASSERT_EQ(fit->residuals.size(), 7u);
  EXPECT_GT(fit->rms, 0);
  EXPECT_LT(fit->max, 1.5);  // a pixel of click error is well under a few metres here
  // One swapped point stands out in the residuals.
  std::swap(pairs[5].pitch, pairs[6].pitch);
  auto bad = FitHomography(pairs, "p.txt");
  ASSERT_TRUE(bad.ok());
  EXPECT_GT(bad->max, 5 * fit->max);
}

TEST(Calibrate, RefusesWhatCannotFixAPlane) {
  auto few = FitHomography(Pairs({{0, 0}, {105, 0}, {105, 68}}), "p.txt");
  EXPECT_FALSE(few.ok());
  EXPECT_NE(few.status().message().find("at least 4"), std::string::npos);
  auto line = FitHomography(Pairs({{0, 0}, {10, 0}, {20, 0}, {0, 68}}), "p.txt");
  EXPECT_FALSE(line.ok());
  EXPECT_NE(line.status().message().find("lines 1, 2 and 3"), std::string::npos) << line.status().message();
  auto all_on_line = FitHomography(Pairs({{0, 0}, {10, 0}, {20, 0}, {30, 0}, {40, 0}}), "p.txt");
  EXPECT_FALSE(all_on_line.ok());
  // Noisy clicks along one touchline: nearly one line, refused rather than fitted wildly.
  auto near_line = FitHomography(Pairs({{0, 0}, {20, 0.001}, {40, 0}, {60, 0.002}, {80, 0}}), "p.txt");
  EXPECT_FALSE(near_line.ok());
  auto same = FitHomography(Pairs({{0, 0}, {105, 0}, {105, 68}, {0, 68}, {0, 0}}), "p.txt");
  EXPECT_FALSE(same.ok());
  EXPECT_NE(same.status().message().find("p.txt:5"), std::string::npos) << same.status().message();
}

TEST(Calibrate, ParsesTextAndJsonAndNamesTheBadLine) {
  auto t = ParsePointPairs("image_x,image_y,pitch_x,pitch_y\n# corners\n1, 2, 3, 4\n\n5 6 7 8  # far\n", "p.csv");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->size(), 2u);
  EXPECT_EQ((*t)[1].line, 5);
  EXPECT_EQ((*t)[1].pitch, cv::Point2d(7, 8));
  auto j = ParsePointPairs(R"([{"image": [1, 2], "pitch": [3, 4]}])", "p.json");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ((*j)[0].image, cv::Point2d(1, 2));
  auto bad = ParsePointPairs("1 2 3 4\n1 2 x 4\n", "p.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("p.txt:2: 'x'"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(ParsePointPairs("1 2 3 nan\n", "p.txt").ok());
  EXPECT_FALSE(ParsePointPairs("1 2 3 1e300\n", "p.txt").ok());
  EXPECT_FALSE(ParsePointPairs(R"([{"image": [1], "pitch": [3, 4]}])", "p.json").ok());
}

}  // namespace
}  // namespace ns::video
