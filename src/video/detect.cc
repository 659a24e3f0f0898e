#include "video/detect.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <sstream>

#include <opencv2/core.hpp>

#include "util/fs.h"
#include "video/decoder.h"
#include "video/input_file.h"
#include "video/prefetch.h"
#include "video/segment_index.h"

namespace ns::video {
namespace {

constexpr char kCheckpointFile[] = "detect.ckpt.json";
constexpr char kPartialFile[] = "detections.partial.jsonl";

// What must match for a checkpoint to be reused.
std::string Fingerprint(const DetectOptions& o) {
  const DetectorOptions& d = o.detector;
  std::ostringstream s;
  s << BaseName(o.input) << "|" << d.kind << "|" << o.stride << "|" << d.confidence << "|" << d.nms
    << "|" << d.hog_scale << "|" << d.hog_stride << "|" << d.mog2_history << "|"
    << d.mog2_var_threshold << "|" << d.min_area << "|" << BaseName(d.model) << "|" << d.decode
    << "|" << d.input_width << "x" << d.input_height << "|" << d.scale << "|" << d.swap_rb << "|"
    << d.tiles_x << "x" << d.tiles_y << "|" << o.max_frames << "|preroll " << o.preroll_frames << "/"
    << o.preroll_step << " rates-by-global-frame";
  for (int c : d.classes) s << "," << c;
  return s.str();
}

class Progress {
 public:
  explicit Progress(std::string path) : path_(std::move(path)) {}
  void Report(double fraction, const std::string& msg) {
    if (path_.empty()) return;
    std::FILE* f = std::fopen(path_.c_str(), "a");
    if (!f) return;  // progress is best effort
    std::fprintf(f, "progress %.3f %s\n", std::min(1.0, std::max(0.0, fraction)), msg.c_str());
    std::fclose(f);
  }

 private:
  std::string path_;
};

struct Checkpoint {
  int64_t next_local = 0;  // frames of the input already consumed
  int64_t detections = 0;  // lines of the partial file that belong to it
};

Result<std::vector<std::string>> LoadCheckpoint(const DetectOptions& o, Checkpoint* ck) {
  std::vector<std::string> lines;
  std::string path = o.checkpoint_dir + "/" + kCheckpointFile;
  if (o.checkpoint_dir.empty() || !PathExists(path)) return lines;
  auto text = ReadSmallFile(path, "--checkpoint-dir");
  if (!text.ok()) return text.status();
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || j.value("fingerprint", "") != Fingerprint(o)) return lines;  // stale
  Checkpoint c;
  c.next_local = j.value("next_local", int64_t{0});
  c.detections = j.value("detections", int64_t{0});
  auto partial = InputFile::Open(o.checkpoint_dir + "/" + kPartialFile, "--checkpoint-dir");
  if (!partial.ok() && partial.status().code() != StatusCode::kNotFound) return partial.status();
  if (partial.ok()) {
    // A run stopped between the two writes of SaveCheckpoint leaves more lines
    // than the checkpoint counts; the first `detections` are its own.
    NS_RETURN_IF_ERROR(partial->ForEachLine(kJsonLineLimit, [&](std::string_view line, int64_t) {
      if (static_cast<int64_t>(lines.size()) < c.detections) lines.emplace_back(line);
      return Status::Ok();
    }));
  }
  if (static_cast<int64_t>(lines.size()) != c.detections) return std::vector<std::string>{};
  *ck = c;
  return lines;
}

Status SaveCheckpoint(const DetectOptions& o, const Checkpoint& c,
                      const std::vector<std::string>& lines) {
  if (o.checkpoint_dir.empty()) return Status::Ok();
  NS_RETURN_IF_ERROR(MakeDirs(o.checkpoint_dir));
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  NS_RETURN_IF_ERROR(WriteFileAtomic(o.checkpoint_dir + "/" + kPartialFile, all));
  nlohmann::json j = {{"fingerprint", Fingerprint(o)},
                      {"next_local", c.next_local},
                      {"detections", c.detections}};
  return WriteFileAtomic(o.checkpoint_dir + "/" + kCheckpointFile, j.dump(2) + "\n");
}

}  // namespace

