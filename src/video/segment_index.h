// SegmentIndex: the segments.json written by `segment` and read by `detect` and
// `track`, and the pure arithmetic that plans keyframe-aligned cuts.
//
// A segment owns frames [first_frame, first_frame + frame_count) of the source, in
// global numbering; it may also carry `overlap_frames` more frames after those,
// which belong to the next segment (whole keyframe intervals, so they decode).
// Value types; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/status.h"

namespace ns::video {

struct SegmentEntry {
  std::string file;        // base name, e.g. "seg_0000.mkv"
  int64_t first_frame = 0; // global index of the first owned frame
  int64_t frame_count = 0; // owned frames
  int64_t overlap_frames = 0;
  double start_time = 0;   // seconds from the first frame of the source
  double duration = 0;     // seconds of owned frames
  // Packets in the file shown before start_time: the leading pictures of an
  // open-GOP keyframe, which belong to the previous segment. A decoder drops them
  // or, with start_pts, the reader does; they are not lost frames.
  int64_t leading_frames = 0;
  int64_t start_pts = 0;   // start_time in the segment file's stream ticks (after leading_frames)
  bool has_start_pts = false;
  // What a reader of the file drops before (Decoder::Options::skip_before_pts).
  int64_t SkipBeforePts() const { return has_start_pts ? start_pts : INT64_MIN; }
};

struct SegmentIndex {
  std::string source;
  double fps = 0;
  int64_t frame_count = 0;  // all owned frames
  int width = 0;
  int height = 0;
  int rotation = 0;  // of the source; matroska segments do not keep it, so detect applies it
  std::vector<SegmentEntry> segments;

  // The entry whose file has the base name of `path`; nullptr if none.
  const SegmentEntry* Find(const std::string& path) const;
  // Index of the segment owning global frame `frame`; -1 if outside.
  int OwnerOf(int64_t frame) const;
};

nlohmann::json ToJson(const SegmentIndex& index);
Result<SegmentIndex> SegmentIndexFromJson(const nlohmann::json& j, const std::string& where);
// Reads segments.json, named --index in messages (a regular file of at most
// kSmallFileLimit bytes; see InputFile).
Result<SegmentIndex> ReadSegmentIndex(const std::string& path);

// Where segment file `segment` sits: its entry in the index at `index_path`, and
// the index. kInvalidArgument when the index does not list it.
struct SegmentRef {
  SegmentIndex index;
  SegmentEntry entry;
};
Result<SegmentRef> FindSegment(const std::string& index_path, const std::string& segment);

// One packet of the video stream in demux (decode) order, as the planner sees it.
struct PacketMark {
  double time = 0;   // presentation time, seconds from the first frame
  bool key = false;
};

// A planned segment. It starts at keyframe packet `begin` (decode order) and owns
// the frames *shown* from that keyframe's time up to the next segment's keyframe's
// time. The file takes packets [begin, file_end): [begin, end) up to the next cut,
// then the overlap up to `overlap_end`, then, for open GOPs, the next keyframe and
// the leading pictures after it that are shown before it (they need that keyframe
// and belong here). Counted by presentation time, the file holds `leading` frames
// shown before its start (its own keyframe's leading pictures: not its own), then
// `owned` frames, then `overlap` frames that follow on without a gap; anything
// decoded after those is not used.
struct SegmentPlan {
  size_t begin = 0;
  size_t end = 0;
  size_t overlap_end = 0;
  size_t file_end = 0;
  int64_t leading = 0;
  int64_t owned = 0;
  int64_t overlap = 0;
};

// Cuts at the first keyframe at least `seconds` after the current segment's start;
// with `overlap` > 0 each segment also takes the following packets up to the first
// keyframe at or after (its end time + overlap). Packets before the first keyframe
// (undecodable) go with the first segment. Ownership is by presentation time, so a
// frame shown before a keyframe but decoded after it (open GOP: HEVC CRA, x264
// --open-gop) stays with the segment it is shown in, and every frame is owned by
// exactly one segment. Empty input gives no segments.
std::vector<SegmentPlan> PlanSegments(const std::vector<PacketMark>& packets, double seconds,
                                      double overlap);

}  // namespace ns::video
