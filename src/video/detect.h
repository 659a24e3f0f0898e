// RunDetect: the `detect` step. Decodes a video (a whole file, or one segment with
// its segments.json to number frames globally), runs a Detector on every
// `stride`-th global frame, and writes into `out_dir`:
//   detections.jsonl  one Detection per line, in frame order
//   detect.json       what was processed: frame ranges, stride, frames lost, timing
//
// Checkpoints: with a checkpoint folder, every `checkpoint_every` frames the
// detections so far and the position are saved there (detect.ckpt.json and
// detections.partial.jsonl). A later call with the same input and options resumes
// after the last checkpoint instead of frame 0 and gives byte-identical output:
// stateless detectors skip the decoded frames; MOG2 is re-shown the sampled frames
// before the checkpoint (cheap) so its background model is the same.
// When `*stop` becomes true (SIGTERM), a checkpoint is written and kUnavailable
// returned (exit 75: retryable).
// Progress lines "progress <0..1> <msg>" are appended to `progress_file` if set.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "util/status.h"
#include "video/detector.h"

namespace ns::video {

struct DetectOptions {
  std::string input;
  std::string index_path;      // segments.json; empty: the input is the whole video
  std::string out_dir;
  std::string checkpoint_dir;  // empty: no checkpoints
  std::string progress_file;   // empty: no progress
  int stride = 1;
  int checkpoint_every = 100;  // frames (decoded, not only sampled)
  int threads = 1;             // decoder threads and OpenCV threads
  int prefetch = 4;            // frames decoded ahead on a second thread; 0: decode inline
  int64_t max_frames = -1;     // stop after this many frames of the input (tests, bench)
  int64_t stop_after = -1;     // act as if SIGTERM arrived after this many frames (tests)
  // A stateful detector (mog2) first learns the frames before its segment (with
  // --index), reporting nothing for them: up to `preroll_frames` back (-1: three
  // times the model's history, after which a one-segment run's model has
  // forgotten what came before), every `preroll_step`-th sampled frame, each
  // weighted as the frames it stands for were in a one-segment run. 0: none.
  int64_t preroll_frames = -1;
  int preroll_step = 5;
  DetectorOptions detector;
  const std::atomic<bool>* stop = nullptr;  // borrowed; must outlive the call
};

struct DetectSummary {
  int64_t frames_decoded = 0;
  int64_t frames_processed = 0;  // sampled and run through the detector
  int64_t frames_lost = 0;
  int64_t detections = 0;
  int64_t resumed_from = 0;      // local frame the run resumed at (0: from the start)
  int64_t preroll_frames = 0;    // frames of the previous segment decoded for the pre-roll
  double seconds = 0;
  double fps = 0;                // frames_processed / seconds of this call
};

Result<DetectSummary> RunDetect(const DetectOptions& options);

}  // namespace ns::video
