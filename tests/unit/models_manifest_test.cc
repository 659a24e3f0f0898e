// The model registry (engine/models.h) and manifests (spec/manifest.h).
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "engine/models.h"
#include "spec/manifest.h"
#include "util/fs.h"

namespace ns {
namespace {

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/registry." + std::to_string(::getpid()) + "." +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    (void)RemoveTree(dir_);
    ASSERT_TRUE(MakeDirs(dir_ + "/src/sub").ok());
    Write("src/w.bin", "weights");
    Write("src/sub/cfg.txt", "config");
    auto s = Store::Open(dir_ + "/nightshift.db");
    ASSERT_TRUE(s.ok()) << s.status().message();
    store_ = std::move(s.value());
  }
  void Write(const std::string& rel, const std::string& text) { std::ofstream(dir_ + "/" + rel) << text; }
  std::string dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(RegistryTest, PushDedupesAndNumbersVersions) {
  models::Registry reg(store_.get(), dir_);
  auto a = reg.Push("players", dir_ + "/src", 0, "{}", 1);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_TRUE(a->created);
  EXPECT_EQ(a->row.version, 1);
  EXPECT_EQ(a->row.files, 2);
  auto again = reg.Push("players", dir_ + "/src", 0, "{}", 2);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->row.version, 1);
  Write("src/w.bin", "weights v2");
  auto b = reg.Push("players", dir_ + "/src", 0, "{\"k\":\"v\"}", 3);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->row.version, 2);
  EXPECT_NE(a->row.digest, b->row.digest);
  auto latest = reg.Resolve({"players", 0});
  ASSERT_TRUE(latest.ok());
  EXPECT_EQ(latest->version, 2);
  // Removing the newest makes @latest the one before; its number stays taken.
  ASSERT_TRUE(reg.Remove("players", 2, 4).ok());
  EXPECT_EQ(reg.Resolve({"players", 0})->version, 1);
  EXPECT_FALSE(reg.Resolve({"players", 2}).ok());
  Write("src/w.bin", "weights v3");
  EXPECT_EQ(reg.Push("players", dir_ + "/src", 0, "{}", 5)->row.version, 3);
  Write("src/w.bin", "weights v4");
  EXPECT_FALSE(reg.Push("players", dir_ + "/src", 2, "{}", 6).ok()) << "a removed number is never given again";
}

TEST_F(RegistryTest, VerifyNamesAChangedAddedOrMissingFile) {
  models::Registry reg(store_.get(), dir_);
  ASSERT_TRUE(reg.Push("m", dir_ + "/src", 0, "{}", 1).ok());
  std::string v = reg.VersionDir("m", 1);
  EXPECT_TRUE(reg.Verify("m", 1).ok());
  ::chmod(v.c_str(), 0755);
  ::chmod((v + "/w.bin").c_str(), 0644);
  std::ofstream(v + "/w.bin", std::ios::app) << "!";
  Status st = reg.Verify("m", 1);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(v + "/w.bin has sha256"), std::string::npos) << st.message();
  std::ofstream(v + "/w.bin", std::ios::trunc) << "weights";  // restored: content matches again
  EXPECT_TRUE(reg.Verify("m", 1).ok());
  std::ofstream(v + "/extra") << "x";
  EXPECT_NE(reg.Verify("m", 1).message().find("extra was added"), std::string::npos);
  ::unlink((v + "/extra").c_str());
  ::unlink((v + "/w.bin").c_str());
  EXPECT_NE(reg.Verify("m", 1).message().find("w.bin is missing"), std::string::npos);
}

