// Bad input: every step exits non-zero with one clear message naming the file and
// the reason, or processes what decodes and says how many frames were lost. The
// broken files are made here, from vtest.avi and the ffmpeg CLI.
#include <algorithm>
#include <fstream>

#include "video_test_util.h"

namespace ns::video {
namespace {

using namespace testing_util;

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// One line on stderr, naming the file.
void ExpectOneClearMessage(const RunResult& r, const std::string& file, const std::string& reason) {
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(file), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(reason), std::string::npos) << r.err;
}

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = TestDir(); }
  // Runs probe, segment and detect on `file`; all must give `code`.
  void ExpectAllSteps(const std::string& file, int code, const std::string& reason) {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"probe", "--input", file},
             {"segment", "--input", file, "--out", "seg"},
             {"detect", "--input", file, "--detector", "mog2", "--out", "det"}}) {
      auto r = RunVideo(args, dir_, {}, 60);
      EXPECT_EQ(r.code, code) << args[0] << ": " << r.err;
      ExpectOneClearMessage(r, file, reason);
    }
  }
  std::string dir_;
};

TEST_F(BadInput, MissingFile) { ExpectAllSteps("nope.mp4", 2, "no such file"); }

TEST_F(BadInput, ZeroBytes) {
  WriteBytes(dir_ + "/empty.mp4", "");
  ExpectAllSteps("empty.mp4", 2, "empty file");
}

TEST_F(BadInput, TextFileNamedMp4) {
  WriteBytes(dir_ + "/notes.mp4", "These are my notes about the match, not a video.\n");
  ExpectAllSteps("notes.mp4", 2, "not a readable video file");
}

TEST_F(BadInput, TruncatedHeader) {
  REQUIRE_VTEST();
  WriteBytes(dir_ + "/cut.avi", Slurp(NS_VTEST).substr(0, 300));
  ExpectAllSteps("cut.avi", 2, "cut.avi");
}

TEST_F(BadInput, AudioOnly) {
  ASSERT_EQ(Shell("ffmpeg -v error -y -f lavfi -i sine=d=1 " + Quote(dir_ + "/song.m4a")), 0);
  ExpectAllSteps("song.m4a", 2, "audio-only");
}

TEST_F(BadInput, UnsupportedCodec) {
  REQUIRE_VTEST();
  // Rename the codec's FourCC (div3, in the stream header) to one no decoder knows.
  std::string bytes = Slurp(NS_VTEST);
  size_t found = 0;
  for (size_t p = 0; (p = bytes.find("div3", p)) != std::string::npos && p < 8192; ++found)
    bytes.replace(p, 4, "qqqq");
  ASSERT_EQ(found, 2u);
  WriteBytes(dir_ + "/odd_codec.avi", bytes);
  auto r = RunVideo({"detect", "--input", "odd_codec.avi", "--detector", "mog2", "--out", "det"}, dir_, {}, 60);
  EXPECT_EQ(r.code, 2) << r.err;
  ExpectOneClearMessage(r, "odd_codec.avi", "unsupported video codec");
}

