#include "video/analyse.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>

#include <opencv2/imgproc.hpp>

extern "C" {
#include <libavformat/avformat.h>
}

#include "util/fs.h"
#include "video/av_error.h"
#include "video/av_input.h"
#include "video/clustering.h"
#include "video/decoder.h"
#include "video/image_file.h"
#include "video/motion.h"
#include "video/prefetch.h"
#include "video/track.h"

namespace ns::video {
namespace {

struct TrackData {
  std::vector<TrackedBox> boxes;
  std::vector<Point3> colours;   // jersey features (a, b, L/8 of Lab), one per sampled frame
  std::vector<cv::Vec3d> bgr;    // the jersey's mean colour, per sample
  cv::Mat thumb;
  double thumb_area = 0;
  int team = -1;
  Point3 colour{0, 0, 0};        // median jersey feature
  MotionStats motion;
};

std::string Hex(const cv::Vec3b& bgr) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", bgr[2], bgr[1], bgr[0]);
  return buf;
}


double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

// The jersey's colour in one frame: the torso's pixels that are not the
// background around the player (a strip beside the box: floor, grass, wall).
// Returns (a, b, L/8) in Lab -- chroma, with lightness at an eighth of its
// weight: shade moves it little, yet black and white kits still differ -- and
// the mean BGR of those pixels; nothing when too few pixels are left to trust.
std::optional<std::pair<Point3, cv::Vec3d>> JerseyColour(const cv::Mat& frame, const cv::Rect& box,
                                                         const cv::Rect& torso) {
  cv::Rect frame_rect(0, 0, frame.cols, frame.rows);
  int sw = std::max(2, box.width / 4);
  cv::Rect left(box.x - sw, torso.y, sw, torso.height), right(box.br().x, torso.y, sw, torso.height);
  left &= frame_rect;
  right &= frame_rect;
  // Background chroma: a 16x16 histogram of (a, b) over the strips.
  constexpr int kBins = 16;
  std::array<int, kBins * kBins> bg{};
  int bg_n = 0;
  cv::Mat lab;
  for (const cv::Rect& strip : {left, right}) {
    if (strip.area() <= 0) continue;
    cv::cvtColor(frame(strip), lab, cv::COLOR_BGR2Lab);
    for (int y = 0; y < lab.rows; ++y) {
      for (int x = 0; x < lab.cols; ++x) {
        const cv::Vec3b& p = lab.at<cv::Vec3b>(y, x);
        ++bg[(p[1] / kBins) * kBins + p[2] / kBins];
        ++bg_n;
      }
    }
  }
  cv::Mat tlab;
  cv::cvtColor(frame(torso), tlab, cv::COLOR_BGR2Lab);
  std::vector<double> a, b, l;
  cv::Vec3d sum(0, 0, 0);
  for (int y = 0; y < tlab.rows; ++y) {
    for (int x = 0; x < tlab.cols; ++x) {
      const cv::Vec3b& p = tlab.at<cv::Vec3b>(y, x);
      int bin = (p[1] / kBins) * kBins + p[2] / kBins;
      if (bg_n > 0 && bg[bin] > bg_n / 20) continue;  // a colour common beside the player
      a.push_back(p[1]);
      b.push_back(p[2]);
      l.push_back(p[0]);
      sum += cv::Vec3d(frame(torso).at<cv::Vec3b>(y, x));
    }
  }
  if (a.size() < std::max<size_t>(6, static_cast<size_t>(torso.area()) / 8)) return std::nullopt;
  double n = static_cast<double>(a.size());
  return std::make_pair(Point3{Median(a), Median(b), Median(l) / 8}, sum / n);
}


// Presentation timestamps of every video packet, in presentation order, and which
// of them are keyframes: frame i of the video is the one with pts[i]. Empty when
// timestamps are missing or repeat; then frames cannot be placed after a seek.
// A read error is an error (it is not the end of the file).
struct FrameMap {
  std::vector<int64_t> pts;
  std::vector<int64_t> keys;  // indices of keyframes, ascending

