#include "video/clustering.h"

#include <algorithm>
#include <limits>
#include <numeric>

namespace ns::video {
namespace {

double Dist2(const Point3& a, const Point3& b) {
  double s = 0;
  for (int i = 0; i < 3; ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return s;
}

}  // namespace

Clusters KMeans(const std::vector<Point3>& points, int k, int max_iterations) {
  Clusters c;
  const size_t n = points.size();
  if (n == 0 || k <= 0) return c;
  Point3 mean{0, 0, 0};
  for (const auto& p : points)
    for (int i = 0; i < 3; ++i) mean[i] += p[i] / n;
  // Maximin initialisation.
  auto farthest_from = [&](const std::vector<Point3>& centres) {
    size_t best = 0;
    double best_d = -1;
    for (size_t j = 0; j < n; ++j) {
      double d = std::numeric_limits<double>::infinity();
      for (const auto& cc : centres) d = std::min(d, Dist2(points[j], cc));
      if (d > best_d) {
        best_d = d;
        best = j;
      }
    }
    return std::make_pair(best, best_d);
  };
  c.centres.push_back(points[farthest_from({mean}).first]);
  while (static_cast<int>(c.centres.size()) < k) {
    auto [j, d] = farthest_from(c.centres);
    if (d <= 0) break;  // fewer distinct points than k
    c.centres.push_back(points[j]);
  }
  const size_t kk = c.centres.size();
  c.labels.assign(n, 0);
  for (int it = 0; it < max_iterations; ++it) {
    bool changed = it == 0;
    for (size_t j = 0; j < n; ++j) {
      int best = 0;
      for (size_t m = 1; m < kk; ++m)
        if (Dist2(points[j], c.centres[m]) < Dist2(points[j], c.centres[best])) best = static_cast<int>(m);
      if (best != c.labels[j]) changed = true;
      c.labels[j] = best;
    }
    if (!changed) break;
    std::vector<Point3> sum(kk, Point3{0, 0, 0});
    std::vector<size_t> count(kk, 0);
    for (size_t j = 0; j < n; ++j) {
      for (int i = 0; i < 3; ++i) sum[c.labels[j]][i] += points[j][i];
      ++count[c.labels[j]];
    }
    for (size_t m = 0; m < kk; ++m)
      if (count[m] > 0)
        for (int i = 0; i < 3; ++i) c.centres[m][i] = sum[m][i] / count[m];
  }
  // Stable naming: order clusters by their centre's first coordinate.
  std::vector<int> order(kk);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return c.centres[a][0] < c.centres[b][0]; });
  std::vector<int> rank(kk);
  std::vector<Point3> sorted(kk);
  for (size_t r = 0; r < kk; ++r) {
    rank[order[r]] = static_cast<int>(r);
    sorted[r] = c.centres[order[r]];
  }
  c.centres = sorted;
  c.inertia = 0;
  for (size_t j = 0; j < n; ++j) {
    c.labels[j] = rank[c.labels[j]];
    c.inertia += Dist2(points[j], c.centres[c.labels[j]]);
  }
  return c;
}

}  // namespace ns::video