TEST_F(BadInput, TruncatedMidStreamProcessesWhatDecodesAndCountsLosses) {
  REQUIRE_VTEST();
  std::string bytes = Slurp(NS_VTEST);
  WriteBytes(dir_ + "/half.avi", bytes.substr(0, bytes.size() / 2));
  auto r = RunVideo({"detect", "--input", "half.avi", "--detector", "mog2", "--out", "det"}, dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  auto meta = ReadJson(dir_ + "/det/detect.json");
  int64_t decoded = meta["frames_decoded"], lost = meta["frames_lost"];
  EXPECT_GT(decoded, 300);
  EXPECT_LT(decoded, 500);
  EXPECT_EQ(decoded + lost, 795);  // the header says 795
  ExpectOneClearMessage(r, "half.avi", "frames could not be decoded");
  // Segmenting what is there works too, and the pieces add up to what decodes.
  auto s = RunVideo({"segment", "--input", "half.avi", "--seconds", "20", "--out", "seg"}, dir_);
  ASSERT_EQ(s.code, 0) << s.err;
}

TEST_F(BadInput, CorruptPacketsMidStreamNeverCrashOrHang) {
  REQUIRE_VTEST();
  std::string bytes = Slurp(NS_VTEST);
  uint32_t x = 12345;
  for (int i = 0; i < 400; ++i) {  // flip bytes all over the movie data, not the header
    x = x * 1103515245 + 12345;
    size_t p = 20000 + x % (bytes.size() - 20000);
    bytes[p] = static_cast<char>(~bytes[p]);
  }
  WriteBytes(dir_ + "/flipped.avi", bytes);
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"probe", "--input", "flipped.avi", "--decode"},
           {"detect", "--input", "flipped.avi", "--detector", "mog2", "--out", "det"},
           {"segment", "--input", "flipped.avi", "--out", "seg"}}) {
    auto r = RunVideo(args, dir_, {}, 60);
    EXPECT_TRUE(r.code == 0 || r.code == 2) << args[0] << " exited " << r.code << ": " << r.err;
    EXPECT_LE(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  auto meta = ReadJson(dir_ + "/det/detect.json");
  EXPECT_GT(meta["frames_decoded"].get<int64_t>(), 700);
}

TEST_F(BadInput, LyingHeaderIsCaughtByCounting) {
  REQUIRE_VTEST();
  // Patch the AVI stream header's dwLength (frames) from 795 to 5000.
  std::string bytes = Slurp(NS_VTEST);
  size_t strh = bytes.find("strh");
  ASSERT_NE(strh, std::string::npos);
  size_t len_at = strh + 8 + 32;
  uint32_t lie = 5000;
  bytes.replace(len_at, 4, reinterpret_cast<const char*>(&lie), 4);
  WriteBytes(dir_ + "/liar.avi", bytes);
  auto r = RunVideo({"probe", "--input", "liar.avi"}, dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["header_frames"], 5000);
  EXPECT_EQ(j["frame_count"], 795);
  EXPECT_EQ(j["frame_count_source"], "decoded");
  EXPECT_TRUE(j["header_mismatch"].get<bool>());
  EXPECT_NEAR(j["duration"].get<double>(), 79.5, 1e-6);
}

TEST_F(BadInput, OddResolutionRendersAnEvenSizedH264) {
  ASSERT_EQ(Shell("ffmpeg -v error -y -f lavfi -i testsrc=s=321x241:d=1:r=10 -c:v libx264 -pix_fmt yuv444p " +
                  Quote(dir_ + "/odd.mp4")),
            0);
  auto d = RunVideo({"detect", "--input", "odd.mp4", "--detector", "mog2", "--out", "det"}, dir_);
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_EQ(ReadJson(dir_ + "/det/detect.json")["width"], 321);
  ASSERT_EQ(RunVideo({"track", "--input", "det", "--out", "trk"}, dir_).code, 0);
  auto r = RunVideo({"render", "--input", "odd.mp4", "--tracks", "trk", "--out", "ren"}, dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  auto p = nlohmann::json::parse(RunVideo({"probe", "--input", "ren/annotated.mp4"}, dir_).out);
  EXPECT_EQ(p["width"], 322);
  EXPECT_EQ(p["height"], 242);
  EXPECT_EQ(p["frame_count"], 10);
}

TEST_F(BadInput, RotatedPhoneVideoIsUpright) {
  ASSERT_EQ(Shell("ffmpeg -v error -y -f lavfi -i testsrc=s=320x240:d=1:r=10 -c:v libx264 " +
                  Quote(dir_ + "/land.mp4") + " && ffmpeg -v error -y -i " + Quote(dir_ + "/land.mp4") +
                  " -c copy -metadata:s:v:0 rotate=90 " + Quote(dir_ + "/phone.mp4")),
            0);
  auto p = RunVideo({"probe", "--input", "phone.mp4"}, dir_);
  ASSERT_EQ(p.code, 0) << p.err;
  auto j = nlohmann::json::parse(p.out);
  EXPECT_NE(j["rotation"], 0);
  EXPECT_EQ(j["width"], 240);  // display size
  EXPECT_EQ(j["height"], 320);
  auto d = RunVideo({"detect", "--input", "phone.mp4", "--detector", "mog2", "--out", "det"}, dir_);
  ASSERT_EQ(d.code, 0) << d.err;
  EXPECT_EQ(ReadJson(dir_ + "/det/detect.json")["width"], 240);
  // Matroska segments lose the rotation; segments.json keeps it and detect applies it.
  ASSERT_EQ(RunVideo({"segment", "--input", "phone.mp4", "--out", "seg"}, dir_).code, 0);
  EXPECT_EQ(ReadJson(dir_ + "/seg/segments.json")["rotation"], j["rotation"]);
  auto ds = RunVideo({"detect", "--input", "seg/seg_0000.mkv", "--index", "seg/segments.json", "--detector", "mog2",
                      "--out", "det_seg"},
                     dir_);
  ASSERT_EQ(ds.code, 0) << ds.err;
  EXPECT_EQ(ReadJson(dir_ + "/det_seg/detect.json")["width"], 240);
}

TEST_F(BadInput, BadFlagsAndIndex) {
  REQUIRE_VTEST();
  auto r = RunVideo({"detect", "--input", NS_VTEST, "--detector", "sift", "--out", "det"}, dir_);
  EXPECT_EQ(r.code, 2);
  ExpectOneClearMessage(r, "sift", "unknown detector");
  WriteBytes(dir_ + "/segments.json", "{\"fps\": 10, \"frame_count\": 1, \"segments\": []}");
  r = RunVideo({"detect", "--input", NS_VTEST, "--index", "segments.json", "--out", "det"}, dir_);
  EXPECT_EQ(r.code, 2);
  ExpectOneClearMessage(r, "vtest.avi", "not listed in segments.json");
  r = RunVideo({"detect", "--input", NS_VTEST, "--detector", "dnn", "--model", "missing.onnx", "--out", "det"}, dir_);
  EXPECT_EQ(r.code, 2);
  ExpectOneClearMessage(r, "missing.onnx", "not found");
  r = RunVideo({"detect", "--input", NS_VTEST, "--stride", "often", "--out", "det"}, dir_);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("--stride"), std::string::npos) << r.err;
  EXPECT_EQ(RunVideo({"detect"}, dir_).code, 2);
  r = RunVideo({"detect", "--input", NS_VTEST}, dir_);
  EXPECT_EQ(r.code, 2);
  ExpectOneClearMessage(r, "NIGHTSHIFT_OUTPUT_DIR", "no output folder");
}

}  // namespace
}  // namespace ns::video
