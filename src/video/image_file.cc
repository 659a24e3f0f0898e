#include <cstring>
#include "video/image_file.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include "util/fs.h"
#include "util/strings.h"
#include "video/av_error.h"

namespace ns::video {

Status WriteImage(const std::string& path, const cv::Mat& bgr) {
  if (bgr.empty() || bgr.type() != CV_8UC3) return Status::Invalid(path + ": no 8-bit BGR image to write");
  std::string ext = path.substr(path.find_last_of('.') + 1);
  bool png = ext == "png" || ext == "PNG";
  bool jpeg = ext == "jpg" || ext == "jpeg" || ext == "JPG" || ext == "JPEG";
  if (!png && !jpeg) return Status::Invalid(path + ": images are written as .png or .jpg");
  const AVCodec* codec = avcodec_find_encoder(png ? AV_CODEC_ID_PNG : AV_CODEC_ID_MJPEG);
  if (!codec)
    return Status::Internal(path + ": this FFmpeg has no " + (png ? "png" : "mjpeg") +
                            " encoder; install Debian's libavcodec59 (scripts/setup)");
  AVPixelFormat fmt = png ? AV_PIX_FMT_RGB24 : AV_PIX_FMT_YUVJ420P;

  AVCodecContext* ctx = avcodec_alloc_context3(codec);
  AVFrame* frame = av_frame_alloc();
  AVPacket* pkt = av_packet_alloc();
  SwsContext* sws = nullptr;
  struct Free {
    AVCodecContext** ctx;
    AVFrame** frame;
    AVPacket** pkt;
    SwsContext** sws;
    ~Free() {
      sws_freeContext(*sws);
      av_packet_free(pkt);
      av_frame_free(frame);
      avcodec_free_context(ctx);
    }
  } free_later{&ctx, &frame, &pkt, &sws};
  if (!ctx || !frame || !pkt) return Status::Internal(path + ": out of memory");

  ctx->width = bgr.cols;
  ctx->height = bgr.rows;
  ctx->pix_fmt = fmt;
  ctx->time_base = AVRational{1, 1};
  if (jpeg) {  // qscale 3: about quality 90
    ctx->flags |= AV_CODEC_FLAG_QSCALE;
    ctx->global_quality = FF_QP2LAMBDA * 3;
  }
  // PNG: per-row filter choice ("mixed") makes heatmaps over video about a third
  // smaller than the default, and the report inlines them.
  if (png) av_opt_set(ctx->priv_data, "pred", "mixed", 0);
  int rc = avcodec_open2(ctx, codec, nullptr);
  if (rc < 0) return AvStatus(rc, "cannot open the image encoder", path);
  frame->format = fmt;
  frame->width = bgr.cols;
  frame->height = bgr.rows;
  rc = av_frame_get_buffer(frame, 0);
  if (rc < 0) return AvStatus(rc, "cannot allocate an image", path);
  // The encoder codes whole 8x8 blocks: pixels past an odd width or height are
  // read from the buffer's padding, which is not initialised. Zero it, or the
  // same image gives different bytes (and edge pixels) from run to run.
  for (AVBufferRef* b : frame->buf) {
    if (b) std::memset(b->data, 0, b->size);
  }
  if (jpeg) frame->quality = ctx->global_quality;
  sws = sws_getContext(bgr.cols, bgr.rows, AV_PIX_FMT_BGR24, bgr.cols, bgr.rows, fmt,
                       SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr);
  if (!sws) return Status::Internal(path + ": cannot convert a " + std::to_string(bgr.cols) + "x" +
                                    std::to_string(bgr.rows) + " image for the encoder");
  // The scaler reads a little past the last column and row for odd sizes
  // (chroma of the last pixel pair) and in SIMD steps: give it replicated edge
  // pixels to read, not whatever follows the image in memory, or the same image
  // encodes to different bytes from run to run.
  cv::Mat src;
  cv::copyMakeBorder(bgr, src, 0, 2, 0, 32, cv::BORDER_REPLICATE);
  const uint8_t* planes[4] = {src.data, nullptr, nullptr, nullptr};
  int strides[4] = {static_cast<int>(src.step[0]), 0, 0, 0};
  sws_scale(sws, planes, strides, 0, bgr.rows, frame->data, frame->linesize);
  frame->pts = 0;

  rc = avcodec_send_frame(ctx, frame);
  if (rc >= 0) rc = avcodec_send_frame(ctx, nullptr);
  if (rc < 0) return AvStatus(rc, "cannot encode the image", path);
  std::string bytes;
  while ((rc = avcodec_receive_packet(ctx, pkt)) >= 0) {
    bytes.append(reinterpret_cast<const char*>(pkt->data), pkt->size);
    av_packet_unref(pkt);
  }
  if (rc != AVERROR_EOF) return AvStatus(rc, "cannot encode the image", path);
  return WriteFileAtomic(path, bytes);
}

}  // namespace ns::video
