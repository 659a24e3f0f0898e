// Tracker: joins per-frame detections into tracks with stable ids (SORT-like).
//
// Each track has a constant-velocity Kalman filter on (cx, cy, w, h); every frame
// the predicted boxes are matched to the detections by optimal assignment
// (SolveAssignment) on a cost of 1 - IoU plus a centre-distance term, with gating:
// a pair is allowed only when IoU >= iou_gate or the centres are closer than
// max_distance box heights. A track is born (gets an id, and its earlier boxes are
// emitted) after `min_hits` matched frames, and dies after `max_misses` processed
// frames without a match. Frames must be fed in increasing order; frames may be
// skipped (stride): the filter predicts over the gap. Not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "video/detection.h"

namespace ns::video {

struct TrackerOptions {
  int min_hits = 3;
  int max_misses = 5;
  double iou_gate = 0.1;
  double max_distance = 1.0;  // in predicted box heights
  std::string cls = "person"; // only detections of this class are tracked ("" = all)
};

struct TrackedBox {
  int id = 0;          // 1, 2, 3... in order of birth
  int64_t frame = 0;
  double time = 0;
  Box box;             // the detection's box (not the filtered one)
  double score = 0;
  std::string cls;
};

class Tracker {
 public:
  explicit Tracker(TrackerOptions options);
  ~Tracker();
  // Processes one frame. Returns the boxes that became part of a confirmed track
  // with this call (for a newborn track, also its earlier boxes).
  std::vector<TrackedBox> Step(int64_t frame, double time, const std::vector<Detection>& detections);
  int tracks_born() const { return next_id_ - 1; }
  int live_tracks() const;

 private:
  struct Track;
  TrackerOptions options_;
  std::vector<std::unique_ptr<Track>> tracks_;
  int next_id_ = 1;
  int64_t last_frame_ = -1;
};

// Joins the fragments of one person: a track that ends and another that starts
// within `max_gap` seconds, of the same class, where the first one's motion
// (its velocity over its last second) carries it to within `max_distance` box
// heights of where the second starts, with box heights within a factor of 1.5.
// Pairs are taken cheapest first (distance in heights plus the gap in seconds);
// each track gets at most one successor and one predecessor, so a joined track
// is a chain of fragments in time order. The boxes of a chain get the id of its
// first fragment. Returns how many joins were made. Motion only: the track step
// has no pixels, so two people who swap places in a gap can be joined wrongly;
// `max_gap` 0 turns it off.
struct JoinOptions {
  double max_gap = 1.5;       // seconds
  double max_distance = 1.0;  // box heights, after the predicted motion
};
int JoinFragments(std::vector<TrackedBox>* boxes, const JoinOptions& options);

}  // namespace ns::video
