#include "video/input_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace ns::video {
namespace {

std::string NameOf(const std::string& flag, const std::string& path) {
  return flag.empty() ? path : flag + " " + path;
}

std::string KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "a special file";
}

std::string Mib(int64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

Status OpenError(const std::string& name, int err) {
  if (err == ENOENT || err == ENOTDIR) return Status::NotFound(name + ": no such file");
  if (err == EACCES || err == EPERM)
    return Status::Invalid(name + ": permission denied; make it readable");
  return Status::IoError(name + ": cannot open: " + std::strerror(err));
}

Status TooLarge(const std::string& name, int64_t limit) {
  return Status::Invalid(name + ": larger than " + Mib(limit) +
                         ", more than this input can be; check that it "
                         "is the right file");
}

// read(2), retried when a signal interrupts it.
ssize_t ReadSome(int fd, char* buf, size_t size) {
  while (true) {
    ssize_t n = ::read(fd, buf, size);
    if (n >= 0 || errno != EINTR) return n;
  }
}

}  // namespace

Result<InputFile> InputFile::Open(const std::string& path, const std::string& flag) {
  InputFile f;
  f.path_ = path;
  f.name_ = NameOf(flag, path);
  // O_NONBLOCK: opening a FIFO without a writer would block here; O_NOCTTY: a
  // terminal must not become the controlling one.
  f.fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (f.fd_ < 0) return OpenError(f.name_, errno);
  struct stat st;
  if (::fstat(f.fd_, &st) != 0)
    return Status::IoError(f.name_ + ": cannot stat: " + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return Status::Invalid(f.name_ + ": " + KindOf(st.st_mode) +
                           ", not a regular file; pass a regular file");
  // Reads of a regular file never block; clear the flag so nothing depends on it.
  int fl = ::fcntl(f.fd_, F_GETFL);
  if (fl >= 0) ::fcntl(f.fd_, F_SETFL, fl & ~O_NONBLOCK);
  f.size_ = st.st_size;
  return f;
}

InputFile::InputFile(InputFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      size_(other.size_),
      path_(std::move(other.path_)),
      name_(std::move(other.name_)) {}

InputFile& InputFile::operator=(InputFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
    path_ = std::move(other.path_);
    name_ = std::move(other.name_);
  }
  return *this;
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);  // read-only: nothing to lose
}

Result<std::string> InputFile::ReadAll(int64_t limit) {
  if (size_ > limit) return TooLarge(name_, limit);
  std::string out;
  out.reserve(static_cast<size_t>(size_));
  char buf[65536];
  while (true) {
    ssize_t n = ReadSome(fd_, buf, sizeof buf);
    if (n < 0) return Status::IoError(name_ + ": cannot read: " + std::strerror(errno));
    if (n == 0) return out;
    if (static_cast<int64_t>(out.size()) + n > limit) return TooLarge(name_, limit);
    out.append(buf, static_cast<size_t>(n));
  }
}

Status InputFile::ForEachLine(
    size_t max_line, const std::function<Status(std::string_view line, int64_t number)>& line) {
  std::string pending;  // the line read so far
  int64_t number = 0;
  auto too_long = [&] {
    return Status::Invalid(name_ + ":" + std::to_string(number + 1) + ": a line longer than " +
                           Mib(max_line) + "; pass a JSON Lines file that a step wrote");
  };
  char buf[65536];
  while (true) {
    ssize_t n = ReadSome(fd_, buf, sizeof buf);
    if (n < 0) return Status::IoError(name_ + ": cannot read: " + std::strerror(errno));
    if (n == 0) break;
    std::string_view chunk(buf, static_cast<size_t>(n));
    while (!chunk.empty()) {
      size_t nl = chunk.find('\n');
      std::string_view part = chunk.substr(0, nl);
      if (pending.size() + part.size() > max_line) return too_long();
      if (nl == std::string_view::npos) {
        pending.append(part);
        break;
      }
      ++number;
      if (pending.empty()) {
        NS_RETURN_IF_ERROR(line(part, number));
      } else {
        pending.append(part);
        NS_RETURN_IF_ERROR(line(pending, number));
        pending.clear();
      }
      chunk.remove_prefix(nl + 1);
    }
  }
  if (!pending.empty()) return line(pending, number + 1);
  return Status::Ok();
}

Result<std::string> ReadSmallFile(const std::string& path, const std::string& flag, int64_t limit) {
  auto f = InputFile::Open(path, flag);
  if (!f.ok()) return f.status();
  return f->ReadAll(limit);
}

Status CheckFolder(const std::string& path, const std::string& flag, const std::string& expected) {
  const std::string name = NameOf(flag, path);
  // O_PATH opens nothing: no FIFO to block on, no device to wake.
  int fd = ::open(path.c_str(), O_PATH | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR)
      return Status::NotFound(name + ": no such folder; pass " + expected);
    return OpenError(name, err);
  }
  struct stat st;
  int rc = ::fstat(fd, &st);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status::IoError(name + ": cannot stat: " + std::strerror(err));
  if (!S_ISDIR(st.st_mode))
    return Status::Invalid(name + ": " +
                           (S_ISREG(st.st_mode) ? std::string("a file") : KindOf(st.st_mode)) +
                           ", not a folder; pass " + expected);
  return Status::Ok();
}

}  // namespace ns::video
