#include "store/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

namespace ns {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ns_store_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Db() { return (dir_ / "nightshift.db").string(); }
  std::filesystem::path dir_;
};

TEST_F(StoreTest, CreatesMigratesAndReopens) {
  {
    auto s = Store::Open(Db());
    ASSERT_TRUE(s.ok()) << s.status().message();
    RunRow r;
    r.run_id = "r1";
    r.pipeline = "p";
    r.status = "running";
    ASSERT_TRUE((*s)->InsertRun(r).ok());
  }
  auto s = Store::Open(Db());
  ASSERT_TRUE(s.ok());
  auto r = (*s)->GetRun("r1");
  ASSERT_TRUE(r.ok() && r.value());
  EXPECT_EQ(r.value()->pipeline, "p");
}

TEST_F(StoreTest, RefusesNewerSchema) {
  { ASSERT_TRUE(Store::Open(Db()).ok()); }
  sqlite3* db;
  sqlite3_open(Db().c_str(), &db);
  sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto s = Store::Open(Db());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("newer than this nightshift understands"), std::string::npos);
}

TEST_F(StoreTest, NotADatabase) {
  FILE* f = fopen(Db().c_str(), "w");
  fputs("this is not sqlite, just text that is long enough to look like a header....", f);
  fclose(f);
  EXPECT_FALSE(Store::Open(Db()).ok());
}

TEST_F(StoreTest, TransactionRollsBackOnError) {
  auto s = Store::Open(Db());
  ASSERT_TRUE(s.ok());
  Status st = (*s)->Transaction([&]() -> Status {
    RunRow r;
    r.run_id = "gone";
    EXPECT_TRUE((*s)->InsertRun(r).ok());
    return Status::Internal("boom");
  });
  EXPECT_FALSE(st.ok());
  auto r = (*s)->GetRun("gone");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.value().has_value());
}

TEST_F(StoreTest, TasksUpsertAndAttempts) {
  auto s = Store::Open(Db());
  ASSERT_TRUE(s.ok());
  TaskRow t;
  t.run_id = "r";
  t.task_id = "a/x";
  t.step = "a";
  t.status = "pending";
  ASSERT_TRUE((*s)->UpsertTask(t).ok());
  t.status = "succeeded";
  t.attempts = 2;
  ASSERT_TRUE((*s)->UpsertTask(t).ok());
  auto tasks = (*s)->ListTasks("r");
  ASSERT_TRUE(tasks.ok());
  ASSERT_EQ(tasks->size(), 1u);
  EXPECT_EQ(tasks->at(0).status, "succeeded");
  EXPECT_EQ(tasks->at(0).attempts, 2);
}

}  // namespace ns
