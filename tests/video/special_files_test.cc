// Every file-valued flag of every subcommand refuses a FIFO and /dev/zero at once
// (exit 2, one line naming the flag, the path and what to pass) instead of blocking
// forever or reading without end; so do files found in a folder a flag names, and
// JSON over its size limit. Each run has a short timeout, so a regression fails
// the test instead of hanging the suite.
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "video_test_util.h"

namespace ns::video {
namespace {

using namespace testing_util;

constexpr int kTimeout = 20;        // seconds; each run below takes well under one
constexpr int kMaxMemoryMb = 4096;  // address space; reading /dev/zero hits it in seconds

class SpecialFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TestDir();
    ASSERT_EQ(::mkfifo((dir_ + "/fifo").c_str(), 0600), 0);
    // Good inputs for the flags not under test.
    ASSERT_EQ(Shell("ffmpeg -v error -y -f lavfi -i testsrc=s=160x120:d=1:r=10 -c:v libx264 " +
                    Quote(dir_ + "/clip.mp4")),
              0);
    std::filesystem::create_directories(dir_ + "/trk");
    std::ofstream(dir_ + "/trk/tracks.jsonl")
        << R"({"id":1,"frame":0,"time":0,"x":1,"y":1,"w":5,"h":9})"
        << "\n";
    std::filesystem::create_directories(dir_ + "/ana");
    std::ofstream(dir_ + "/ana/summary.json") << R"({"tracks":[],"teams":[]})";
    std::ofstream(dir_ + "/model.onnx").close();
  }

  // Runs `args` with "{}" replaced by `bad` and expects exit 2 and one line naming
  // the flag before "{}", `bad`, and `what`.
  void ExpectRefused(std::vector<std::string> args, const std::string& bad,
                     const std::string& what) {
    auto at = std::find(args.begin(), args.end(), "{}");
    ASSERT_NE(at, args.end());
    std::string flag = *(at - 1);
    *at = bad;
    auto r = RunVideo(args, dir_, {}, kTimeout, kMaxMemoryMb);
    std::string cmd = args[0] + " " + flag + " " + bad;
    EXPECT_EQ(r.code, 2) << cmd << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << cmd << ": " << r.err;
    EXPECT_NE(r.err.find(flag + " " + bad + ": "), std::string::npos) << cmd << ": " << r.err;
    EXPECT_NE(r.err.find(what), std::string::npos) << cmd << ": " << r.err;
  }

  std::string dir_;
};

// Flags that name a file (a video, JSON, JSON Lines, a model, a names file).
const std::vector<std::vector<std::string>> kFileFlags = {
    {"probe", "--input", "{}"},
    {"segment", "--input", "{}", "--out", "seg"},
    {"detect", "--input", "{}", "--out", "det"},
    {"detect", "--input", "clip.mp4", "--index", "{}", "--out", "det"},
    {"detect", "--input", "clip.mp4", "--detector", "mog2", "--names", "{}", "--out", "det"},
    {"detect", "--input", "clip.mp4", "--detector", "dnn", "--model", "{}", "--out", "det"},
    {"detect", "--input", "clip.mp4", "--detector", "dnn", "--model", "model.onnx", "--config",
     "{}", "--out", "det"},
    {"track", "--input", "{}", "--out", "trk2"},
    {"analyse", "--input", "{}", "--out", "ana2"},
    {"analyse", "--input", "trk", "--video", "{}", "--out", "ana2"},
    {"analyse", "--input", "trk", "--homography", "{}", "--out", "ana2"},
    {"render", "--input", "{}", "--tracks", "trk", "--out", "ren"},
    {"render", "--input", "clip.mp4", "--index", "{}", "--tracks", "trk", "--out", "ren"},
    {"render", "--input", "clip.mp4", "--tracks", "{}", "--out", "ren"},
    {"report", "--input", "ana", "--probe", "{}", "--out", "rep"},
};

// Flags that name a folder.
const std::vector<std::vector<std::string>> kFolderFlags = {
    {"detect", "--input", "clip.mp4", "--detector", "mog2", "--checkpoint-dir", "{}", "--out",
     "det"},
    {"render", "--input", "clip.mp4", "--tracks", "trk", "--analysis", "{}", "--out", "ren"},
    {"concat", "--input", "{}", "--out", "cat"},
    {"report", "--input", "{}", "--out", "rep"},
    {"report", "--input", "ana", "--render", "{}", "--out", "rep"},
};

