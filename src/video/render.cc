#include "video/render.h"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "util/fs.h"
#include "video/decoder.h"
#include "video/encoder.h"
#include "video/motion.h"
#include "video/track.h"

namespace ns::video {
namespace {

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
  auto text = ReadFile(path);
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

}  // namespace

Result<RenderSummary> RunRender(const RenderOptions& o) {
  if (o.out_dir.empty()) return Status::Invalid("no output folder: pass --out or set NIGHTSHIFT_OUTPUT_DIR");
  std::string tracks_path = IsDirectory(o.tracks) ? o.tracks + "/tracks.jsonl" : o.tracks;
  auto boxes = ReadTracks(tracks_path);
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
    auto text = ReadFile(o.analysis + "/summary.json");
    if (!text.ok()) return Status::NotFound(o.analysis + ": no summary.json (run analyse first)");
    nlohmann::json s = nlohmann::json::parse(*text, nullptr, false);
    if (s.is_discarded()) return Status::Invalid(o.analysis + "/summary.json: not valid JSON");
    for (const auto& t : s.value("tracks", nlohmann::json::array())) team_of[t.value("id", 0)] = t.value("team", -1);
    for (const auto& t : s.value("teams", nlohmann::json::array())) {
      int k = t.value("team", -1);
      if (k == 0 || k == 1) team_colour[k] = FromHex(t.value("colour", ""), team_colour[k]);
    }
    for (int k = 0; k < 2; ++k) {
      std::string path = o.analysis + "/heatmap_team" + std::to_string(k) + ".json";
      if (!PathExists(path)) continue;
      auto h = HeatmapFromJson(path);
      if (!h.ok()) return h.status();
      heatmaps.push_back({k, std::move(*h)});
    }
    image_heatmaps = s.value("units", "px") == "px";
  }

  Decoder::Options dopt;
  dopt.threads = o.threads;
  auto dec = Decoder::Open(o.video, dopt);
  if (!dec.ok()) return dec.status();
  double fps = (*dec)->info().avg_fps > 0 ? (*dec)->info().avg_fps : (*dec)->info().header_fps;
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
  std::map<int, TrackedBox> shown;  // latest box per track
  cv::Mat background;
  std::unique_ptr<Encoder> enc;
  std::map<int, std::deque<cv::Point>> trails;
  VideoFrame f;
  while (o.max_frames < 0 || sum.frames < o.max_frames) {
    auto more = (*dec)->Next(&f);
    if (!more.ok()) return more.status();
    if (!*more) break;
    if (!enc) {
      auto e = Encoder::Open(o.out_dir + "/annotated.mp4", f.bgr.cols, f.bgr.rows, fps, o.threads);
      if (!e.ok()) return e.status();
      enc = std::move(*e);
    }
    auto it = by_frame.find(f.index);
    try {
      if (background.empty()) background = f.bgr.clone();
      if (it != by_frame.end()) {
        for (const auto& b : it->second) {
          shown[b.id] = b;
          auto& trail = trails[b.id];
          trail.push_back(cv::Point(int(b.box.Cx()), int(b.box.y + b.box.h)));
          while (static_cast<int>(trail.size()) > o.trail) trail.pop_front();
        }
      }
      for (auto sb = shown.begin(); sb != shown.end();) {
        if (f.index - sb->second.frame > hold) {
          sb = shown.erase(sb);
          continue;
        }
        auto tt = team_of.find(sb->first);
        int team = tt == team_of.end() ? -1 : tt->second;
        DrawBox(f.bgr, sb->second, team >= 0 ? Visible(team_colour[team]) : cv::Scalar(200, 200, 200));
        ++sb;
      }
      for (auto& [id, trail] : trails) {
        auto tt = team_of.find(id);
        int team = tt == team_of.end() ? -1 : tt->second;
        cv::Scalar c = team >= 0 ? Visible(team_colour[team]) : cv::Scalar(200, 200, 200);
        for (size_t i = 1; i < trail.size(); ++i) cv::line(f.bgr, trail[i - 1], trail[i], c, 2, cv::LINE_AA);
      }
    } catch (const cv::Exception& e) {
      return Status::Internal(std::string("drawing failed: ") + e.what());
    }
    // Trails of players not seen for a while fade out.
    for (auto tr = trails.begin(); tr != trails.end();) {
      bool seen = it != by_frame.end() &&
                  std::any_of(it->second.begin(), it->second.end(), [&](const TrackedBox& b) { return b.id == tr->first; });
      if (!seen && !tr->second.empty()) tr->second.pop_front();
      tr = tr->second.empty() ? trails.erase(tr) : std::next(tr);
    }
    NS_RETURN_IF_ERROR(enc->Write(f.bgr));
    ++sum.frames;
  }
  if (!enc) return Status::Invalid(o.video + ": no video frame could be decoded");
  NS_RETURN_IF_ERROR(enc->Finish());
  sum.codec = enc->codec();
  for (const auto& [k, h] : heatmaps) {
    std::string path = o.out_dir + "/heatmap_team" + std::to_string(k) + ".png";
    try {
      cv::Mat img = h.Render(16);
      if (image_heatmaps && !background.empty()) {  // over the first frame, so places are recognisable
        cv::Mat heat;
        cv::resize(img, heat, background.size());
        cv::addWeighted(background, 0.45, heat, 0.55, 0, img);
      }
      if (!cv::imwrite(path, img)) return Status::IoError(path + ": cannot write");
    } catch (const cv::Exception& e) {
      return Status::IoError(path + ": cannot write: " + e.what());
    }
    ++sum.heatmaps;
  }
  return sum;
}

}  // namespace ns::video
