// FFmpeg I/O errors are errors: a read that fails in the middle of a video is not
// taken for its end, and a video whose last bytes cannot be written (a full disk)
// or whose close fails (NFS reports a failed write-back there) is not reported as
// written. The faults come from fault_injection.cc, preloaded into the real binary.
#include <algorithm>

#include "video_test_util.h"

namespace ns::video {
namespace {

using namespace testing_util;

class IoErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string(NS_FAULT_LIB).empty())
      GTEST_SKIP() << "no fault injection library in sanitizer builds";
    dir_ = TestDir();
  }
  // The environment that hurts files whose path ends with `suffix`.
  std::vector<std::string> Fault(const std::string& suffix, const std::string& setting) {
    return {"LD_PRELOAD=" + std::string(NS_FAULT_LIB), "NS_FAULT_FILE=" + suffix, setting};
  }
  void ExpectIoError(const RunResult& r, const std::string& what, const std::string& file,
                     const std::string& reason) {
    EXPECT_EQ(r.code, 1) << what << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << what << ": " << r.err;
    EXPECT_NE(r.err.find(file), std::string::npos) << what << ": " << r.err;
    EXPECT_NE(r.err.find(reason), std::string::npos) << what << ": " << r.err;
  }
  std::string dir_;
};

// The shim itself works, or the tests below would prove nothing.
TEST_F(IoErrors, FaultInjectionHurtsOnlyTheFileNamed) {
  REQUIRE_VTEST();
  ASSERT_EQ(Shell("cp " + Quote(NS_VTEST) + " " + Quote(dir_ + "/hurt.avi")), 0);
  std::string run = "cd " + Quote(dir_) + " && env LD_PRELOAD=" + Quote(NS_FAULT_LIB) +
                    " NS_FAULT_FILE=hurt.avi NS_FAULT_READ_EIO_AFTER=1000 ";
  EXPECT_NE(Shell(run + "head -c 100000 hurt.avi >/dev/null 2>&1"), 0);
  EXPECT_EQ(Shell(run + "head -c 100000 " + Quote(NS_VTEST) + " >/dev/null"), 0);
}

TEST_F(IoErrors, AReadErrorMidVideoIsNotItsEnd) {
  REQUIRE_VTEST();
  ASSERT_EQ(Shell("cp " + Quote(NS_VTEST) + " " + Quote(dir_ + "/hurt.avi")), 0);
  // EIO after 3 MB of the 8 MB: past the header, index and first frames.
  auto env = Fault("hurt.avi", "NS_FAULT_READ_EIO_AFTER=3000000");
  std::ofstream(dir_ + "/tracks.jsonl") << R"({"id":1,"frame":0,"time":0,"x":1,"y":1,"w":5,"h":9})"
                                        << "\n";
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"probe", "--input", "hurt.avi"},
           {"segment", "--input", "hurt.avi", "--out", "seg"},
           {"detect", "--input", "hurt.avi", "--detector", "mog2", "--out", "det"},
           {"render", "--input", "hurt.avi", "--tracks", "tracks.jsonl", "--out", "ren"}}) {
    auto r = RunVideo(args, dir_, env, 120);
    ExpectIoError(r, args[0], "hurt.avi", "Input/output error");
  }
  // Unhurt, the same file goes through.
  EXPECT_EQ(RunVideo({"probe", "--input", "hurt.avi"}, dir_).code, 0);
}

TEST_F(IoErrors, AReadErrorInAPieceFailsConcat) {
  REQUIRE_VTEST();
  std::ofstream(dir_ + "/tracks.jsonl") << R"({"id":1,"frame":0,"time":0,"x":1,"y":1,"w":5,"h":9})"
                                        << "\n";
  auto ren = RunVideo({"render", "--input", NS_VTEST, "--tracks", "tracks.jsonl", "--max-frames",
                       "100", "--out", "ren"},
                      dir_);
  ASSERT_EQ(ren.code, 0) << ren.err;
  auto r = RunVideo({"concat", "--input", "ren", "--out", "cat"}, dir_,
                    Fault("ren/annotated.mp4", "NS_FAULT_READ_EIO_AFTER=100000"));
  ExpectIoError(r, "concat", "ren/annotated.mp4", "Input/output error");
  EXPECT_FALSE(Exists(dir_ + "/cat/annotated.mp4"));
}

TEST_F(IoErrors, AFullDiskFailsTheStep) {
  REQUIRE_VTEST();
  std::ofstream(dir_ + "/tracks.jsonl") << R"({"id":1,"frame":0,"time":0,"x":1,"y":1,"w":5,"h":9})"
                                        << "\n";
  auto r = RunVideo({"render", "--input", NS_VTEST, "--tracks", "tracks.jsonl", "--max-frames",
                     "100", "--out", "ren"},
                    dir_, Fault("annotated.mp4", "NS_FAULT_WRITE_ENOSPC_AFTER=100000"));
  ExpectIoError(r, "render", "annotated.mp4", "No space left on device");
  r = RunVideo({"segment", "--input", NS_VTEST, "--seconds", "20", "--out", "seg"}, dir_,
               Fault("seg_0001.mkv", "NS_FAULT_WRITE_ENOSPC_AFTER=100000"));
  ExpectIoError(r, "segment", "seg_0001.mkv", "No space left on device");
  EXPECT_FALSE(Exists(dir_ + "/seg/segments.json"));
}

TEST_F(IoErrors, AFailedCloseFailsTheStep) {
  REQUIRE_VTEST();
  std::ofstream(dir_ + "/tracks.jsonl") << R"({"id":1,"frame":0,"time":0,"x":1,"y":1,"w":5,"h":9})"
                                        << "\n";
  auto r = RunVideo({"render", "--input", NS_VTEST, "--tracks", "tracks.jsonl", "--max-frames",
                     "50", "--out", "ren"},
                    dir_, Fault("ren/annotated.mp4", "NS_FAULT_CLOSE_EIO=1"));
  ExpectIoError(r, "render", "annotated.mp4", "Input/output error");
  EXPECT_FALSE(Exists(dir_ + "/ren/render.json"));

  r = RunVideo({"segment", "--input", NS_VTEST, "--seconds", "20", "--out", "seg"}, dir_,
               Fault("seg_0002.mkv", "NS_FAULT_CLOSE_EIO=1"));
  ExpectIoError(r, "segment", "seg_0002.mkv", "Input/output error");
  EXPECT_FALSE(Exists(dir_ + "/seg/segments.json"));

  auto ok = RunVideo({"render", "--input", NS_VTEST, "--tracks", "tracks.jsonl", "--max-frames",
                      "50", "--out", "ren"},
                     dir_);
  ASSERT_EQ(ok.code, 0) << ok.err;
  r = RunVideo({"concat", "--input", "ren", "--out", "cat"}, dir_,
               Fault("annotated.mp4.partial", "NS_FAULT_CLOSE_EIO=1"));
  ExpectIoError(r, "concat", "annotated.mp4.partial", "Input/output error");
  EXPECT_FALSE(Exists(dir_ + "/cat/annotated.mp4"));
}

}  // namespace
}  // namespace ns::video
