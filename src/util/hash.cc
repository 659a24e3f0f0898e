#include "util/hash.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "util/fs.h"

namespace ns {

Hasher::Hasher() : state_(XXH3_createState()) {
  XXH3_128bits_reset(static_cast<XXH3_state_t*>(state_));
}

Hasher::~Hasher() { XXH3_freeState(static_cast<XXH3_state_t*>(state_)); }

void Hasher::Add(std::string_view field) {
  uint64_t n = field.size();
  AddRaw(&n, sizeof n);
  AddRaw(field.data(), field.size());
}

void Hasher::AddRaw(const void* data, size_t n) {
  XXH3_128bits_update(static_cast<XXH3_state_t*>(state_), data, n);
}

std::string Hasher::HexDigest() {
  XXH128_hash_t h = XXH3_128bits_digest(static_cast<XXH3_state_t*>(state_));
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return buf;
}

namespace {

Status HashFileInto(const std::string& path, Hasher* h, const std::function<bool()>& cancelled) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat on the open
  // file decides, so a path swapped after a check is still caught.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return Status::FromErrno("cannot read " + path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::Invalid(path + " is not a regular file (a device, FIFO or socket); only files and folders can be inputs");
  }
  std::vector<char> buf(1 << 20);
  while (true) {
    if (cancelled && cancelled()) {
      ::close(fd);
      return Status::Cancelled("cancelled while hashing " + path);
    }
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return Status::FromErrno("cannot read " + path, err);
    }
    if (n == 0) break;
    h->AddRaw(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return Status::Ok();
}

}  // namespace

Result<std::string> HashPath(const std::string& path, const std::function<bool()>& cancelled) {
  Hasher h;
  if (IsDirectory(path)) {
    std::vector<std::string> files;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      // Only regular files count: devices, FIFOs and sockets inside are skipped.
      if (it->is_regular_file(ec)) files.push_back(it->path().string());
    }
    if (ec) return Status::IoError("cannot read folder " + path + ": " + ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      h.Add(f.substr(path.size()));
      NS_RETURN_IF_ERROR(HashFileInto(f, &h, cancelled));
    }
  } else {
    NS_RETURN_IF_ERROR(HashFileInto(path, &h, cancelled));
  }
  return h.HexDigest();
}

}  // namespace ns
