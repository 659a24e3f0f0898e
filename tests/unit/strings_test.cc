#include "util/strings.h"

#include <gtest/gtest.h>

namespace ns {

TEST(Strings, Durations) {
  EXPECT_EQ(ParseDurationMs("90"), 90000);
  EXPECT_EQ(ParseDurationMs("2s"), 2000);
  EXPECT_EQ(ParseDurationMs("500ms"), 500);
  EXPECT_EQ(ParseDurationMs("1h30m"), 5400000);
  EXPECT_EQ(ParseDurationMs("1.5m"), 90000);
  EXPECT_FALSE(ParseDurationMs("soon"));
  EXPECT_FALSE(ParseDurationMs("5 parsecs"));
  EXPECT_FALSE(ParseDurationMs(""));
  EXPECT_FALSE(ParseDurationMs("3x"));
}

TEST(Strings, Memory) {
  EXPECT_EQ(ParseMemoryBytes("512MiB"), 512ll << 20);
  EXPECT_EQ(ParseMemoryBytes("2GiB"), 2ll << 30);
  EXPECT_EQ(ParseMemoryBytes("1G"), 1000000000ll);
  EXPECT_EQ(ParseMemoryBytes("1024"), 1024);
  EXPECT_FALSE(ParseMemoryBytes("lots"));
  EXPECT_FALSE(ParseMemoryBytes("2 GB of RAM"));
}

TEST(Strings, DidYouMean) {
  EXPECT_EQ(DidYouMean("neds", {"needs", "run", "env"}), "needs");
  EXPECT_EQ(DidYouMean("resorces", {"resources", "retry"}), "resources");
  EXPECT_FALSE(DidYouMean("zzzzzz", {"needs", "run"}));
}

}  // namespace ns
