#include "video/detector.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>
#include <opencv2/video/background_segm.hpp>

namespace ns::video {
namespace {

class HogDetector : public Detector {
 public:
  explicit HogDetector(const DetectorOptions& o) : options_(o) {
    hog_.setSVMDetector(cv::HOGDescriptor::getDefaultPeopleDetector());
  }

  Result<std::vector<Detection>> Detect(const cv::Mat& bgr) override {
    std::vector<Detection> out;
    try {
      std::vector<cv::Rect> rects;
      std::vector<double> weights;
      hog_.detectMultiScale(bgr, rects, weights, 0, cv::Size(options_.hog_stride, options_.hog_stride),
                            cv::Size(0, 0), options_.hog_scale, 2.0);
      double min_score = options_.confidence < 0 ? 0 : options_.confidence;
      for (size_t i = 0; i < rects.size(); ++i) {
        double score = i < weights.size() ? weights[i] : 1.0;
        if (score < min_score) continue;
        Detection d;
        d.box = {double(rects[i].x), double(rects[i].y), double(rects[i].width), double(rects[i].height)};
        d.score = score;
        out.push_back(d);
      }
    } catch (const cv::Exception& e) {
      return Status::Internal(std::string("HOG detector failed: ") + e.what());
    }
    return Nms(std::move(out), options_.nms);
  }

 private:
  DetectorOptions options_;
  cv::HOGDescriptor hog_;
};

class Mog2Detector : public Detector {
 public:
  explicit Mog2Detector(const DetectorOptions& o)
      : options_(o),
        subtractor_(cv::createBackgroundSubtractorMOG2(o.mog2_history, o.mog2_var_threshold, true)),
        kernel_(cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(3, 3))) {}

  bool Stateful() const override { return true; }
  void SetLearningRate(double rate) override { rate_ = rate; }

  Status Learn(const cv::Mat& bgr) override {
    try {
      subtractor_->apply(bgr, mask_, rate_);
    } catch (const cv::Exception& e) {
      return Status::Internal(std::string("MOG2 failed: ") + e.what());
    }
    return Status::Ok();
  }

