#include "video/hungarian.h"

#include <cstddef>
#include <limits>

namespace ns::video {

std::vector<int> SolveAssignment(const std::vector<std::vector<double>>& cost) {
  const int rows = static_cast<int>(cost.size());
  if (rows == 0) return {};
  const int cols = static_cast<int>(cost[0].size());
  if (cols == 0) return std::vector<int>(rows, -1);
  // The method needs n <= m; transpose when there are more rows than columns.
  const bool transpose = rows > cols;
  const int n = transpose ? cols : rows;
  const int m = transpose ? rows : cols;
  auto a = [&](int i, int j) { return transpose ? cost[j][i] : cost[i][j]; };

  const double kInf = std::numeric_limits<double>::infinity();
  // 1-based arrays: u, v potentials; p[j] = row matched to column j; way = path.
  std::vector<double> u(n + 1, 0), v(m + 1, 0);
  std::vector<int> p(m + 1, 0), way(m + 1, 0);
  for (int i = 1; i <= n; ++i) {
    p[0] = i;
    int j0 = 0;
    std::vector<double> minv(m + 1, kInf);
    std::vector<char> used(m + 1, false);
    do {
      used[j0] = true;
      int i0 = p[j0], j1 = 0;
      double delta = kInf;
      for (int j = 1; j <= m; ++j) {
        if (used[j]) continue;
        double cur = a(i0 - 1, j - 1) - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (int j = 0; j <= m; ++j) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          minv[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      int j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
  std::vector<int> result(rows, -1);
  for (int j = 1; j <= m; ++j) {
    if (p[j] == 0) continue;
    if (transpose) {
      result[j - 1] = p[j] - 1;
    } else {
      result[p[j] - 1] = j - 1;
    }
  }
  return result;
}

double AssignmentCost(const std::vector<std::vector<double>>& cost, const std::vector<int>& assignment) {
  double total = 0;
  for (std::size_t i = 0; i < assignment.size(); ++i)
    if (assignment[i] >= 0) total += cost[i][assignment[i]];
  return total;
}

}  // namespace ns::video
