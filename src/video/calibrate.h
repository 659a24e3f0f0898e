// Calibrate: the pitch homography from four or more point pairs, for analyse
// --homography (distances and speeds in metres).
//
// The points file holds one pair per line, "image_x image_y pitch_x pitch_y"
// (pixels, then metres; spaces or commas; '#' starts a comment), or a JSON array
// of {"image": [x, y], "pitch": [x, y]}. The homography is the least-squares fit
// of all pairs (normalised DLT, exact for four), so more pairs average out the
// error of clicking them; each pair's error in metres is reported.
//
// RunCalibrate writes into out_dir:
//   homography.json  {"h": 3x3 image -> pitch, "points", "rms_error_m",
//                     "max_error_m", "residuals_m": [...]} (read by analyse)
//   calibration.png  with --video: a frame with the pitch outline and a 5 m
//                    grid drawn through the homography, and the pairs, so a
//                    person can see at a glance whether it fits.
// Errors (kInvalidArgument, exit 2) name the file and line: a line that is not
// four numbers, fewer than four pairs, a pair repeated, or points that do not
// fix a plane (three of the first four on one line, or all on one line).
#pragma once

#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "util/status.h"

namespace ns::video {

struct PointPair {
  cv::Point2d image;  // pixels
  cv::Point2d pitch;  // metres
  int line = 0;       // in the points file, for messages (1-based; JSON: entry index + 1)
};

// Parses a points file's text; `where` names it in messages.
Result<std::vector<PointPair>> ParsePointPairs(const std::string& text, const std::string& where);

struct Homography {
  cv::Matx33d h;                   // image -> pitch, h(2,2) = 1
  std::vector<double> residuals;   // metres, per pair, in input order
  double rms = 0, max = 0;
};

// The least-squares homography of >= 4 pairs. kInvalidArgument when degenerate.
Result<Homography> FitHomography(const std::vector<PointPair>& pairs, const std::string& where);

struct CalibrateOptions {
  std::string points;    // the points file
  std::string out_dir;
  std::string video;     // optional: draw calibration.png on a frame of it
  double time = 0;       // seconds into the video for that frame
  double pitch_width = 105, pitch_height = 68;  // metres, the outline drawn
};

Result<Homography> RunCalibrate(const CalibrateOptions& options);

}  // namespace ns::video
