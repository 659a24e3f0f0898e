#include "video/probe.h"

extern "C" {
#include <libavformat/avformat.h>
}

#include <algorithm>
#include <cmath>

#include "video/av_error.h"
#include "video/decoder.h"

namespace ns::video {

Result<ProbeResult> Probe(const std::string& path, bool decode) {
  Decoder::Options opt;
  opt.convert = false;
  opt.threads = 0;
  opt.flag = "--input";
  auto demux = Decoder::Open(path, opt);
  if (!demux.ok()) return demux.status();
  const StreamInfo& in = (*demux)->info();
  ProbeResult r;
  r.path = path;
  r.container = in.container;
  r.codec = in.codec;
  r.coded_width = in.width;
  r.coded_height = in.height;
  r.width = in.display_width();
  r.height = in.display_height();
  r.rotation = in.rotation;
  r.header_fps = in.header_fps;
  r.header_duration = in.header_duration;
  r.header_frames = in.header_frames;

  // Pass 1: demux only. Count packets, collect timestamps and keyframes.
  AVFormatContext* fmt = (*demux)->format_context();
  AVPacket* pkt = av_packet_alloc();
  if (!pkt) return Status::Internal("out of memory");
  std::vector<int64_t> pts;
  int64_t packets = 0;
  int rc;
  while ((rc = av_read_frame(fmt, pkt)) >= 0) {
    if (pkt->stream_index == in.stream_index) {
      ++packets;
      int64_t t = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
      if (t != AV_NOPTS_VALUE) {
        pts.push_back(t);
        if (pkt->flags & AV_PKT_FLAG_KEY) r.keyframe_times.push_back(t * in.time_base);
      }
    }
    av_packet_unref(pkt);
  }
  av_packet_free(&pkt);
  NS_RETURN_IF_ERROR(ReadFrameStatus(rc, fmt, path));
  std::sort(pts.begin(), pts.end());
  if (!pts.empty()) {
    double t0 = pts.front() * in.time_base;
    for (double& k : r.keyframe_times) k -= t0;
  }

  r.frame_count = packets;
  r.frame_count_source = "packets";
  bool count_mismatch = in.header_frames > 0 && in.header_frames != packets;
  // No count in the header (Matroska, many streams) or a wrong one: decode and count.
  if (decode || count_mismatch || in.header_frames <= 0 || packets == 0) {
    auto dec = Decoder::Open(path, opt);
    if (!dec.ok()) return dec.status();
    VideoFrame f;
    int64_t n = 0;
    while (true) {
      auto more = (*dec)->Next(&f);
      if (!more.ok()) return more.status();
      if (!*more) break;
      ++n;
    }
    r.frame_count = n;
    r.frame_count_source = "decoded";
    r.frames_lost = (*dec)->frames_lost();
  }
  if (r.frame_count == 0) return Status::Invalid(path + ": no video frame could be decoded");

  // Real fps: from the spacing of timestamps (the median step is robust to gaps).
  double measured = 0;
  if (pts.size() >= 2) {
    std::vector<int64_t> steps;
    for (size_t i = 1; i < pts.size(); ++i)
      if (pts[i] > pts[i - 1]) steps.push_back(pts[i] - pts[i - 1]);
    if (!steps.empty()) {
      std::nth_element(steps.begin(), steps.begin() + steps.size() / 2, steps.end());
      double step = steps[steps.size() / 2] * in.time_base;
      if (step > 0) measured = 1.0 / step;
    }
  }
  double candidates[] = {in.avg_fps, in.header_fps};
  r.fps = measured;
  for (double c : candidates) {
    // Prefer the exact rational from the stream when it agrees with the timestamps.
    if (c > 0 && measured > 0 && std::fabs(c - measured) / measured < 0.02) {
      r.fps = c;
      break;
    }
  }
  if (r.fps <= 0) r.fps = in.avg_fps > 0 ? in.avg_fps : in.header_fps;
  if (r.fps <= 0) r.fps = 25;
  if (pts.size() >= 2) {
    r.duration = (pts.back() - pts.front()) * in.time_base + 1.0 / r.fps;
  } else {
    r.duration = r.frame_count / r.fps;
  }
  // Frames at the median step would fill the duration; far fewer (or more)
  // frames mean the step changes: a variable frame rate.
  double expected_frames = r.duration * r.fps;
  r.variable_frame_rate = pts.size() >= 2 && std::fabs(expected_frames - static_cast<double>(r.frame_count)) >
                                                 std::max(2.0, 0.02 * expected_frames);
  r.header_mismatch = count_mismatch ||
                      (r.header_fps > 0 && std::fabs(r.header_fps - r.fps) / r.fps > 0.02) ||
                      (r.header_duration > 0 && std::fabs(r.header_duration - r.duration) > 1.0);
  return r;
}

nlohmann::json ToJson(const ProbeResult& p) {
  return nlohmann::json{{"path", p.path},
                        {"container", p.container},
                        {"codec", p.codec},
                        {"width", p.width},
                        {"height", p.height},
                        {"coded_width", p.coded_width},
                        {"coded_height", p.coded_height},
                        {"fps", p.fps},
                        {"header_fps", p.header_fps},
                        {"duration", p.duration},
                        {"header_duration", p.header_duration},
                        {"frame_count", p.frame_count},
                        {"header_frames", p.header_frames},
                        {"frame_count_source", p.frame_count_source},
                        {"frames_lost", p.frames_lost},
                        {"keyframe_times", p.keyframe_times},
                        {"rotation", p.rotation},
                        {"header_mismatch", p.header_mismatch},
                        {"variable_frame_rate", p.variable_frame_rate}};
}

}  // namespace ns::video
