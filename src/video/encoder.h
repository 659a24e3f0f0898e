// Encoder: writes BGR cv::Mat frames to an MP4 file with libavcodec — H.264
// (libx264, yuv420p, +faststart: plays in browsers) when this FFmpeg has it, else
// MPEG-4 part 2. Frames of odd width or height are padded by one pixel (yuv420p
// needs even sizes). Not thread-safe; frees everything on destruction. A file that
// was not Finish()-ed is incomplete.
#pragma once

#include <memory>
#include <string>

#include <opencv2/core.hpp>

#include "util/status.h"

namespace ns::video {

class Encoder {
 public:
  static Result<std::unique_ptr<Encoder>> Open(const std::string& path, int width, int height, double fps,
                                               int threads);
  ~Encoder();
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  // `bgr` must have the size given to Open.
  Status Write(const cv::Mat& bgr);
  // Flushes the encoder, writes the trailer and closes the file. Any of these
  // failing (a full disk, a failed close on NFS) is an error: the file is then
  // incomplete. Only a file Finish() returned Ok for is complete.
  Status Finish();
  const std::string& codec() const { return codec_; }

 private:
  struct State;
  Encoder() = default;
  Status Drain(bool flush);

  std::string path_;
  std::string codec_;
  int width_ = 0, height_ = 0;
  int64_t next_pts_ = 0;
  std::unique_ptr<State> state_;
};

}  // namespace ns::video