  int64_t IndexOf(int64_t p) const {
    auto it = std::lower_bound(pts.begin(), pts.end(), p);
    return it != pts.end() && *it == p ? it - pts.begin() : -1;
  }
  // The last keyframe at or before frame i (0 if none).
  int64_t KeyBefore(int64_t i) const {
    auto it = std::upper_bound(keys.begin(), keys.end(), i);
    return it == keys.begin() ? 0 : *(it - 1);
  }
};

Result<FrameMap> ScanFrames(const std::string& path, int stream) {
  FrameMap m;
  auto in = AvInput::Open(path, "--video");
  if (!in.ok()) return in.status();
  AVFormatContext* fmt = (*in)->format();
  AVPacket* pkt = av_packet_alloc();
  std::vector<std::pair<int64_t, bool>> packets;
  bool usable = pkt && avformat_find_stream_info(fmt, nullptr) >= 0 && stream < static_cast<int>(fmt->nb_streams);
  int rc = AVERROR_EOF;
  while (usable && (rc = av_read_frame(fmt, pkt)) >= 0) {
    if (pkt->stream_index == stream) {
      // A packet that may give no frame would shift the numbering: do not seek.
      if (pkt->pts == AV_NOPTS_VALUE || (pkt->flags & (AV_PKT_FLAG_CORRUPT | AV_PKT_FLAG_DISCARD))) usable = false;
      packets.push_back({pkt->pts, (pkt->flags & AV_PKT_FLAG_KEY) != 0});
    }
    av_packet_unref(pkt);
  }
  av_packet_free(&pkt);
  if (usable) NS_RETURN_IF_ERROR(ReadFrameStatus(rc, fmt, path));
  if (!usable) return m;
  std::sort(packets.begin(), packets.end());
  for (size_t i = 0; i < packets.size(); ++i) {
    if (i > 0 && packets[i].first == packets[i - 1].first) return FrameMap{};
    m.pts.push_back(packets[i].first);
    if (packets[i].second) m.keys.push_back(static_cast<int64_t>(i));
  }
  return m;
}

}  // namespace

