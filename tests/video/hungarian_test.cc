#include "video/hungarian.h"

#include <algorithm>
#include <numeric>
#include <random>

#include <gtest/gtest.h>

namespace ns::video {
namespace {

// Best cost by trying every injective mapping of the smaller side.
double BruteForce(const std::vector<std::vector<double>>& c) {
  int rows = static_cast<int>(c.size()), cols = static_cast<int>(c[0].size());
  bool t = rows > cols;
  int n = t ? cols : rows, m = t ? rows : cols;
  std::vector<int> perm(m);
  std::iota(perm.begin(), perm.end(), 0);
  double best = 1e18;
  do {
    double s = 0;
    for (int i = 0; i < n; ++i) s += t ? c[perm[i]][i] : c[i][perm[i]];
    best = std::min(best, s);
  } while (std::next_permutation(perm.begin(), perm.end()));
  return best;
}

TEST(Hungarian, ClassicSquare) {
  std::vector<std::vector<double>> c = {{4, 1, 3}, {2, 0, 5}, {3, 2, 2}};
  auto a = SolveAssignment(c);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_DOUBLE_EQ(AssignmentCost(c, a), 5);  // 0->1, 1->0, 2->2
  EXPECT_EQ(a[0], 1);
  EXPECT_EQ(a[1], 0);
  EXPECT_EQ(a[2], 2);
}

TEST(Hungarian, GreedyWouldBeWrong) {
  // Greedy takes (0,0)=1 and then must pay 100; the optimum is 2 + 3.
  std::vector<std::vector<double>> c = {{1, 2}, {3, 100}};
  auto a = SolveAssignment(c);
  EXPECT_EQ(a[0], 1);
  EXPECT_EQ(a[1], 0);
}

TEST(Hungarian, MoreColumnsThanRows) {
  std::vector<std::vector<double>> c = {{9, 9, 1, 9}, {9, 2, 9, 9}};
  auto a = SolveAssignment(c);
  EXPECT_EQ(a, (std::vector<int>{2, 1}));
}

TEST(Hungarian, MoreRowsThanColumnsLeavesSomeUnassigned) {
  std::vector<std::vector<double>> c = {{5}, {1}, {3}};
  auto a = SolveAssignment(c);
  EXPECT_EQ(a, (std::vector<int>{-1, 0, -1}));
}

TEST(Hungarian, EmptyInputs) {
  EXPECT_TRUE(SolveAssignment({}).empty());
  std::vector<std::vector<double>> no_cols = {{}, {}};
  EXPECT_EQ(SolveAssignment(no_cols), (std::vector<int>{-1, -1}));
}

TEST(Hungarian, MatchesBruteForceOnRandomMatrices) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(0, 10);
  for (int trial = 0; trial < 300; ++trial) {
    int rows = 1 + static_cast<int>(rng() % 6), cols = 1 + static_cast<int>(rng() % 6);
    std::vector<std::vector<double>> c(rows, std::vector<double>(cols));
    for (auto& r : c)
      for (auto& v : r) v = std::round(u(rng));  // ties on purpose
    auto a = SolveAssignment(c);
    ASSERT_EQ(static_cast<int>(a.size()), rows);
    // Each column used at most once, and min(rows, cols) pairs made.
    std::vector<int> used(cols, 0);
    int pairs = 0;
    for (int j : a) {
      if (j < 0) continue;
      ASSERT_LT(j, cols);
      ++used[j];
      ++pairs;
    }
    EXPECT_EQ(pairs, std::min(rows, cols));
    for (int u2 : used) EXPECT_LE(u2, 1);
    EXPECT_NEAR(AssignmentCost(c, a), BruteForce(c), 1e-9) << "trial " << trial;
  }
}

}  // namespace
}  // namespace ns::video
