#include "video/detection.h"

#include <algorithm>
#include <cmath>
#include <fstream>

namespace ns::video {

double Iou(const Box& a, const Box& b) {
  double x1 = std::max(a.x, b.x), y1 = std::max(a.y, b.y);
  double x2 = std::min(a.x + a.w, b.x + b.w), y2 = std::min(a.y + a.h, b.y + b.h);
  double inter = std::max(0.0, x2 - x1) * std::max(0.0, y2 - y1);
  double uni = a.Area() + b.Area() - inter;
  return uni > 0 ? inter / uni : 0;
}

static double Round(double v, double q) { return std::round(v * q) / q; }

nlohmann::json ToJson(const Detection& d) {
  return {{"frame", d.frame},
          {"time", Round(d.time, 1e4)},
          {"x", Round(d.box.x, 100)},
          {"y", Round(d.box.y, 100)},
          {"w", Round(d.box.w, 100)},
          {"h", Round(d.box.h, 100)},
          {"class", d.cls},
          {"score", Round(d.score, 1e4)}};
}

std::string ToJsonLine(const Detection& d) { return ToJson(d).dump(); }

Result<Detection> DetectionFromJson(const nlohmann::json& j) {
  try {
    Detection d;
    d.frame = j.at("frame").get<int64_t>();
    d.time = j.at("time").get<double>();
    d.box.x = j.at("x").get<double>();
    d.box.y = j.at("y").get<double>();
    d.box.w = j.at("w").get<double>();
    d.box.h = j.at("h").get<double>();
    d.cls = j.value("class", "person");
    d.score = j.value("score", 0.0);
    return d;
  } catch (const nlohmann::json::exception& e) {
    return Status::Invalid(std::string("not a detection: ") + e.what());
  }
}

Result<std::vector<Detection>> ReadDetections(const std::string& path, const std::string& flag) {
  return ReadJsonLines<Detection>(path, flag, DetectionFromJson);
}

}  // namespace ns::video
