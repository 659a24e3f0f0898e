// Decoder: reads the best video stream of a file with libavformat/libavcodec (with
// frame threads) and converts each frame to a BGR cv::Mat with libswscale.
//
// Frames come out in presentation order, numbered 0, 1, 2... in the order they are
// decoded (not from timestamps, which may lie), with their time in seconds from the
// first frame. A packet that fails to decode is counted and skipped: the caller gets
// every frame that decodes and `frames_lost()` says how many did not. Rotation side
// data (phone videos) is applied, so frames are upright as a player would show them.
//
// Errors (Result/Status, never exceptions): a missing file is kNotFound; a FIFO,
// device or folder (see InputFile: the file is opened and checked on its
// descriptor, then read by FFmpeg through it), an empty, truncated-at-the-header,
// non-video or audio-only file, or a codec this FFmpeg cannot decode, is
// kInvalidArgument with one message naming the file and reason. A file that ends
// early (truncated) just ends; a read that fails (EIO) or a demuxer error other
// than the end of the file is an error from Next, not a silent end.
// A Decoder is not thread-safe; it owns all FFmpeg state and frees it on destruction.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <opencv2/core.hpp>

#include "util/status.h"

struct AVFormatContext;

namespace ns::video {

struct StreamInfo {
  std::string container;   // e.g. "avi", "mov,mp4,m4a,3gp,3g2,mj2"
  std::string codec;       // e.g. "h264", "msmpeg4v3"
  int width = 0;           // coded size, before rotation
  int height = 0;
  double header_fps = 0;   // r_frame_rate
  double avg_fps = 0;      // avg_frame_rate
  double header_duration = 0;  // seconds, from the container (may lie)
  int64_t header_frames = 0;   // nb_frames, 0 when absent
  int rotation = 0;        // clockwise degrees to apply for display: 0, 90, 180, 270
  double time_base = 0;    // seconds per tick of the stream
  int stream_index = -1;

  // The upright size frames come out in (the coded size turned by `rotation`).
  int display_width() const { return rotation == 90 || rotation == 270 ? height : width; }
  int display_height() const { return rotation == 90 || rotation == 270 ? width : height; }
};

struct VideoFrame {
  cv::Mat bgr;         // upright, 8UC3
  int64_t index = 0;   // 0-based, in output order
  double time = 0;     // seconds since the first frame of the file
  int64_t pts = 0;     // raw presentation timestamp (stream ticks)
};

class Decoder {
 public:
  struct Options {
    int threads = 1;            // libavcodec thread_count (0 = auto)
    bool convert = true;        // false: count frames only, `bgr` stays empty
    bool apply_rotation = true;
    int rotation = -1;          // >= 0: use this instead of the file's own (0/90/180/270)
    std::string flag;           // the flag that named the file ("--input"), for messages
    // A segment file (segments.json): frames shown before `skip_before_pts` (stream
    // ticks) are an open GOP's leading pictures that belong to the previous segment.
    // They are dropped unnumbered, and `leading_packets` of them are not counted
    // as lost when the codec itself drops them (HEVC RASL pictures).
    int64_t skip_before_pts = INT64_MIN;
    int64_t leading_packets = 0;
  };

  static Result<std::unique_ptr<Decoder>> Open(const std::string& path, const Options& options);
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Fills `frame` with the next frame and returns true, or returns false at the end.
  // An error is returned only when the file cannot be read any more: a failed read
  // or a demuxer error (ReadFrameStatus), never for a packet that fails to decode.
  // With convert = false the frame is decoded (later frames may need it) but not
  // converted: `bgr` is left empty. Cheaper for frames a step will skip.
  Result<bool> Next(VideoFrame* frame, bool convert = true);
  // As Next, but whether a frame is converted is decided by `want(pts)` once its
  // presentation timestamp is known (for callers that place frames by pts).
  Result<bool> NextIf(VideoFrame* frame, const std::function<bool(int64_t pts)>& want);
  // The index the next frame will get.
  int64_t next_index() const { return frames_; }
  // Moves to the last keyframe at or before `pts` (stream ticks) and drops what the
  // codec holds; the frames that follow come from there. Afterwards `index` only
  // counts frames since Open and says nothing of the position: use `pts`.
  Status SeekBefore(int64_t pts);

  const StreamInfo& info() const { return info_; }
  const std::string& path() const { return path_; }
  int64_t packets_read() const { return packets_; }
  int64_t decode_errors() const { return decode_errors_; }
  // Packets read minus frames produced (and the leading pictures above), at the end
  // of the file: frames lost to corruption (0 for a clean file).
  int64_t frames_lost() const;
  // Borrowed; valid while the Decoder lives. For probing only.
  AVFormatContext* format_context() const;

 private:
  struct State;
  Decoder() = default;
  // Next and NextIf: `want`, when given, decides per frame once its pts is known.
  Result<bool> Read(VideoFrame* frame, bool convert, const std::function<bool(int64_t)>* want);
  Result<bool> Receive(VideoFrame* frame, bool convert, const std::function<bool(int64_t)>* want);
  Status Convert(VideoFrame* frame);

  std::string path_;
  Options options_;
  StreamInfo info_;
  std::unique_ptr<State> state_;
  int64_t packets_ = 0;
  int64_t frames_ = 0;
  int64_t decode_errors_ = 0;
  int64_t skipped_ = 0;  // frames shown before options_.skip_before_pts
  bool eof_sent_ = false;
  bool done_ = false;
};

// Reads rotation from a stream's display matrix: 0, 90, 180 or 270 (clockwise).
int RotationOfStream(AVFormatContext* format, int stream_index);

}  // namespace ns::video
