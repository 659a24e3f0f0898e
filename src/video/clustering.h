// K-means clustering of small points (colours), deterministic: centres start at the
// point farthest from the mean, then each next one at the point farthest from the
// centres chosen so far (maximin), followed by Lloyd iterations. Same input, same
// output, on every machine. Pure function, thread-safe.
#pragma once

#include <array>
#include <vector>

namespace ns::video {

using Point3 = std::array<double, 3>;

struct Clusters {
  std::vector<int> labels;      // per point, 0..k-1
  std::vector<Point3> centres;  // k centres (fewer if there are fewer distinct points)
  double inertia = 0;           // sum of squared distances to the assigned centre
};

// Clusters `points` into `k` groups; with fewer points than k, each point is its
// own cluster. Labels are ordered so that centre 0 has the smallest first coordinate
// (stable naming: with the jersey feature (a, b, L/8), team 0 is the greener kit).
Clusters KMeans(const std::vector<Point3>& points, int k, int max_iterations = 50);

}  // namespace ns::video
