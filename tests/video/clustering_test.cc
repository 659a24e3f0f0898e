#include "video/clustering.h"

#include <random>

#include <gtest/gtest.h>

namespace ns::video {
namespace {

TEST(KMeans, SplitsTwoJerseyColours) {
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0, 4);
  std::vector<Point3> pts;
  // Lab-like: dark blue shirts and white shirts, interleaved.
  for (int i = 0; i < 20; ++i) {
    pts.push_back({30 + noise(rng), 140 + noise(rng), 100 + noise(rng)});
    pts.push_back({220 + noise(rng), 128 + noise(rng), 128 + noise(rng)});
  }
  Clusters c = KMeans(pts, 2);
  ASSERT_EQ(c.centres.size(), 2u);
  for (size_t i = 0; i < pts.size(); ++i) EXPECT_EQ(c.labels[i], static_cast<int>(i % 2)) << i;
  EXPECT_NEAR(c.centres[0][0], 30, 5);  // darker cluster first
  EXPECT_NEAR(c.centres[1][0], 220, 5);
}

TEST(KMeans, DeterministicAndIndependentOfOrder) {
  std::vector<Point3> pts = {{1, 0, 0}, {2, 0, 0}, {10, 0, 0}, {11, 0, 0}, {1.5, 1, 0}};
  Clusters a = KMeans(pts, 2);
  std::vector<Point3> rev(pts.rbegin(), pts.rend());
  Clusters b = KMeans(rev, 2);
  for (size_t i = 0; i < pts.size(); ++i) EXPECT_EQ(a.labels[i], b.labels[pts.size() - 1 - i]);
  EXPECT_EQ(a.labels, (std::vector<int>{0, 0, 1, 1, 0}));
}

TEST(KMeans, FewerDistinctPointsThanK) {
  std::vector<Point3> pts = {{5, 5, 5}, {5, 5, 5}};
  Clusters c = KMeans(pts, 2);
  EXPECT_EQ(c.centres.size(), 1u);
  EXPECT_EQ(c.labels, (std::vector<int>{0, 0}));
  EXPECT_DOUBLE_EQ(c.inertia, 0);
  EXPECT_TRUE(KMeans({}, 2).labels.empty());
}

TEST(KMeans, LloydIteratesToTheNearestCentres) {
  // Maximin starts at (10,0,0) and (-10,0,0); the points at +-4 must end with their side.
  std::vector<Point3> pts = {{-10, 0, 0}, {-4, 0, 0}, {-3, 0, 0}, {3, 0, 0}, {4, 0, 0}, {10, 0, 0}};
  Clusters c = KMeans(pts, 2);
  EXPECT_EQ(c.labels, (std::vector<int>{0, 0, 0, 1, 1, 1}));
  EXPECT_NEAR(c.centres[0][0], -17.0 / 3, 1e-9);
  EXPECT_NEAR(c.centres[1][0], 17.0 / 3, 1e-9);
}

}  // namespace
}  // namespace ns::video
