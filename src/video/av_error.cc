#include "video/av_error.h"

extern "C" {
#include <libavformat/avformat.h>
#include <libavutil/error.h>
}

#include <cerrno>

namespace ns::video {

std::string AvErrorText(int averror) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(averror, buf, sizeof buf);
  return buf;
}

Status AvStatus(int averror, const std::string& what, const std::string& path) {
  std::string msg = path + ": " + what + ": " + AvErrorText(averror);
  switch (averror) {
    case AVERROR(ENOENT):
      return Status::NotFound(path + ": no such file");
    case AVERROR(EACCES):
      return Status::Invalid(path + ": permission denied");
    case AVERROR_INVALIDDATA:
    case AVERROR_EOF:
    case AVERROR_DECODER_NOT_FOUND:
    case AVERROR_DEMUXER_NOT_FOUND:
    case AVERROR_STREAM_NOT_FOUND:
    case AVERROR_PATCHWELCOME:
      return Status::Invalid(msg);
    case AVERROR(ENOMEM):
      return Status::Internal(msg);
    default:
      return Status::IoError(msg);
  }
}

Status ReadFrameStatus(int rc, const AVFormatContext* format, const std::string& path) {
  int io_error = format && format->pb ? format->pb->error : 0;
  if (io_error < 0 && io_error != AVERROR_EOF) return AvStatus(io_error, "cannot read", path);
  if (rc == AVERROR_EOF) return Status::Ok();
  return AvStatus(rc, "cannot read", path);
}

Status CloseOutput(AVFormatContext* format, const std::string& path) {
  if (!format || !format->pb) return Status::Ok();
  int rc = avio_closep(&format->pb);
  if (rc < 0) return AvStatus(rc, "cannot finish writing (the file is incomplete)", path);
  return Status::Ok();
}

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
      return kExitBadInput;
    case StatusCode::kCancelled:
    case StatusCode::kUnavailable:
      return kExitRetryable;
    default:
      return kExitFailure;
  }
}

}  // namespace ns::video

extern "C" {
#include <libavutil/log.h>
}

namespace ns::video {
void SetFfmpegLogging(bool verbose) { av_log_set_level(verbose ? AV_LOG_INFO : AV_LOG_QUIET); }
}  // namespace ns::video
