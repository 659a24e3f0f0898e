// Translation of FFmpeg and OpenCV failures into ns::Status, and of a Status into
// the exit code of a nightshift-video step.
//
// Exit codes (the step contract of DESIGN.md):
//   0  success
//   2  bad input: missing, empty, unreadable or undecodable file, a folder, FIFO or
//      device where a file is expected (or the reverse), a file over its size
//      limit, bad flag value
//   75 retryable: stopped by SIGTERM after writing a checkpoint (EX_TEMPFAIL)
//   1  any other failure
// Pure functions, thread-safe.
#pragma once

#include <string>

#include "util/status.h"

struct AVFormatContext;

namespace ns::video {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadInput = 2;
inline constexpr int kExitRetryable = 75;

// "Invalid data found when processing input" etc. for an AVERROR code.
std::string AvErrorText(int averror);

// Maps an AVERROR to a Status naming `path` and what was being done (`what`):
// data errors (AVERROR_INVALIDDATA, EOF while opening, decoder not found) become
// kInvalidArgument, ENOENT becomes kNotFound, the rest kIoError or kInternal.
Status AvStatus(int averror, const std::string& what, const std::string& path);

// What av_read_frame returning `rc` < 0 on `format` (reading `path`) means: Ok at
// the end of the file (a truncated file ends early; that is no error here), else
// the error, naming `path` and the AVERROR text. Demuxers report a failed read(2)
// as AVERROR_EOF, so the I/O context's error is checked too. A packet that decodes
// badly is not seen here: decoders count those (Decoder::decode_errors).
Status ReadFrameStatus(int rc, const AVFormatContext* format, const std::string& path);

// avio_closep on an output `format`'s file, after av_write_trailer: a failed flush
// or close(2) (a full disk, NFS reporting a failed write-back at close) is an
// error naming `path`, so a truncated video is never reported as written.
Status CloseOutput(AVFormatContext* format, const std::string& path);

// The exit code for a Status (see the table above).
int ExitCodeFor(const Status& status);

}  // namespace ns::video

namespace ns::video {
// FFmpeg logs every corrupt packet; steps summarise losses themselves, so they
// keep FFmpeg quiet unless `verbose`.
void SetFfmpegLogging(bool verbose);
}  // namespace ns::video
