#include "video/calibrate.h"

#include <cmath>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "util/fs.h"
#include "video/decoder.h"
#include "video/image_file.h"
#include "video/input_file.h"
#include "video/motion.h"

namespace ns::video {
namespace {

constexpr int kMaxPairs = 1000;
constexpr double kMaxCoordinate = 1e7;  // pixels or metres; beyond is a typo

std::string At(const std::string& where, int line) { return where + ":" + std::to_string(line) + ": "; }

bool Finite(cv::Point2d p) {
  return std::isfinite(p.x) && std::isfinite(p.y) && std::fabs(p.x) <= kMaxCoordinate &&
         std::fabs(p.y) <= kMaxCoordinate;
}

// How far the points are from all lying on one line: the smaller spread of
// their covariance over the larger, 0 for a line, 1 for a round cloud.
double Roundness(const std::vector<cv::Point2d>& pts) {
  cv::Point2d c(0, 0);
  for (const auto& p : pts) c += p;
  c *= 1.0 / pts.size();
  double sxx = 0, syy = 0, sxy = 0;
  for (const auto& p : pts) {
    sxx += (p.x - c.x) * (p.x - c.x);
    syy += (p.y - c.y) * (p.y - c.y);
    sxy += (p.x - c.x) * (p.y - c.y);
  }
  double tr = sxx + syy, det = sxx * syy - sxy * sxy;
  double disc = std::sqrt(std::max(0.0, tr * tr / 4 - det));
  double big = tr / 2 + disc, small = tr / 2 - disc;
  return big > 0 ? std::max(0.0, small) / big : 0;
}

// Hartley's normalisation: centroid at 0, mean distance sqrt(2).
cv::Matx33d Normaliser(const std::vector<cv::Point2d>& pts) {
  cv::Point2d c(0, 0);
  for (const auto& p : pts) c += p;
  c *= 1.0 / pts.size();
  double d = 0;
  for (const auto& p : pts) d += std::hypot(p.x - c.x, p.y - c.y);
  d /= pts.size();
  double s = d > 0 ? std::sqrt(2.0) / d : 1;
  return {s, 0, -s * c.x, 0, s, -s * c.y, 0, 0, 1};
}

// Twice the area of the triangle abc, relative to the spread of the points.
double Flatness(cv::Point2d a, cv::Point2d b, cv::Point2d c) {
  double area2 = std::fabs((b - a).cross(c - a));
  double scale = std::max({cv::norm(b - a), cv::norm(c - a), cv::norm(c - b)});
  return scale > 0 ? area2 / (scale * scale) : 0;
}

}  // namespace

Result<std::vector<PointPair>> ParsePointPairs(const std::string& text, const std::string& where) {
  std::vector<PointPair> pairs;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_array()) return Status::Invalid(where + ": not a JSON array of {\"image\": [x, y], \"pitch\": [x, y]}");
    int n = 0;
    for (const auto& e : j) {
      ++n;
      auto xy = [&](const char* key, cv::Point2d* p) {
        if (!e.is_object() || !e.contains(key)) return false;
        const auto& v = e[key];
        if (!v.is_array() || v.size() != 2 || !v[0].is_number() || !v[1].is_number()) return false;
        *p = {v[0].get<double>(), v[1].get<double>()};
        return Finite(*p);
      };
      PointPair pp;
      pp.line = n;
      if (!xy("image", &pp.image) || !xy("pitch", &pp.pitch)) {
        return Status::Invalid(where + ": entry " + std::to_string(n) +
                               ": expected {\"image\": [x, y], \"pitch\": [x, y]} with finite numbers");
      }
      pairs.push_back(pp);
      if (pairs.size() > kMaxPairs) return Status::Invalid(where + ": more than 1000 pairs");
    }
  } else {
    std::istringstream in(text);
    std::string raw;
    for (int line = 1; std::getline(in, raw); ++line) {
      std::string s = raw.substr(0, raw.find('#'));
      for (char& c : s)
        if (c == ',' || c == ';' || c == '\t' || c == '\r') c = ' ';
      std::istringstream fields(s);
      std::vector<double> v;
      std::string tok;
      while (fields >> tok) {
        char* end = nullptr;
        double x = std::strtod(tok.c_str(), &end);
        if (end == tok.c_str() || *end != '\0' || !std::isfinite(x) || std::fabs(x) > kMaxCoordinate) {
          // A header line of names ("image_x,image_y,...") is allowed first.
          if (pairs.empty() && v.empty() && std::isalpha(static_cast<unsigned char>(tok[0]))) { v.clear(); s.clear(); break; }
          return Status::Invalid(At(where, line) + "'" + tok.substr(0, 40) + "' is not a number; each line is "
                                 "'image_x image_y pitch_x pitch_y' (pixels, then metres)");
        }
        v.push_back(x);
      }
      if (v.empty()) continue;
      if (v.size() != 4) {
        return Status::Invalid(At(where, line) + "expected 4 numbers 'image_x image_y pitch_x pitch_y', found " +
                               std::to_string(v.size()));
      }
      pairs.push_back({{v[0], v[1]}, {v[2], v[3]}, line});
      if (pairs.size() > kMaxPairs) return Status::Invalid(where + ": more than 1000 pairs");
    }
  }
  return pairs;
}

