// Encoder: writes BGR cv::Mat frames to an MP4 file (time base 1 ms) with libavcodec — H.264
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
  // `preset`: libx264's (ultrafast ... veryslow); kInvalidArgument for another.
  static Result<std::unique_ptr<Encoder>> Open(const std::string& path, int width, int height, double fps,
                                               int threads, const std::string& preset = "veryfast");
  ~Encoder();
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  // `bgr` must have the size given to Open. `time`: the frame's presentation
  // time in seconds (a variable-frame-rate source keeps its timing; rounded to
  // a millisecond, and always after the previous frame); < 0: the frame after
  // the previous one at the rate given to Open.
  Status Write(const cv::Mat& bgr, double time = -1);
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
  int64_t frames_ = 0;
  int64_t last_pts_ = -1;      // milliseconds
  int64_t frame_ms_ = 40;      // nominal duration of one frame
  double fps_ = 25;
  std::unique_ptr<State> state_;
};

}  // namespace ns::video
