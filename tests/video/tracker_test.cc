#include "video/tracker.h"

#include <map>
#include <set>

#include <gtest/gtest.h>

namespace ns::video {
namespace {

Detection At(double x, double y, double w = 20, double h = 50) {
  Detection d;
  d.box = {x, y, w, h};
  d.score = 1;
  return d;
}

// Runs frames 0..n-1 (every `stride`) through a tracker; returns all emitted boxes.
template <typename F>
std::vector<TrackedBox> Feed(Tracker& t, int n, int stride, F dets_for) {
  std::vector<TrackedBox> all;
  for (int f = 0; f < n; f += stride) {
    auto got = t.Step(f, f / 10.0, dets_for(f));
    all.insert(all.end(), got.begin(), got.end());
  }
  return all;
}

std::map<int, std::set<int64_t>> FramesById(const std::vector<TrackedBox>& boxes) {
  std::map<int, std::set<int64_t>> m;
  for (const auto& b : boxes) m[b.id].insert(b.frame);
  return m;
}

TEST(Tracker, TwoWalkersKeepTheirIds) {
  Tracker t(TrackerOptions{});
  auto boxes = Feed(t, 60, 1, [](int f) {
    return std::vector<Detection>{At(10 + 3 * f, 100), At(400 - 2 * f, 300)};
  });
  auto ids = FramesById(boxes);
  ASSERT_EQ(ids.size(), 2u);
  for (const auto& [id, frames] : ids) EXPECT_EQ(frames.size(), 60u) << "track " << id;
  // Track 1 is the one born first at the top: its boxes all have y == 100.
  for (const auto& b : boxes) EXPECT_EQ(b.box.y, b.id == 1 ? 100 : 300);
}

TEST(Tracker, BirthNeedsMinHitsAndEmitsEarlierBoxes) {
  TrackerOptions o;
  o.min_hits = 3;
  Tracker t(o);
  // Seen on frames 0 and 1 only: never born.
  auto boxes = Feed(t, 10, 1, [](int f) { return f < 2 ? std::vector<Detection>{At(50, 50)} : std::vector<Detection>{}; });
  EXPECT_TRUE(boxes.empty());
  EXPECT_EQ(t.tracks_born(), 0);
  // Seen on three frames: born, and all three boxes come out.
  Tracker t2(o);
  auto b2 = Feed(t2, 3, 1, [](int) { return std::vector<Detection>{At(50, 50)}; });
  ASSERT_EQ(b2.size(), 3u);
  EXPECT_EQ(b2[0].frame, 0);
  EXPECT_EQ(b2[0].id, 1);
}

TEST(Tracker, ShortGapKeepsIdLongGapEndsTrack) {
  TrackerOptions o;
  o.max_misses = 5;
  // Missing for 4 frames (15..18): same id.
  Tracker t(o);
  auto boxes = Feed(t, 40, 1, [](int f) {
    return (f >= 15 && f < 19) ? std::vector<Detection>{} : std::vector<Detection>{At(100 + f, 100)};
  });
  EXPECT_EQ(FramesById(boxes).size(), 1u);
  // Missing for 10 frames: the track dies and a new one is born.
  Tracker t2(o);
  auto b2 = Feed(t2, 40, 1, [](int f) {
    return (f >= 15 && f < 25) ? std::vector<Detection>{} : std::vector<Detection>{At(100 + f, 100)};
  });
  EXPECT_EQ(FramesById(b2).size(), 2u);
}

TEST(Tracker, PredictsAcrossStride) {
  // Moving 6 px a frame, sampled every 5 frames: 30 px between looks, more than the
  // box width, so plain IoU would lose it; the velocity model must not.
  Tracker t(TrackerOptions{});
  auto boxes = Feed(t, 200, 5, [](int f) { return std::vector<Detection>{At(10 + 6 * f, 200)}; });
  auto ids = FramesById(boxes);
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids.begin()->second.size(), 40u);
}

TEST(Tracker, CrossingWalkersDoNotSwap) {
  // Two people walk towards each other on nearby rows and pass.
  Tracker t(TrackerOptions{});
  auto boxes = Feed(t, 80, 1, [](int f) {
    return std::vector<Detection>{At(50 + 5 * f, 100), At(450 - 5 * f, 125)};
  });
  for (const auto& b : boxes) {
    double expected_x = b.id == 1 ? 50 + 5 * b.frame : 450 - 5 * b.frame;
    EXPECT_EQ(b.box.x, expected_x) << "id " << b.id << " frame " << b.frame;
  }
  EXPECT_EQ(FramesById(boxes).size(), 2u);
}

TEST(Tracker, IgnoresOtherClassesAndRepeatedFrames) {
  Tracker t(TrackerOptions{});
  auto boxes = Feed(t, 10, 1, [](int) {
    Detection d = At(10, 10);
    d.cls = "ball";
    return std::vector<Detection>{d};
  });
  EXPECT_TRUE(boxes.empty());
  Tracker t2(TrackerOptions{});
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(t2.Step(0, 0, {At(10, 10)}).empty() || i == 0);
  EXPECT_EQ(t2.tracks_born(), 0);  // the same frame five times is one hit
}

}  // namespace
}  // namespace ns::video