Result<AnalyseSummary> RunAnalyse(const AnalyseOptions& o) {
  if (o.out_dir.empty()) return Status::Invalid("no output folder: pass --out or set NIGHTSHIFT_OUTPUT_DIR");
  double decode_cpu = 0;  // CPU seconds decoding the video
  std::string tracks_path = IsDirectory(o.tracks) ? o.tracks + "/tracks.jsonl" : o.tracks;
  auto boxes = ReadTracks(tracks_path, "--input");
  if (!boxes.ok()) return boxes.status();
  std::optional<cv::Matx33d> hom;
  if (!o.homography.empty()) {
    auto h = ReadHomography(o.homography);
    if (!h.ok()) return h.status();
    hom = *h;
  }

  std::map<int, TrackData> tracks;
  for (const auto& b : *boxes) tracks[b.id].boxes.push_back(b);
  // Frames to sample pixels from: evenly spread boxes of each long-enough track.
  std::map<int64_t, std::vector<std::pair<int, Box>>> wanted;
  for (auto& [id, t] : tracks) {
    int n = static_cast<int>(t.boxes.size());
    if (n < o.min_boxes || t.boxes.front().cls != o.team_class) continue;  // teams are people
    int k = std::min(n, o.samples);
    for (int i = 0; i < k; ++i) {
      const TrackedBox& b = t.boxes[static_cast<size_t>((i + 0.5) * n / k)];
      wanted[b.frame].push_back({id, b.box});
    }
  }

  int width = 0, height = 0;
  int64_t seeks = 0;
  if (!o.video.empty()) {
    const double process_cpu0 = ProcessCpuSeconds();
    double sample_cpu = 0;
    Decoder::Options dopt;
    dopt.threads = o.threads;
    dopt.flag = "--video";
    auto dec = Decoder::Open(o.video, dopt);
    if (!dec.ok()) return dec.status();
    width = (*dec)->info().display_width();
    height = (*dec)->info().display_height();
    bool decoded_any = false;
    int64_t last = wanted.empty() ? -1 : wanted.rbegin()->first;
    auto sample = [&](const VideoFrame& f, const std::vector<std::pair<int, Box>>& at) {
      cv::Rect frame_rect(0, 0, f.bgr.cols, f.bgr.rows);
      for (const auto& [id, box] : at) {
        cv::Rect r(cv::Point(int(box.x), int(box.y)), cv::Size(int(box.w), int(box.h)));
        r &= frame_rect;
        if (r.area() <= 0) continue;
        cv::Rect torso(r.x + int(r.width * 0.3), r.y + int(r.height * 0.2), std::max(1, int(r.width * 0.4)),
                       std::max(1, int(r.height * 0.3)));
        torso &= frame_rect;
        if (torso.area() <= 0) continue;
        TrackData& t = tracks[id];
        auto jersey = JerseyColour(f.bgr, r, torso);
        if (jersey) {
          t.colours.push_back(jersey->first);
          t.bgr.push_back(jersey->second);
        }
        if (r.area() > t.thumb_area) {
          t.thumb_area = r.area();
          t.thumb = f.bgr(r).clone();
        }
      }
    };
    // Long videos with sparse samples: seek to the keyframe before each sampled
    // frame when that skips at least `seek_gap` frames, instead of decoding all.
    FrameMap map;
    bool placed = true;
    if (o.seek_gap > 0 && !wanted.empty()) {
      auto scanned = ScanFrames(o.video, (*dec)->info().stream_index);
      if (!scanned.ok()) return scanned.status();
      map = std::move(*scanned);
    }
    try {
      if (!map.pts.empty()) {
        int64_t pos = -1;  // the last frame decoded
        VideoFrame f;
        std::function<bool(int64_t)> want = [&](int64_t pts) {
          int64_t i = map.IndexOf(pts);
          return i > pos && wanted.count(i) > 0;
        };
        // Frames are placed by pts. Any sign that the decoder's frames and the
        // packets disagree (a frame no packet had, a frame missing from the
        // sequence, a seek that landed past its keyframe, a decode error) abandons
        // seeking: the full decode below numbers frames as detect did.
        const int64_t errors_before = (*dec)->decode_errors();
        for (auto target = wanted.begin(); target != wanted.end() && placed;) {
          if (target->first <= pos) {
            ++target;
            continue;
          }
          int64_t key = map.KeyBefore(target->first);
          bool sought = false;
          if (key - pos > o.seek_gap) {
            NS_RETURN_IF_ERROR((*dec)->SeekBefore(map.pts[static_cast<size_t>(key)]));
            ++seeks;
            sought = true;
          }
          // Decode up to the target.
          while (true) {
            auto more = (*dec)->NextIf(&f, want);
            if (!more.ok()) return more.status();
            if (!*more) {
              placed = pos + 1 == static_cast<int64_t>(map.pts.size());  // every frame came out
              pos = last;
              break;
            }
            int64_t i = map.IndexOf(f.pts);
            if (i <= pos && i >= 0) continue;  // leading frames of a seek, already behind us
            bool in_sequence = sought ? (i >= 0 && i <= key) : i == pos + 1;
            if (!in_sequence || (*dec)->decode_errors() != errors_before) {
              placed = false;
              break;
            }
            sought = false;
            pos = i;
            decoded_any = true;
            if (!f.bgr.empty()) {
              double t0 = ThreadCpuSeconds();
              sample(f, wanted.at(i));
              sample_cpu += ThreadCpuSeconds() - t0;
            }
            if (i >= target->first) break;
          }
        }
      }
      if (!placed) {  // start again without seeking
        for (auto& [id, t] : tracks) {
          t.colours.clear();
          t.thumb = cv::Mat();
          t.thumb_area = 0;
        }
        seeks = 0;
        dec = Decoder::Open(o.video, dopt);
        if (!dec.ok()) return dec.status();
      }
      if (map.pts.empty() || !placed) {
        // Only sampled frames are converted to BGR, on the decode thread; every
        // frame must still be decoded to number them.
        Prefetcher prefetch(dec->get(), [&wanted](int64_t i) { return wanted.count(i) > 0; }, 4);
        VideoFrame f;
        while (true) {
          auto more = prefetch.Next(&f);
          if (!more.ok()) return more.status();
          if (!*more) break;
          decoded_any = true;
          if (f.index > last) break;
          auto it = wanted.find(f.index);
          if (it != wanted.end()) {
            double t0 = ThreadCpuSeconds();
            sample(f, it->second);
            sample_cpu += ThreadCpuSeconds() - t0;
          }
        }
      }
    } catch (const cv::Exception& e) {
      return Status::Internal(o.video + ": sampling colours failed: " + e.what());
    }
    if (!decoded_any) return Status::Invalid(o.video + ": no video frame could be decoded");
    // FFmpeg decodes on threads of its own (--threads): the process's CPU over
    // this phase, less the sampling done on this thread.
    decode_cpu = ProcessCpuSeconds() - process_cpu0 - sample_cpu;
  } else {
    for (const auto& b : *boxes) {
      width = std::max(width, int(b.box.x + b.box.w));
      height = std::max(height, int(b.box.y + b.box.h));
    }
  }

  // Teams: k-means on the tracks' median jersey colours.
  AnalyseSummary sum;
  std::vector<int> ids;
  std::vector<Point3> colours;
  for (auto& [id, t] : tracks) {
    if (t.colours.empty()) continue;
    for (int c = 0; c < 3; ++c) {
      std::vector<double> ch;
      for (const auto& p : t.colours) ch.push_back(p[c]);
      t.colour[c] = Median(ch);
    }
    ids.push_back(id);
    colours.push_back(t.colour);
  }
  // Two teams only when the tracks' colours form two clusters of comparable
  // size (each at least 30% of the players) whose centres are at least twice
  // as far apart as either cluster's spread (root mean square distance to its
  // centre). Pedestrians, a crowd with a few bright coats, one person at a
  // time: no teams. Measured: the gym clip's red and green kits 2.1x, 7 and 7
  // tracks; vtest.avi's pedestrians split 3/15 (a sign and a cone).
  Clusters clusters = KMeans(colours, 2);
  std::string no_teams;
  if (colours.size() < 4) {
    no_teams = "fewer than 4 players with a visible jersey colour";
  } else {
    int size[2] = {0, 0};
    double spread[2] = {0, 0};
    for (size_t i = 0; i < colours.size(); ++i) {
      int k = clusters.labels[i];
      ++size[k];
      for (int c = 0; c < 3; ++c) spread[k] += std::pow(colours[i][c] - clusters.centres[k][c], 2);
    }
    double d = 0;
    for (int c = 0; c < 3; ++c) d += std::pow(clusters.centres[0][c] - clusters.centres[1][c], 2);
    d = std::sqrt(d);
    double rms = 0;
    for (int k = 0; k < 2; ++k) rms = std::max(rms, size[k] ? std::sqrt(spread[k] / size[k]) : 0.0);
    sum.team_separation = d / std::max(rms, 1.0);
    int smaller = std::min(size[0], size[1]);
    char buf[200];
    if (smaller * 10 < 3 * static_cast<int>(colours.size())) {
      std::snprintf(buf, sizeof buf, "the colours split %d/%d: no two groups of comparable size",
                    std::min(size[0], size[1]), std::max(size[0], size[1]));
      no_teams = buf;
    } else if (sum.team_separation < 2.0) {
      std::snprintf(buf, sizeof buf, "the two colour groups are %.1f apart for a spread of %.1f (need 2x)", d, rms);
      no_teams = buf;
    }
  }
  if (no_teams.empty()) {
    for (size_t i = 0; i < ids.size(); ++i) tracks[ids[i]].team = clusters.labels[i];
  }
  sum.teams_found = no_teams.empty();
  sum.no_teams_reason = no_teams;

  // Motion and heatmaps.
  sum.seeks = seeks;
  sum.units = hom ? "m" : "px";
  auto heat = [&]() {
    return hom ? Heatmap(o.grid_cols, o.grid_rows, 0, 0, o.pitch_width, o.pitch_height)
               : Heatmap(o.grid_cols, o.grid_rows, 0, 0, std::max(1, width), std::max(1, height));
  };
  Heatmap heatmaps[2] = {heat(), heat()};
  Heatmap heatmap_all = heat();
  NS_RETURN_IF_ERROR(MakeDirs(o.out_dir + "/thumbs"));
  nlohmann::json jtracks = nlohmann::json::array();
  for (auto& [id, t] : tracks) {
    std::vector<TrackPoint> pts;
    for (const auto& b : t.boxes) {
      cv::Point2d foot(b.box.Cx(), b.box.y + b.box.h);
      if (hom) foot = Apply(*hom, foot);
      pts.push_back({b.time, foot.x, foot.y});
      if (t.team >= 0) heatmaps[t.team].Add(foot.x, foot.y);
      heatmap_all.Add(foot.x, foot.y);
    }
    t.motion = ComputeMotion(pts);
    if (static_cast<int>(t.boxes.size()) < o.min_boxes) continue;
    ++sum.tracks;
    if (t.team >= 0) ++sum.team_sizes[t.team];
    nlohmann::json jt = {{"id", id},
                         {"team", t.team},
                         {"class", t.boxes.front().cls},
                         {"boxes", t.boxes.size()},
                         {"first_frame", t.boxes.front().frame},
                         {"last_frame", t.boxes.back().frame},
                         {"first_time", t.boxes.front().time},
                         {"last_time", t.boxes.back().time},
                         {"distance", std::round(t.motion.distance * 100) / 100},
                         {"avg_speed", std::round(t.motion.avg_speed * 100) / 100},
                         {"max_speed", std::round(t.motion.max_speed * 100) / 100}};
    if (!t.colours.empty()) {
      jt["jersey"] = {std::round(t.colour[0] * 10) / 10, std::round(t.colour[1] * 10) / 10,
                      std::round(t.colour[2] * 10) / 10};  // Lab a, b and L/8: what teams are split on
    }
    if (!t.bgr.empty()) {
      cv::Vec3d c(0, 0, 0);
      for (const auto& x : t.bgr) c += x;
      c /= static_cast<double>(t.bgr.size());
      jt["colour"] = Hex(cv::Vec3b(cv::saturate_cast<uchar>(c[0]), cv::saturate_cast<uchar>(c[1]), cv::saturate_cast<uchar>(c[2])));
    }
    if (!t.thumb.empty()) {
      std::string name = "thumbs/track_" + std::to_string(id) + ".jpg";
      NS_RETURN_IF_ERROR(WriteImage(o.out_dir + "/" + name, t.thumb));
      jt["thumb"] = name;
    }
    jtracks.push_back(jt);
  }
  nlohmann::json jteams = nlohmann::json::array();
  for (int k = 0; k < (sum.teams_found ? 2 : 0); ++k) {
    nlohmann::json members = nlohmann::json::array();
    double dist = 0;
    for (auto& [id, t] : tracks) {
      if (t.team != k || static_cast<int>(t.boxes.size()) < o.min_boxes) continue;
      members.push_back(id);
      dist += t.motion.distance;
    }
    nlohmann::json jt = {{"team", k}, {"tracks", members}, {"distance", std::round(dist * 100) / 100},
                         {"heatmap", "heatmap_team" + std::to_string(k) + ".json"}};
    // Drawn in its jerseys' colour: the mean colour of its players' jerseys.
    cv::Vec3d c(0, 0, 0);
    double n = 0;
    for (auto& [id, t] : tracks) {
      if (t.team != k) continue;
      for (const auto& x : t.bgr) c += x;
      n += static_cast<double>(t.bgr.size());
    }
    if (n > 0) c /= n;
    jt["colour"] = Hex(cv::Vec3b(cv::saturate_cast<uchar>(c[0]), cv::saturate_cast<uchar>(c[1]), cv::saturate_cast<uchar>(c[2])));
    jteams.push_back(jt);
    NS_RETURN_IF_ERROR(WriteFileAtomic(o.out_dir + "/heatmap_team" + std::to_string(k) + ".json",
                                       heatmaps[k].ToJson().dump() + "\n"));
  }
  NS_RETURN_IF_ERROR(WriteFileAtomic(o.out_dir + "/heatmap_all.json", heatmap_all.ToJson().dump() + "\n"));
  nlohmann::json summary = {{"video", o.video.empty() ? "" : BaseName(o.video)},
                            {"width", width},
                            {"height", height},
                            {"units", sum.units},
                            {"speed_units", sum.units + "/s"},
                            {"tracks_total", tracks.size()},
                            {"tracks_analysed", sum.tracks},
                            {"min_boxes", o.min_boxes},
                            {"teams_found", sum.teams_found},
                            {"no_teams_reason", sum.no_teams_reason},
                            {"team_separation", std::round(sum.team_separation * 100) / 100},
                            {"teams", jteams},
                            {"tracks", jtracks}};
  NS_RETURN_IF_ERROR(WriteFileAtomic(o.out_dir + "/summary.json", summary.dump(2) + "\n"));
  // Timings apart from summary.json, which stays the same for the same input.
  nlohmann::json timing = {{"stage_cpu_seconds", {{"decode", std::round(decode_cpu * 1000) / 1000}}}};
  NS_RETURN_IF_ERROR(WriteFileAtomic(o.out_dir + "/timing.json", timing.dump(2) + "\n"));
  return sum;
}

}  // namespace ns::video
