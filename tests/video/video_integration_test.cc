// Integration tests: the real nightshift-video binary on real footage.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <thread>

#include <opencv2/imgproc.hpp>

#include "video/decoder.h"
#include "video_test_util.h"

namespace ns::video {
namespace {

using namespace testing_util;

// Segments vtest.avi into `dir`/seg (4 segments: its keyframes are 25 s apart).
void SegmentVtest(const std::string& dir) {
  auto r = RunVideo({"segment", "--input", NS_VTEST, "--seconds", "20", "--out", "seg"}, dir);
  ASSERT_EQ(r.code, 0) << r.err;
}

std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> out;
  std::istringstream in(Slurp(path));
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

TEST(VideoProbe, VtestIsMeasured) {
  REQUIRE_VTEST();
  std::string dir = TestDir();
  auto r = RunVideo({"probe", "--input", NS_VTEST, "--out", "p", "--decode"}, dir);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["codec"], "msmpeg4v3");
  EXPECT_EQ(j["width"], 768);
  EXPECT_EQ(j["height"], 576);
  EXPECT_DOUBLE_EQ(j["fps"].get<double>(), 10.0);
  EXPECT_EQ(j["frame_count"], 795);
  EXPECT_EQ(j["frame_count_source"], "decoded");
  EXPECT_NEAR(j["duration"].get<double>(), 79.5, 1e-6);
  EXPECT_EQ(j["keyframe_times"], nlohmann::json({0.0, 25.0, 50.0, 75.0}));
  EXPECT_EQ(j["rotation"], 0);
  EXPECT_EQ(ReadJson(dir + "/p/probe.json"), j);
}

TEST(VideoSegment, StreamCopyKeepsEveryFrame) {
  REQUIRE_VTEST();
  std::string dir = TestDir();
  SegmentVtest(dir);
  auto idx = ReadJson(dir + "/seg/segments.json");
  ASSERT_EQ(idx["segments"].size(), 4u);
  int64_t next = 0;
  std::vector<int64_t> counts;
  for (const auto& s : idx["segments"]) {
    EXPECT_EQ(s["first_frame"], next);
    next += s["frame_count"].get<int64_t>();
    counts.push_back(s["frame_count"]);
    // Each segment decodes to exactly its frames, same codec: no re-encode.
    auto p = RunVideo({"probe", "--input", "seg/" + s["file"].get<std::string>(), "--decode"}, dir);
    ASSERT_EQ(p.code, 0) << p.err;
    auto pj = nlohmann::json::parse(p.out);
    EXPECT_EQ(pj["codec"], "msmpeg4v3");
    EXPECT_EQ(pj["frame_count"], s["frame_count"]);
    EXPECT_EQ(pj["frames_lost"], 0);
  }
  EXPECT_EQ(counts, (std::vector<int64_t>{250, 250, 250, 45}));
  EXPECT_EQ(idx["frame_count"], 795);
  EXPECT_DOUBLE_EQ(idx["segments"][3]["start_time"].get<double>(), 75.0);
}

// Detect on each segment (the way the pipeline's foreach does) and on the whole video.
void DetectBoth(const std::string& dir, const std::vector<std::string>& flags) {
  auto idx = ReadJson(dir + "/seg/segments.json");
  for (const auto& s : idx["segments"]) {
    std::string file = s["file"];
    std::vector<std::string> args = {"detect", "--input", "seg/" + file, "--index", "seg/segments.json",
                                     "--out", "detect/" + file.substr(0, file.size() - 4)};
    args.insert(args.end(), flags.begin(), flags.end());
    auto r = RunVideo(args, dir);
    ASSERT_EQ(r.code, 0) << r.err;
  }
  std::vector<std::string> args = {"detect", "--input", NS_VTEST, "--out", "whole"};
  args.insert(args.end(), flags.begin(), flags.end());
  auto r = RunVideo(args, dir);
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(RunVideo({"track", "--input", "detect", "--out", "trk_seg"}, dir).code, 0);
  ASSERT_EQ(RunVideo({"track", "--input", "whole", "--out", "trk_whole"}, dir).code, 0);
}

TEST(VideoPipeline, SegmentedHogGivesTheSameDetectionsAndTracks) {
  REQUIRE_VTEST();
  std::string dir = TestDir();
  SegmentVtest(dir);
  DetectBoth(dir, {"--detector", "hog", "--stride", "10"});
  // HOG is stateless and frames are numbered globally: identical detections.
  std::vector<std::string> seg;
  for (const char* s : {"seg_0000", "seg_0001", "seg_0002", "seg_0003"}) {
    auto l = Lines(dir + "/detect/" + s + "/detections.jsonl");
    seg.insert(seg.end(), l.begin(), l.end());
  }
  auto whole = Lines(dir + "/whole/detections.jsonl");
  ASSERT_GT(whole.size(), 50u);
  EXPECT_EQ(seg, whole);
  EXPECT_EQ(Slurp(dir + "/trk_seg/tracks.jsonl"), Slurp(dir + "/trk_whole/tracks.jsonl"));
  auto t = ReadJson(dir + "/trk_seg/tracks.json");
  EXPECT_EQ(t["segments"], 4);
  EXPECT_EQ(t["frames"], 80);  // 795 frames, every 10th
  EXPECT_GT(t["tracks"].get<int>(), 2);
}

TEST(VideoPipeline, OverlappingSegmentsAreNotCountedTwice) {
  REQUIRE_VTEST();
  std::string dir = TestDir();
  auto r = RunVideo({"segment", "--input", NS_VTEST, "--seconds", "20", "--overlap", "1", "--out", "seg"}, dir);
  ASSERT_EQ(r.code, 0) << r.err;
  auto idx = ReadJson(dir + "/seg/segments.json");
  ASSERT_EQ(idx["segments"].size(), 4u);
  // vtest's keyframes are 25 s apart: 1 s of overlap rounds up to a whole interval.
  EXPECT_EQ(idx["segments"][0]["overlap_frames"], 250);
  EXPECT_EQ(idx["segments"][2]["overlap_frames"], 45);
  EXPECT_EQ(idx["segments"][3]["overlap_frames"], 0);
  DetectBoth(dir, {"--detector", "hog", "--stride", "25"});
  // Segment 0 also saw frames 250..499, but track takes them from segment 1 only.
  auto seg0 = ReadJsonLines(dir + "/detect/seg_0000/detections.jsonl");
  EXPECT_TRUE(std::any_of(seg0.begin(), seg0.end(), [](const nlohmann::json& d) { return d["frame"] >= 250; }));
  EXPECT_EQ(Slurp(dir + "/trk_seg/tracks.jsonl"), Slurp(dir + "/trk_whole/tracks.jsonl"));
  auto t = ReadJson(dir + "/trk_seg/tracks.json"), w = ReadJson(dir + "/trk_whole/tracks.json");
  EXPECT_EQ(t["frames"], 32);  // 795 frames, every 25th
  EXPECT_EQ(t["detections"], w["detections"]);
}

TEST(VideoPipeline, SegmentedMog2TracksMatchWithinTolerance) {
  REQUIRE_VTEST();
  std::string dir = TestDir();
  SegmentVtest(dir);
  DetectBoth(dir, {"--detector", "mog2", "--stride", "2"});
  // MOG2 learns its background from scratch in each segment, so frames right after a
  // boundary differ; elsewhere each frame's detections must be the same.
  auto count_by_frame = [](const std::vector<nlohmann::json>& dets) {
    std::map<int64_t, int> m;
    for (const auto& d : dets) ++m[d["frame"].get<int64_t>()];
    return m;
  };
  std::vector<nlohmann::json> seg;
  for (const char* s : {"seg_0000", "seg_0001", "seg_0002", "seg_0003"}) {
    auto l = ReadJsonLines(dir + "/detect/" + s + "/detections.jsonl");
    seg.insert(seg.end(), l.begin(), l.end());
  }
  auto a = count_by_frame(seg), b = count_by_frame(ReadJsonLines(dir + "/whole/detections.jsonl"));
  int compared = 0, same = 0;
  for (int64_t f = 0; f < 795; f += 2) {
    int64_t since_boundary = f % 250;
    if (f >= 250 && since_boundary < 60) continue;  // warm-up after a boundary
    ++compared;
    same += a[f] == b[f];
  }
  // Measured: 281 of 315 frames (89%) on vtest.avi.
  EXPECT_GE(same, compared * 85 / 100) << same << " of " << compared << " frames agree";
  // Long tracks (>= 20 boxes): as many segmented as whole, within 25%.
  auto long_tracks = [&](const std::string& path) {
    int n = 0;
    nlohmann::json j = ReadJson(path);
    for (const auto& t : j["per_track"]) n += t["boxes"].get<int>() >= 20;
    return n;
  };
  int ls = long_tracks(dir + "/trk_seg/tracks.json"), lw = long_tracks(dir + "/trk_whole/tracks.json");
  EXPECT_GT(lw, 5);
  EXPECT_LE(std::abs(ls - lw), std::max(2, lw / 4)) << ls << " vs " << lw;
}

// An uninterrupted run and an interrupted + resumed run of the same segment.
void CheckResume(const std::string& dir, const std::vector<std::string>& flags) {
  SegmentVtest(dir);
  std::vector<std::string> base = {"detect", "--input", "seg/seg_0000.mkv", "--index", "seg/segments.json",
                                   "--checkpoint-every", "50"};
  base.insert(base.end(), flags.begin(), flags.end());
  auto full = base;
  full.insert(full.end(), {"--out", "full"});
  ASSERT_EQ(RunVideo(full, dir).code, 0);

  auto cut = base;
  cut.insert(cut.end(), {"--out", "attempt1", "--stop-after", "130"});
  auto r1 = RunVideo(cut, dir, {"NIGHTSHIFT_CHECKPOINT_DIR=" + dir + "/ckpt"});
  EXPECT_EQ(r1.code, 75) << r1.err;
  EXPECT_NE(r1.err.find("checkpoint written"), std::string::npos) << r1.err;
  EXPECT_FALSE(Exists(dir + "/attempt1/detections.jsonl"));  // no partial output
  auto ck = ReadJson(dir + "/ckpt/detect.ckpt.json");
  EXPECT_EQ(ck["next_local"], 130);

  auto again = base;
  again.insert(again.end(), {"--out", "attempt2"});
  auto r2 = RunVideo(again, dir, {"NIGHTSHIFT_CHECKPOINT_DIR=" + dir + "/ckpt",
                                  "NIGHTSHIFT_PROGRESS_FILE=" + dir + "/progress"});
  ASSERT_EQ(r2.code, 0) << r2.err;
  EXPECT_EQ(ReadJson(dir + "/attempt2/detect.json")["resumed_from"], 130);
  std::string expected = Slurp(dir + "/full/detections.jsonl");
  EXPECT_GT(expected.size(), 100u);
  EXPECT_EQ(Slurp(dir + "/attempt2/detections.jsonl"), expected);
  std::string progress = Slurp(dir + "/progress");
  EXPECT_NE(progress.find("progress 0.520 resumed at frame 130"), std::string::npos) << progress;
  EXPECT_NE(progress.find("progress 1.000"), std::string::npos) << progress;
}

TEST(VideoCheckpoint, Mog2ResumesWithIdenticalDetections) {
  REQUIRE_VTEST();
  CheckResume(TestDir(), {"--detector", "mog2"});
}

TEST(VideoCheckpoint, HogResumesWithIdenticalDetections) {
  REQUIRE_VTEST();
  CheckResume(TestDir(), {"--detector", "hog", "--stride", "10"});
}

TEST(VideoCheckpoint, SigtermWritesACheckpointAndExits75) {
  REQUIRE_VTEST();
  std::string dir = TestDir();
  std::string ckpt = dir + "/ckpt", progress = dir + "/progress";
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setenv("NIGHTSHIFT_CHECKPOINT_DIR", ckpt.c_str(), 1);
    setenv("NIGHTSHIFT_PROGRESS_FILE", progress.c_str(), 1);
    std::string out = dir + "/out";
    execl(NS_VIDEO_BIN, NS_VIDEO_BIN, "detect", "--input", NS_VTEST, "--detector", "hog", "--checkpoint-every",
          "5", "--out", out.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait for the first checkpoint's progress line, then preempt.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (Slurp(progress).find("progress") == std::string::npos && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 75);
  auto ck = ReadJson(ckpt + "/detect.ckpt.json");
  ASSERT_TRUE(ck.is_object());
  int64_t at = ck["next_local"];
  EXPECT_GE(at, 5);
  EXPECT_LT(at, 795);
  EXPECT_FALSE(Exists(dir + "/out/detections.jsonl"));
  // The checkpoint's detections are exactly the first `at` frames of a clean run.
  auto r = RunVideo({"detect", "--input", NS_VTEST, "--detector", "hog", "--max-frames", std::to_string(at),
                     "--out", "clean"},
                    dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Slurp(ckpt + "/detections.partial.jsonl"), Slurp(dir + "/clean/detections.jsonl"));
}

TEST(VideoSteps, AnalyseRenderReport) {
  REQUIRE_VTEST();
  std::string dir = TestDir();
  ASSERT_EQ(RunVideo({"detect", "--input", NS_VTEST, "--detector", "mog2", "--out", "det"}, dir).code, 0);
  ASSERT_EQ(RunVideo({"track", "--input", "det", "--out", "trk"}, dir).code, 0);
  auto a = RunVideo({"analyse", "--input", "trk", "--video", NS_VTEST, "--out", "ana"}, dir);
  ASSERT_EQ(a.code, 0) << a.err;
  auto s = ReadJson(dir + "/ana/summary.json");
  // Pedestrians are not two teams: said, not guessed.
  EXPECT_EQ(s["teams_found"], false);
  EXPECT_EQ(s["teams"].size(), 0u);
  EXPECT_FALSE(s["no_teams_reason"].get<std::string>().empty());
  EXPECT_NE(a.out.find("no teams found"), std::string::npos) << a.out;
  EXPECT_GT(s["tracks_analysed"].get<int>(), 10);
  for (const auto& t : s["tracks"]) {
    EXPECT_EQ(t["team"], -1);
    EXPECT_GE(t["distance"].get<double>(), 0);
    // No summary field contradicts another.
    EXPECT_GE(t["max_speed"].get<double>(), t["avg_speed"].get<double>()) << t.dump();
    EXPECT_GE(t["last_frame"].get<int64_t>(), t["first_frame"].get<int64_t>());
    EXPECT_GE(t["last_time"].get<double>(), t["first_time"].get<double>());
    EXPECT_TRUE(Exists(dir + "/ana/" + t["thumb"].get<std::string>()));
  }
  EXPECT_LE(s["tracks_analysed"].get<int>(), s["tracks_total"].get<int>());
  // With a homography that is a pure scale (1 px = 5 cm), distances are in metres and
  // exactly 0.05 times the pixel ones.
  std::ofstream(dir + "/h.json") << "[[0.05, 0, 0], [0, 0.05, 0], [0, 0, 1]]";
  auto am = RunVideo({"analyse", "--input", "trk", "--video", NS_VTEST, "--homography", "h.json", "--pitch", "40x30",
                      "--out", "ana_m"},
                     dir);
  ASSERT_EQ(am.code, 0) << am.err;
  auto sm = ReadJson(dir + "/ana_m/summary.json");
  EXPECT_EQ(sm["units"], "m");
  ASSERT_EQ(sm["tracks"].size(), s["tracks"].size());
  for (size_t i = 0; i < sm["tracks"].size(); ++i)
    EXPECT_NEAR(sm["tracks"][i]["distance"].get<double>(), 0.05 * s["tracks"][i]["distance"].get<double>(), 0.02);
  EXPECT_EQ(ReadJson(dir + "/ana_m/heatmap_all.json")["width"], 40);
  // The same scale from point pairs (calibrate): five ground points, pixels to
  // metres, one with a pixel of click error; analyse takes what calibrate writes.
  std::ofstream(dir + "/points.txt") << "# image_x image_y pitch_x pitch_y\n"
                                        "0 0 0 0\n700 0 35 0\n700 560 35 28\n0 560 0 28\n351 280 17.5 14\n";
  auto cal = RunVideo({"calibrate", "--points", "points.txt", "--video", NS_VTEST, "--pitch", "35x28", "--out", "cal"},
                      dir);
  ASSERT_EQ(cal.code, 0) << cal.err;
  auto hj = ReadJson(dir + "/cal/homography.json");
  EXPECT_EQ(hj["points"], 5);
  EXPECT_GT(hj["max_error_m"].get<double>(), 0.0);
  EXPECT_LT(hj["max_error_m"].get<double>(), 0.1);
  EXPECT_GT(Slurp(dir + "/cal/calibration.png").size(), 10000u);
  auto ac = RunVideo({"analyse", "--input", "trk", "--homography", "cal/homography.json", "--out", "ana_c"}, dir);
  ASSERT_EQ(ac.code, 0) << ac.err;
  auto sc = ReadJson(dir + "/ana_c/summary.json");
  EXPECT_EQ(sc["units"], "m");
  for (size_t i = 0; i < sc["tracks"].size(); ++i)
    EXPECT_NEAR(sc["tracks"][i]["distance"].get<double>(), sm["tracks"][i]["distance"].get<double>(),
                0.02 * sm["tracks"][i]["distance"].get<double>() + 0.05);
  std::ofstream(dir + "/three.txt") << "0 0 0 0\n700 0 35 0\n700 560 35 28\n";
  auto few = RunVideo({"calibrate", "--points", "three.txt", "--out", "cal3"}, dir);
  EXPECT_EQ(few.code, 2);
  EXPECT_NE(few.err.find("three.txt: 3 point pairs"), std::string::npos) << few.err;
  auto r = RunVideo({"render", "--input", NS_VTEST, "--tracks", "trk", "--analysis", "ana", "--max-frames", "60",
                     "--out", "ren"},
                    dir);
  ASSERT_EQ(r.code, 0) << r.err;
  auto p = RunVideo({"probe", "--input", "ren/annotated.mp4", "--decode"}, dir);
  ASSERT_EQ(p.code, 0) << p.err;
  auto pj = nlohmann::json::parse(p.out);
  EXPECT_EQ(pj["frame_count"], 60);
  EXPECT_TRUE(pj["codec"] == "h264" || pj["codec"] == "mpeg4") << pj["codec"];
  EXPECT_TRUE(Exists(dir + "/ren/heatmap_all.png"));
  auto rep = RunVideo({"report", "--input", "ana", "--render", "ren", "--out", "rep"}, dir);
  ASSERT_EQ(rep.code, 0) << rep.err;
  std::string html = Slurp(dir + "/rep/index.html");
  EXPECT_NE(html.find("No teams found"), std::string::npos);
  EXPECT_NE(html.find("data:image/png;base64,"), std::string::npos);
  EXPECT_NE(html.find("data:image/jpeg;base64,"), std::string::npos);
  EXPECT_NE(html.find("href=\"../ren/annotated.mp4\""), std::string::npos);
  // Self-contained: every image is inline (the video player plays the linked annotated.mp4).
  size_t pos = 0;
  int images = 0;
  while ((pos = html.find("<img ", pos)) != std::string::npos) {
    size_t src = html.find(" src=\"", pos);
    ASSERT_NE(src, std::string::npos);
    EXPECT_EQ(html.compare(src + 6, 5, "data:"), 0) << html.substr(pos, 80);
    ++images;
    ++pos;
  }
  EXPECT_GT(images, 3);
  EXPECT_NE(html.find("<video id=\"video\" controls preload=\"metadata\" src=\"../ren/annotated.mp4\""),
            std::string::npos);
}

// Pixels that differ by more than encoding noise: a box or trail drawn in one
// video and not in the other.
int64_t DrawnDifferently(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat diff, gray;
  cv::absdiff(a, b, diff);
  cv::cvtColor(diff, gray, cv::COLOR_BGR2GRAY);
  return cv::countNonZero(gray > 60);
}

TEST(VideoSteps, SegmentRendersJoinIntoTheWholeVideo) {
  REQUIRE_VTEST();
  std::string dir = TestDir();
  SegmentVtest(dir);
  ASSERT_EQ(RunVideo({"detect", "--input", NS_VTEST, "--detector", "mog2", "--out", "det"}, dir).code, 0);
  ASSERT_EQ(RunVideo({"track", "--input", "det", "--out", "trk"}, dir).code, 0);
  auto whole = RunVideo({"render", "--input", NS_VTEST, "--tracks", "trk", "--out", "whole"}, dir);
  ASSERT_EQ(whole.code, 0) << whole.err;
  auto idx = ReadJson(dir + "/seg/segments.json");
  for (const auto& s : idx["segments"]) {
    std::string file = s["file"].get<std::string>();
    auto r = RunVideo({"render", "--input", "seg/" + file, "--index", "seg/segments.json", "--tracks", "trk",
                       "--out", "parts/" + file.substr(0, file.find('.'))},
                      dir);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(ReadJson(dir + "/parts/" + file.substr(0, file.find('.')) + "/render.json")["first_frame"],
              s["first_frame"]);
  }
  auto c = RunVideo({"concat", "--input", "parts", "--out", "joined"}, dir);
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(ReadJson(dir + "/joined/concat.json")["pieces"].size(), 4u);

  // Same frames, same timing, and the same boxes and trails on every frame,
  // including the first frames of each segment (trails that began earlier).
  auto a = Decoder::Open(dir + "/whole/annotated.mp4", Decoder::Options{});
  auto b = Decoder::Open(dir + "/joined/annotated.mp4", Decoder::Options{});
  ASSERT_TRUE(a.ok() && b.ok());
  VideoFrame fa, fb;
  int64_t frames = 0, worst = 0, worst_frame = -1;
  for (;;) {
    auto ma = (*a)->Next(&fa);
    auto mb = (*b)->Next(&fb);
    ASSERT_TRUE(ma.ok() && mb.ok());
    ASSERT_EQ(*ma, *mb) << "one video ends at frame " << frames;
    if (!*ma) break;
    EXPECT_NEAR(fa.time, fb.time, 1e-6) << "frame " << frames;
    int64_t d = DrawnDifferently(fa.bgr, fb.bgr);
    if (d > worst) worst = d, worst_frame = frames;
    ++frames;
  }
  EXPECT_EQ(frames, 795);
  EXPECT_LT(worst, 200) << "frame " << worst_frame << " differs in " << worst << " pixels";
  std::printf("largest difference: %lld pixels at frame %lld\n", static_cast<long long>(worst),
              static_cast<long long>(worst_frame));

  // A missing piece is named, at the start, the end or in between; so is a
  // render.json that render did not write.
  auto concat_fails = [&](const std::string& expect) {
    auto r = RunVideo({"concat", "--input", "parts", "--out", "bad"}, dir);
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find(expect), std::string::npos) << r.err;
    EXPECT_FALSE(Exists(dir + "/bad/annotated.mp4"));
  };
  ASSERT_EQ(Shell("mv " + Quote(dir + "/parts/seg_0003") + " " + Quote(dir + "/last")), 0);
  concat_fails("seg_0002: the last piece ends at frame 750 but the video has 795 (the last segment is missing)");
  ASSERT_EQ(Shell("mv " + Quote(dir + "/last") + " " + Quote(dir + "/parts/seg_0003")), 0);
  ASSERT_EQ(Shell("mv " + Quote(dir + "/parts/seg_0000") + " " + Quote(dir + "/first")), 0);
  concat_fails("seg_0001: the first piece starts at frame 250, not 0 (the first segment is missing)");
  ASSERT_EQ(Shell("mv " + Quote(dir + "/first") + " " + Quote(dir + "/parts/seg_0000")), 0);
  std::string json = Slurp(dir + "/parts/seg_0002/render.json");
  std::ofstream(dir + "/parts/seg_0002/render.json") << "{\"first_frame\": \"500\"}";
  concat_fails("seg_0002/render.json: not written by this render");
  std::ofstream(dir + "/parts/seg_0002/render.json") << json;
  ASSERT_EQ(Shell("rm -rf " + Quote(dir + "/parts/seg_0001")), 0);
  auto gap = RunVideo({"concat", "--input", "parts", "--out", "gap"}, dir);
  EXPECT_EQ(gap.code, 2);
  EXPECT_NE(gap.err.find("seg_0002: starts at frame 500 but the piece before ends at frame 250 (a segment is missing)"),
            std::string::npos)
      << gap.err;
}

// analyse seeks to the keyframe before sparse samples instead of decoding every
// frame, and samples exactly the same pixels.
TEST(VideoSteps, AnalyseSeeksToSparseSamplesWithTheSameResult) {
  REQUIRE_VTEST();
  std::string dir = TestDir();
  ASSERT_EQ(Shell("mkdir -p " + Quote(dir + "/trk")), 0);
  {
    std::ofstream t(dir + "/trk/tracks.jsonl");
    int id = 1;
    for (int start : {5, 300, 700}) {  // vtest's keyframes are 0, 250, 500, 750
      for (int k = 0; k < 6; ++k) {
        int f = start + k;
        t << "{\"id\":" << id << ",\"frame\":" << f << ",\"time\":" << f / 10.0 << ",\"x\":" << 250 + 60 * id
          << ",\"y\":200,\"w\":50,\"h\":110,\"score\":0.9,\"class\":\"person\"}\n";
      }
      ++id;
    }
  }
  auto all = RunVideo({"analyse", "--input", "trk", "--video", NS_VTEST, "--seek-gap", "0", "--out", "all"}, dir);
  ASSERT_EQ(all.code, 0) << all.err;
  EXPECT_NE(all.out.find("0 seeks"), std::string::npos) << all.out;
  auto sought = RunVideo({"analyse", "--input", "trk", "--video", NS_VTEST, "--seek-gap", "1", "--out", "seek"}, dir);
  ASSERT_EQ(sought.code, 0) << sought.err;
  EXPECT_NE(sought.out.find("2 seeks"), std::string::npos) << sought.out;
  EXPECT_EQ(Slurp(dir + "/all/summary.json"), Slurp(dir + "/seek/summary.json"));
  for (int id = 1; id <= 3; ++id) {
    std::string thumb = "/thumbs/track_" + std::to_string(id) + ".jpg";
    ASSERT_TRUE(Exists(dir + "/all" + thumb));
    EXPECT_EQ(Slurp(dir + "/all" + thumb), Slurp(dir + "/seek" + thumb)) << thumb;
  }
}

TEST(VideoSharedData, YoloFastestFindsPeople) {
  REQUIRE_SHARED("models/yolo-fastest-1.1/yolo-fastest-1.1_body.weights");
  REQUIRE_SHARED("videos/people_one_by_one.mp4");
  std::string dir = TestDir();
  std::string m = SharedData() + "/models/yolo-fastest-1.1/";
  auto r = RunVideo({"detect", "--input", SharedData() + "/videos/people_one_by_one.mp4", "--detector", "dnn",
                     "--model", m + "yolo-fastest-1.1_body.weights", "--config", m + "yolo-fastest-1.1_body.cfg",
                     "--max-frames", "300", "--stride", "10", "--out", "det"},
                    dir);
  ASSERT_EQ(r.code, 0) << r.err;
  auto dets = ReadJsonLines(dir + "/det/detections.jsonl");
  ASSERT_GT(dets.size(), 5u);
  for (const auto& d : dets) {
    EXPECT_EQ(d["class"], "person");
    EXPECT_GE(d["score"].get<double>(), 0.4);
    EXPECT_EQ(d["frame"].get<int64_t>() % 10, 0);
    EXPECT_GT(d["w"].get<double>(), 5);
  }
}

// The summary's fields agree with each other on the one-person-at-a-time clip
// too (vtest.avi and the gym clip are checked above): max >= avg, ends >= starts,
// and the counts add up.
TEST(VideoSharedData, PeopleOneByOneSummaryIsConsistent) {
  REQUIRE_SHARED("models/yolo-fastest-1.1/yolo-fastest-1.1_body.weights");
  REQUIRE_SHARED("videos/people_one_by_one.mp4");
  std::string dir = TestDir();
  std::string v = SharedData() + "/videos/people_one_by_one.mp4";
  std::string m = SharedData() + "/models/yolo-fastest-1.1/";
  ASSERT_EQ(RunVideo({"detect", "--input", v, "--detector", "dnn", "--model", m + "yolo-fastest-1.1_body.weights",
                      "--config", m + "yolo-fastest-1.1_body.cfg", "--stride", "5", "--out", "det"},
                     dir, {}, 300)
                .code,
            0);
  ASSERT_EQ(RunVideo({"track", "--input", "det", "--out", "trk"}, dir).code, 0);
  auto a = RunVideo({"analyse", "--input", "trk", "--video", v, "--out", "ana"}, dir);
  ASSERT_EQ(a.code, 0) << a.err;
  auto tj = ReadJson(dir + "/trk/tracks.json");
  int64_t boxes = 0;
  for (const auto& t : tj["per_track"]) {
    boxes += t["boxes"].get<int64_t>();
    EXPECT_GE(t["last_frame"].get<int64_t>(), t["first_frame"].get<int64_t>());
    EXPECT_GE(t["last_time"].get<double>(), t["first_time"].get<double>());
  }
  EXPECT_EQ(boxes, tj["boxes"].get<int64_t>());
  EXPECT_EQ(tj["per_track"].size(), tj["tracks"].get<size_t>());
  auto s = ReadJson(dir + "/ana/summary.json");
  EXPECT_GT(s["tracks_analysed"].get<int>(), 3);
  EXPECT_LE(s["tracks_analysed"].get<int>(), s["tracks_total"].get<int>());
  EXPECT_EQ(s["tracks_total"].get<size_t>(), tj["per_track"].size());
  size_t in_teams = 0;
  for (const auto& team : s["teams"]) in_teams += team["tracks"].size();
  size_t with_team = 0;
  for (const auto& t : s["tracks"]) {
    EXPECT_GE(t["max_speed"].get<double>(), t["avg_speed"].get<double>()) << t.dump();
    EXPECT_GE(t["last_time"].get<double>(), t["first_time"].get<double>());
    EXPECT_GE(t["distance"].get<double>(), 0);
    if (t["team"].get<int>() >= 0) ++with_team;
  }
  EXPECT_EQ(in_teams, with_team);
  if (s["teams_found"] == false) {
    EXPECT_FALSE(s["no_teams_reason"].get<std::string>().empty());
  }
}

TEST(VideoSharedData, FastestDetOnnxWithClassFilterAndTiles) {
  REQUIRE_SHARED("models/fastestdet/FastestDet.onnx");
  REQUIRE_SHARED("videos/people_one_by_one.mp4");
  std::string dir = TestDir();
  auto r = RunVideo({"detect", "--input", SharedData() + "/videos/people_one_by_one.mp4", "--detector", "dnn",
                     "--model", SharedData() + "/models/fastestdet/FastestDet.onnx", "--decode", "fastestdet",
                     "--input-size", "352x352", "--bgr", "--classes", "0", "--tiles", "2x1", "--max-frames", "300",
                     "--stride", "20", "--out", "det"},
                    dir);
  ASSERT_EQ(r.code, 0) << r.err;
  auto dets = ReadJsonLines(dir + "/det/detections.jsonl");
  ASSERT_GT(dets.size(), 3u);
  for (const auto& d : dets) EXPECT_EQ(d["class"], "person");
}

TEST(VideoSharedData, GymVideoSegmentsAndTracks) {
  REQUIRE_SHARED("videos/gym_fisheye_ace_0.mp4");
  std::string dir = TestDir();
  std::string v = SharedData() + "/videos/gym_fisheye_ace_0.mp4";
  auto p = RunVideo({"probe", "--input", v}, dir);
  ASSERT_EQ(p.code, 0) << p.err;
  auto pj = nlohmann::json::parse(p.out);
  EXPECT_EQ(pj["frame_count"], 91);
  EXPECT_EQ(pj["codec"], "h264");
  ASSERT_EQ(RunVideo({"segment", "--input", v, "--seconds", "1", "--out", "seg"}, dir).code, 0);
  auto idx = ReadJson(dir + "/seg/segments.json");
  EXPECT_EQ(idx["frame_count"], 91);  // one keyframe: one segment holding every frame
  ASSERT_EQ(RunVideo({"detect", "--input", "seg/" + idx["segments"][0]["file"].get<std::string>(), "--index",
                      "seg/segments.json", "--detector", "mog2", "--out", "det/s0"},
                     dir)
                .code,
            0);
  auto t = RunVideo({"track", "--input", "det", "--out", "trk"}, dir);
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_GT(ReadJson(dir + "/trk/tracks.json")["tracks"].get<int>(), 0);
}

TEST(VideoSharedData, GymJerseysMakeTwoTeams) {
  REQUIRE_SHARED("models/yolo-fastest-1.1/yolo-fastest-1.1_body.weights");
  REQUIRE_SHARED("videos/gym_fisheye_ace_0.mp4");
  std::string dir = TestDir();
  std::string v = SharedData() + "/videos/gym_fisheye_ace_0.mp4";
  std::string m = SharedData() + "/models/yolo-fastest-1.1";
  // A model folder with two models must say which one.
  auto amb = RunVideo({"detect", "--input", v, "--detector", "dnn", "--model-dir", m, "--out", "x"}, dir);
  EXPECT_NE(amb.code, 0);
  EXPECT_NE(amb.err.find("holds several models"), std::string::npos) << amb.err;
  ASSERT_EQ(RunVideo({"detect", "--input", v, "--detector", "dnn", "--model", m + "/yolo-fastest-1.1_body.weights",
                      "--config", m + "/yolo-fastest-1.1_body.cfg", "--out", "det"},
                     dir)
                .code,
            0);
  ASSERT_EQ(RunVideo({"track", "--input", "det", "--out", "trk"}, dir).code, 0);
  auto a = RunVideo({"analyse", "--input", "trk", "--video", v, "--out", "ana"}, dir);
  ASSERT_EQ(a.code, 0) << a.err;
  auto s = ReadJson(dir + "/ana/summary.json");
  ASSERT_EQ(s["teams_found"], true) << s["no_teams_reason"];
  ASSERT_EQ(s["teams"].size(), 2u);
  // Red kits in one team, green in the other: the teams' colours differ along
  // red-green (R - G), by far more than the kits' shading does.
  std::vector<int> red_minus_green;
  for (const auto& t : s["teams"]) {
    std::string c = t["colour"];
    red_minus_green.push_back(std::stoi(c.substr(1, 2), nullptr, 16) - std::stoi(c.substr(3, 2), nullptr, 16));
    EXPECT_GE(t["tracks"].size(), 3u) << t.dump();
  }
  // About 9 people in 3 s: fragments joined (15 tracks before joining, 9 after).
  auto tj = ReadJson(dir + "/trk/tracks.json");
  EXPECT_GT(tj["joined"].get<int>(), 0);
  EXPECT_LE(tj["tracks"].get<int>(), 12);
  EXPECT_GE(std::abs(red_minus_green[0] - red_minus_green[1]), 15) << s["teams"].dump();
  for (const auto& t : s["tracks"]) EXPECT_GE(t["max_speed"].get<double>(), t["avg_speed"].get<double>());
}

// Presentation times of a file's video frames, by ffprobe (not by our decoder).
std::vector<double> FrameTimes(const std::string& path) {
  std::string out = path + ".times";
  Shell("ffprobe -v error -select_streams v:0 -show_entries frame=pts_time -of csv=p=0 " + Quote(path) + " > " +
        Quote(out));
  std::vector<double> times;
  std::ifstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line != "N/A") times.push_back(std::stod(line));
  }
  return times;
}

