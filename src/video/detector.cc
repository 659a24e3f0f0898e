#include "video/detector.h"

#include <algorithm>

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

  Status Learn(const cv::Mat& bgr) override {
    try {
      subtractor_->apply(bgr, mask_);
    } catch (const cv::Exception& e) {
      return Status::Internal(std::string("MOG2 failed: ") + e.what());
    }
    return Status::Ok();
  }

  Result<std::vector<Detection>> Detect(const cv::Mat& bgr) override {
    std::vector<Detection> out;
    try {
      subtractor_->apply(bgr, mask_);
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

Result<std::unique_ptr<Detector>> MakeDetector(const DetectorOptions& options) {
  if (options.kind == "hog") return MakeHogDetector(options);
  if (options.kind == "mog2") return MakeMog2Detector(options);
  if (options.kind == "dnn") return MakeDnnDetector(options);
  return Status::Invalid("unknown detector '" + options.kind + "' (expected hog, mog2 or dnn)");
}

}  // namespace ns::video