TEST_F(SpecialFiles, EveryFileFlagRefusesAFifo) {
  for (const auto& args : kFileFlags)
    ExpectRefused(args, "fifo", "a FIFO (named pipe), not a regular file; pass");
}

TEST_F(SpecialFiles, EveryFileFlagRefusesDevZero) {
  for (const auto& args : kFileFlags)
    ExpectRefused(args, "/dev/zero", "a character device, not a regular file; pass");
}

TEST_F(SpecialFiles, EveryFolderFlagRefusesAFifoAndDevZero) {
  for (const auto& args : kFolderFlags) {
    ExpectRefused(args, "fifo", "a FIFO (named pipe), not a folder; pass");
    ExpectRefused(args, "/dev/zero", "a character device, not a folder; pass");
  }
}

// A FIFO inside a folder a flag names is refused too, naming the flag and the file.
TEST_F(SpecialFiles, FilesInsideFoldersAreChecked) {
  namespace fs = std::filesystem;
  auto fifo = [&](const std::string& rel) {
    fs::create_directories(fs::path(dir_ + "/" + rel).parent_path());
    ASSERT_EQ(::mkfifo((dir_ + "/" + rel).c_str(), 0600), 0) << rel;
  };
  // track: detect.json beside a detections.jsonl.
  fs::create_directories(dir_ + "/det/seg_0000");
  std::ofstream(dir_ + "/det/seg_0000/detections.jsonl").close();
  fifo("det/seg_0000/detect.json");
  // render --analysis: summary.json.
  fifo("ana_fifo/summary.json");
  // concat: a piece's video.
  fs::create_directories(dir_ + "/ren/seg_0000");
  std::ofstream(dir_ + "/ren/seg_0000/render.json")
      << R"({"first_frame":0,"frames":10,"owned_frames":10,"video_frames":10})";
  fifo("ren/seg_0000/annotated.mp4");
  // report: a thumbnail the summary names.
  fs::create_directories(dir_ + "/ana_thumb");
  std::ofstream(dir_ + "/ana_thumb/summary.json")
      << R"({"tracks":[{"id":1,"thumb":"thumbs/t.jpg"}],"teams":[]})";
  fifo("ana_thumb/thumbs/t.jpg");
  // detect: the checkpoint.
  fifo("ck/detect.ckpt.json");

  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"track", "--input", "det", "--out", "trk2"}, "--input det/seg_0000/detect.json: a FIFO"},
      {{"render", "--input", "clip.mp4", "--tracks", "trk", "--analysis", "ana_fifo", "--out",
        "ren2"},
       "--analysis ana_fifo/summary.json: a FIFO"},
      {{"concat", "--input", "ren", "--out", "cat"}, "--input ren/seg_0000/annotated.mp4: a FIFO"},
      {{"report", "--input", "ana_thumb", "--out", "rep"},
       "--input ana_thumb/thumbs/t.jpg: a FIFO"},
      {{"detect", "--input", "clip.mp4", "--detector", "mog2", "--checkpoint-dir", "ck", "--out",
        "det2"},
       "--checkpoint-dir ck/detect.ckpt.json: a FIFO"},
  };
  for (const auto& [args, want] : cases) {
    auto r = RunVideo(args, dir_, {}, kTimeout, kMaxMemoryMb);
    EXPECT_EQ(r.code, 2) << args[0] << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find(want), std::string::npos) << args[0] << ": " << r.err;
  }
}

TEST_F(SpecialFiles, JsonOverItsLimitAndOverlongLinesAreRefused) {
  // Sparse: 300 MiB on paper, nothing on disk; refused before it is read.
  std::ofstream(dir_ + "/segments.json").close();
  std::filesystem::resize_file(dir_ + "/segments.json", int64_t{300} << 20);
  auto r = RunVideo({"detect", "--input", "clip.mp4", "--index", "segments.json", "--out", "det"},
                    dir_, {}, kTimeout, kMaxMemoryMb);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("--index segments.json: larger than 256 MiB"), std::string::npos) << r.err;
  // A tracks.jsonl that is one 2 MiB line (no newline): refused at the line limit.
  std::ofstream(dir_ + "/long.jsonl") << std::string(2 << 20, 'a');
  r = RunVideo({"render", "--input", "clip.mp4", "--tracks", "long.jsonl", "--out", "ren"}, dir_,
               {}, kTimeout, kMaxMemoryMb);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("--tracks long.jsonl:1: a line longer than 1 MiB"), std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace ns::video
