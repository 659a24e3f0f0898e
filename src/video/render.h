// The `render` step: an annotated copy of the video (boxes, ids, team colours and
// trails; H.264 MP4 via Encoder) and heatmap PNGs.
//
// Reads the source video, tracks.jsonl and, optionally, the analyse step's folder
// (summary.json for team colours, heatmap_team<k>.json). Writes into out_dir:
// annotated.mp4, render.json (first frame, frames, fps, codec), and
// heatmap_team0.png / heatmap_team1.png when heatmaps exist.
//
// With `index_path` (segments.json), `video` is one segment: only the frames it
// owns are rendered (overlap frames are left to the next segment), drawn exactly as
// a whole-video render draws them, and heatmaps are written only by the segment
// that starts at frame 0. `concat` joins the segments' videos into one.
#pragma once

#include <string>

#include "util/status.h"

namespace ns::video {

struct RenderOptions {
  std::string video;
  std::string index_path;  // segments.json when `video` is one segment
  std::string tracks;     // tracks.jsonl or the track step's folder
  std::string analysis;   // the analyse step's folder (optional)
  std::string out_dir;
  int trail = 30;         // frames of trail behind each player
  int hold = -1;          // frames a box stays drawn after its frame (-1: the tracks' frame step)
  int threads = 1;
  int64_t max_frames = -1;
  std::string preset = "veryfast";  // libx264's speed/size trade
};

struct RenderSummary {
  int64_t frames = 0;
  std::string codec;
  int heatmaps = 0;
};

Result<RenderSummary> RunRender(const RenderOptions& options);

}  // namespace ns::video
