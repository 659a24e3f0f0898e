// nightshift-video: the video steps of a nightshift pipeline (see docs/video.md).
// Thin: parses flags per subcommand and calls ns_video. Exit codes: 0 ok,
// 2 bad input (including a FIFO, device or folder given for a file, or the
// reverse: ns_video opens every input through video/input_file.h), 75 retryable
// (stopped by SIGTERM after a checkpoint), 1 other (I/O errors reading or writing).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <malloc.h>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "util/fs.h"
#include "util/strings.h"
#include "video/analyse.h"
#include "video/calibrate.h"
#include "video/av_error.h"
#include "video/concat.h"
#include "video/detect.h"
#include "video/input_file.h"
#include "video/probe.h"
#include "video/render.h"
#include "video/report.h"
#include "video/segment.h"
#include "video/track.h"

namespace {

using ns::Status;
namespace v = ns::video;

std::atomic<bool> g_stop{false};
void OnSigterm(int) { g_stop.store(true); }

std::string EnvOr(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

int Fail(const Status& st) {
  std::fprintf(stderr, "nightshift-video: %s\n", st.message().c_str());
  return v::ExitCodeFor(st);
}

// Resolves --out (default $NIGHTSHIFT_OUTPUT_DIR) and creates it.
Status OutDir(std::string* out) {
  if (out->empty()) *out = EnvOr("NIGHTSHIFT_OUTPUT_DIR");
  if (out->empty()) return Status::Invalid("no output folder: pass --out DIR or set NIGHTSHIFT_OUTPUT_DIR");
  return ns::MakeDirs(*out);
}

void AddOut(CLI::App* app, std::string* out) {
  app->add_option("--out", *out, "Output folder (default: $NIGHTSHIFT_OUTPUT_DIR)");
}

}  // namespace

int main(int argc, char** argv) {
  // OpenCV DNN and HOG allocate and free megabyte buffers every frame. With glibc's
  // defaults those are returned to the kernel and faulted back in each time: on
  // Yolo-Fastest that was half the run (180k page faults for 300 frames; 7.6 s
  // against 3.9 s with these two settings). Keep freed memory for reuse instead.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  CLI::App app{"nightshift-video: video steps for nightshift pipelines (probe, segment, detect, "
               "track, analyse, calibrate, render, concat, report).\nExit codes: 0 ok, 2 bad input (a missing, empty "
               "or undecodable file, a FIFO or device given for a file, a bad flag), 75 retryable (stopped by "
               "SIGTERM, checkpoint written), 1 other failure (e.g. an I/O error reading or writing)."};
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "Show FFmpeg's own log messages");

  // probe
  std::string probe_in, probe_out;
  bool probe_decode = false;
  CLI::App* probe = app.add_subcommand("probe", "Measure a video: container, codec, size, real fps, "
                                                "duration, frame count, keyframes, rotation. "
                                                "Prints JSON and writes probe.json.");
  probe->add_option("--input", probe_in, "Video file")->required();
  probe->add_flag("--decode", probe_decode, "Decode every frame to count frames (default: only when "
                                            "the header's count disagrees with the packets)");
  probe->add_option("--out", probe_out, "Output folder (default: $NIGHTSHIFT_OUTPUT_DIR; if neither, "
                                        "only print)");

  // segment
  std::string seg_in, seg_out;
  v::SegmentOptions seg_opt;
  CLI::App* segment = app.add_subcommand("segment", "Split at keyframes by stream copy (no re-encode) "
                                                    "into seg_NNNN.mkv plus segments.json.");
  segment->add_option("--input", seg_in, "Video file")->required();
  segment->add_option("--seconds", seg_opt.seconds, "Target segment length; cuts wait for the next "
                                                    "keyframe")->capture_default_str();
  segment->add_option("--overlap", seg_opt.overlap, "Seconds of the next segment to append (rounded "
                                                    "up to whole keyframe intervals)")->capture_default_str();
  AddOut(segment, &seg_out);

  // detect
  v::DetectOptions det;
  std::string det_tiles = "1x1", det_input_size = "320x320", det_mean = "0,0,0", det_classes, det_names;
  bool det_bgr = false;
  CLI::App* detect = app.add_subcommand("detect", "Detect people (and ball, with a model that has it) "
                                                  "and write detections.jsonl + detect.json.");
  detect->add_option("--input", det.input, "A segment file (with --index) or a whole video")->required();
  detect->add_option("--index", det.index_path, "segments.json, to number frames over the whole video");
  detect->add_option("--detector", det.detector.kind, "hog | mog2 | dnn")->capture_default_str();
  detect->add_option("--stride", det.stride, "Run on every N-th global frame")->capture_default_str();
  detect->add_option("--threads", det.threads, "Decoder and OpenCV threads")->capture_default_str();
  detect->add_option("--prefetch", det.prefetch, "Frames decoded ahead on a thread of their own, "
                                                 "overlapping decode with detection; 0 decodes inline")
      ->capture_default_str();
  detect->add_option("--checkpoint-every", det.checkpoint_every,
                     "Frames between checkpoints into $NIGHTSHIFT_CHECKPOINT_DIR")->capture_default_str();
  detect->add_option("--checkpoint-dir", det.checkpoint_dir, "Checkpoint folder (default: "
                                                             "$NIGHTSHIFT_CHECKPOINT_DIR)");
  detect->add_option("--max-frames", det.max_frames, "Stop after N frames of the input (0..N-1)");
  detect->add_option("--preroll", det.preroll_frames,
                     "mog2 (stateful): learn the background from up to N frames before the segment (earlier "
                     "segments' files, with --index) and report nothing for them; -1: 3x --mog2-history; 0: none")
      ->capture_default_str();
  detect->add_option("--preroll-step", det.preroll_step,
                     "mog2: learn every N-th frame of the pre-roll, weighted as the N frames it stands for")
      ->capture_default_str();
  detect->add_option("--stop-after", det.stop_after, "Testing aid: behave as if SIGTERM arrived after N frames");
  detect->add_option("--confidence", det.detector.confidence, "Minimum score (default: hog 0, mog2 0, dnn 0.4)");
  detect->add_option("--nms", det.detector.nms, "NMS IoU threshold")->capture_default_str();
  detect->add_option("--hog-scale", det.detector.hog_scale, "HOG pyramid scale step")->capture_default_str();
  detect->add_option("--min-area", det.detector.min_area, "mog2: smallest blob in pixels")->capture_default_str();
  detect->add_option("--mog2-history", det.detector.mog2_history,
                     "mog2: frames the background model remembers")
      ->check(CLI::Range(2, 1000000))
      ->capture_default_str();
  detect->add_option("--model", det.detector.model, "dnn: .weights (Darknet, with --config) or .onnx");
  detect->add_option("--config", det.detector.config, "dnn: Darknet .cfg");
  std::string det_model_dir;
  detect->add_option("--model-dir", det_model_dir,
                     "dnn: a model folder, e.g. a registered model (default: $NIGHTSHIFT_MODEL_DIR_DETECTOR, "
                     "with settings from $NIGHTSHIFT_MODEL_META_DETECTOR; docs/models.md)");
  detect->add_option("--decode", det.detector.decode, "dnn output layout: yolo | fastestdet")->capture_default_str();
  detect->add_option("--input-size", det_input_size, "dnn input WxH")->capture_default_str();
  detect->add_option("--scale", det.detector.scale, "dnn pixel scale")->capture_default_str();
  detect->add_option("--mean", det_mean, "dnn mean to subtract, B,G,R")->capture_default_str();
  detect->add_flag("--bgr", det_bgr, "dnn: feed BGR (default: swap to RGB)");
  detect->add_option("--classes", det_classes, "dnn: keep only these class ids, e.g. 0,32");
  detect->add_option("--names", det_names, "dnn: class names file, one a line (e.g. coco.names)");
  detect->add_option("--tiles", det_tiles, "dnn: CxR tiles (10% overlap) plus the whole frame, for small "
                                           "players")->capture_default_str();
  AddOut(detect, &det.out_dir);

  // track
  v::TrackStepOptions trk;
  CLI::App* track = app.add_subcommand("track", "Join detections (all segments) into tracks with stable "
                                                "ids; writes tracks.jsonl and tracks.json.");
  track->add_option("--input", trk.input, "The detect step's folder (one folder per segment), one "
                                          "detect folder, or a detections.jsonl")->required();
  track->add_option("--stride", trk.stride, "Stride of a bare .jsonl input")->capture_default_str();
  track->add_option("--min-hits", trk.tracker.min_hits, "Matched frames before a track is born")->capture_default_str();
  track->add_option("--max-misses", trk.tracker.max_misses, "Processed frames without a match before a "
                                                            "track dies")->capture_default_str();
  track->add_option("--iou-gate", trk.tracker.iou_gate, "Smallest IoU to match")->capture_default_str();
  track->add_option("--max-distance", trk.tracker.max_distance, "Or largest centre distance, in box "
                                                                "heights")->capture_default_str();
  track->add_option("--join-gap", trk.join.max_gap, "Join a track to one that starts within this many seconds "
                                                  "of its end where its motion leads (a person lost for a moment); "
                                                  "0: never")->capture_default_str();
  track->add_option("--join-distance", trk.join.max_distance, "How far from the motion's prediction, in box "
                                                            "heights, a joined fragment may start")
      ->capture_default_str();
  track->add_option("--class", trk.tracker.cls, "Classes to track, comma-separated, e.g. "
                                                "\"person,sports ball\" (empty: all as one)")->capture_default_str();
  AddOut(track, &trk.out_dir);

  // analyse
  v::AnalyseOptions ana;
  std::string ana_pitch = "105x68";
  CLI::App* analyse = app.add_subcommand("analyse", "Teams by jersey colour, distance and speed per track, "
                                                    "per-team heatmaps; writes summary.json, heatmap_team<k>.json, "
                                                    "thumbs/.");
  analyse->add_option("--input", ana.tracks, "The track step's folder or a tracks.jsonl")->required();
  analyse->add_option("--video", ana.video, "The source video (to sample jersey colours and thumbnails)");
  analyse->add_option("--homography", ana.homography, "3x3 image-pixels -> pitch-metres matrix (JSON or 9 "
                                                      "numbers): distances and speeds in metres");
  analyse->add_option("--pitch", ana_pitch, "Pitch size in metres WxH (heatmap extent with --homography)")
      ->capture_default_str();
  analyse->add_option("--min-boxes", ana.min_boxes, "Shorter tracks are left out")->capture_default_str();
  analyse->add_option("--samples", ana.samples, "Boxes sampled per track for its colour")->capture_default_str();
  analyse->add_option("--threads", ana.threads, "Decoder threads")->capture_default_str();
  analyse->add_option("--seek-gap", ana.seek_gap, "Seek to the keyframe before the next sampled frame when "
                                                  "that skips at least N frames; 0 decodes every frame")
      ->capture_default_str();
  AddOut(analyse, &ana.out_dir);

  // calibrate
  v::CalibrateOptions cal;
  std::string cal_pitch = "105x68";
  CLI::App* calibrate = app.add_subcommand(
      "calibrate", "The pitch homography from 4 or more image/pitch point pairs: writes homography.json "
                   "(for analyse --homography: metres) and, with --video, calibration.png to check it by eye.");
  calibrate->add_option("--points", cal.points, "One pair per line: image_x image_y pitch_x pitch_y (pixels, "
                                                "then metres; spaces or commas; # comments), or a JSON array "
                                                "of {\"image\": [x, y], \"pitch\": [x, y]}")
      ->required();
  calibrate->add_option("--video", cal.video, "Draw the fitted pitch and the points on a frame of this video");
  calibrate->add_option("--time", cal.time, "Seconds into --video for that frame")->capture_default_str();
  calibrate->add_option("--pitch", cal_pitch, "Pitch size in metres WxH, the outline drawn")->capture_default_str();
  AddOut(calibrate, &cal.out_dir);

  // render
  v::RenderOptions ren;
  CLI::App* render = app.add_subcommand("render", "Annotated MP4 (boxes, ids, team colours, trails) and "
                                                  "heatmap PNGs.");
  render->add_option("--input", ren.video, "The source video, or one segment of it (with --index)")->required();
  render->add_option("--index", ren.index_path, "segments.json: render only the frames the segment owns, "
                                                "numbered over the whole video (join them with concat)");
  render->add_option("--tracks", ren.tracks, "The track step's folder or a tracks.jsonl")->required();
  render->add_option("--analysis", ren.analysis, "The analyse step's folder (team colours, heatmaps)");
  render->add_option("--trail", ren.trail, "Trail length in frames")->capture_default_str();
  render->add_option("--threads", ren.threads, "Decoder and encoder threads")->capture_default_str();
  render->add_option("--max-frames", ren.max_frames, "Render only the first N frames");
  render->add_option("--preset", ren.preset, "x264 preset: ultrafast encodes a 720p frame about 2.5x faster "
                                             "than veryfast, in about 4x the bytes")->capture_default_str();
  AddOut(render, &ren.out_dir);

  // concat
  v::ConcatOptions cat;
  CLI::App* concat = app.add_subcommand("concat", "Join the annotated videos of render --index (one per "
                                                  "segment) into one annotated.mp4, by stream copy.");
  concat->add_option("--input", cat.input, "The render step's folder (one sub-folder per segment)")->required();
  AddOut(concat, &cat.out_dir);

  // report
  v::ReportOptions rep;
  CLI::App* report = app.add_subcommand("report", "One self-contained HTML page (index.html): summary, "
                                                  "heatmaps, a table per player, thumbnails, video link.");
  report->add_option("--input", rep.analysis, "The analyse step's folder")->required();
  report->add_option("--render", rep.render, "The render step's folder (heatmap PNGs, annotated.mp4)");
  report->add_option("--probe", rep.probe, "probe.json or the probe step's folder");
  report->add_option("--detect", rep.detect,
                     "The detect step's folder: the data-quality box names the detector and model and the frames lost");
  report->add_option("--video-link", rep.video_link, "Link to the annotated video (default "
                                                     "../<render folder>/annotated.mp4)");
  report->add_option("--cost", rep.cost, "What the run cost: the JSON of `nightshift cost RUN --json`");
  report->add_option("--title", rep.title, "Page title")->capture_default_str();
  AddOut(report, &rep.out_dir);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help exits 0; a bad or missing flag is bad input (2), not CLI11's own codes.
    return app.exit(e) == 0 ? 0 : v::kExitBadInput;
  }
  v::SetFfmpegLogging(verbose);

  if (*probe) {
    auto r = v::Probe(probe_in, probe_decode);
    if (!r.ok()) return Fail(r.status());
    std::string text = v::ToJson(*r).dump(2) + "\n";
    std::fputs(text.c_str(), stdout);
    if (probe_out.empty()) probe_out = EnvOr("NIGHTSHIFT_OUTPUT_DIR");
    if (!probe_out.empty()) {
      Status st = ns::MakeDirs(probe_out);
      if (st.ok()) st = ns::WriteFileAtomic(probe_out + "/probe.json", text);
      if (!st.ok()) return Fail(st);
    }
    if (r->frames_lost > 0)
      std::fprintf(stderr, "nightshift-video: %s: %lld frames could not be decoded\n", probe_in.c_str(),
                   static_cast<long long>(r->frames_lost));
    return 0;
  }
  if (*calibrate) {
    if (std::sscanf(cal_pitch.c_str(), "%lfx%lf", &cal.pitch_width, &cal.pitch_height) != 2 ||
        !(cal.pitch_width > 0) || !(cal.pitch_height > 0) || !(cal.pitch_width <= 10000) ||
        !(cal.pitch_height <= 10000))
      return Fail(Status::Invalid("--pitch must be WxH in metres (at most 10000), like 105x68, not '" + cal_pitch + "'"));
    Status st = OutDir(&cal.out_dir);
    if (!st.ok()) return Fail(st);
    auto r = v::RunCalibrate(cal);
    if (!r.ok()) return Fail(r.status());
    std::printf("homography from %zu pairs: rms error %.3f m, worst %.3f m -> %s/homography.json\n",
                r->residuals.size(), r->rms, r->max, cal.out_dir.c_str());
    // A pair far off the others' fit is usually a mistyped or swapped point.
    if (r->residuals.size() > 4 && r->max > 1.0)
      std::fprintf(stderr, "nightshift-video: warning: a pair is %.2f m off the fit (residuals_m in "
                           "homography.json): check it\n", r->max);
    return 0;
  }
  if (*segment) {
    Status st = OutDir(&seg_out);
    if (!st.ok()) return Fail(st);
    auto r = v::SegmentVideo(seg_in, seg_out, seg_opt);
    if (!r.ok()) return Fail(r.status());
    std::printf("%zu segments, %lld frames -> %s\n", r->segments.size(),
                static_cast<long long>(r->frame_count), seg_out.c_str());
    return 0;
  }
  if (*detect) {
    Status st = OutDir(&det.out_dir);
    if (!st.ok()) return Fail(st);
    if (det.checkpoint_dir.empty()) det.checkpoint_dir = EnvOr("NIGHTSHIFT_CHECKPOINT_DIR");
    det.progress_file = EnvOr("NIGHTSHIFT_PROGRESS_FILE");
    if (det.detector.kind == "dnn" && det.detector.model.empty()) {
      // A model folder: the step's registered model `detector`, or --model-dir.
      if (det_model_dir.empty()) det_model_dir = EnvOr("NIGHTSHIFT_MODEL_DIR_DETECTOR");
      if (det_model_dir.empty()) {
        return Fail(Status::Invalid(
            "--detector dnn needs a model: --model FILE, --model-dir DIR, or a registered model the step pins "
            "as `detector` (models: {detector: NAME@VERSION}; see docs/models.md)"));
      }
      auto m = v::ModelFolderSettings(det_model_dir, EnvOr("NIGHTSHIFT_MODEL_META_DETECTOR"));
      if (!m.ok()) return Fail(m.status());
      det.detector.model = m->model;
      det.detector.config = m->config;
      auto given = [&](const char* flag) { return detect->count(flag) > 0; };
      if (!given("--input-size") && !m->input_size.empty()) det_input_size = m->input_size;
      if (!given("--scale") && m->scale > 0) det.detector.scale = m->scale;
      if (!given("--decode") && !m->decode.empty()) det.detector.decode = m->decode;
      if (!given("--bgr") && m->bgr) det_bgr = true;
      if (!given("--classes") && !m->classes.empty()) det_classes = m->classes;
      if (!given("--names") && !m->names.empty()) det_names = m->names;
      if (!given("--mean") && !m->mean.empty()) det_mean = m->mean;
      if (!given("--confidence") && m->confidence > 0) det.detector.confidence = m->confidence;
    }
    int w = 0, h = 0, tx = 0, ty = 0;
    if (std::sscanf(det_input_size.c_str(), "%dx%d", &w, &h) != 2)
      return Fail(Status::Invalid("--input-size must be WxH, not '" + det_input_size + "'"));
    if (std::sscanf(det_tiles.c_str(), "%dx%d", &tx, &ty) != 2)
      return Fail(Status::Invalid("--tiles must be CxR, not '" + det_tiles + "'"));
    double b = 0, g = 0, r = 0;
    if (std::sscanf(det_mean.c_str(), "%lf,%lf,%lf", &b, &g, &r) != 3)
      return Fail(Status::Invalid("--mean must be B,G,R, not '" + det_mean + "'"));
    det.detector.input_width = w;
    det.detector.input_height = h;
    det.detector.tiles_x = tx;
    det.detector.tiles_y = ty;
    det.detector.mean = cv::Scalar(b, g, r);
    det.detector.swap_rb = !det_bgr;
    for (const std::string& c : ns::Split(det_classes, ',')) {
      if (c.empty()) continue;
      try {
        det.detector.classes.push_back(std::stoi(c));
      } catch (const std::exception&) {
        return Fail(Status::Invalid("--classes must be ids like 0,32, not '" + det_classes + "'"));
      }
    }
    if (!det_names.empty()) {
      auto text = v::ReadSmallFile(det_names, "--names");
      if (!text.ok()) return Fail(text.status());
      for (const std::string& n : ns::Split(*text, '\n'))
        if (!ns::Trim(n).empty()) det.detector.names.emplace_back(ns::Trim(n));
    }
    std::signal(SIGTERM, OnSigterm);
    det.stop = &g_stop;
    auto r2 = v::RunDetect(det);
    if (!r2.ok()) return Fail(r2.status());
    std::printf("%lld frames, %lld processed, %lld detections, %.1f fps, %lld lost%s\n",
                static_cast<long long>(r2->frames_decoded), static_cast<long long>(r2->frames_processed),
                static_cast<long long>(r2->detections), r2->fps, static_cast<long long>(r2->frames_lost),
                r2->resumed_from > 0 ? (" (resumed at frame " + std::to_string(r2->resumed_from) + ")").c_str() : "");
    if (r2->frames_lost > 0)
      std::fprintf(stderr, "nightshift-video: %s: %lld frames could not be decoded\n", det.input.c_str(),
                   static_cast<long long>(r2->frames_lost));
    return 0;
  }
  if (*track) {
    Status st = OutDir(&trk.out_dir);
    if (!st.ok()) return Fail(st);
    auto r = v::RunTrack(trk);
    if (!r.ok()) return Fail(r.status());
    std::printf("%d segments, %lld frames, %lld detections -> %d tracks (%lld boxes)\n", r->segments,
                static_cast<long long>(r->frames), static_cast<long long>(r->detections), r->tracks,
                static_cast<long long>(r->boxes));
    return 0;
  }
  if (*analyse) {
    Status st = OutDir(&ana.out_dir);
    if (!st.ok()) return Fail(st);
    if (std::sscanf(ana_pitch.c_str(), "%lfx%lf", &ana.pitch_width, &ana.pitch_height) != 2 ||
        ana.pitch_width <= 0 || ana.pitch_height <= 0)
      return Fail(Status::Invalid("--pitch must be WxH in metres, not '" + ana_pitch + "'"));
    auto r = v::RunAnalyse(ana);
    if (!r.ok()) return Fail(r.status());
    if (r->teams_found) {
      std::printf("%d tracks: team 1 %d, team 2 %d (distances in %s; %lld seeks)\n", r->tracks, r->team_sizes[0],
                  r->team_sizes[1], r->units.c_str(), static_cast<long long>(r->seeks));
    } else {
      std::printf("%d tracks: no teams found: %s (distances in %s; %lld seeks)\n", r->tracks,
                  r->no_teams_reason.c_str(), r->units.c_str(), static_cast<long long>(r->seeks));
    }
    return 0;
  }
  if (*render) {
    Status st = OutDir(&ren.out_dir);
    if (!st.ok()) return Fail(st);
    auto r = v::RunRender(ren);
    if (!r.ok()) return Fail(r.status());
    std::printf("%lld frames -> %s/annotated.mp4 (%s), %d heatmaps\n", static_cast<long long>(r->frames),
                ren.out_dir.c_str(), r->codec.c_str(), r->heatmaps);
    return 0;
  }
  if (*concat) {
    Status st = OutDir(&cat.out_dir);
    if (!st.ok()) return Fail(st);
    auto r = v::RunConcat(cat);
    if (!r.ok()) return Fail(r.status());
    if (r->frames_lost > 0)
      std::fprintf(stderr, "nightshift-video: %s: %lld frames could not be decoded by render\n", cat.input.c_str(),
                   static_cast<long long>(r->frames_lost));
    std::printf("%d pieces, %lld frames -> %s/annotated.mp4, %d heatmaps\n", r->pieces,
                static_cast<long long>(r->frames), cat.out_dir.c_str(), r->heatmaps);
    return 0;
  }
  if (*report) {
    Status st = OutDir(&rep.out_dir);
    if (!st.ok()) return Fail(st);
    auto r = v::RunReport(rep);
    if (!r.ok()) return Fail(r.status());
    std::printf("report: %s\n", r->c_str());
    return 0;
  }
  return 1;
}