Result<Homography> FitHomography(const std::vector<PointPair>& pairs, const std::string& where) {
  if (pairs.size() < 4) {
    return Status::Invalid(where + ": " + std::to_string(pairs.size()) +
                           " point pairs; a homography needs at least 4 (pitch corners, penalty-box corners, "
                           "the centre spot...), no three of them on one line");
  }
  for (size_t i = 0; i < pairs.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (cv::norm(pairs[i].image - pairs[j].image) < 1e-6 || cv::norm(pairs[i].pitch - pairs[j].pitch) < 1e-6) {
        return Status::Invalid(At(where, pairs[i].line) + "the same point as line " + std::to_string(pairs[j].line) +
                               "; give distinct points");
      }
    }
  }
  // Four points fix a plane only when no three are on one line.
  if (pairs.size() == 4) {
    for (int skip = 0; skip < 4; ++skip) {
      std::vector<const PointPair*> t;
      for (int k = 0; k < 4; ++k)
        if (k != skip) t.push_back(&pairs[k]);
      for (bool image : {true, false}) {
        auto P = [&](int k) { return image ? t[k]->image : t[k]->pitch; };
        if (Flatness(P(0), P(1), P(2)) < 1e-3) {
          return Status::Invalid(where + ": lines " + std::to_string(t[0]->line) + ", " + std::to_string(t[1]->line) +
                                 " and " + std::to_string(t[2]->line) + " are on one line in the " +
                                 (image ? "image" : "pitch") + "; with four pairs, no three may be: move one or add more");
        }
      }
    }
  }
  std::vector<cv::Point2d> img, pit;
  for (const auto& p : pairs) {
    img.push_back(p.image);
    pit.push_back(p.pitch);
  }
  // Points close to one line (in the image or on the pitch) fit anything.
  for (bool image : {true, false}) {
    if (Roundness(image ? img : pit) < 1e-4) {
      return Status::Invalid(where + ": the " + std::string(image ? "image" : "pitch") +
                             " points lie on (nearly) one line; spread them over the pitch");
    }
  }
  cv::Matx33d t1 = Normaliser(img), t2 = Normaliser(pit);
  cv::Mat a(static_cast<int>(2 * pairs.size()), 9, CV_64F, cv::Scalar(0));
  for (size_t i = 0; i < pairs.size(); ++i) {
    cv::Point2d x = Apply(t1, img[i]), u = Apply(t2, pit[i]);
    double* r0 = a.ptr<double>(static_cast<int>(2 * i));
    double* r1 = a.ptr<double>(static_cast<int>(2 * i + 1));
    double row0[9] = {-x.x, -x.y, -1, 0, 0, 0, u.x * x.x, u.x * x.y, u.x};
    double row1[9] = {0, 0, 0, -x.x, -x.y, -1, u.y * x.x, u.y * x.y, u.y};
    std::copy(row0, row0 + 9, r0);
    std::copy(row1, row1 + 9, r1);
  }
  // Only V is needed; a full U would be 2N x 2N. With 4 pairs (8 rows) the null
  // vector is V's 9th row, which only FULL_UV computes.
  cv::SVD svd(a, a.rows < 9 ? cv::SVD::FULL_UV : 0);
  // A second (near) null direction: the points do not fix the homography.
  const cv::Mat& w = svd.w;
  int n = w.rows;
  if (n >= 9 && w.at<double>(7) < 1e-9 * w.at<double>(0)) {
    return Status::Invalid(where + ": the points do not fix a plane (all, or all but one, on one line?); "
                           "spread them over the pitch");
  }
  cv::Mat v = svd.vt.row(8);
  cv::Matx33d hn;
  for (int k = 0; k < 9; ++k) hn.val[k] = v.at<double>(k);
  cv::Matx33d h = t2.inv() * hn * t1;
  if (std::fabs(h(2, 2)) < 1e-12) return Status::Invalid(where + ": the points give a degenerate homography");
  h *= 1.0 / h(2, 2);
  if (std::fabs(cv::determinant(h)) < 1e-15) return Status::Invalid(where + ": the points give a singular homography");
  Homography out;
  out.h = h;
  // Every image point must be in front of the camera, on the same side of the horizon.
  double sign = 0;
  for (const auto& p : pairs) {
    double ww = h(2, 0) * p.image.x + h(2, 1) * p.image.y + h(2, 2);
    if (sign == 0) sign = ww > 0 ? 1 : -1;
    if (ww * sign <= 0) {
      return Status::Invalid(At(where, p.line) + "this point maps beyond the horizon of the others: "
                             "check that image and pitch points are in the same order");
    }
  }
  double sum = 0;
  for (const auto& p : pairs) {
    double e = cv::norm(Apply(h, p.image) - p.pitch);
    out.residuals.push_back(e);
    sum += e * e;
    out.max = std::max(out.max, e);
  }
  out.rms = std::sqrt(sum / pairs.size());
  bool finite = std::isfinite(out.rms);
  for (double v : h.val) finite = finite && std::isfinite(v);
  if (!finite) return Status::Invalid(where + ": the fit is not finite; check the coordinates");
  return out;
}