// Runs a step once per segment of `idx` (seg/segments.json), one task per
// segment as the example pipeline runs them, into OUT/seg_NNNN.
void RunPerSegment(const std::string& dir, const nlohmann::json& idx, const std::vector<std::string>& args,
                   const std::string& out) {
  for (const auto& sg : idx["segments"]) {
    std::string f = sg["file"];
    std::vector<std::string> a = args;
    a.insert(a.end(), {"--input", "seg/" + f, "--index", "seg/segments.json", "--out",
                       out + "/" + f.substr(0, f.find('.'))});
    auto r = RunVideo(a, dir);
    ASSERT_EQ(r.code, 0) << r.err;
  }
}

// The largest difference between two files' frame times, each from its first frame.
double WorstTimeError(const std::vector<double>& a, const std::vector<double>& b) {
  double worst = 0;
  for (size_t k = 0; k < a.size() && k < b.size(); ++k)
    worst = std::max(worst, std::abs((a[k] - a[0]) - (b[k] - b[0])));
  return worst;
}

TEST(VideoSteps, VariableFrameRateKeepsSourceTimesEndToEnd) {
  REQUIRE_VTEST();
  if (Shell("command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null") != 0) {
    GTEST_SKIP() << "no ffmpeg CLI";
  }
  std::string dir = TestDir();
  // The first 300 frames, then every third: 10 fps, then 3.33 fps.
  ASSERT_EQ(Shell("cd " + Quote(dir) + " && ffmpeg -v error -y -i " + Quote(NS_VTEST) +
                  " -vf \"select='lt(n\\,300)+not(mod(n\\,3))'\" -vsync vfr -c:v libx264 vfr.mp4"),
            0);
  auto source = FrameTimes(dir + "/vfr.mp4");
  ASSERT_GT(source.size(), 400u);
  auto probe = RunVideo({"probe", "--input", "vfr.mp4"}, dir);
  ASSERT_EQ(probe.code, 0) << probe.err;
  EXPECT_EQ(nlohmann::json::parse(probe.out)["variable_frame_rate"], true);
  auto cfr = RunVideo({"probe", "--input", NS_VTEST}, dir);
  EXPECT_EQ(nlohmann::json::parse(cfr.out)["variable_frame_rate"], false);
  ASSERT_EQ(RunVideo({"segment", "--input", "vfr.mp4", "--seconds", "20", "--out", "seg"}, dir).code, 0);
  auto idx = ReadJson(dir + "/seg/segments.json");
  ASSERT_GE(idx["segments"].size(), 2u);
  auto per_segment = [&](std::vector<std::string> args, const std::string& out) {
    ASSERT_NO_FATAL_FAILURE(RunPerSegment(dir, idx, args, out));
  };
  per_segment({"detect", "--detector", "mog2"}, "det");
  ASSERT_EQ(RunVideo({"track", "--input", "det", "--out", "trk"}, dir).code, 0);
  // Boxes carry the source's times: frame 300 is at 30.0 s, not at 300 frames of the average rate.
  int at_300 = 0;
  for (const auto& d : ReadJsonLines(dir + "/trk/tracks.jsonl")) {
    if (d["frame"] == 300) {
      EXPECT_NEAR(d["time"].get<double>(), source[300], 0.05) << d.dump();
      ++at_300;
    }
  }
  EXPECT_GT(at_300, 0) << "no box at frame 300 to check";
  per_segment({"render", "--tracks", "trk"}, "ren");
  auto c = RunVideo({"concat", "--input", "ren", "--out", "vid"}, dir);
  ASSERT_EQ(c.code, 0) << c.err;
  auto annotated = FrameTimes(dir + "/vid/annotated.mp4");
  ASSERT_EQ(annotated.size(), source.size());
  double worst = WorstTimeError(annotated, source);
  // The source's own times, to the millisecond (was 21 s off at frame 300).
  EXPECT_LT(worst, 0.002) << "frame 300: source " << source[300] << " s, annotated " << annotated[300] << " s";
}

