#include "video/segment_index.h"

#include <gtest/gtest.h>

namespace ns::video {
namespace {

// n packets at `fps`, a keyframe every `gop` packets.
std::vector<PacketMark> Packets(int n, double fps, int gop) {
  std::vector<PacketMark> p;
  for (int i = 0; i < n; ++i) p.push_back({i / fps, i % gop == 0});
  return p;
}

TEST(PlanSegments, CutsAtTheFirstKeyframeAfterTheTarget) {
  // 10 fps, keyframe every second; 2.5 s segments cut at 3 s, 6 s, 9 s.
  auto plans = PlanSegments(Packets(100, 10, 10), 2.5, 0);
  ASSERT_EQ(plans.size(), 4u);
  EXPECT_EQ(plans[0].begin, 0u);
  EXPECT_EQ(plans[0].end, 30u);
  EXPECT_EQ(plans[1].begin, 30u);
  EXPECT_EQ(plans[3].begin, 90u);
  EXPECT_EQ(plans[3].end, 100u);
  for (const auto& p : plans) EXPECT_EQ(p.overlap_end, p.end);
}

TEST(PlanSegments, ExactMultipleCutsOnTheKeyframe) {
  auto plans = PlanSegments(Packets(60, 10, 10), 2.0, 0);
  ASSERT_EQ(plans.size(), 3u);
  EXPECT_EQ(plans[1].begin, 20u);
}

TEST(PlanSegments, SparseKeyframesMakeLongerSegments) {
  // Like vtest.avi: a keyframe every 25 s; 20 s segments become 25 s.
  auto plans = PlanSegments(Packets(795, 10, 250), 20, 0);
  ASSERT_EQ(plans.size(), 4u);
  EXPECT_EQ(plans[0].end - plans[0].begin, 250u);
  EXPECT_EQ(plans[3].end - plans[3].begin, 45u);
}

TEST(PlanSegments, OverlapTakesWholeKeyframeIntervals) {
  auto plans = PlanSegments(Packets(100, 10, 10), 3, 0.5);
  ASSERT_EQ(plans.size(), 4u);
  EXPECT_EQ(plans[0].end, 30u);
  EXPECT_EQ(plans[0].overlap_end, 40u);  // 0.5 s rounds up to the next keyframe
  EXPECT_EQ(plans[3].overlap_end, 100u); // the last one has nothing after it
}

TEST(PlanSegments, LeadingNonKeyPacketsJoinTheFirstSegment) {
  auto p = Packets(40, 10, 10);
  p[0].key = false;  // stream starts mid-GOP; first keyframe at packet 10
  auto plans = PlanSegments(p, 1.0, 0);
  ASSERT_FALSE(plans.empty());
  EXPECT_EQ(plans[0].begin, 0u);
  EXPECT_EQ(plans[0].end, 20u);  // the first segment's clock starts at the keyframe
  EXPECT_TRUE(PlanSegments({}, 1, 0).empty());
}

TEST(PlanSegments, NoKeyframesAtAllIsOneSegment) {
  auto p = Packets(30, 10, 1000);
  p[0].key = false;
  auto plans = PlanSegments(p, 1, 0);
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].end, 30u);
}

