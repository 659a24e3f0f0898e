// InputFile and CheckFolder: only regular files are read, a FIFO never blocks the
// open, size and line limits hold, and lines split across reads come out whole.
#include "video/input_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>

namespace ns::video {
namespace {

namespace fs = std::filesystem;

class InputFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/nsv_input_file_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  std::string Write(const std::string& name, const std::string& bytes) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::string dir_;
};

void ExpectMessage(const Status& st, StatusCode code, const std::string& part) {
  EXPECT_EQ(st.code(), code) << st.message();
  EXPECT_NE(st.message().find(part), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find('\n'), std::string::npos) << st.message();
}

TEST_F(InputFileTest, ReadsARegularFile) {
  auto text = ReadSmallFile(Write("a.json", "{\"a\": 1}\n"), "--index");
  ASSERT_TRUE(text.ok()) << text.status().message();
  EXPECT_EQ(*text, "{\"a\": 1}\n");
}

TEST_F(InputFileTest, MissingFolderAndDeviceAreNamedWithTheFlag) {
  ExpectMessage(ReadSmallFile(dir_ + "/none.json", "--index").status(), StatusCode::kNotFound,
                "--index " + dir_ + "/none.json: no such file");
  ExpectMessage(ReadSmallFile(dir_, "--probe").status(), StatusCode::kInvalidArgument,
                "--probe " + dir_ + ": a folder, not a regular file; pass a regular file");
  ExpectMessage(ReadSmallFile("/dev/zero", "--index").status(), StatusCode::kInvalidArgument,
                "--index /dev/zero: a character device, not a regular file");
  ExpectMessage(ReadSmallFile("/dev/null", "").status(), StatusCode::kInvalidArgument,
                "/dev/null: a character device");
}

TEST_F(InputFileTest, AFifoWithoutAWriterIsRefusedAtOnce) {
  std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto opened =
      std::async(std::launch::async, [&] { return InputFile::Open(fifo, "--tracks").status(); });
  if (opened.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    // Blocked in open(2): give it a writer so the test ends, and fail.
    int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    opened.wait();
    if (w >= 0) ::close(w);
    FAIL() << "InputFile::Open blocked on a FIFO";
  }
  ExpectMessage(opened.get(), StatusCode::kInvalidArgument,
                "--tracks " + fifo + ": a FIFO (named pipe), not a regular file");
}

TEST_F(InputFileTest, SizeLimit) {
  std::string path = Write("big.json", std::string(2048, ' '));
  ExpectMessage(ReadSmallFile(path, "--probe", 1024).status(), StatusCode::kInvalidArgument,
                "--probe " + path + ": larger than");
  EXPECT_TRUE(ReadSmallFile(path, "--probe", 2048).ok());
  // The real limit, on a sparse file: refused before a byte is read.
  std::string sparse = dir_ + "/sparse.json";
  std::ofstream(sparse).close();
  fs::resize_file(sparse, kSmallFileLimit + 1);
  auto start = std::chrono::steady_clock::now();
  ExpectMessage(ReadSmallFile(sparse, "--index").status(), StatusCode::kInvalidArgument,
                "larger than 256 MiB");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST_F(InputFileTest, LinesAcrossReadsComeOutWhole) {
  // Lines longer than one read(2) of 64 KiB, and a last line with no newline.
  std::vector<std::string> want = {
      "a", "", std::string(100000, 'x'), "b", std::string(70000, 'y'), "tail"};
  std::string text;
  for (size_t i = 0; i < want.size(); ++i) text += want[i] + (i + 1 < want.size() ? "\n" : "");
  auto f = InputFile::Open(Write("l.jsonl", text), "--input");
  ASSERT_TRUE(f.ok()) << f.status().message();
  std::vector<std::string> got;
  std::vector<int64_t> numbers;
  Status st = f->ForEachLine(kJsonLineLimit, [&](std::string_view line, int64_t n) {
    got.emplace_back(line);
    numbers.push_back(n);
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(got, want);
  EXPECT_EQ(numbers, (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
}

TEST_F(InputFileTest, LineLimitAndCallbackErrors) {
  std::string path = Write("l.jsonl", "ok\n" + std::string(5000, 'z') + "\nnever\n");
  auto f = InputFile::Open(path, "--input");
  ASSERT_TRUE(f.ok());
  int calls = 0;
  Status st = f->ForEachLine(4096, [&](std::string_view, int64_t) {
    ++calls;
    return Status::Ok();
  });
  ExpectMessage(st, StatusCode::kInvalidArgument, "--input " + path + ":2: a line longer than");
  EXPECT_EQ(calls, 1);
  // A callback's error stops the reading and is returned as it is.
  auto g = InputFile::Open(path, "--input");
  ASSERT_TRUE(g.ok());
  st = g->ForEachLine(kJsonLineLimit, [&](std::string_view, int64_t n) {
    return n == 2 ? Status::Invalid("stop at 2") : Status::Ok();
  });
  EXPECT_EQ(st.message(), "stop at 2");
}

TEST_F(InputFileTest, CheckFolder) {
  EXPECT_TRUE(CheckFolder(dir_, "--input").ok());
  ExpectMessage(CheckFolder(Write("f", "x"), "--analysis", "the analyse step's folder"),
                StatusCode::kInvalidArgument,
                ": a file, not a folder; pass the analyse step's folder");
  ExpectMessage(CheckFolder("/dev/zero", "--render"), StatusCode::kInvalidArgument,
                "--render /dev/zero: a character device, not a folder");
  ExpectMessage(CheckFolder(dir_ + "/none", "--input"), StatusCode::kNotFound, "no such folder");
}

}  // namespace
}  // namespace ns::video
