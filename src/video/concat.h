// The `concat` step: joins the annotated videos that `render --index` wrote for
// each segment into one annotated.mp4, by stream copy (no re-encode), so rendering
// runs in parallel over segments like detection does.
//
// `input` is the render step's folder: either one render (annotated.mp4 and
// render.json in it) or one sub-folder per segment (a foreach step's output). The
// pieces are ordered by render.json's first_frame and must follow on without a gap
// or an overlap, have the same codec, size and codec headers; anything else is
// kInvalidArgument naming the piece. Heatmap PNGs found in the pieces are copied.
// Writes annotated.mp4 (+faststart), the heatmaps and concat.json into out_dir.
#pragma once

#include <cstdint>
#include <string>

#include "util/status.h"

namespace ns::video {

struct ConcatOptions {
  std::string input;
  std::string out_dir;
};

struct ConcatSummary {
  int pieces = 0;
  int64_t frames = 0;
  int64_t frames_lost = 0;  // owned by a piece but not in it (did not decode)
  int heatmaps = 0;
};

Result<ConcatSummary> RunConcat(const ConcatOptions& options);

}  // namespace ns::video
