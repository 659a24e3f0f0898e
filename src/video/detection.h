// Detection: one box found in one frame, and its JSON Lines form
//   {"frame":120,"time":12.0,"x":10.5,"y":20,"w":40,"h":90,"class":"person","score":0.83}
// Frames are global (numbered over the whole source video), times in seconds from
// its first frame. Value type; the functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "util/status.h"
#include "video/input_file.h"

namespace ns::video {

struct Box {
  double x = 0, y = 0, w = 0, h = 0;  // pixels, top-left origin
  double Area() const { return w > 0 && h > 0 ? w * h : 0; }
  double Cx() const { return x + w / 2; }
  double Cy() const { return y + h / 2; }
};

double Iou(const Box& a, const Box& b);

struct Detection {
  int64_t frame = 0;
  double time = 0;
  Box box;
  std::string cls = "person";
  double score = 0;
};

nlohmann::json ToJson(const Detection& d);
Result<Detection> DetectionFromJson(const nlohmann::json& j);
// Serialises one line (no newline) with rounded numbers so that output is stable.
std::string ToJsonLine(const Detection& d);
// Reads a .jsonl file; a malformed line is an error naming file:line. `flag` names
// the input in messages (see InputFile).
Result<std::vector<Detection>> ReadDetections(const std::string& path, const std::string& flag);

// Reads a JSON Lines file (a regular file, lines of at most kJsonLineLimit bytes;
// see InputFile), giving each non-empty line to `parse` (json -> Result<T>). The
// first unreadable line is an error naming file:line.
template <typename T, typename Parse>
Result<std::vector<T>> ReadJsonLines(const std::string& path, const std::string& flag,
                                     Parse parse) {
  auto in = InputFile::Open(path, flag);
  if (!in.ok()) return in.status();
  std::vector<T> out;
  Status st = in->ForEachLine(kJsonLineLimit, [&](std::string_view line, int64_t n) -> Status {
    if (line.empty()) return Status::Ok();
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) return Status::Invalid(path + ":" + std::to_string(n) + ": not JSON");
    Result<T> v = parse(j);
    if (!v.ok()) return Status::Invalid(path + ":" + std::to_string(n) + ": " + v.status().message());
    out.push_back(std::move(v.value()));
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return out;
}

}  // namespace ns::video
