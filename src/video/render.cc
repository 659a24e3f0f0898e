#include "video/render.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>

#include <opencv2/imgproc.hpp>

#include "util/fs.h"
#include "video/decoder.h"
#include "video/encoder.h"
#include "video/image_file.h"
#include "video/input_file.h"
#include "video/motion.h"
#include "video/prefetch.h"
#include "video/segment_index.h"
#include "video/track.h"

namespace ns::video {
namespace {

// Per-pixel median of equally sized 8-bit BGR frames; empty for none.
cv::Mat MedianFrame(const std::vector<cv::Mat>& frames) {
  if (frames.empty()) return cv::Mat();
  cv::Mat out(frames[0].size(), frames[0].type());
  std::vector<uchar> v(frames.size());
  const size_t n = frames.size();
  for (int y = 0; y < out.rows; ++y) {
    for (int x = 0; x < out.cols * out.channels(); ++x) {
      for (size_t k = 0; k < n; ++k) v[k] = frames[k].ptr<uchar>(y)[x];
      std::nth_element(v.begin(), v.begin() + n / 2, v.end());
      out.ptr<uchar>(y)[x] = v[n / 2];
    }
  }
  return out;
}

cv::Scalar FromHex(const std::string& hex, cv::Scalar fallback) {
  unsigned r = 0, g = 0, b = 0;
  if (hex.size() != 7 || std::sscanf(hex.c_str(), "#%02x%02x%02x", &r, &g, &b) != 3) return fallback;
  return cv::Scalar(b, g, r);
}

// Team colours are jersey colours; dark ones are lightened so boxes show on grass.
cv::Scalar Visible(cv::Scalar c) {
  double luma = 0.114 * c[0] + 0.587 * c[1] + 0.299 * c[2];
  if (luma >= 110) return c;
  double t = (110 - luma) / 110.0 * 0.8;
  return cv::Scalar(c[0] + (255 - c[0]) * t, c[1] + (255 - c[1]) * t, c[2] + (255 - c[2]) * t);
}

void DrawBox(cv::Mat& img, const TrackedBox& b, cv::Scalar c) {
  cv::Rect r(int(b.box.x), int(b.box.y), int(b.box.w), int(b.box.h));
  cv::rectangle(img, r, cv::Scalar(0, 0, 0), 3);
  cv::rectangle(img, r, c, 1 + (r.height > 120));
  std::string label = std::to_string(b.id);
  int base = 0;
  cv::Size ts = cv::getTextSize(label, cv::FONT_HERSHEY_SIMPLEX, 0.45, 1, &base);
  cv::Rect tag(r.x, std::max(0, r.y - ts.height - 6), ts.width + 6, ts.height + 6);
  cv::rectangle(img, tag, c, cv::FILLED);
  cv::putText(img, label, cv::Point(tag.x + 3, tag.y + ts.height + 2), cv::FONT_HERSHEY_SIMPLEX, 0.45,
              cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
}

Result<Heatmap> HeatmapFromJson(const std::string& path) {
  auto text = ReadSmallFile(path, "--analysis");
  if (!text.ok()) return text.status();
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  try {
    if (j.is_discarded()) throw std::runtime_error("not JSON");
    Heatmap h(j.at("cols").get<int>(), j.at("rows").get<int>(), j.at("x0").get<double>(),
              j.at("y0").get<double>(), j.at("width").get<double>(), j.at("height").get<double>());
    h.counts = j.at("counts").get<std::vector<double>>();
    if (h.counts.size() != static_cast<size_t>(h.cols) * h.rows) throw std::runtime_error("bad size");
    return h;
  } catch (const std::exception& e) {
    return Status::Invalid(path + ": not a heatmap: " + e.what());
  }
}

// What is drawn on each frame: the latest box of each track (held for `hold`
// frames) and a trail of foot points that fades when the player is not seen. The
// state depends only on the tracks, never on pixels, so a render of one segment
// replays the frames before it (Advance + EndFrame, no decoding) and draws exactly
// what a render of the whole video draws there.
class Overlay {
 public:
  Overlay(const std::map<int64_t, std::vector<TrackedBox>>& by_frame, const std::map<int, int>& team_of,
          const cv::Scalar team_colour[2], int hold, int trail)
      : by_frame_(by_frame), team_of_(team_of), colour_{team_colour[0], team_colour[1]}, hold_(hold),
        trail_(trail) {}

  void Advance(int64_t frame) {
    auto it = by_frame_.find(frame);
    current_ = it == by_frame_.end() ? nullptr : &it->second;
    if (current_) {
      for (const auto& b : *current_) {
        shown_[b.id] = b;
        auto& trail = trails_[b.id];
        trail.push_back(cv::Point(int(b.box.Cx()), int(b.box.y + b.box.h)));
        while (static_cast<int>(trail.size()) > trail_) trail.pop_front();
      }
    }
    for (auto sb = shown_.begin(); sb != shown_.end();)
      sb = frame - sb->second.frame > hold_ ? shown_.erase(sb) : std::next(sb);
  }

  void Draw(cv::Mat& img) const {
    for (const auto& [id, box] : shown_) DrawBox(img, box, ColourOf(id));
    for (const auto& [id, trail] : trails_) {
      cv::Scalar c = ColourOf(id);
      for (size_t i = 1; i < trail.size(); ++i) cv::line(img, trail[i - 1], trail[i], c, 2, cv::LINE_AA);
    }
  }

  // Trails of players not seen on this frame lose a point.
  void EndFrame() {
    for (auto tr = trails_.begin(); tr != trails_.end();) {
      bool seen = current_ && std::any_of(current_->begin(), current_->end(),
                                          [&](const TrackedBox& b) { return b.id == tr->first; });
      if (!seen && !tr->second.empty()) tr->second.pop_front();
      tr = tr->second.empty() ? trails_.erase(tr) : std::next(tr);
    }
  }

 private:
  cv::Scalar ColourOf(int id) const {
    auto tt = team_of_.find(id);
    int team = tt == team_of_.end() ? -1 : tt->second;
    return team == 0 || team == 1 ? Visible(colour_[team]) : cv::Scalar(200, 200, 200);
  }

  const std::map<int64_t, std::vector<TrackedBox>>& by_frame_;
  const std::map<int, int>& team_of_;
  cv::Scalar colour_[2];
  int hold_;
  int trail_;
  const std::vector<TrackedBox>* current_ = nullptr;
  std::map<int, TrackedBox> shown_;  // latest box per track
  std::map<int, std::deque<cv::Point>> trails_;
};

}  // namespace

Result<RenderSummary> RunRender(const RenderOptions& o) {
  if (o.out_dir.empty()) return Status::Invalid("no output folder: pass --out or set NIGHTSHIFT_OUTPUT_DIR");
  std::string tracks_path = IsDirectory(o.tracks) ? o.tracks + "/tracks.jsonl" : o.tracks;
  auto boxes = ReadTracks(tracks_path, "--tracks");
  if (!boxes.ok()) return boxes.status();
  std::map<int64_t, std::vector<TrackedBox>> by_frame;
  for (const auto& b : *boxes) by_frame[b.frame].push_back(b);

  // Team of each track and team colours, from the analysis if given.
  std::map<int, int> team_of;
  std::vector<std::pair<int, Heatmap>> heatmaps;
  bool image_heatmaps = false;  // heatmaps in image pixels: drawn over a frame
  cv::Scalar team_colour[2] = {cv::Scalar(255, 80, 0), cv::Scalar(0, 80, 255)};
  RenderSummary sum;
  NS_RETURN_IF_ERROR(MakeDirs(o.out_dir));
  if (!o.analysis.empty()) {
    NS_RETURN_IF_ERROR(CheckFolder(o.analysis, "--analysis", "the analyse step's folder"));
    auto text = ReadSmallFile(o.analysis + "/summary.json", "--analysis");
    if (!text.ok() && text.status().code() == StatusCode::kNotFound)
      return Status::NotFound(o.analysis + ": no summary.json (run analyse first)");
    if (!text.ok()) return text.status();
    nlohmann::json s = nlohmann::json::parse(*text, nullptr, false);
    if (s.is_discarded()) return Status::Invalid(o.analysis + "/summary.json: not valid JSON");
    for (const auto& t : s.value("tracks", nlohmann::json::array())) team_of[t.value("id", 0)] = t.value("team", -1);
    for (const auto& t : s.value("teams", nlohmann::json::array())) {
      int k = t.value("team", -1);
      if (k == 0 || k == 1) team_colour[k] = FromHex(t.value("colour", ""), team_colour[k]);
    }
    // -1: every player (heatmap_all), written whether or not there are teams.
    for (int k = -1; k < 2; ++k) {
      std::string path = o.analysis + (k < 0 ? std::string("/heatmap_all.json")
                                             : "/heatmap_team" + std::to_string(k) + ".json");
      if (!PathExists(path)) continue;
      auto h = HeatmapFromJson(path);
      if (!h.ok()) return h.status();
      heatmaps.push_back({k, std::move(*h)});
    }
    image_heatmaps = s.value("units", "px") == "px";
  }

  // With an index, `video` is one segment: render the frames it owns, numbered
  // globally, so the segments' videos join into the whole (the `concat` step).
  int64_t first_frame = 0, owned = -1, video_frames = -1;
  double fps = 0, start_time = 0;
  Decoder::Options dopt;
  dopt.threads = o.threads;
  dopt.flag = "--input";
  if (!o.index_path.empty()) {
    auto seg = FindSegment(o.index_path, o.video);
    if (!seg.ok()) return seg.status();
    first_frame = seg->entry.first_frame;
    owned = seg->entry.frame_count;
    video_frames = seg->index.frame_count;
    fps = seg->index.fps;
    start_time = seg->entry.start_time;
    dopt.rotation = seg->index.rotation;
    dopt.skip_before_pts = seg->entry.SkipBeforePts();
    dopt.leading_packets = seg->entry.leading_frames;
  }
  auto dec = Decoder::Open(o.video, dopt);
  if (!dec.ok()) return dec.status();
  if (fps <= 0) fps = (*dec)->info().avg_fps > 0 ? (*dec)->info().avg_fps : (*dec)->info().header_fps;
  int hold = o.hold;
  if (hold < 0) {  // the frame step of the tracks: boxes stay up between sampled frames
    hold = 0;
    std::map<int, int64_t> last;
    for (const auto& b : *boxes) {
      auto it = last.find(b.id);
      if (it != last.end() && b.frame > it->second)
        hold = hold == 0 ? int(b.frame - it->second) : std::min<int>(hold, int(b.frame - it->second));
      last[b.id] = b.frame;
    }
    hold = std::max(0, hold - 1);
  }
  Overlay overlay(by_frame, team_of, team_colour, hold, o.trail);
  for (int64_t g = 0; g < first_frame; ++g) {  // the frames before this segment, without pixels
    overlay.Advance(g);
    overlay.EndFrame();
  }
  // The heatmaps' background: the per-pixel median of frames sampled across
  // the piece (one every `every` frames, at most kSamples), so people who move
  // vanish from it -- not the first frame, with whoever stood there.
  constexpr int kSamples = 15;
  int64_t every = std::max<int64_t>(1, (owned > 0 ? owned : 300) / kSamples);
  std::vector<cv::Mat> samples;
  std::unique_ptr<Encoder> enc;
  double draw_cpu = 0, encode_cpu = 0;  // this thread's CPU seconds per stage
  VideoFrame f;
  Prefetcher prefetch(dec->get(), [](int64_t) { return true; }, 4);
  while ((o.max_frames < 0 || sum.frames < o.max_frames) && (owned < 0 || sum.frames < owned)) {
    auto more = prefetch.Next(&f);
    if (!more.ok()) return more.status();
    if (!*more) break;
    if (!enc) {
      auto e = Encoder::Open(o.out_dir + "/annotated.mp4", f.bgr.cols, f.bgr.rows, fps, o.threads, o.preset);
      if (!e.ok()) return e.status();
      enc = std::move(*e);
    }
    try {
      if (first_frame == 0 && !heatmaps.empty() && f.index % every == 0 &&
          static_cast<int>(samples.size()) < kSamples) {
        samples.push_back(f.bgr.clone());  // before the overlay is drawn on it
      }
      double t0 = ThreadCpuSeconds();
      overlay.Advance(first_frame + f.index);
      overlay.Draw(f.bgr);
      draw_cpu += ThreadCpuSeconds() - t0;
    } catch (const cv::Exception& e) {
      return Status::Internal(std::string("drawing failed: ") + e.what());
    }
    overlay.EndFrame();
    // The source's own times, from the piece's first frame: a variable frame
    // rate stays as it was (concat places the piece at its start_time).
    double t1 = ThreadCpuSeconds();
    NS_RETURN_IF_ERROR(enc->Write(f.bgr, f.time));
    encode_cpu += ThreadCpuSeconds() - t1;
    ++sum.frames;
  }
  if (!enc) return Status::Invalid(o.video + ": no video frame could be decoded");
  double t2 = ThreadCpuSeconds();
  NS_RETURN_IF_ERROR(enc->Finish());
  encode_cpu += ThreadCpuSeconds() - t2;
  const double decode_cpu = prefetch.decode_seconds();
  sum.codec = enc->codec();
  if (first_frame > 0) heatmaps.clear();  // the piece that starts the video writes them
  cv::Mat background = MedianFrame(samples);
  for (const auto& [k, h] : heatmaps) {
    std::string path = o.out_dir + (k < 0 ? std::string("/heatmap_all.png") : "/heatmap_team" + std::to_string(k) + ".png");
    cv::Mat img;
    try {
      img = h.Render(16);
      if (image_heatmaps && !background.empty()) {  // over the empty scene, so places are recognisable
        cv::Mat heat;
        cv::resize(img, heat, background.size());
        cv::addWeighted(background, 0.45, heat, 0.55, 0, img);
      }
    } catch (const cv::Exception& e) {
      return Status::Internal(path + ": cannot draw the heatmap: " + e.what());
    }
    NS_RETURN_IF_ERROR(WriteImage(path, img));
    ++sum.heatmaps;
  }
  // owned_frames and video_frames let concat check that the pieces cover the whole
  // video; frames is what decoded (fewer than owned when frames were lost).
  const bool whole = owned < 0 && o.max_frames < 0;
  nlohmann::json meta = {{"input", BaseName(o.video)},
                         {"first_frame", first_frame},
                         {"owned_frames", owned >= 0 ? owned : sum.frames},
                         {"video_frames", video_frames >= 0 ? video_frames : (whole ? sum.frames : -1)},
                         {"frames", sum.frames},
                         {"fps", fps},
                         {"start_time", start_time},  // seconds into the video where this piece starts
                         {"codec", sum.codec},
                         {"heatmaps", sum.heatmaps},
                         // Per-stage CPU seconds (thread clocks) for benchmarks;
                         // encoder threads beyond this one are not counted.
                         {"stage_cpu_seconds", {{"decode", std::round(decode_cpu * 1000) / 1000},
                                                {"draw", std::round(draw_cpu * 1000) / 1000},
                                                {"encode", std::round(encode_cpu * 1000) / 1000}}}};
  NS_RETURN_IF_ERROR(WriteFileAtomic(o.out_dir + "/render.json", meta.dump(2) + "\n"));
  return sum;
}

}  // namespace ns::video