TEST_F(RegistryTest, ConcurrentPushesGetDistinctVersions) {
  // One store connection per thread, as separate processes would have.
  constexpr int kThreads = 6;
  std::vector<std::thread> threads;
  std::vector<int64_t> got(kThreads, 0);
  for (int i = 0; i < kThreads; ++i) {
    ASSERT_TRUE(MakeDirs(dir_ + "/c" + std::to_string(i)).ok());
    Write("c" + std::to_string(i) + "/w.bin", "content " + std::to_string(i));
  }
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto s = Store::Open(dir_ + "/nightshift.db");
      if (!s.ok()) return;
      models::Registry reg(s.value().get(), dir_);
      auto r = reg.Push("racer", dir_ + "/c" + std::to_string(i), 0, "{}", i);
      if (r.ok()) got[i] = r->row.version;
    });
  }
  for (auto& t : threads) t.join();
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
}

TEST(ModelRef, Parses) {
  EXPECT_EQ(spec::ParseModelRef("players")->version, 0);
  EXPECT_EQ(spec::ParseModelRef("players@latest")->version, 0);
  EXPECT_EQ(spec::ParseModelRef("players@12")->version, 12);
  for (const char* bad : {"", "@1", "players@", "players@0", "players@01", "players@x", "a/b", "-x", "players@1@2"}) {
    EXPECT_FALSE(spec::ParseModelRef(bad).ok()) << bad;
  }
}

class ManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = AbsolutePath(::testing::TempDir() + "/manifest." + std::to_string(::getpid()));
    (void)RemoveTree(dir_);
    ASSERT_TRUE(MakeDirs(dir_ + "/v/a").ok());
    std::ofstream(dir_ + "/v/a/x.mp4") << "x";
    std::ofstream(dir_ + "/v/y.mp4") << "y";
  }
  std::string File(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
    return dir_ + "/" + name;
  }
  std::string dir_;
};

TEST_F(ManifestTest, BothForms) {
  auto arr = spec::LoadManifest(File("m.json", "[{\"prefix\": \"v/\"}, \"a/x.mp4\", \"y.mp4\"]"));
  ASSERT_TRUE(arr.ok()) << arr.status().message();
  ASSERT_EQ(arr->entries.size(), 2u);
  EXPECT_EQ(arr->entries[0].path, dir_ + "/v/a/x.mp4");
  EXPECT_EQ(spec::ManifestItemName(arr->entries[0]), "v/a/x");
  auto lines = spec::LoadManifest(File("m.jsonl", "{\"source-ref\": \"v/y.mp4\", \"team\": \"home\"}\n\n"));
  ASSERT_TRUE(lines.ok()) << lines.status().message();
  ASSERT_EQ(lines->entries.size(), 1u);
  EXPECT_EQ(lines->entries[0].fields["team"], "home");
  EXPECT_TRUE(lines->lines);
}

TEST_F(ManifestTest, EveryProblemAtOnceWithItsLine) {
  auto m = spec::LoadManifest(File("bad.jsonl",
                                   "{\"source-ref\": \"v/y.mp4\"}\n{oops\n{\"source-ref\": \"v/none.mp4\"}\n"
                                   "{\"source-ref\": \"v/y.mp4\"}\n\"just a string\"\n"));
  ASSERT_FALSE(m.ok());
  const std::string& msg = m.status().message();
  EXPECT_NE(msg.find("bad.jsonl:2: bad JSON"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad.jsonl:3: " + dir_ + "/v/none.mp4: No such file"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad.jsonl:4: duplicate of entry 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("bad.jsonl:5: a string"), std::string::npos) << msg;
  EXPECT_NE(msg.find("4 problems in the manifest"), std::string::npos) << msg;
  std::string many;
  for (int i = 0; i < 150; ++i) many += "nope\n";
  auto lots = spec::LoadManifest(File("many.jsonl", many));
  EXPECT_NE(lots.status().message().find("... and 50 more problems"), std::string::npos);
  EXPECT_FALSE(spec::LoadManifest(File("empty.json", "  \n")).ok());
  EXPECT_FALSE(spec::LoadManifest(dir_).ok()) << "a folder is not a manifest";
}

}  // namespace
}  // namespace ns
