#include "video/segment_index.h"

#include <algorithm>

#include "util/fs.h"
#include "video/input_file.h"

namespace ns::video {

const SegmentEntry* SegmentIndex::Find(const std::string& path) const {
  std::string base = BaseName(path);
  for (const auto& s : segments)
    if (s.file == base) return &s;
  return nullptr;
}

Result<SegmentRef> FindSegment(const std::string& index_path, const std::string& segment) {
  auto index = ReadSegmentIndex(index_path);
  if (!index.ok()) return index.status();
  const SegmentEntry* e = index->Find(segment);
  if (!e) return Status::Invalid(segment + ": not listed in " + index_path);
  SegmentEntry entry = *e;
  return SegmentRef{std::move(*index), std::move(entry)};
}

int SegmentIndex::OwnerOf(int64_t frame) const {
  for (size_t i = 0; i < segments.size(); ++i) {
    const auto& s = segments[i];
    if (frame >= s.first_frame && frame < s.first_frame + s.frame_count) return static_cast<int>(i);
  }
  return -1;
}

nlohmann::json ToJson(const SegmentIndex& index) {
  nlohmann::json segs = nlohmann::json::array();
  for (const auto& s : index.segments) {
    nlohmann::json e = {{"file", s.file},
                    {"first_frame", s.first_frame},
                    {"frame_count", s.frame_count},
                    {"overlap_frames", s.overlap_frames},
                    {"start_time", s.start_time},
                    {"duration", s.duration}};
    if (s.leading_frames > 0) e["leading_frames"] = s.leading_frames;
    if (s.has_start_pts) e["start_pts"] = s.start_pts;
    segs.push_back(std::move(e));
  }
  return {{"source", index.source}, {"fps", index.fps},       {"frame_count", index.frame_count},
          {"width", index.width},   {"height", index.height}, {"rotation", index.rotation},
          {"segments", segs}};
}

Result<SegmentIndex> SegmentIndexFromJson(const nlohmann::json& j, const std::string& where) {
  try {
    SegmentIndex idx;
    idx.source = j.value("source", "");
    idx.fps = j.at("fps").get<double>();
    idx.frame_count = j.at("frame_count").get<int64_t>();
    idx.width = j.value("width", 0);
    idx.height = j.value("height", 0);
    idx.rotation = j.value("rotation", 0);
    for (const auto& s : j.at("segments")) {
      SegmentEntry e;
      e.file = s.at("file").get<std::string>();
      e.first_frame = s.at("first_frame").get<int64_t>();
      e.frame_count = s.at("frame_count").get<int64_t>();
      e.overlap_frames = s.value("overlap_frames", int64_t{0});
      e.start_time = s.at("start_time").get<double>();
      e.duration = s.value("duration", 0.0);
      e.leading_frames = s.value("leading_frames", int64_t{0});
      e.has_start_pts = s.contains("start_pts");
      if (e.has_start_pts) e.start_pts = s.at("start_pts").get<int64_t>();
      idx.segments.push_back(e);
    }
    return idx;
  } catch (const nlohmann::json::exception& e) {
    return Status::Invalid(where + ": not a segment index: " + e.what());
  }
}

Result<SegmentIndex> ReadSegmentIndex(const std::string& path) {
  auto text = ReadSmallFile(path, "--index");
  if (!text.ok()) return text.status();
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded()) return Status::Invalid(path + ": not valid JSON");
  return SegmentIndexFromJson(j, path);
}

std::vector<SegmentPlan> PlanSegments(const std::vector<PacketMark>& packets, double seconds,
                                      double overlap) {
  std::vector<SegmentPlan> plans;
  if (packets.empty()) return plans;
  // Cut points: packet indices where a new segment starts.
  std::vector<size_t> starts = {0};
  double seg_start = packets[0].time;
  bool seen_key = packets[0].key;
  for (size_t i = 1; i < packets.size(); ++i) {
    if (!packets[i].key) continue;
    if (!seen_key) {  // the first keyframe: the first segment really starts here
      seen_key = true;
      seg_start = packets[i].time;
      continue;
    }
    if (packets[i].time - seg_start >= seconds - 1e-9) {
      starts.push_back(i);
      seg_start = packets[i].time;
    }
  }
  for (size_t k = 0; k < starts.size(); ++k) {
    SegmentPlan p;
    p.begin = starts[k];
    p.end = k + 1 < starts.size() ? starts[k + 1] : packets.size();
    p.overlap_end = p.end;
    if (overlap > 0 && p.end < packets.size()) {
      double until = packets[p.end].time + overlap;
      size_t j = p.end + 1;
      while (j < packets.size() && !(packets[j].key && packets[j].time >= until - 1e-9)) ++j;
      p.overlap_end = j;
    }
    plans.push_back(p);
  }
  // Ownership by presentation time: segment k owns [time of its keyframe, time of
  // the next segment's keyframe); the first also owns anything shown before.
  const double kEps = 1e-9;
  auto from = [&](size_t k) { return k == 0 ? -1e300 : packets[plans[k].begin].time - kEps; };
  auto until = [&](size_t k) { return k + 1 < plans.size() ? packets[plans[k + 1].begin].time - kEps : 1e300; };
  // The earliest time of packets [j, end): what a file ending at j lacks.
  std::vector<double> later_min(packets.size() + 1, 1e300);
  for (size_t j = packets.size(); j-- > 0;) later_min[j] = std::min(later_min[j + 1], packets[j].time);
  for (size_t k = 0; k < plans.size(); ++k) {
    SegmentPlan& p = plans[k];
    // The file ends where every packet shown before its last needed time is in it:
    // the leading pictures of the keyframe that ends it come after that keyframe,
    // before the keyframe after it (a stray early timestamp further on is not
    // followed: it would pull every file to the end of the video).
    double need_until = p.overlap_end > p.end && p.overlap_end < packets.size()
                            ? packets[p.overlap_end].time - kEps
                            : until(k);
    p.file_end = p.overlap_end;
    for (size_t j = p.overlap_end; j < packets.size(); ++j) {
      if (j > p.overlap_end && packets[j].key) break;
      if (packets[j].time < need_until) p.file_end = j + 1;
    }
    // Frames shown after the owned ones count as overlap while they follow on
    // without a gap: up to the earliest time not in the file.
    const double gap = later_min[p.file_end];
    for (size_t j = p.begin; j < p.file_end; ++j) {
      double t = packets[j].time;
      if (t < from(k)) ++p.leading;
      else if (t < until(k)) ++p.owned;
      else if (t < gap) ++p.overlap;
    }
  }
  return plans;
}

}  // namespace ns::video
