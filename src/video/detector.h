// Detector: finds people (and, where a model has the class, the ball) in one frame.
//
// Three kinds: "hog" (OpenCV's default HOG people detector, stateless), "mog2"
// (background subtraction + contours; stateful: it learns the background from every
// frame it is shown, in order) and "dnn" (a Darknet or ONNX model through cv::dnn,
// stateless). A Detector is not thread-safe; use one per thread. OpenCV exceptions
// never escape: they become a Status.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "util/status.h"
#include "video/detection.h"

namespace ns::video {

struct DetectorOptions {
  std::string kind = "hog";     // hog | mog2 | dnn
  double confidence = -1;       // < 0: the detector's default (hog 0, mog2 0, dnn 0.4)
  double nms = 0.45;            // IoU threshold for non-maximum suppression (hog, dnn)
  // hog
  double hog_scale = 1.05;
  int hog_stride = 8;
  // mog2
  int mog2_history = 500;
  double mog2_var_threshold = 16;
  double min_area = 400;        // pixels; smaller blobs are dropped (mog2)
  // dnn
  std::string model;            // .weights (with --config .cfg) or .onnx
  std::string config;
  std::string decode = "yolo";  // yolo (rows cx,cy,w,h,obj,classes...) | fastestdet
  int input_width = 320;
  int input_height = 320;
  double scale = 1.0 / 255;
  cv::Scalar mean = cv::Scalar(0, 0, 0);
  bool swap_rb = true;
  std::vector<int> classes;     // keep only these class ids; empty = all
  std::vector<std::string> names;  // class id -> name; default "person" for 0
  int tiles_x = 1;              // split the frame into tiles_x x tiles_y tiles
  int tiles_y = 1;              // (with 10% overlap) and also run on the whole frame
};

class Detector {
 public:
  virtual ~Detector() = default;
  // Detections in `bgr` (frame and time are left 0 for the caller to set).
  virtual Result<std::vector<Detection>> Detect(const cv::Mat& bgr) = 0;
  // Shows a frame to a stateful detector without reporting detections (used to
  // rebuild state when resuming). Cheaper than Detect; a no-op when stateless.
  virtual Status Learn(const cv::Mat& /*bgr*/) { return Status::Ok(); }
  virtual bool Stateful() const { return false; }
  // How much the next frame shown (Learn or Detect) moves a stateful detector's
  // model, 0..1; < 0: the detector's own schedule. A no-op when stateless.
  virtual void SetLearningRate(double /*rate*/) {}
};

// Errors: kInvalidArgument for an unknown kind or a model that does not load
// (naming the file and OpenCV's reason).
Result<std::unique_ptr<Detector>> MakeDetector(const DetectorOptions& options);

Result<std::unique_ptr<Detector>> MakeHogDetector(const DetectorOptions& options);
Result<std::unique_ptr<Detector>> MakeMog2Detector(const DetectorOptions& options);
Result<std::unique_ptr<Detector>> MakeDnnDetector(const DetectorOptions& options);

// How to run the model in a folder (a registered model, docs/models.md): the
// files to load and the settings its metadata gives (`meta_json`: a JSON object
// of strings: model, config, input_size, scale, decode, bgr, classes, names,
// mean, confidence). Without `model`, the folder's one .onnx or its one
// .weights with the .cfg of the same name; a Darknet .cfg gives the input size.
struct ModelFolder {
  std::string model, config, input_size, decode, classes, names, mean;
  double scale = 0;       // 0: not given
  double confidence = 0;  // 0: not given
  bool bgr = false;
};
Result<ModelFolder> ModelFolderSettings(const std::string& dir, const std::string& meta_json);

// Greedy non-maximum suppression per class: keeps the best-scoring box among those
// overlapping by more than `iou`. Output sorted by score, then position.
std::vector<Detection> Nms(std::vector<Detection> dets, double iou);

}  // namespace ns::video
