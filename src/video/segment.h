// Segment: splits a video at keyframes by stream copy (libavformat remux, no
// re-encode) into seg_0000.mkv, seg_0001.mkv... plus segments.json.
//
// Matroska is used for every input because it accepts nearly every codec (an AVI's
// msmpeg4v3 cannot go into MP4), so a pipeline can always glob `*.mkv`. Only the
// video stream is kept. Frame counts come from the packets (one frame per packet),
// owned by presentation time: an open GOP's leading pictures (decoded after a
// keyframe, shown before it) are written into both segments and belong to the
// earlier one, so every frame of every codec is owned once and decodes where it
// is owned (see SegmentPlan).
// Errors: as Decoder::Open for the input; kIoError when a segment cannot be
// written. Files already in `out_dir` with the same names are overwritten.
#pragma once

#include <string>

#include "util/status.h"
#include "video/segment_index.h"

namespace ns::video {

struct SegmentOptions {
  double seconds = 20;  // target length; each cut waits for the next keyframe
  double overlap = 0;   // seconds of the next segment to append (whole GOPs)
};

Result<SegmentIndex> SegmentVideo(const std::string& input, const std::string& out_dir,
                                  const SegmentOptions& options);

}  // namespace ns::video
