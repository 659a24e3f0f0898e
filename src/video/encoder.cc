#include "video/encoder.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cmath>

#include "video/av_error.h"

namespace ns::video {

struct Encoder::State {
  AVFormatContext* fmt = nullptr;
  AVCodecContext* codec = nullptr;
  AVStream* stream = nullptr;
  AVFrame* frame = nullptr;
  AVPacket* packet = nullptr;
  SwsContext* sws = nullptr;
  bool header_written = false;
  bool finished = false;

  ~State() {
    sws_freeContext(sws);
    av_frame_free(&frame);
    av_packet_free(&packet);
    avcodec_free_context(&codec);
    if (fmt) {
      if (fmt->pb) avio_closep(&fmt->pb);  // only when Finish failed or never ran
      avformat_free_context(fmt);
    }
  }
};

Result<std::unique_ptr<Encoder>> Encoder::Open(const std::string& path, int width, int height, double fps,
                                               int threads, const std::string& preset) {
  static const char* const kPresets[] = {"ultrafast", "superfast", "veryfast", "faster", "fast",
                                         "medium",    "slow",      "slower",   "veryslow"};
  if (std::find(std::begin(kPresets), std::end(kPresets), preset) == std::end(kPresets))
    return Status::Invalid("--preset must be one of ultrafast, superfast, veryfast, faster, fast, medium, slow, "
                           "slower, veryslow; not '" + preset.substr(0, 40) + "'");
  if (width <= 0 || height <= 0) return Status::Invalid(path + ": cannot encode an empty frame size");
  std::unique_ptr<Encoder> e(new Encoder());
  e->path_ = path;
  e->width_ = width;
  e->height_ = height;
  e->state_ = std::make_unique<State>();
  State& s = *e->state_;
  int ew = width + (width & 1), eh = height + (height & 1);

  int rc = avformat_alloc_output_context2(&s.fmt, nullptr, "mp4", path.c_str());
  if (rc < 0 || !s.fmt) return AvStatus(rc, "cannot create the MP4 muxer", path);
  const AVCodec* codec = avcodec_find_encoder_by_name("libx264");
  if (!codec) codec = avcodec_find_encoder(AV_CODEC_ID_MPEG4);
  if (!codec) return Status::Internal("this FFmpeg has neither libx264 nor mpeg4 encoders");
  e->codec_ = codec->name;
  s.stream = avformat_new_stream(s.fmt, nullptr);
  s.codec = avcodec_alloc_context3(codec);
  if (!s.stream || !s.codec) return Status::Internal("out of memory");
  if (fps <= 0 || !std::isfinite(fps)) fps = 25;
  AVRational rate = av_d2q(fps, 100000);
  s.codec->width = ew;
  s.codec->height = eh;
  s.codec->pix_fmt = AV_PIX_FMT_YUV420P;
  // Milliseconds: a frame keeps its source time whatever the frame rate does.
  s.codec->time_base = AVRational{1, 1000};
  s.codec->framerate = rate;
  e->frame_ms_ = std::max<int64_t>(1, std::llround(1000.0 / fps));
  e->fps_ = fps;
  s.codec->gop_size = std::max(1, static_cast<int>(std::lround(fps * 2)));
  s.codec->thread_count = threads;
  if (s.fmt->oformat->flags & AVFMT_GLOBALHEADER) s.codec->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  if (e->codec_ == "libx264") {
    av_opt_set(s.codec->priv_data, "preset", preset.c_str(), 0);
    av_opt_set(s.codec->priv_data, "crf", "23", 0);
  } else {
    s.codec->bit_rate = static_cast<int64_t>(ew) * eh * 4;
  }
  rc = avcodec_open2(s.codec, codec, nullptr);
  if (rc < 0) return AvStatus(rc, "cannot open the " + e->codec_ + " encoder", path);
  rc = avcodec_parameters_from_context(s.stream->codecpar, s.codec);
  if (rc < 0) return AvStatus(rc, "bad encoder parameters", path);
  s.stream->time_base = s.codec->time_base;
  rc = avio_open(&s.fmt->pb, path.c_str(), AVIO_FLAG_WRITE);
  if (rc < 0) return AvStatus(rc, "cannot write", path);
  AVDictionary* opts = nullptr;
  av_dict_set(&opts, "movflags", "+faststart", 0);
  rc = avformat_write_header(s.fmt, &opts);
  av_dict_free(&opts);
  if (rc < 0) return AvStatus(rc, "cannot write the MP4 header", path);
  s.header_written = true;

  s.frame = av_frame_alloc();
  s.packet = av_packet_alloc();
  if (!s.frame || !s.packet) return Status::Internal("out of memory");
  s.frame->format = AV_PIX_FMT_YUV420P;
  s.frame->width = ew;
  s.frame->height = eh;
  rc = av_frame_get_buffer(s.frame, 0);
  if (rc < 0) return AvStatus(rc, "cannot allocate a frame", path);
  s.sws = sws_getContext(ew, eh, AV_PIX_FMT_BGR24, ew, eh, AV_PIX_FMT_YUV420P, SWS_BILINEAR, nullptr,
                         nullptr, nullptr);
  if (!s.sws) return Status::Internal("cannot create the BGR to YUV converter");
  return e;
}

Encoder::~Encoder() = default;

Status Encoder::Write(const cv::Mat& bgr, double time) {
  State& s = *state_;
  if (s.finished) return Status::Internal(path_ + ": write after finish");
  if (bgr.cols != width_ || bgr.rows != height_ || bgr.type() != CV_8UC3)
    return Status::Invalid(path_ + ": frame size changed mid-stream");
  cv::Mat even = bgr;
  if ((width_ & 1) || (height_ & 1))
    cv::copyMakeBorder(bgr, even, 0, height_ & 1, 0, width_ & 1, cv::BORDER_REPLICATE);
  if (!even.isContinuous()) even = even.clone();
  int rc = av_frame_make_writable(s.frame);
  if (rc < 0) return AvStatus(rc, "cannot reuse a frame", path_);
  const uint8_t* src[4] = {even.data, nullptr, nullptr, nullptr};
  int src_stride[4] = {static_cast<int>(even.step[0]), 0, 0, 0};
  sws_scale(s.sws, src, src_stride, 0, even.rows, s.frame->data, s.frame->linesize);
  int64_t pts = std::llround((time >= 0 ? time : static_cast<double>(frames_) / fps_) * 1000);
  pts = std::max(pts, last_pts_ + 1);
  s.frame->pts = last_pts_ = pts;
  ++frames_;
  rc = avcodec_send_frame(s.codec, s.frame);
  if (rc < 0) return AvStatus(rc, "cannot encode a frame", path_);
  return Drain(false);
}

Status Encoder::Drain(bool flush) {
  State& s = *state_;
  while (true) {
    int rc = avcodec_receive_packet(s.codec, s.packet);
    if (rc == AVERROR(EAGAIN) && !flush) return Status::Ok();
    if (rc == AVERROR_EOF || rc == AVERROR(EAGAIN)) return Status::Ok();
    if (rc < 0) return AvStatus(rc, "encoder failed", path_);
    // libx264 leaves durations unset; without them the MP4 edit list drops the last frame.
    if (s.packet->duration <= 0) s.packet->duration = frame_ms_;
    av_packet_rescale_ts(s.packet, s.codec->time_base, s.stream->time_base);
    s.packet->stream_index = s.stream->index;
    rc = av_interleaved_write_frame(s.fmt, s.packet);
    av_packet_unref(s.packet);
    if (rc < 0) return AvStatus(rc, "cannot write a packet", path_);
  }
}

Status Encoder::Finish() {
  State& s = *state_;
  if (s.finished) return Status::Ok();
  s.finished = true;
  int rc = avcodec_send_frame(s.codec, nullptr);
  if (rc < 0 && rc != AVERROR_EOF) return AvStatus(rc, "cannot flush the encoder", path_);
  NS_RETURN_IF_ERROR(Drain(true));
  rc = av_write_trailer(s.fmt);
  if (rc < 0) return AvStatus(rc, "cannot finish", path_);
  // The last bytes reach the file (and NFS reports a failed write-back) only here.
  return CloseOutput(s.fmt, path_);
}

}  // namespace ns::video