  Result<std::vector<Detection>> Detect(const cv::Mat& bgr) override {
    std::vector<Detection> out;
    try {
      subtractor_->apply(bgr, mask_, rate_);
      // 255 = foreground, 127 = shadow: shadows are not people.
      cv::threshold(mask_, mask_, 200, 255, cv::THRESH_BINARY);
      cv::morphologyEx(mask_, mask_, cv::MORPH_OPEN, kernel_);
      cv::dilate(mask_, mask_, kernel_, cv::Point(-1, -1), 2);
      std::vector<std::vector<cv::Point>> contours;
      cv::findContours(mask_, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
      double min_score = options_.confidence < 0 ? 0 : options_.confidence;
      for (const auto& c : contours) {
        double area = cv::contourArea(c);
        if (area < options_.min_area) continue;
        cv::Rect r = cv::boundingRect(c);
        Detection d;
        d.box = {double(r.x), double(r.y), double(r.width), double(r.height)};
        d.score = std::min(1.0, area / std::max(1.0, d.box.Area()));  // fill ratio
        if (d.score < min_score) continue;
        out.push_back(d);
      }
    } catch (const cv::Exception& e) {
      return Status::Internal(std::string("MOG2 failed: ") + e.what());
    }
    std::sort(out.begin(), out.end(), [](const Detection& a, const Detection& b) {
      return std::tie(a.box.y, a.box.x) < std::tie(b.box.y, b.box.x);
    });
    return out;
  }

 private:
  DetectorOptions options_;
  cv::Ptr<cv::BackgroundSubtractorMOG2> subtractor_;
  cv::Mat kernel_;
  double rate_ = -1;
  cv::Mat mask_;
};

}  // namespace

std::vector<Detection> Nms(std::vector<Detection> dets, double iou) {
  std::stable_sort(dets.begin(), dets.end(), [](const Detection& a, const Detection& b) {
    if (a.score != b.score) return a.score > b.score;
    return std::tie(a.box.y, a.box.x) < std::tie(b.box.y, b.box.x);
  });
  std::vector<Detection> keep;
  for (const auto& d : dets) {
    bool suppressed = false;
    for (const auto& k : keep) {
      if (k.cls == d.cls && Iou(k.box, d.box) > iou) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) keep.push_back(d);
  }
  return keep;
}

Result<std::unique_ptr<Detector>> MakeHogDetector(const DetectorOptions& options) {
  try {
    return std::unique_ptr<Detector>(new HogDetector(options));
  } catch (const cv::Exception& e) {
    return Status::Internal(std::string("cannot create the HOG detector: ") + e.what());
  }
}

Result<std::unique_ptr<Detector>> MakeMog2Detector(const DetectorOptions& options) {
  try {
    return std::unique_ptr<Detector>(new Mog2Detector(options));
  } catch (const cv::Exception& e) {
    return Status::Internal(std::string("cannot create the MOG2 detector: ") + e.what());
  }
}

Result<ModelFolder> ModelFolderSettings(const std::string& dir, const std::string& meta_json) {
  ModelFolder m;
  nlohmann::json meta = meta_json.empty() ? nlohmann::json::object() : nlohmann::json::parse(meta_json, nullptr, false);
  if (!meta.is_object()) return Status::Invalid("the model's metadata is not a JSON object: " + meta_json.substr(0, 200));
  auto get = [&](const char* key) -> std::string {
    if (!meta.contains(key)) return "";
    return meta[key].is_string() ? meta[key].get<std::string>() : meta[key].dump();
  };
  auto inside = [&](const std::string& name) { return name.empty() ? "" : dir + "/" + name; };
  std::error_code ec;
  std::vector<std::string> onnx, weights;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (n.size() > 5 && n.ends_with(".onnx")) onnx.push_back(n);
    if (n.size() > 8 && n.ends_with(".weights")) weights.push_back(n);
  }
  if (ec) return Status::Invalid("model folder " + dir + ": " + ec.message());
  std::sort(onnx.begin(), onnx.end());
  std::sort(weights.begin(), weights.end());
  std::string model = get("model");
  if (model.empty()) {
    if (onnx.size() + weights.size() != 1) {
      std::vector<std::string> all = onnx;
      all.insert(all.end(), weights.begin(), weights.end());
      std::string list;
      for (const auto& a : all) list += (list.empty() ? "" : ", ") + a;
      return Status::Invalid("model folder " + dir + " holds " +
                             (all.empty() ? std::string("no .onnx or .weights file") : "several models (" + list + ")") +
                             "; name the file with --model, or push the model with --meta model=FILE");
    }
    model = onnx.empty() ? weights[0] : onnx[0];
  }
  if (model.find('/') != std::string::npos || !std::filesystem::is_regular_file(inside(model), ec)) {
    return Status::Invalid("model folder " + dir + " has no file '" + model + "' (its metadata names it)");
  }
  m.model = inside(model);
  std::string config = get("config");
  if (config.empty() && model.ends_with(".weights")) config = model.substr(0, model.size() - 8) + ".cfg";
  if (!config.empty()) {
    if (config.find('/') != std::string::npos || !std::filesystem::is_regular_file(inside(config), ec)) {
      return Status::Invalid("model folder " + dir + ": the Darknet model " + model + " needs " + config +
                             " beside it (or --meta config=FILE)");
    }
    m.config = inside(config);
  }
  m.input_size = get("input_size");
  if (m.input_size.empty() && !m.config.empty()) {
    // [net] width=320 height=320
    std::ifstream in(m.config);
    std::string line;
    int w = 0, h = 0;
    while (std::getline(in, line) && (w == 0 || h == 0)) {
      std::sscanf(line.c_str(), "width=%d", &w);
      std::sscanf(line.c_str(), "height=%d", &h);
    }
    if (w > 0 && h > 0) m.input_size = std::to_string(w) + "x" + std::to_string(h);
  }
  m.decode = get("decode");
  m.classes = get("classes");
  m.names = inside(get("names"));
  m.mean = get("mean");
  std::string scale = get("scale"), conf = get("confidence"), bgr = get("bgr");
  m.scale = scale.empty() ? 0 : std::atof(scale.c_str());
  m.confidence = conf.empty() ? 0 : std::atof(conf.c_str());
  m.bgr = bgr == "true" || bgr == "1" || bgr == "yes";
  return m;
}

Result<std::unique_ptr<Detector>> MakeDetector(const DetectorOptions& options) {
  if (options.kind == "hog") return MakeHogDetector(options);
  if (options.kind == "mog2") return MakeMog2Detector(options);
  if (options.kind == "dnn") return MakeDnnDetector(options);
  return Status::Invalid("unknown detector '" + options.kind + "' (expected hog, mog2 or dnn)");
}

}  // namespace ns::video
