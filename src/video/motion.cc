#include "video/motion.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include <opencv2/imgproc.hpp>

#include "video/input_file.h"

namespace ns::video {

MotionStats ComputeMotion(const std::vector<TrackPoint>& points, int window, double max_gap) {
  MotionStats m;
  if (points.size() < 2) return m;
  const int n = static_cast<int>(points.size());
  const int half = std::max(0, window / 2);
  std::vector<TrackPoint> s(n);
  for (int i = 0; i < n; ++i) {
    int a = std::max(0, i - half), b = std::min(n - 1, i + half);
    double sx = 0, sy = 0;
    for (int j = a; j <= b; ++j) {
      sx += points[j].x;
      sy += points[j].y;
    }
    s[i] = {points[i].time, sx / (b - a + 1), sy / (b - a + 1)};
  }
  std::vector<double> cum(n, 0);  // distance from the start, per point
  for (int i = 1; i < n; ++i) {
    double dt = s[i].time - s[i - 1].time;
    double step = dt <= max_gap ? std::hypot(s[i].x - s[i - 1].x, s[i].y - s[i - 1].y) : 0;
    cum[i] = cum[i - 1] + step;
  }
  m.distance = cum[n - 1];
  m.duration = s[n - 1].time - s[0].time;
  m.avg_speed = m.duration > 0 ? m.distance / m.duration : 0;
  // Max speed over windows of at least one second.
  int j = 0;
  for (int i = 1; i < n; ++i) {
    while (j < i && s[i].time - s[j + 1].time >= 1.0) ++j;
    double dt = s[i].time - s[j].time;
    if (dt >= 1.0 - 1e-9 && dt <= 1.0 + max_gap) m.max_speed = std::max(m.max_speed, (cum[i] - cum[j]) / dt);
  }
  // The whole track is a window too: a track shorter than a second has its
  // average as its fastest, and no window is slower than the fastest (max >= avg).
  m.max_speed = std::max(m.max_speed, m.avg_speed);
  return m;
}

Result<cv::Matx33d> ReadHomography(const std::string& path) {
  auto text = ReadSmallFile(path, "--homography");
  if (!text.ok()) return text.status();
  std::vector<double> v;
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_discarded()) {
    if (j.is_object() && j.contains("h")) j = j["h"];
    std::vector<nlohmann::json> flat;
    if (j.is_array()) {
      for (const auto& e : j) {
        if (e.is_array()) {
          for (const auto& x : e) flat.push_back(x);
        } else {
          flat.push_back(e);
        }
      }
    }
    for (const auto& x : flat)
      if (x.is_number()) v.push_back(x.get<double>());
  } else {
    std::istringstream in(*text);
    double x;
    while (in >> x) v.push_back(x);
  }
  if (v.size() != 9) return Status::Invalid(path + ": a homography needs 9 numbers (3x3), found " + std::to_string(v.size()));
  cv::Matx33d h;
  for (int i = 0; i < 9; ++i) h.val[i] = v[i];
  if (std::fabs(cv::determinant(h)) < 1e-12) return Status::Invalid(path + ": the homography is singular");
  return h;
}

cv::Point2d Apply(const cv::Matx33d& h, cv::Point2d p) {
  cv::Vec3d r = h * cv::Vec3d(p.x, p.y, 1.0);
  if (std::fabs(r[2]) < 1e-12) return {0, 0};
  return {r[0] / r[2], r[1] / r[2]};
}

Heatmap::Heatmap(int c, int r, double x, double y, double w, double h)
    : cols(c), rows(r), x0(x), y0(y), width(w), height(h), counts(static_cast<size_t>(c) * r, 0) {}

void Heatmap::Add(double x, double y, double weight) {
  if (cols <= 0 || rows <= 0) return;
  int cx = static_cast<int>(std::floor((x - x0) / width * cols));
  int cy = static_cast<int>(std::floor((y - y0) / height * rows));
  if (cx < 0 || cy < 0 || cx >= cols || cy >= rows) return;
  counts[static_cast<size_t>(cy) * cols + cx] += weight;
}

double Heatmap::Total() const {
  double t = 0;
  for (double c : counts) t += c;
  return t;
}

nlohmann::json Heatmap::ToJson() const {
  return {{"cols", cols}, {"rows", rows}, {"x0", x0},         {"y0", y0},
          {"width", width}, {"height", height}, {"counts", counts}};
}

cv::Mat Heatmap::Render(int cell_px) const {
  cv::Mat grid(rows, cols, CV_64F);
  double mx = 0;
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) {
      grid.at<double>(r, c) = counts[static_cast<size_t>(r) * cols + c];
      mx = std::max(mx, grid.at<double>(r, c));
    }
  (void)mx;
  // Blur first, then normalise, so the hottest area is fully red.
  cv::Mat big, u8, colour;
  cv::resize(grid, big, cv::Size(cols * cell_px, rows * cell_px), 0, 0, cv::INTER_LINEAR);
  cv::GaussianBlur(big, big, cv::Size(0, 0), cell_px * 0.8);
  double lo = 0, hi = 0;
  cv::minMaxLoc(big, &lo, &hi);
  big.convertTo(u8, CV_8U, hi > 0 ? 255.0 / hi : 0);
  cv::applyColorMap(u8, colour, cv::COLORMAP_JET);
  return colour;
}

}  // namespace ns::video