// An open GOP (HEVC CRA, x264 --open-gop): after each keyframe come pictures
// shown before it. 10 fps, keyframes at packets 0, 10, 20; packet 11 is shown at
// 0.95 s, before keyframe 10 (1.0 s).
TEST(PlanSegments, OpenGopLeadingPicturesStayWithTheSegmentTheyAreShownIn) {
  std::vector<PacketMark> p;
  for (int i = 0; i < 30; ++i) p.push_back({i / 10.0, i % 10 == 0});
  for (int k : {10, 20}) {  // decode order: ..., 8 (0.8), K (1.0), lead (0.9), 11...
    p[k - 1].time = (k - 1) / 10.0 - 0.05;
    p[k + 1] = {(k - 1) / 10.0 + 0.05, false};  // shown between the two before K
  }
  auto plans = PlanSegments(p, 1.0, 0);
  ASSERT_EQ(plans.size(), 3u);
  // Segment 0 also takes keyframe 10 and its leading picture 11: it owns the 11
  // frames shown before 1.0 s; keyframe 10 follows on without a gap (overlap).
  EXPECT_EQ(plans[0].end, 10u);
  EXPECT_EQ(plans[0].file_end, 12u);
  EXPECT_EQ(plans[0].owned, 11);
  EXPECT_EQ(plans[0].overlap, 1);
  EXPECT_EQ(plans[0].leading, 0);
  // Segment 1 starts at keyframe 10: packet 11 is not its own (leading).
  EXPECT_EQ(plans[1].leading, 1);
  EXPECT_EQ(plans[1].owned, 10);
  EXPECT_EQ(plans[2].leading, 1);
  EXPECT_EQ(plans[2].owned, 9);
  EXPECT_EQ(plans[2].file_end, 30u);
  int64_t total = 0;
  for (const auto& q : plans) total += q.owned;
  EXPECT_EQ(total, 30);  // every frame owned once
}

TEST(PlanSegments, AStrayEarlyTimestampDoesNotPullFilesToTheEnd) {
  auto p = Packets(120, 10, 10);
  p[116].time = 0.05;  // a broken packet near the end claims to be shown at the start
  auto plans = PlanSegments(p, 1.0, 0);
  ASSERT_GE(plans.size(), 10u);
  for (size_t k = 0; k + 2 < plans.size(); ++k) {
    EXPECT_EQ(plans[k].file_end, plans[k].end) << k;
    EXPECT_EQ(plans[k].overlap, 0) << k;
  }
}

TEST(PlanSegments, ClosedGopsOwnTheirPackets) {
  auto plans = PlanSegments(Packets(100, 10, 10), 2.5, 0);
  for (const auto& q : plans) {
    EXPECT_EQ(q.file_end, q.end);
    EXPECT_EQ(q.owned, int64_t(q.end - q.begin));
    EXPECT_EQ(q.leading, 0);
    EXPECT_EQ(q.overlap, 0);
  }
  auto over = PlanSegments(Packets(100, 10, 10), 3, 0.5);
  EXPECT_EQ(over[0].overlap, 10);
}

TEST(SegmentIndex, FindOwnerAndJsonRoundTrip) {
  SegmentIndex idx;
  idx.source = "/v/match.mp4";
  idx.fps = 25;
  idx.frame_count = 130;
  idx.segments = {{"seg_0000.mkv", 0, 50, 10, 0.0, 2.0}, {"seg_0001.mkv", 50, 80, 0, 2.0, 3.2}};
  EXPECT_EQ(idx.Find("/some/where/seg_0001.mkv")->first_frame, 50);
  EXPECT_EQ(idx.Find("seg_0009.mkv"), nullptr);
  EXPECT_EQ(idx.OwnerOf(0), 0);
  EXPECT_EQ(idx.OwnerOf(49), 0);
  EXPECT_EQ(idx.OwnerOf(50), 1);  // overlap frames belong to the next segment
  EXPECT_EQ(idx.OwnerOf(129), 1);
  EXPECT_EQ(idx.OwnerOf(130), -1);
  auto back = SegmentIndexFromJson(ToJson(idx), "test");
  ASSERT_TRUE(back.ok());
  ASSERT_EQ(back->segments.size(), 2u);
  EXPECT_EQ(back->segments[0].overlap_frames, 10);
  EXPECT_FALSE(back->segments[0].has_start_pts);
  idx.segments[1].leading_frames = 2;
  idx.segments[1].start_pts = 2000;
  idx.segments[1].has_start_pts = true;
  back = SegmentIndexFromJson(ToJson(idx), "test");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->segments[1].leading_frames, 2);
  EXPECT_TRUE(back->segments[1].has_start_pts);
  EXPECT_EQ(back->segments[1].start_pts, 2000);
  EXPECT_DOUBLE_EQ(back->segments[1].start_time, 2.0);
  auto bad = SegmentIndexFromJson(nlohmann::json{{"fps", 1}}, "x.json");
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("x.json"), std::string::npos);
}

}  // namespace
}  // namespace ns::video
