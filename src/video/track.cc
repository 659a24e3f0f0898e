#include "video/track.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>

#include "util/fs.h"
#include "util/strings.h"
#include "video/input_file.h"

namespace ns::video {
namespace {

struct Source {
  std::string dir;
  std::vector<Detection> dets;
  int64_t owned_first = 0, owned_count = 0;
  int64_t processed_first = 0, processed_last = -1;
  int stride = 1;
};

Result<Source> LoadSource(const std::string& dir) {
  Source s;
  s.dir = dir;
  auto dets = ReadDetections(dir + "/detections.jsonl", "--input");
  if (!dets.ok()) return dets.status();
  s.dets = std::move(*dets);
  auto text = ReadSmallFile(dir + "/detect.json", "--input");
  if (!text.ok() && text.status().code() == StatusCode::kNotFound)
    return Status::Invalid(dir + ": has detections.jsonl but no detect.json");
  if (!text.ok()) return text.status();
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded()) return Status::Invalid(dir + "/detect.json: not valid JSON");
  s.owned_first = j.value("first_frame", int64_t{0});
  s.owned_count = j.value("owned_frames", int64_t{0});
  s.processed_first = j.value("processed_first", int64_t{0});
  s.processed_last = j.value("processed_last", int64_t{-1});
  s.stride = std::max(1, j.value("stride", 1));
  return s;
}

}  // namespace

Result<MergedDetections> LoadDetections(const std::string& input, int stride) {
  std::vector<Source> sources;
  if (!IsDirectory(input)) {  // a detections.jsonl (ReadDetections checks it is a file)
    auto dets = ReadDetections(input, "--input");
    if (!dets.ok()) return dets.status();
    Source s;
    s.dir = input;
    s.dets = std::move(*dets);
    s.stride = std::max(1, stride);
    if (!s.dets.empty()) {
      s.processed_first = s.owned_first = s.dets.front().frame;
      for (const auto& d : s.dets) s.processed_last = std::max(s.processed_last, d.frame);
      s.owned_count = s.processed_last - s.owned_first + 1;
    }
    sources.push_back(std::move(s));
  } else {
    auto dirs = FoldersHolding(input, "detections.jsonl");
    if (!dirs.ok()) return dirs.status();
    for (const auto& dir : *dirs) {
      auto s = LoadSource(dir);
      if (!s.ok()) return s.status();
      sources.push_back(std::move(*s));
    }
    if (sources.empty()) return Status::Invalid(input + ": no detections.jsonl in it or in its sub-folders");
  }

  // Which source speaks for each processed frame: its owner, else the first one.
  std::map<int64_t, int> speaker;
  for (size_t i = 0; i < sources.size(); ++i) {
    const Source& s = sources[i];
    int64_t first = s.processed_first + (s.stride - s.processed_first % s.stride) % s.stride;
    for (int64_t f = first; f <= s.processed_last; f += s.stride) {
      bool owns = f >= s.owned_first && f < s.owned_first + s.owned_count;
      auto it = speaker.find(f);
      if (it == speaker.end()) {
        speaker[f] = static_cast<int>(i);
      } else if (owns) {
        const Source& o = sources[it->second];
        bool other_owns = f >= o.owned_first && f < o.owned_first + o.owned_count;
        if (!other_owns) it->second = static_cast<int>(i);
      }
    }
  }
  MergedDetections m;
  m.segments = static_cast<int>(sources.size());
  std::map<int64_t, size_t> slot;
  for (const auto& [f, src] : speaker) {
    slot[f] = m.frames.size();
    m.frames.push_back(f);
    m.times.push_back(-1);
    m.by_frame.emplace_back();
  }
  for (size_t i = 0; i < sources.size(); ++i) {
    for (const Detection& d : sources[i].dets) {
      auto it = speaker.find(d.frame);
      if (it == speaker.end() || it->second != static_cast<int>(i)) continue;
      size_t k = slot[d.frame];
      m.by_frame[k].push_back(d);
      m.times[k] = d.time;
    }
  }
  return m;
}

nlohmann::json ToJson(const TrackedBox& b) {
  auto r = [](double v, double q) { return std::round(v * q) / q; };
  return {{"id", b.id},           {"frame", b.frame},         {"time", r(b.time, 1e4)},
          {"x", r(b.box.x, 100)}, {"y", r(b.box.y, 100)},     {"w", r(b.box.w, 100)},
          {"h", r(b.box.h, 100)}, {"score", r(b.score, 1e4)}, {"class", b.cls}};
}