// The re-encodes of vtest.avi (the first 150 frames, a keyframe every
// 5 s, cut into 5 s segments): each must give the source's frames, numbered and
// timed as the source, in detections, tracks and annotated.mp4 -- open-GOP HEVC
// and x264 included, whose leading pictures are decoded after a cut but shown
// before it (one frame was lost and the rest shifted at every cut).
struct Variant {
  const char* file;
  const char* encode;  // ffmpeg options after -i vtest.avi -frames:v 150
};

class Reencoded : public ::testing::TestWithParam<Variant> {};

TEST_P(Reencoded, KeepsEveryFrameAndItsTimeThroughSegments) {
  REQUIRE_VTEST();
  if (Shell("command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null") != 0) {
    GTEST_SKIP() << "no ffmpeg CLI";
  }
  const Variant v = GetParam();
  std::string dir = TestDir();
  std::string file = v.file;
  ASSERT_EQ(Shell("cd " + Quote(dir) + " && ffmpeg -v error -y -i " + Quote(NS_VTEST) +
                  " -frames:v 150 " + v.encode),
            0);
  auto source = FrameTimes(dir + "/" + file);
  ASSERT_EQ(source.size(), 150u);
  ASSERT_EQ(RunVideo({"segment", "--input", file, "--seconds", "5", "--out", "seg"}, dir).code, 0);
  auto idx = ReadJson(dir + "/seg/segments.json");
  ASSERT_GE(idx["segments"].size(), 3u) << idx.dump();
  EXPECT_EQ(idx["frame_count"], 150);
  auto per_segment = [&](std::vector<std::string> args, const std::string& out) {
    ASSERT_NO_FATAL_FAILURE(RunPerSegment(dir, idx, args, out));
  };
  per_segment({"detect", "--detector", "mog2"}, "det");
  for (const auto& sg : idx["segments"]) {
    std::string f = sg["file"];
    auto d = ReadJson(dir + "/det/" + f.substr(0, f.find('.')) + "/detect.json");
    EXPECT_EQ(d["frames_lost"], 0) << f << ": " << d.dump();
  }
  ASSERT_EQ(RunVideo({"track", "--input", "det", "--out", "trk"}, dir).code, 0);
  // Every box at its source frame's time: a shifted frame would carry the next one's.
  size_t boxes = 0;
  double worst = 0;
  for (const auto& d : ReadJsonLines(dir + "/trk/tracks.jsonl")) {
    int64_t f = d["frame"];
    ASSERT_LT(f, 150) << d.dump();
    worst = std::max(worst, std::abs(d["time"].get<double>() - (source[f] - source[0])));
    ++boxes;
  }
  EXPECT_GT(boxes, 250u);
  EXPECT_LT(worst, 0.002);
  per_segment({"render", "--tracks", "trk"}, "ren");
  auto c = RunVideo({"concat", "--input", "ren", "--out", "vid"}, dir);
  ASSERT_EQ(c.code, 0) << c.err;
  auto annotated = FrameTimes(dir + "/vid/annotated.mp4");
  ASSERT_EQ(annotated.size(), source.size());
  EXPECT_LT(WorstTimeError(annotated, source), 0.002);
}

INSTANTIATE_TEST_SUITE_P(
    VideoSteps, Reencoded,
    ::testing::Values(
        Variant{"hevc.mkv", "-c:v libx265 -preset ultrafast -x265-params log-level=error:keyint=50 hevc.mkv"},
        Variant{"opengop.mp4", "-c:v libx264 -preset veryfast -g 50 -x264-params open-gop=1 opengop.mp4"},
        Variant{"vp9.webm", "-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -g 50 -b:v 1M vp9.webm"},
        Variant{"rot.mp4", "-c:v libx264 -preset ultrafast -g 50 r.mp4 && ffmpeg -v error -y -i r.mp4 -c copy "
                           "-metadata:s:v:0 rotate=90 rot.mp4"}),
    [](const ::testing::TestParamInfo<Variant>& info) {
      std::string n = info.param.file;
      return n.substr(0, n.find('.')) + "_" + n.substr(n.find('.') + 1);
    });

}  // namespace
}  // namespace ns::video
