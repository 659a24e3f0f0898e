// AvInput: a demuxer (AVFormatContext) over a video file that InputFile opened and
// checked, so FFmpeg never opens the path itself: a FIFO or a device (or a path
// swapped for one after a check) can neither block the open nor feed the demuxer
// without end. FFmpeg reads through custom I/O callbacks on the descriptor; the
// path is still given to FFmpeg, whose probe uses its extension.
//
// Errors: those of InputFile::Open (naming `flag`), an empty file, and a file FFmpeg
// cannot open as a container: kInvalidArgument "<path>: not a readable video file
// (<AVERROR text>)", or kIoError when the read itself failed.
// Not thread-safe; owns the descriptor, the I/O context and the demuxer and frees
// them on destruction.
#pragma once

#include <memory>
#include <string>

#include "util/status.h"
#include "video/input_file.h"

struct AVFormatContext;
struct AVIOContext;

namespace ns::video {

class AvInput {
 public:
  static Result<std::unique_ptr<AvInput>> Open(const std::string& path, const std::string& flag);
  ~AvInput();
  AvInput(const AvInput&) = delete;
  AvInput& operator=(const AvInput&) = delete;

  // Borrowed; valid while the AvInput lives.
  AVFormatContext* format() const { return format_; }
  const std::string& path() const { return file_.path(); }

 private:
  explicit AvInput(InputFile file) : file_(std::move(file)) {}
  static int Read(void* opaque, uint8_t* buf, int size);
  static int64_t Seek(void* opaque, int64_t offset, int whence);

  InputFile file_;
  AVIOContext* io_ = nullptr;
  AVFormatContext* format_ = nullptr;
};

}  // namespace ns::video