namespace {

Result<TrackedBox> TrackedBoxFromJson(const nlohmann::json& j) {
  try {
    TrackedBox b;
    b.id = j.at("id").get<int>();
    b.frame = j.at("frame").get<int64_t>();
    b.time = j.at("time").get<double>();
    b.box = {j.at("x").get<double>(), j.at("y").get<double>(), j.at("w").get<double>(),
             j.at("h").get<double>()};
    b.score = j.value("score", 0.0);
    b.cls = j.value("class", "person");
    return b;
  } catch (const std::exception& e) {
    return Status::Invalid(std::string("not a tracked box: ") + e.what());
  }
}

}  // namespace

Result<std::vector<TrackedBox>> ReadTracks(const std::string& path, const std::string& flag) {
  return ReadJsonLines<TrackedBox>(path, flag, TrackedBoxFromJson);
}

Result<TrackStepSummary> RunTrack(const TrackStepOptions& o) {
  if (o.out_dir.empty()) return Status::Invalid("no output folder: pass --out or set NIGHTSHIFT_OUTPUT_DIR");
  auto merged = LoadDetections(o.input, o.stride);
  if (!merged.ok()) return merged.status();
  // One tracker per class ("person,sports ball"); ids are then renumbered 1, 2, 3...
  // over all classes in order of first appearance.
  std::vector<std::string> classes;
  for (const auto& c : Split(o.tracker.cls, ',')) classes.emplace_back(Trim(c));
  if (classes.empty()) classes.push_back("");
  std::vector<TrackedBox> boxes;
  TrackStepSummary sum;
  sum.segments = merged->segments;
  sum.frames = static_cast<int64_t>(merged->frames.size());
  for (const auto& v : merged->by_frame) sum.detections += static_cast<int64_t>(v.size());
  for (size_t c = 0; c < classes.size(); ++c) {
    TrackerOptions to = o.tracker;
    to.cls = classes[c];
    Tracker tracker(to);
    std::vector<TrackedBox> of_class;
    for (size_t k = 0; k < merged->frames.size(); ++k) {
      auto got = tracker.Step(merged->frames[k], merged->times[k], merged->by_frame[k]);
      of_class.insert(of_class.end(), got.begin(), got.end());
    }
    sum.joined += JoinFragments(&of_class, o.join);
    for (auto& b : of_class) b.id = b.id * 64 + static_cast<int>(c);  // unique until renumbered
    boxes.insert(boxes.end(), of_class.begin(), of_class.end());
  }
  std::stable_sort(boxes.begin(), boxes.end(), [](const TrackedBox& a, const TrackedBox& b) {
    return std::tie(a.frame, a.id) < std::tie(b.frame, b.id);
  });
  std::map<int, int> renumber;
  for (auto& b : boxes) {
    auto it = renumber.find(b.id);
    if (it == renumber.end()) it = renumber.emplace(b.id, static_cast<int>(renumber.size()) + 1).first;
    b.id = it->second;
  }
  std::string text;
  std::map<int, nlohmann::json> per_track;
  for (const auto& b : boxes) {
    text += ToJson(b).dump() + "\n";
    auto& t = per_track[b.id];
    if (t.is_null())
      t = {{"id", b.id}, {"class", b.cls}, {"first_frame", b.frame}, {"first_time", b.time}, {"boxes", 0}};
    t["last_frame"] = b.frame;
    t["last_time"] = b.time;
    t["boxes"] = t["boxes"].get<int64_t>() + 1;
  }
  sum.tracks = static_cast<int>(renumber.size());
  sum.boxes = static_cast<int64_t>(boxes.size());
  NS_RETURN_IF_ERROR(MakeDirs(o.out_dir));
  NS_RETURN_IF_ERROR(WriteFileAtomic(o.out_dir + "/tracks.jsonl", text));
  nlohmann::json summary = {{"segments", sum.segments}, {"frames", sum.frames},
                            {"detections", sum.detections}, {"tracks", sum.tracks},
                            {"boxes", sum.boxes}, {"joined", sum.joined},
                            {"per_track", nlohmann::json::array()}};
  for (auto& [id, t] : per_track) summary["per_track"].push_back(t);
  NS_RETURN_IF_ERROR(WriteFileAtomic(o.out_dir + "/tracks.json", summary.dump(2) + "\n"));
  return sum;
}

}  // namespace ns::video