Result<DetectSummary> RunDetect(const DetectOptions& o) {
  if (o.stride < 1) return Status::Invalid("--stride must be >= 1");
  if (o.checkpoint_every < 1) return Status::Invalid("--checkpoint-every must be >= 1");
  if (o.out_dir.empty()) return Status::Invalid("no output folder: pass --out or set NIGHTSHIFT_OUTPUT_DIR");
  if (!o.checkpoint_dir.empty()) {  // made when missing, but never read if it is not a folder
    Status folder = CheckFolder(o.checkpoint_dir, "--checkpoint-dir");
    if (!folder.ok() && folder.code() != StatusCode::kNotFound) return folder;
  }
  auto start = std::chrono::steady_clock::now();
  cv::setNumThreads(o.threads);

  // Where this input sits in the whole video.
  int64_t first_frame = 0, owned = -1, overlap = 0;
  double start_time = 0;
  Decoder::Options dopt;
  dopt.threads = o.threads;
  dopt.flag = "--input";
  std::optional<SegmentRef> seg;  // with --index
  if (!o.index_path.empty()) {
    auto found = FindSegment(o.index_path, o.input);
    if (!found.ok()) return found.status();
    seg = std::move(*found);
    first_frame = seg->entry.first_frame;
    owned = seg->entry.frame_count;
    overlap = seg->entry.overlap_frames;
    start_time = seg->entry.start_time;
    dopt.rotation = seg->index.rotation;
    dopt.skip_before_pts = seg->entry.SkipBeforePts();
    dopt.leading_packets = seg->entry.leading_frames;
  }
  auto dec = Decoder::Open(o.input, dopt);
  if (!dec.ok()) return dec.status();
  auto detector = MakeDetector(o.detector);
  if (!detector.ok()) return detector.status();
  int64_t sum_preroll = 0;  // frames of the previous segment decoded to warm the detector

  const StreamInfo& info = (*dec)->info();
  int64_t expected = owned >= 0 ? owned + overlap : info.header_frames;
  if (expected <= 0 && info.header_duration > 0 && info.avg_fps > 0)
    expected = std::llround(info.header_duration * info.avg_fps);
  if (o.max_frames >= 0 && (expected <= 0 || expected > o.max_frames)) expected = o.max_frames;

  // A stateful detector's model at a frame is what a one-segment run would have
  // built from every frame before it. MOG2's own schedule weighs the n-th frame
  // it is shown 1/min(2n, history); the rate is set from the frame's global
  // number instead, so a segment's frames get the weights they get in one run.
  const bool stateful = (*detector)->Stateful();
  const int history = std::max(2, o.detector.mog2_history);
  // The weight of the frames [g - span*stride, g] shown as the one frame g.
  auto rate = [&](int64_t global, int span) {
    double keep = 1;
    int64_t n = global / o.stride + 1;  // 1-based count of the frames a one-segment run shows
    for (int m = 0; m < span && n - m >= 1; ++m) keep *= 1 - 1.0 / std::min<int64_t>(2 * (n - m), history);
    // MOG2 initialises on the first frame itself, and a rate of 1 would make it
    // start again.
    return n <= 1 ? -1.0 : std::min(0.999, 1 - keep);
  };
  // It starts blind: warm it on the frames before this segment, from the earlier
  // segments' files, every preroll_step-th, reporting nothing for them, so a cut
  // neither makes people vanish nor leaves ghosts of people who stood still.
  const int64_t preroll = o.preroll_frames >= 0 ? o.preroll_frames : int64_t{3} * history * o.stride;
  bool own_schedule = first_frame > 0;  // a later segment with no pre-roll learns from scratch
  if (stateful && seg && preroll > 0 && first_frame > 0) {
    const int step = std::max(1, o.preroll_step) * o.stride;
    const int64_t from = std::max<int64_t>(0, first_frame - preroll);
    int64_t first_sample = -1;  // MOG2 is re-initialised on it
    for (const SegmentEntry& prev : seg->index.segments) {
      if (prev.first_frame >= first_frame || prev.first_frame + prev.frame_count <= from) continue;
      Decoder::Options popt = dopt;
      popt.skip_before_pts = prev.SkipBeforePts();
      popt.leading_packets = prev.leading_frames;
      auto pdec = Decoder::Open(DirName(o.index_path) + "/" + prev.file, popt);
      if (!pdec.ok()) return Status(pdec.status().code(), "pre-roll from an earlier segment: " + pdec.status().message());
      // Samples on a grid of global numbers that ends at the last frame a
      // one-segment run would show (a multiple of the stride) before this segment.
      const int64_t last = (first_frame - 1) / o.stride * o.stride;
      auto sampled = [&](int64_t g) { return g >= from && g <= last && (last - g) % step == 0; };
      VideoFrame pf;
      for (;;) {
        int64_t next = (*pdec)->next_index();
        bool want = next < prev.frame_count && sampled(prev.first_frame + next);
        auto more = (*pdec)->Next(&pf, want);
        if (!more.ok()) return more.status();
        if (!*more || pf.index >= prev.frame_count) break;
        ++sum_preroll;
        int64_t g = prev.first_frame + pf.index;
        if (!want || pf.bgr.empty()) continue;
        if (first_sample < 0) first_sample = g;
        own_schedule = false;
        (*detector)->SetLearningRate(g == first_sample ? 1.0 : rate(g, step / o.stride));
        NS_RETURN_IF_ERROR((*detector)->Learn(pf.bgr));
      }
    }
  }

  Checkpoint ck;
  auto restored = LoadCheckpoint(o, &ck);
  if (!restored.ok()) return restored.status();
  std::vector<std::string> lines = std::move(*restored);

  Progress progress(o.progress_file);
  DetectSummary sum;
  sum.resumed_from = ck.next_local;
  sum.preroll_frames = sum_preroll;
  if (ck.next_local > 0)
    progress.Report(expected > 0 ? double(ck.next_local) / expected : 0,
                    "resumed at frame " + std::to_string(ck.next_local));
  VideoFrame frame;
  int64_t local = 0;
  int64_t processed_first = -1, processed_last = -1;
  int width = 0, height = 0;
  // Only frames the detector will see are converted to BGR.
  auto want = [&, resume_at = ck.next_local](int64_t next) {
    return (first_frame + next) % o.stride == 0 && (next >= resume_at || stateful);
  };
  double detector_cpu = 0;
  std::optional<Prefetcher> prefetch;
  if (o.prefetch > 0) prefetch.emplace(dec->get(), want, o.prefetch);
  // A segment's file may decode frames past its overlap (an open GOP's next
  // keyframe): they are the next segment's and not numbered here.
  while ((o.max_frames < 0 || local < o.max_frames) && (owned < 0 || local < owned + overlap)) {
    auto more = prefetch ? prefetch->Next(&frame) : (*dec)->Next(&frame, want((*dec)->next_index()));
    if (!more.ok()) return more.status();
    if (!*more) break;
    local = frame.index;
    int64_t global = first_frame + local;
    if (!frame.bgr.empty()) {
      width = frame.bgr.cols;
      height = frame.bgr.rows;
    }
    bool sampled = global % o.stride == 0;
    if (processed_first < 0) processed_first = global;
    processed_last = global;
    if (stateful) (*detector)->SetLearningRate(own_schedule ? -1 : rate(global, 1));
    if (local < ck.next_local) {  // already done by an earlier attempt
      if (sampled && stateful) NS_RETURN_IF_ERROR((*detector)->Learn(frame.bgr));
      ++local;
      continue;
    }
    if (sampled) {
      double t0 = ThreadCpuSeconds();
      auto dets = (*detector)->Detect(frame.bgr);
      detector_cpu += ThreadCpuSeconds() - t0;
      if (!dets.ok()) return Status(dets.status().code(), o.input + ": frame " + std::to_string(global) + ": " + dets.status().message());
      for (Detection& d : *dets) {
        d.frame = global;
        d.time = start_time + frame.time;
        lines.push_back(ToJsonLine(d));
      }
      ++sum.frames_processed;
    }
    ++local;
    ++sum.frames_decoded;
    bool stopping = (o.stop && o.stop->load()) || (o.stop_after >= 0 && local >= o.stop_after);
    if (local % o.checkpoint_every == 0 || stopping) {
      ck.next_local = local;
      ck.detections = static_cast<int64_t>(lines.size());
      NS_RETURN_IF_ERROR(SaveCheckpoint(o, ck, lines));
      progress.Report(expected > 0 ? double(local) / expected : 0,
                      "frame " + std::to_string(local) + (expected > 0 ? "/" + std::to_string(expected) : ""));
    }
    if (stopping) {
      return Status::Unavailable(o.input + ": stopped at frame " + std::to_string(local) +
                                 (o.checkpoint_dir.empty() ? " (no checkpoint folder)"
                                                           : "; checkpoint written, rerun resumes there"));
    }
  }
  double decode_cpu = prefetch ? prefetch->decode_seconds() : 0;
  prefetch.reset();  // the decoder's counters are read below
  if (local == 0) return Status::Invalid(o.input + ": no video frame could be decoded");

  // A segment knows how many frames it holds (the decoder may have read past
  // them); a whole file counts packets that did not decode.
  // (--max-frames stops early: the decoder has read ahead, nothing was lost.)
  sum.frames_lost = owned >= 0 || o.max_frames >= 0 ? 0 : (*dec)->frames_lost();
  if (expected > 0 && o.max_frames < 0 && expected > local) sum.frames_lost = std::max(sum.frames_lost, expected - local);
  sum.detections = static_cast<int64_t>(lines.size());
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  sum.fps = sum.seconds > 0 ? sum.frames_processed / sum.seconds : 0;

  NS_RETURN_IF_ERROR(MakeDirs(o.out_dir));
  std::string all;
  for (const auto& l : lines) all += l + "\n";
  NS_RETURN_IF_ERROR(WriteFileAtomic(o.out_dir + "/detections.jsonl", all));
  nlohmann::json meta = {
      {"input", BaseName(o.input)},
      {"detector", o.detector.kind},
      {"stride", o.stride},
      {"first_frame", first_frame},
      {"owned_frames", owned >= 0 ? owned : local},
      {"processed_first", processed_first},
      {"processed_last", processed_last},
      {"frames_decoded", local},
      {"frames_lost", sum.frames_lost},
      {"decode_errors", (*dec)->decode_errors()},
      {"detections", sum.detections},
      {"resumed_from", sum.resumed_from},
      {"preroll_frames", sum.preroll_frames},
      // Per-stage CPU seconds (thread clocks) for benchmarks: decoding and colour
      // conversion on the prefetch thread, the detector on this one (pre-roll
      // and resumed frames not included). 0 when decoding inline.
      {"stage_cpu_seconds", {{"decode", std::round(decode_cpu * 1000) / 1000},
                             {"detector", std::round(detector_cpu * 1000) / 1000}}},
      {"seconds", sum.seconds},
      // Processing speed, not the video's frame rate (probe.json has that).
      {"processed_fps", sum.fps},
      {"model", o.detector.kind == "dnn" ? BaseName(o.detector.model) : ""},
      {"width", width},
      {"height", height}};
  NS_RETURN_IF_ERROR(WriteFileAtomic(o.out_dir + "/detect.json", meta.dump(2) + "\n"));
  progress.Report(1.0, "done: " + std::to_string(sum.detections) + " detections");
  return sum;
}

}  // namespace ns::video