namespace {

// Draws the pitch through the inverse homography: outline, halfway line, 5 m grid.
void DrawPitch(cv::Mat& img, const cv::Matx33d& to_image, double width, double height) {
  auto segment = [&](cv::Point2d a, cv::Point2d b, const cv::Scalar& colour, int thickness) {
    constexpr int kPieces = 64;  // straight on the pitch is straight in the image, but
    cv::Point2d prev;            // pieces keep the part in front of the camera
    bool have = false;
    for (int i = 0; i <= kPieces; ++i) {
      cv::Point2d p = a + (b - a) * (double(i) / kPieces);
      cv::Vec3d r = to_image * cv::Vec3d(p.x, p.y, 1.0);
      bool ok = r[2] > 1e-9;
      cv::Point2d q = ok ? cv::Point2d(r[0] / r[2], r[1] / r[2]) : cv::Point2d();
      ok = ok && std::fabs(q.x) < 1e5 && std::fabs(q.y) < 1e5;
      if (ok && have) cv::line(img, prev, q, colour, thickness, cv::LINE_AA);
      prev = q;
      have = ok;
    }
  };
  const cv::Scalar grid(200, 200, 200), line(255, 255, 255);
  for (double x = 5; x < width; x += 5) segment({x, 0}, {x, height}, grid, 1);
  for (double y = 5; y < height; y += 5) segment({0, y}, {width, y}, grid, 1);
  segment({0, 0}, {width, 0}, line, 2);
  segment({width, 0}, {width, height}, line, 2);
  segment({width, height}, {0, height}, line, 2);
  segment({0, height}, {0, 0}, line, 2);
  segment({width / 2, 0}, {width / 2, height}, line, 2);
}

}  // namespace

Result<Homography> RunCalibrate(const CalibrateOptions& o) {
  if (o.out_dir.empty()) return Status::Invalid("no output folder: pass --out or set NIGHTSHIFT_OUTPUT_DIR");
  auto text = ReadSmallFile(o.points, "--points");
  if (!text.ok()) return text.status();
  auto pairs = ParsePointPairs(*text, o.points);
  if (!pairs.ok()) return pairs.status();
  auto fit = FitHomography(*pairs, o.points);
  if (!fit.ok()) return fit.status();

  cv::Mat frame;
  if (!o.video.empty()) {
    Decoder::Options dopt;
    dopt.flag = "--video";
    auto dec = Decoder::Open(o.video, dopt);
    if (!dec.ok()) return dec.status();
    VideoFrame f;
    for (;;) {
      auto more = (*dec)->Next(&f);
      if (!more.ok()) return more.status();
      if (!*more) break;
      frame = f.bgr;
      if (f.time >= o.time - 1e-9) break;
    }
    if (frame.empty()) return Status::Invalid(o.video + ": no video frame could be decoded");
    frame = frame.clone();
    try {
      DrawPitch(frame, fit->h.inv(), o.pitch_width, o.pitch_height);
      for (size_t i = 0; i < pairs->size(); ++i) {
        const PointPair& p = (*pairs)[i];
        cv::Point2d back = Apply(fit->h.inv(), p.pitch);  // where the fit puts the pitch point
        cv::circle(frame, p.image, 6, cv::Scalar(0, 0, 255), 2, cv::LINE_AA);
        cv::drawMarker(frame, back, cv::Scalar(0, 255, 0), cv::MARKER_CROSS, 12, 2, cv::LINE_AA);
        cv::putText(frame, std::to_string(p.line), p.image + cv::Point2d(8, -8), cv::FONT_HERSHEY_SIMPLEX, 0.5,
                    cv::Scalar(0, 0, 255), 1, cv::LINE_AA);
      }
    } catch (const cv::Exception& e) {
      return Status::Internal(std::string("drawing the calibration failed: ") + e.what());
    }
  }

  NS_RETURN_IF_ERROR(MakeDirs(o.out_dir));
  auto r = [](double v, double q) { return std::round(v * q) / q; };
  nlohmann::json h = nlohmann::json::array();
  for (int i = 0; i < 3; ++i) h.push_back({fit->h(i, 0), fit->h(i, 1), fit->h(i, 2)});
  nlohmann::json res = nlohmann::json::array();
  for (double e : fit->residuals) res.push_back(r(e, 1000));
  nlohmann::json j = {{"h", h},
                      {"points", pairs->size()},
                      {"rms_error_m", r(fit->rms, 1000)},
                      {"max_error_m", r(fit->max, 1000)},
                      {"residuals_m", res},
                      {"source", o.points},
                      {"units", "m"}};
  NS_RETURN_IF_ERROR(WriteFileAtomic(o.out_dir + "/homography.json", j.dump(2) + "\n"));
  if (!frame.empty()) NS_RETURN_IF_ERROR(WriteImage(o.out_dir + "/calibration.png", frame));
  return fit;
}

}  // namespace ns::video
