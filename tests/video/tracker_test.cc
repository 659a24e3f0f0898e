#include "video/tracker.h"

#include <cmath>
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

namespace ns::video {
namespace {

// A person walking right at 50 px/s, boxes 40x80, one box per 0.1 s.
std::vector<TrackedBox> Walk(int id, double t0, double t1, double x0, double y = 100) {
  std::vector<TrackedBox> out;
  for (double t = t0; t <= t1 + 1e-9; t += 0.1) {
    TrackedBox b;
    b.id = id;
    b.frame = std::llround(t * 10);
    b.time = t;
    b.box = {x0 + 50 * (t - t0), y, 40, 80};
    b.cls = "person";
    out.push_back(b);
  }
  return out;
}

TEST(JoinFragments, JoinsWhereTheMotionLeadsAndNothingElse) {
  std::vector<TrackedBox> boxes;
  auto add = [&](std::vector<TrackedBox> v) { boxes.insert(boxes.end(), v.begin(), v.end()); };
  add(Walk(1, 0.0, 2.0, 100));   // ends at x=200 at 2.0 s
  add(Walk(2, 3.0, 4.0, 250));   // 1 s later, where 50 px/s leads: the same person
  add(Walk(3, 3.0, 4.0, 600));   // 1 s later but far away: someone else
  add(Walk(4, 0.0, 4.0, 100, 400));  // overlaps everything in time: never joined
  JoinOptions o;
  EXPECT_EQ(JoinFragments(&boxes, o), 1);
  std::set<int> ids;
  for (const auto& b : boxes) {
    if (b.box.y == 100 && b.box.x < 500) {
      EXPECT_EQ(b.id, 1) << b.frame;
    }
    ids.insert(b.id);
  }
  EXPECT_EQ(ids, (std::set<int>{1, 3, 4}));
  // Beyond the gap, or off: no join.
  std::vector<TrackedBox> far;
  auto a = Walk(1, 0.0, 2.0, 100), b = Walk(2, 4.0, 5.0, 300);
  far.insert(far.end(), a.begin(), a.end());
  far.insert(far.end(), b.begin(), b.end());
  EXPECT_EQ(JoinFragments(&far, o), 0);
  o.max_gap = 0;
  EXPECT_EQ(JoinFragments(&boxes, o), 0);
}

TEST(JoinFragments, EachFragmentHasOneSuccessorTheNearest) {
  std::vector<TrackedBox> boxes;
  auto add = [&](std::vector<TrackedBox> v) { boxes.insert(boxes.end(), v.begin(), v.end()); };
  add(Walk(1, 0.0, 2.0, 100));
  add(Walk(2, 2.5, 3.5, 235));  // predicted 225: 10 px off
  add(Walk(3, 2.5, 3.5, 260));  // 35 px off: also within a box height, but further
  EXPECT_EQ(JoinFragments(&boxes, JoinOptions{}), 1);
  for (const auto& b : boxes) {
    double x0 = b.box.x - 50 * (b.time - 2.5);  // where the fragment started
    if (b.time > 2.4) {
      EXPECT_EQ(b.id, x0 < 250 ? 1 : 3) << b.time;
    }
  }
}

}  // namespace
}  // namespace ns::video
