// Prefetcher: decoding on its own thread gives exactly what decoding inline gives.
#include <gtest/gtest.h>

#include <optional>

#include "video/decoder.h"
#include "video/prefetch.h"
#include "video_test_util.h"

namespace ns::video {
namespace {

struct Seen {
  int64_t index;
  int64_t pts;
  bool converted;
  double sum;  // of all pixel values: equal frames, equal sums
};

std::vector<Seen> ReadAll(const std::string& path, int depth, int64_t limit) {
  auto dec = Decoder::Open(path, Decoder::Options{});
  EXPECT_TRUE(dec.ok());
  if (!dec.ok()) return {};
  auto want = [](int64_t i) { return i % 3 == 0; };
  std::optional<Prefetcher> pf;
  if (depth > 0) pf.emplace(dec->get(), want, depth);
  std::vector<Seen> out;
  VideoFrame f;
  while (limit < 0 || static_cast<int64_t>(out.size()) < limit) {
    auto more = pf ? pf->Next(&f) : (*dec)->Next(&f, want((*dec)->next_index()));
    EXPECT_TRUE(more.ok());
    if (!more.ok() || !*more) break;
    cv::Scalar s = f.bgr.empty() ? cv::Scalar() : cv::sum(f.bgr);
    out.push_back({f.index, f.pts, !f.bgr.empty(), s[0] + s[1] + s[2]});
  }
  if (pf && limit < 0) {  // the end repeats
    auto again = pf->Next(&f);
    EXPECT_TRUE(again.ok() && !*again);
  }
  return out;
}

TEST(Prefetcher, GivesTheSameFramesAsDecodingInline) {
  REQUIRE_VTEST();
  auto inline_frames = ReadAll(NS_VTEST, 0, -1);
  auto ahead = ReadAll(NS_VTEST, 4, -1);
  ASSERT_EQ(inline_frames.size(), 795u);
  ASSERT_EQ(ahead.size(), inline_frames.size());
  for (size_t i = 0; i < ahead.size(); ++i) {
    EXPECT_EQ(ahead[i].index, inline_frames[i].index);
    EXPECT_EQ(ahead[i].pts, inline_frames[i].pts);
    EXPECT_EQ(ahead[i].converted, i % 3 == 0);
    EXPECT_EQ(ahead[i].converted, inline_frames[i].converted);
    EXPECT_DOUBLE_EQ(ahead[i].sum, inline_frames[i].sum) << "frame " << i;
  }
}

TEST(Prefetcher, StopsCleanlyWhenTheReaderLeavesEarly) {
  REQUIRE_VTEST();
  EXPECT_EQ(ReadAll(NS_VTEST, 2, 10).size(), 10u);  // the destructor joins a busy thread
}

}  // namespace
}  // namespace ns::video
