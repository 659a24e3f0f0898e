#include "video/av_input.h"

extern "C" {
#include <libavformat/avformat.h>
#include <libavutil/mem.h>
}

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "video/av_error.h"

namespace ns::video {
namespace {

// FFmpeg's own file protocol reads in blocks of this size too.
constexpr int kIoBufferSize = 32768;

}  // namespace

int AvInput::Read(void* opaque, uint8_t* buf, int size) {
  auto* in = static_cast<AvInput*>(opaque);
  while (true) {
    ssize_t n = ::read(in->file_.fd(), buf, static_cast<size_t>(size));
    if (n > 0) return static_cast<int>(n);
    if (n == 0) return AVERROR_EOF;
    if (errno != EINTR) return AVERROR(errno);  // kept in the AVIOContext's `error`
  }
}

int64_t AvInput::Seek(void* opaque, int64_t offset, int whence) {
  auto* in = static_cast<AvInput*>(opaque);
  if (whence & AVSEEK_SIZE) {
    struct stat st;
    return ::fstat(in->file_.fd(), &st) == 0 ? static_cast<int64_t>(st.st_size) : AVERROR(errno);
  }
  off_t at = ::lseek(in->file_.fd(), static_cast<off_t>(offset), whence & ~AVSEEK_FORCE);
  return at < 0 ? AVERROR(errno) : static_cast<int64_t>(at);
}

Result<std::unique_ptr<AvInput>> AvInput::Open(const std::string& path, const std::string& flag) {
  auto file = InputFile::Open(path, flag);
  if (!file.ok()) return file.status();
  if (file->size() == 0) return Status::Invalid(file->name() + ": empty file (0 bytes)");
  std::unique_ptr<AvInput> in(new AvInput(std::move(*file)));
  auto* buffer = static_cast<unsigned char*>(av_malloc(kIoBufferSize));
  if (!buffer) return Status::Internal(path + ": out of memory");
  in->io_ = avio_alloc_context(buffer, kIoBufferSize, 0, in.get(), &AvInput::Read, nullptr,
                               &AvInput::Seek);
  if (!in->io_) {
    av_free(buffer);
    return Status::Internal(path + ": out of memory");
  }
  in->format_ = avformat_alloc_context();
  if (!in->format_) return Status::Internal(path + ": out of memory");
  in->format_->pb = in->io_;  // custom I/O: avformat_close_input leaves it to us
  int rc = avformat_open_input(&in->format_, path.c_str(), nullptr, nullptr);
  if (rc < 0) {  // the context is freed already
    in->format_ = nullptr;
    if (in->io_->error < 0 && in->io_->error != AVERROR_EOF)
      return AvStatus(in->io_->error, "cannot read", path);
    if (rc == AVERROR(ENOMEM)) return AvStatus(rc, "cannot open", path);
    return Status::Invalid(path + ": not a readable video file (" + AvErrorText(rc) + ")");
  }
  return in;
}

AvInput::~AvInput() {
  avformat_close_input(&format_);
  if (io_) av_freep(&io_->buffer);  // FFmpeg may have replaced the buffer given
  avio_context_free(&io_);
  // file_ closes the descriptor.
}

}  // namespace ns::video
