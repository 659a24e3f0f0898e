// The `analyse` step: teams, distances, speeds and heatmaps from tracks.
//
// Reads tracks.jsonl and the source video (to sample pixels). For each track with
// at least `min_boxes` boxes, the torso (middle of the box: 30-70% across, 20-50%
// down) of up to `samples` boxes is averaged in Lab colour; the tracks' colours are
// split into two teams by KMeans. Distance and speed come from the foot points, in
// pixels or, with a homography, metres. Writes into out_dir: summary.json,
// heatmap_team0.json / heatmap_team1.json (grids of counts), thumbs/track_<id>.jpg
// (the largest box of each track). Tracks shorter than min_boxes get team -1.
//
// Sampling: a demux-only pass maps every frame to its presentation timestamp; when
// the next sampled frame's keyframe is more than `seek_gap` frames ahead, the
// decoder seeks there instead of decoding every frame between. The frames sampled
// and their pixels are the same either way. Without usable timestamps (missing,
// repeated, or packets flagged corrupt or discarded), or when a decoded frame does
// not come where the packets say (out of sequence, a seek that lands past its
// keyframe, a decode error), every frame is decoded from the start instead.
#pragma once

#include <string>

#include "util/status.h"

namespace ns::video {

struct AnalyseOptions {
  std::string tracks;       // tracks.jsonl, or the track step's folder
  std::string video;        // the source video
  std::string homography;   // optional file: image pixels -> metres
  double pitch_width = 105; // metres, heatmap extent with a homography
  double pitch_height = 68;
  int grid_cols = 48;       // heatmap cells
  int grid_rows = 32;
  int min_boxes = 5;
  std::string team_class = "person";  // tracks of other classes (the ball) get no team
  int samples = 12;
  int threads = 1;
  int seek_gap = 50;        // seek past at least this many frames to the next sample; 0: decode all
  std::string out_dir;
};

struct AnalyseSummary {
  int tracks = 0;     // analysed (>= min_boxes)
  int team_sizes[2] = {0, 0};
  bool teams_found = false;
  std::string no_teams_reason;  // why not, when !teams_found
  double team_separation = 0;   // centre distance / spread of the jersey colours
  std::string units;  // "px" or "m"
  int64_t seeks = 0;  // times the video was sought to a sample instead of decoded to it
};

Result<AnalyseSummary> RunAnalyse(const AnalyseOptions& options);

}  // namespace ns::video
