#include "video/av_error.h"

extern "C" {
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
