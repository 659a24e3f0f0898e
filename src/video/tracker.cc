#include "video/tracker.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include <opencv2/video/tracking.hpp>

#include "video/hungarian.h"

namespace ns::video {

namespace {
constexpr double kForbidden = 1e6;
}  // namespace

struct Tracker::Track {
  cv::KalmanFilter kf{8, 4, 0, CV_64F};
  int id = 0;  // 0 while tentative
  int hits = 0;
  int misses = 0;
  int64_t last_frame = 0;
  std::vector<TrackedBox> pending;  // boxes before birth

  explicit Track(const Box& b, int64_t frame) : last_frame(frame) {
    // State (cx, cy, w, h, vx, vy, vw, vh); velocities per frame.
    cv::setIdentity(kf.transitionMatrix);
    kf.measurementMatrix = cv::Mat::zeros(4, 8, CV_64F);
    for (int i = 0; i < 4; ++i) kf.measurementMatrix.at<double>(i, i) = 1;
    double s = std::max(b.h, 1.0);
    // Noise scales with the box size, so small and large people track alike.
    kf.processNoiseCov = cv::Mat::zeros(8, 8, CV_64F);
    for (int i = 0; i < 4; ++i) kf.processNoiseCov.at<double>(i, i) = std::pow(0.05 * s, 2);
    for (int i = 4; i < 8; ++i) kf.processNoiseCov.at<double>(i, i) = std::pow(0.02 * s, 2);
    cv::setIdentity(kf.measurementNoiseCov, cv::Scalar::all(std::pow(0.1 * s, 2)));
    cv::setIdentity(kf.errorCovPost, cv::Scalar::all(std::pow(0.2 * s, 2)));
    for (int i = 4; i < 8; ++i) kf.errorCovPost.at<double>(i, i) = std::pow(0.5 * s, 2);
    kf.statePost = (cv::Mat_<double>(8, 1) << b.Cx(), b.Cy(), b.w, b.h, 0, 0, 0, 0);
  }

  Box Predict(int64_t frame) {
    double dt = static_cast<double>(std::max<int64_t>(1, frame - last_frame));
    for (int i = 0; i < 4; ++i) kf.transitionMatrix.at<double>(i, i + 4) = dt;
    cv::Mat s = kf.predict();
    // predict() leaves statePost unchanged; an unmatched frame keeps the prediction.
    kf.statePre.copyTo(kf.statePost);
    kf.errorCovPre.copyTo(kf.errorCovPost);
    last_frame = frame;
    return StateBox(s);
  }

  void Correct(const Box& b) {
    cv::Mat m = (cv::Mat_<double>(4, 1) << b.Cx(), b.Cy(), b.w, b.h);
    kf.correct(m);
  }

