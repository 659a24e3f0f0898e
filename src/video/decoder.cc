#include "video/decoder.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cmath>

#include <opencv2/core.hpp>

#include "video/av_error.h"
#include "video/av_input.h"

namespace ns::video {

struct Decoder::State {
  std::unique_ptr<AvInput> input;
  AVFormatContext* format = nullptr;  // borrowed from `input`
  AVCodecContext* codec = nullptr;
  AVPacket* packet = nullptr;
  AVFrame* frame = nullptr;
  SwsContext* sws = nullptr;
  int sws_w = 0, sws_h = 0, sws_fmt = -1;
  cv::Mat unrotated;  // scratch for rotated videos
  int64_t first_pts = AV_NOPTS_VALUE;

  ~State() {
    sws_freeContext(sws);
    av_frame_free(&frame);
    av_packet_free(&packet);
    avcodec_free_context(&codec);
  }
};

static double Q(AVRational r) { return r.den == 0 ? 0.0 : av_q2d(r); }

int RotationOfStream(AVFormatContext* format, int stream_index) {
  AVStream* st = format->streams[stream_index];
  const uint8_t* matrix = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, nullptr);
  if (!matrix) return 0;
  // av_display_rotation_get gives the counter-clockwise angle; players rotate
  // clockwise by its negation.
  double ccw = av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix));
  if (std::isnan(ccw)) return 0;
  int cw = static_cast<int>(std::lround(-ccw)) % 360;
  if (cw < 0) cw += 360;
  return (cw + 45) / 90 * 90 % 360;
}

