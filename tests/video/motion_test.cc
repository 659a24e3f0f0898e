#include "video/motion.h"

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

namespace ns::video {
namespace {

TEST(Motion, StraightLineAtConstantSpeed) {
  std::vector<TrackPoint> pts;
  for (int i = 0; i <= 50; ++i) pts.push_back({i * 0.1, 2.0 * i, 0});  // 20 units/s for 5 s
  MotionStats m = ComputeMotion(pts);
  // Smoothing shortens the ends a little (half a window at each end).
  EXPECT_NEAR(m.distance, 100, 8);
  EXPECT_NEAR(m.duration, 5, 1e-9);
  EXPECT_NEAR(m.avg_speed, 20, 1.6);
  EXPECT_NEAR(m.max_speed, 20, 1e-6);
}

TEST(Motion, ATrackShorterThanASecondHasItsAverageAsItsMax) {
  std::vector<TrackPoint> pts;
  for (int i = 0; i <= 6; ++i) pts.push_back({i * 0.1, 10.0 * i, 0});  // 0.6 s, 100 units/s
  MotionStats m = ComputeMotion(pts);
  EXPECT_GT(m.avg_speed, 0);
  EXPECT_GE(m.max_speed, m.avg_speed);  // was 0: no window of one second fits
  // Any track: the fastest window is never slower than the whole track.
  std::vector<TrackPoint> slow_then_fast;
  for (int i = 0; i <= 30; ++i) slow_then_fast.push_back({i * 0.1, i < 20 ? 1.0 * i : 20.0 + 30.0 * (i - 20), 0});
  MotionStats n = ComputeMotion(slow_then_fast);
  EXPECT_GE(n.max_speed, n.avg_speed);
}

TEST(Motion, JitterIsSmoothedAndGapsAreNotWalked) {
  std::vector<TrackPoint> still;
  for (int i = 0; i < 40; ++i) still.push_back({i * 0.1, 100.0 + (i % 2 ? 3 : -3), 50});
  EXPECT_LT(ComputeMotion(still).distance, 0.35 * 39 * 6);  // raw jitter path is 234
  std::vector<TrackPoint> gap = {{0, 0, 0}, {0.1, 0, 0}, {10, 500, 0}, {10.1, 500, 0}};
  EXPECT_DOUBLE_EQ(ComputeMotion(gap, 1).distance, 0);
  EXPECT_DOUBLE_EQ(ComputeMotion({{0, 1, 1}}).distance, 0);
}

TEST(Homography, ReadsJsonAndPlainText) {
  std::string a = testing::TempDir() + "/h1.json", b = testing::TempDir() + "/h2.txt",
              c = testing::TempDir() + "/h3.txt";
  std::ofstream(a) << R"({"h": [[0.1, 0, 0], [0, 0.1, 0], [0, 0, 1]]})";
  std::ofstream(b) << "0.1 0 0\n0 0.1 0\n0 0 1\n";
  std::ofstream(c) << "1 2 3\n";
  for (const auto& p : {a, b}) {
    auto h = ReadHomography(p);
    ASSERT_TRUE(h.ok()) << h.status().message();
    cv::Point2d q = Apply(*h, {200, 50});
    EXPECT_NEAR(q.x, 20, 1e-9);
    EXPECT_NEAR(q.y, 5, 1e-9);
  }
  auto bad = ReadHomography(c);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("h3.txt"), std::string::npos);
  EXPECT_EQ(ReadHomography(testing::TempDir() + "/none").status().code(), StatusCode::kNotFound);
}

TEST(Heatmap, CountsPointsInCells) {
  Heatmap h(4, 2, 0, 0, 100, 50);
  h.Add(10, 10);
  h.Add(99, 49);
  h.Add(99.9, 49.9, 2);
  h.Add(100, 10);   // outside
  h.Add(-1, 10);    // outside
  EXPECT_DOUBLE_EQ(h.Total(), 4);
  EXPECT_DOUBLE_EQ(h.counts[0], 1);
  EXPECT_DOUBLE_EQ(h.counts[7], 3);
  cv::Mat img = h.Render(8);
  EXPECT_EQ(img.cols, 32);
  EXPECT_EQ(img.rows, 16);
  EXPECT_EQ(h.ToJson()["counts"].size(), 8u);
}

}  // namespace
}  // namespace ns::video