  static Box StateBox(const cv::Mat& s) {
    double w = std::max(1.0, s.at<double>(2)), h = std::max(1.0, s.at<double>(3));
    return {s.at<double>(0) - w / 2, s.at<double>(1) - h / 2, w, h};
  }
};

Tracker::Tracker(TrackerOptions options) : options_(std::move(options)) {}
Tracker::~Tracker() = default;

int Tracker::live_tracks() const {
  int n = 0;
  for (const auto& t : tracks_)
    if (t->id > 0) ++n;
  return n;
}

std::vector<TrackedBox> Tracker::Step(int64_t frame, double time, const std::vector<Detection>& all) {
  std::vector<TrackedBox> out;
  if (frame <= last_frame_) return out;  // frames must increase; ignore repeats
  last_frame_ = frame;
  std::vector<const Detection*> dets;
  for (const auto& d : all)
    if ((options_.cls.empty() || d.cls == options_.cls) && d.box.Area() > 0) dets.push_back(&d);

  std::vector<Box> predicted;
  for (auto& t : tracks_) predicted.push_back(t->Predict(frame));

  // Cost matrix tracks x detections, with forbidden (gated) pairs.
  std::vector<std::vector<double>> cost(tracks_.size(), std::vector<double>(dets.size(), kForbidden));
  for (size_t i = 0; i < tracks_.size(); ++i) {
    const Box& p = predicted[i];
    for (size_t j = 0; j < dets.size(); ++j) {
      const Box& b = dets[j]->box;
      double iou = Iou(p, b);
      double dist = std::hypot(p.Cx() - b.Cx(), p.Cy() - b.Cy()) / std::max(1.0, p.h);
      if (iou < options_.iou_gate && dist > options_.max_distance) continue;
      cost[i][j] = (1 - iou) + 0.5 * std::min(dist, 2.0);
    }
  }
  std::vector<int> match = SolveAssignment(cost);
  std::vector<bool> used(dets.size(), false);
  for (size_t i = 0; i < tracks_.size(); ++i) {
    Track& t = *tracks_[i];
    int j = i < match.size() ? match[i] : -1;
    if (j >= 0 && cost[i][j] >= kForbidden) j = -1;
    if (j < 0) {
      ++t.misses;
      continue;
    }
    used[j] = true;
    const Detection& d = *dets[j];
    t.Correct(d.box);
    ++t.hits;
    t.misses = 0;
    TrackedBox tb{t.id, frame, time, d.box, d.score, d.cls};
    if (t.id > 0) {
      out.push_back(tb);
    } else {
      t.pending.push_back(tb);
      if (t.hits >= options_.min_hits) {
        t.id = next_id_++;
        for (auto& p : t.pending) {
          p.id = t.id;
          out.push_back(p);
        }
        t.pending.clear();
      }
    }
  }
  // Death: confirmed tracks after max_misses, tentative ones at their first miss.
  tracks_.erase(std::remove_if(tracks_.begin(), tracks_.end(),
                               [&](const std::unique_ptr<Track>& t) {
                                 return t->id > 0 ? t->misses > options_.max_misses : t->misses > 0;
                               }),
                tracks_.end());
  // Birth: unmatched detections start tentative tracks.
  for (size_t j = 0; j < dets.size(); ++j) {
    if (used[j]) continue;
    auto t = std::make_unique<Track>(dets[j]->box, frame);
    t->hits = 1;
    t->pending.push_back({0, frame, time, dets[j]->box, dets[j]->score, dets[j]->cls});
    if (options_.min_hits <= 1) {
      t->id = next_id_++;
      t->pending[0].id = t->id;
      out.push_back(t->pending[0]);
      t->pending.clear();
    }
    tracks_.push_back(std::move(t));
  }
  std::sort(out.begin(), out.end(), [](const TrackedBox& a, const TrackedBox& b) {
    return std::tie(a.frame, a.id) < std::tie(b.frame, b.id);
  });
  return out;
}

namespace {

struct Fragment {
  int id = 0;
  std::string cls;
  const TrackedBox* first = nullptr;
  const TrackedBox* last = nullptr;
  double vx_end = 0, vy_end = 0;  // pixels per second over the last second
  double vx_start = 0, vy_start = 0;
};

// Velocity of the centre between `to` and the box about one second before it
// (or after, when `forward` is false) in `track` (in time order).
void Velocity(const std::vector<const TrackedBox*>& track, bool at_end, double* vx, double* vy) {
  *vx = *vy = 0;
  if (track.size() < 2) return;
  const TrackedBox* a = at_end ? track.back() : track.front();
  const TrackedBox* b = a;
  if (at_end) {
    for (auto it = track.rbegin(); it != track.rend() && a->time - (*it)->time <= 1.0 + 1e-9; ++it) b = *it;
  } else {
    for (auto it = track.begin(); it != track.end() && (*it)->time - a->time <= 1.0 + 1e-9; ++it) b = *it;
  }
  double dt = a->time - b->time;
  if (std::fabs(dt) < 0.2) return;  // too short to tell a direction from jitter
  *vx = (a->box.Cx() - b->box.Cx()) / dt;
  *vy = (a->box.Cy() - b->box.Cy()) / dt;
}

}  // namespace

int JoinFragments(std::vector<TrackedBox>* boxes, const JoinOptions& o) {
  if (o.max_gap <= 0 || boxes->empty()) return 0;
  std::map<int, std::vector<const TrackedBox*>> by_id;
  for (const auto& b : *boxes) by_id[b.id].push_back(&b);
  std::vector<Fragment> frags;
  for (auto& [id, track] : by_id) {
    std::stable_sort(track.begin(), track.end(), [](const TrackedBox* a, const TrackedBox* b) { return a->frame < b->frame; });
    Fragment f;
    f.id = id;
    f.cls = track.front()->cls;
    f.first = track.front();
    f.last = track.back();
    Velocity(track, true, &f.vx_end, &f.vy_end);
    Velocity(track, false, &f.vx_start, &f.vy_start);
    frags.push_back(f);
  }
  struct Candidate {
    double cost;
    size_t from, to;
  };
  std::vector<Candidate> cands;
  for (size_t i = 0; i < frags.size(); ++i) {
    const Fragment& a = frags[i];
    for (size_t j = 0; j < frags.size(); ++j) {
      const Fragment& b = frags[j];
      if (i == j || a.cls != b.cls || b.first->frame <= a.last->frame) continue;
      double gap = b.first->time - a.last->time;
      if (gap <= 0 || gap > o.max_gap + 1e-9) continue;
      double ha = a.last->box.h, hb = b.first->box.h;
      if (ha <= 0 || hb <= 0 || std::max(ha, hb) > 1.5 * std::min(ha, hb)) continue;
      // Where each one's motion carries it across the gap, forward from a and
      // backward from b; the nearer of the two predictions counts.
      double h = (ha + hb) / 2;
      double fx = a.last->box.Cx() + a.vx_end * gap, fy = a.last->box.Cy() + a.vy_end * gap;
      double bx = b.first->box.Cx() - b.vx_start * gap, by = b.first->box.Cy() - b.vy_start * gap;
      double d = std::min(std::hypot(fx - b.first->box.Cx(), fy - b.first->box.Cy()),
                          std::hypot(bx - a.last->box.Cx(), by - a.last->box.Cy())) / h;
      if (d > o.max_distance) continue;
      cands.push_back({d + gap, i, j});
    }
  }
  std::sort(cands.begin(), cands.end(), [](const Candidate& x, const Candidate& y) {
    return std::tie(x.cost, x.from, x.to) < std::tie(y.cost, y.from, y.to);
  });
  std::vector<int> next(frags.size(), -1), prev(frags.size(), -1);
  int joins = 0;
  for (const auto& c : cands) {
    if (next[c.from] >= 0 || prev[c.to] >= 0) continue;
    next[c.from] = static_cast<int>(c.to);
    prev[c.to] = static_cast<int>(c.from);
    ++joins;
  }
  if (joins == 0) return 0;
  std::map<int, int> chain_id;  // fragment id -> id of its chain's first fragment
  for (size_t i = 0; i < frags.size(); ++i) {
    if (prev[i] >= 0) continue;
    for (int k = static_cast<int>(i); k >= 0; k = next[k]) chain_id[frags[k].id] = frags[i].id;
  }
  for (auto& b : *boxes) b.id = chain_id.at(b.id);
  return joins;
}

}  // namespace ns::video
