#include "video/track.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace ns::video {
namespace {

namespace fs = std::filesystem;

// Writes one detect output folder: detections on the given frames (one box each,
// x = frame so the source can be told apart by y) and its detect.json.
void WriteDetectDir(const std::string& dir, int64_t owned_first, int64_t owned, int64_t last, int stride,
                    double y) {
  fs::create_directories(dir);
  std::ofstream out(dir + "/detections.jsonl");
  for (int64_t f = owned_first; f <= last; ++f) {
    if (f % stride) continue;
    Detection d;
    d.frame = f;
    d.time = f / 10.0;
    d.box = {double(f), y, 20, 50};
    d.score = 1;
    out << ToJsonLine(d) << "\n";
  }
  nlohmann::json meta = {{"first_frame", owned_first}, {"owned_frames", owned}, {"processed_first", owned_first},
                         {"processed_last", last},     {"stride", stride}};
  std::ofstream(dir + "/detect.json") << meta.dump();
}

class TrackStep : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = ::testing::TempDir() + "/track_test_" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  std::string root_;
};

TEST_F(TrackStep, OverlapFramesComeFromTheirOwner) {
  // seg_0000 owns 0..49 and also processed 50..69 (overlap); seg_0001 owns 50..99.
  WriteDetectDir(root_ + "/det/seg_0000", 0, 50, 69, 1, 100);
  WriteDetectDir(root_ + "/det/seg_0001", 50, 50, 99, 1, 300);
  auto m = LoadDetections(root_ + "/det", 1);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->segments, 2);
  ASSERT_EQ(m->frames.size(), 100u);
  for (size_t k = 0; k < m->frames.size(); ++k) {
    ASSERT_EQ(m->by_frame[k].size(), 1u) << "frame " << m->frames[k];
    EXPECT_EQ(m->by_frame[k][0].box.y, m->frames[k] < 50 ? 100 : 300) << "frame " << m->frames[k];
  }
}

TEST_F(TrackStep, AMissingOwnerFallsBackToTheOverlap) {
  WriteDetectDir(root_ + "/det/seg_0000", 0, 50, 69, 1, 100);  // nobody owns 50..69
  auto m = LoadDetections(root_ + "/det", 1);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->frames.size(), 70u);
}

TEST_F(TrackStep, StrideFramesWithoutDetectionsStillCount) {
  WriteDetectDir(root_ + "/det/a", 0, 100, 99, 5, 100);
  // Remove every detection: the 20 processed frames must still be there, empty.
  std::ofstream(root_ + "/det/a/detections.jsonl").close();
  auto m = LoadDetections(root_ + "/det", 1);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->frames.size(), 20u);
  EXPECT_EQ(m->frames[1], 5);
  EXPECT_TRUE(m->by_frame[1].empty());
}

TEST_F(TrackStep, RunTrackWritesStableIdsAcrossSegments) {
  WriteDetectDir(root_ + "/det/seg_0000", 0, 50, 49, 1, 100);
  WriteDetectDir(root_ + "/det/seg_0001", 50, 50, 99, 1, 100);
  TrackStepOptions o;
  o.input = root_ + "/det";
  o.out_dir = root_ + "/out";
  auto s = RunTrack(o);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->tracks, 1);  // one walker, one id, across the boundary
  EXPECT_EQ(s->boxes, 100);
  auto boxes = ReadTracks(o.out_dir + "/tracks.jsonl", "");
  ASSERT_TRUE(boxes.ok());
  for (const auto& b : *boxes) EXPECT_EQ(b.id, 1);
}

TEST_F(TrackStep, SeveralClassesAreTrackedApart) {
  // A person and a ball at the same place on every frame: two tracks, never mixed.
  fs::create_directories(root_ + "/det/a");
  std::ofstream out(root_ + "/det/a/detections.jsonl");
  for (int f = 0; f < 20; ++f) {
    Detection p, b;
    p.frame = b.frame = f;
    p.box = {double(f), 100, 20, 50};
    b.box = {double(f) + 2, 110, 8, 8};
    b.cls = "sports ball";
    out << ToJsonLine(p) << "\n" << ToJsonLine(b) << "\n";
  }
  out.close();
  std::ofstream(root_ + "/det/a/detect.json")
      << R"({"first_frame":0,"owned_frames":20,"processed_first":0,"processed_last":19,"stride":1})";
  TrackStepOptions o;
  o.input = root_ + "/det";
  o.out_dir = root_ + "/out";
  o.tracker.cls = "person, sports ball";
  auto s = RunTrack(o);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->tracks, 2);
  auto boxes = ReadTracks(o.out_dir + "/tracks.jsonl", "");
  ASSERT_TRUE(boxes.ok());
  ASSERT_EQ(boxes->size(), 40u);
  for (const auto& b : *boxes) EXPECT_EQ(b.id, b.cls == "person" ? 1 : 2);
  o.tracker.cls = "person";
  o.out_dir = root_ + "/out2";
  EXPECT_EQ(RunTrack(o)->tracks, 1);
}

TEST_F(TrackStep, ErrorsNameTheFileAndLine) {
  fs::create_directories(root_ + "/det/x");
  std::ofstream(root_ + "/det/x/detections.jsonl") << "{\"frame\":1,\"time\":0,\"x\":1,\"y\":1,\"w\":1,\"h\":1}\nnot json\n";
  std::ofstream(root_ + "/det/x/detect.json") << "{}";
  auto m = LoadDetections(root_ + "/det", 1);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("detections.jsonl:2"), std::string::npos) << m.status().message();
  EXPECT_EQ(LoadDetections(root_ + "/nothing", 1).status().code(), StatusCode::kNotFound);
  fs::create_directories(root_ + "/empty");
  EXPECT_EQ(LoadDetections(root_ + "/empty", 1).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ns::video
