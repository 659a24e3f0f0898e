// Probe: what a video file really holds, measured rather than trusted.
//
// The frame count and fps come from the packets themselves (timestamps and count),
// not from header fields, which many files get wrong; when the header has no frame
// count, or one that disagrees with the packets, or when `decode` is asked, every
// frame is decoded and counted. Thread-compatible: no shared state.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace ns::video {

struct ProbeResult {
  std::string path;
  std::string container;
  std::string codec;
  int width = 0;    // display size (after rotation)
  int height = 0;
  int coded_width = 0;
  int coded_height = 0;
  double fps = 0;            // measured
  double header_fps = 0;     // as the header says
  double duration = 0;       // seconds, measured
  double header_duration = 0;
  int64_t frame_count = 0;   // measured
  int64_t header_frames = 0;
  std::string frame_count_source;  // "packets" or "decoded"
  int64_t frames_lost = 0;   // only known when decoded
  std::vector<double> keyframe_times;
  int rotation = 0;
  bool header_mismatch = false;  // header disagrees with what was measured
  bool variable_frame_rate = false;  // frame_count is not duration x fps: the step between frames changes
};

// Probes `path`. `decode` forces a decode-count of the frames.
// Errors as Decoder::Open (missing, empty, not a video, unsupported codec).
Result<ProbeResult> Probe(const std::string& path, bool decode);

nlohmann::json ToJson(const ProbeResult& probe);

}  // namespace ns::video
