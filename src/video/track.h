// The `track` step: reads the detect step's output (a folder holding one folder per
// segment, each with detections.jsonl and detect.json; or one such folder; or a
// single .jsonl file), merges them in global frame order, runs the Tracker over
// every processed frame, and writes tracks.jsonl (one TrackedBox a line, ordered by
// frame then id) and tracks.json (a summary per track).
//
// `tracker.cls` may list several classes ("person,sports ball"): each is tracked on
// its own and ids are numbered over all of them by first appearance.
// Where segments overlap, each frame's detections are taken from the segment that
// owns the frame, so nothing is counted twice. Frames a detector processed but
// found nothing in still count as misses for the tracker.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/status.h"
#include "video/tracker.h"

namespace ns::video {

struct TrackStepOptions {
  std::string input;
  std::string out_dir;
  int stride = 1;  // used only for a bare .jsonl input (no detect.json)
  TrackerOptions tracker;
  JoinOptions join;  // fragments of one person joined after tracking (per class)
};

struct TrackStepSummary {
  int segments = 0;
  int64_t frames = 0;      // processed frames fed to the tracker
  int64_t detections = 0;
  int tracks = 0;
  int64_t boxes = 0;
  int joined = 0;          // fragments joined to an earlier one (JoinFragments)
};

// Detections of every processed frame, merged; exposed for tests.
struct MergedDetections {
  std::vector<int64_t> frames;                 // processed frames, increasing
  std::vector<double> times;                   // time of each processed frame (or -1)
  std::vector<std::vector<Detection>> by_frame;  // parallel to frames
  int segments = 0;
};
// `input` is named --input in messages.
Result<MergedDetections> LoadDetections(const std::string& input, int stride);

Result<TrackStepSummary> RunTrack(const TrackStepOptions& options);

nlohmann::json ToJson(const TrackedBox& b);
// Reads tracks.jsonl; `flag` names it in messages (see InputFile).
Result<std::vector<TrackedBox>> ReadTracks(const std::string& path, const std::string& flag);

}  // namespace ns::video
