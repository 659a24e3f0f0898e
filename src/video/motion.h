// Motion of one track: distance and speed from its foot points (bottom centre of
// each box), in pixels or, with a pitch homography, in metres; and heatmaps.
// Pure functions and value types; thread-compatible.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "util/status.h"

namespace ns::video {

struct TrackPoint {
  double time = 0;  // seconds
  double x = 0, y = 0;
};

struct MotionStats {
  double distance = 0;   // along the smoothed path
  double duration = 0;   // seconds from first to last point
  double avg_speed = 0;  // distance / duration
  double max_speed = 0;  // fastest over any window of about one second (a shorter track: its average)
};

// Points must be in increasing time. The path is smoothed with a centred moving
// average over `window` points to remove box jitter; steps across a gap longer than
// `max_gap` seconds are not counted (the person was lost).
MotionStats ComputeMotion(const std::vector<TrackPoint>& points, int window = 5, double max_gap = 2.0);

// Reads a 3x3 homography (image pixels -> pitch metres) from a file holding either a
// JSON array (3x3 nested or 9 numbers, or {"h": ...}) or 9 whitespace-separated
// numbers. kInvalidArgument names the file when it is neither. The file is named
// --homography in messages (a regular file of at most kSmallFileLimit bytes; see
// InputFile).
Result<cv::Matx33d> ReadHomography(const std::string& path);
cv::Point2d Apply(const cv::Matx33d& h, cv::Point2d p);

// A counts grid over the rectangle [x0, x0 + width) x [y0, y0 + height).
struct Heatmap {
  int cols = 0, rows = 0;
  double x0 = 0, y0 = 0, width = 1, height = 1;
  std::vector<double> counts;  // row-major, rows x cols

  Heatmap() = default;
  Heatmap(int cols, int rows, double x0, double y0, double width, double height);
  void Add(double x, double y, double weight = 1);  // outside points are dropped
  double Total() const;
  nlohmann::json ToJson() const;
  // A colour image (COLORMAP_JET, normalised to the maximum), cell_px per cell.
  cv::Mat Render(int cell_px) const;
};

}  // namespace ns::video
