// WriteImage: a BGR cv::Mat to a PNG or JPEG file, encoded with libavcodec's png
// and mjpeg encoders. nightshift-video does not link OpenCV's imgcodecs: with its
// GDAL and friends it doubled the shared libraries loaded at every start (231
// against 148), and start-up is paid by every task of a foreach step.
// The format follows the extension (.png, or .jpg/.jpeg at quality about 90).
// The file is written atomically. Thread-safe.
#pragma once

#include <string>

#include <opencv2/core.hpp>

#include "util/status.h"

namespace ns::video {

Status WriteImage(const std::string& path, const cv::Mat& bgr);

}  // namespace ns::video