Result<std::unique_ptr<Decoder>> Decoder::Open(const std::string& path, const Options& options) {
  auto input = AvInput::Open(path, options.flag);
  if (!input.ok()) return input.status();
  std::unique_ptr<Decoder> d(new Decoder());
  d->path_ = path;
  d->options_ = options;
  d->state_ = std::make_unique<State>();
  State& s = *d->state_;
  s.input = std::move(*input);
  s.format = s.input->format();

  int rc = avformat_find_stream_info(s.format, nullptr);
  if (rc < 0) return AvStatus(rc, "cannot read stream information", path);

  int idx = av_find_best_stream(s.format, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (idx < 0) {
    bool has_audio = av_find_best_stream(s.format, AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0) >= 0;
    return Status::Invalid(path + (has_audio ? ": no video stream (audio-only file)"
                                             : ": no video stream"));
  }
  AVStream* st = s.format->streams[idx];
  // Cover art (an attached picture) is not a video.
  if (st->disposition & AV_DISPOSITION_ATTACHED_PIC)
    return Status::Invalid(path + ": no video stream (only an attached picture)");
  const AVCodec* codec = avcodec_find_decoder(st->codecpar->codec_id);
  if (!codec) {
    std::string name = avcodec_get_name(st->codecpar->codec_id);
    if (st->codecpar->codec_id == AV_CODEC_ID_NONE && st->codecpar->codec_tag != 0) {
      char tag[AV_FOURCC_MAX_STRING_SIZE] = {0};
      av_fourcc_make_string(tag, st->codecpar->codec_tag);
      name = std::string("FourCC ") + tag;
    }
    return Status::Invalid(path + ": unsupported video codec '" + name + "' (this FFmpeg cannot decode it)");
  }
  s.codec = avcodec_alloc_context3(codec);
  if (!s.codec) return Status::Internal(path + ": out of memory");
  rc = avcodec_parameters_to_context(s.codec, st->codecpar);
  if (rc < 0) return AvStatus(rc, "bad codec parameters", path);
  s.codec->thread_count = options.threads;
  s.codec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
  s.codec->pkt_timebase = st->time_base;
  rc = avcodec_open2(s.codec, codec, nullptr);
  if (rc < 0) return AvStatus(rc, "cannot open the decoder", path);
  if (s.codec->width <= 0 || s.codec->height <= 0)
    return Status::Invalid(path + ": video stream has no frame size");

  s.packet = av_packet_alloc();
  s.frame = av_frame_alloc();
  if (!s.packet || !s.frame) return Status::Internal(path + ": out of memory");

  StreamInfo& in = d->info_;
  in.container = s.format->iformat->name;
  in.codec = avcodec_get_name(st->codecpar->codec_id);
  in.width = s.codec->width;
  in.height = s.codec->height;
  in.header_fps = Q(st->r_frame_rate);
  in.avg_fps = Q(st->avg_frame_rate);
  in.time_base = Q(st->time_base);
  if (st->duration != AV_NOPTS_VALUE) {
    in.header_duration = st->duration * in.time_base;
  } else if (s.format->duration != AV_NOPTS_VALUE) {
    in.header_duration = s.format->duration / static_cast<double>(AV_TIME_BASE);
  }
  in.header_frames = st->nb_frames;
  in.rotation = options.rotation >= 0 ? options.rotation % 360 / 90 * 90 : RotationOfStream(s.format, idx);
  in.stream_index = idx;
  // Only the video stream's packets matter.
  for (unsigned i = 0; i < s.format->nb_streams; ++i)
    if (static_cast<int>(i) != idx) s.format->streams[i]->discard = AVDISCARD_ALL;
  return d;
}

Decoder::~Decoder() = default;

AVFormatContext* Decoder::format_context() const { return state_->format; }

int64_t Decoder::frames_lost() const {
  int64_t lost = packets_ - frames_ - std::max<int64_t>(options_.leading_packets, skipped_);
  return lost > 0 ? lost : 0;
}

Result<bool> Decoder::Next(VideoFrame* frame, bool convert) { return Read(frame, convert, nullptr); }

Result<bool> Decoder::NextIf(VideoFrame* frame, const std::function<bool(int64_t pts)>& want) {
  return Read(frame, true, &want);
}

Result<bool> Decoder::Read(VideoFrame* frame, bool convert, const std::function<bool(int64_t)>* want) {
  State& s = *state_;
  while (!done_) {
    Result<bool> got = Receive(frame, convert, want);
    if (!got.ok()) return got.status();
    if (*got) return true;
    if (done_) break;
    if (eof_sent_) {
      done_ = true;
      break;
    }
    int rc = av_read_frame(s.format, s.packet);
    if (rc < 0) {
      // A failed read is an error; the end of the file (early when it is
      // truncated) drains what the decoder holds.
      NS_RETURN_IF_ERROR(ReadFrameStatus(rc, s.format, path_));
      avcodec_send_packet(s.codec, nullptr);
      eof_sent_ = true;
      continue;
    }
    if (s.packet->stream_index != info_.stream_index) {
      av_packet_unref(s.packet);
      continue;
    }
    ++packets_;
    rc = avcodec_send_packet(s.codec, s.packet);
    av_packet_unref(s.packet);
    if (rc < 0 && rc != AVERROR(EAGAIN)) ++decode_errors_;
  }
  return false;
}

Status Decoder::SeekBefore(int64_t pts) {
  State& s = *state_;
  // Never past `pts`: the keyframe at or before it.
  int rc = avformat_seek_file(s.format, info_.stream_index, INT64_MIN, pts, pts, 0);
  if (rc < 0) return AvStatus(rc, "cannot seek", path_);
  avcodec_flush_buffers(s.codec);
  eof_sent_ = false;
  done_ = false;
  return Status::Ok();
}

Result<bool> Decoder::Receive(VideoFrame* frame, bool convert_wanted,
                                  const std::function<bool(int64_t)>* want) {
  State& s = *state_;
  while (true) {
    int rc = avcodec_receive_frame(s.codec, s.frame);
    if (rc == AVERROR(EAGAIN)) return false;
    if (rc == AVERROR_EOF) {
      done_ = true;
      return false;
    }
    if (rc < 0) {
      ++decode_errors_;
      if (eof_sent_) {
        done_ = true;
        return false;
      }
      return false;
    }
    int64_t pts = s.frame->best_effort_timestamp;
    if (pts == AV_NOPTS_VALUE) pts = s.frame->pts;
    if (pts != AV_NOPTS_VALUE && pts < options_.skip_before_pts) {  // the previous segment's
      ++skipped_;
      av_frame_unref(s.frame);
      continue;
    }
    if (s.first_pts == AV_NOPTS_VALUE && pts != AV_NOPTS_VALUE) s.first_pts = pts;
    frame->index = frames_++;
    frame->pts = pts;
    if (pts != AV_NOPTS_VALUE && s.first_pts != AV_NOPTS_VALUE) {
      frame->time = (pts - s.first_pts) * info_.time_base;
    } else {
      double fps = info_.avg_fps > 0 ? info_.avg_fps : (info_.header_fps > 0 ? info_.header_fps : 25);
      frame->time = frame->index / fps;
    }
    bool convert = options_.convert && convert_wanted && (!want || (*want)(pts));
    if (!convert) frame->bgr = cv::Mat();
    Status st = convert ? Convert(frame) : Status::Ok();
    av_frame_unref(s.frame);
    if (!st.ok()) return st;
    return true;
  }
}

Status Decoder::Convert(VideoFrame* frame) {
  State& s = *state_;
  AVFrame* f = s.frame;
  if (f->width <= 0 || f->height <= 0) return Status::Invalid(path_ + ": frame with no size");
  if (!s.sws || s.sws_w != f->width || s.sws_h != f->height || s.sws_fmt != f->format) {
    sws_freeContext(s.sws);
    s.sws = sws_getContext(f->width, f->height, static_cast<AVPixelFormat>(f->format), f->width,
                           f->height, AV_PIX_FMT_BGR24, SWS_BILINEAR, nullptr, nullptr, nullptr);
    if (!s.sws) {
      return Status::Invalid(path_ + ": cannot convert pixel format " +
                             std::to_string(f->format) + " to BGR");
    }
    s.sws_w = f->width;
    s.sws_h = f->height;
    s.sws_fmt = f->format;
  }
  // The caller's buffer is reused when it is the right size and nobody else holds
  // it: a fresh 1 MB Mat per frame costs page faults on every frame.
  const bool rotate = options_.apply_rotation && info_.rotation != 0;
  int out_w = f->width, out_h = f->height;
  if (rotate && info_.rotation != 180) std::swap(out_w, out_h);
  cv::Mat& out = frame->bgr;
  if (out.rows != out_h || out.cols != out_w || out.type() != CV_8UC3 || (out.u && CV_XADD(&out.u->refcount, 0) > 1))
    out = cv::Mat(out_h, out_w, CV_8UC3);
  cv::Mat& target = rotate ? s.unrotated : out;
  target.create(f->height, f->width, CV_8UC3);
  uint8_t* dst[4] = {target.data, nullptr, nullptr, nullptr};
  int dst_stride[4] = {static_cast<int>(target.step[0]), 0, 0, 0};
  sws_scale(s.sws, f->data, f->linesize, 0, f->height, dst, dst_stride);
  if (rotate) {
    int code = info_.rotation == 90    ? cv::ROTATE_90_CLOCKWISE
               : info_.rotation == 180 ? cv::ROTATE_180
                                       : cv::ROTATE_90_COUNTERCLOCKWISE;
    cv::rotate(s.unrotated, out, code);
  }
  return Status::Ok();
}

}  // namespace ns::video
