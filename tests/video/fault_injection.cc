// LD_PRELOAD fault injection for the nightshift-video tests: makes the reads,
// writes or the close of one file fail as a failing disk, a full disk or NFS does,
// which no ordinary file can be made to do on demand. Set in the environment:
//   NS_FAULT_FILE=<suffix>           the file to hurt: descriptors opened with a
//                                    path ending so (open, open64, openat...)
//   NS_FAULT_READ_EIO_AFTER=<n>      read() fails with EIO once n bytes were read
//   NS_FAULT_WRITE_ENOSPC_AFTER=<n>  write() fails with ENOSPC once n bytes were
//                                    written
//   NS_FAULT_CLOSE_EIO=1             close() of a descriptor opened for writing
//                                    closes it and returns EIO (NFS reports a
//                                    failed write-back there)
// Every other file and call passes straight through. Thread-safe (the decoder reads
// on a thread of its own).
#undef _FORTIFY_SOURCE  // the wrappers below replace the plain calls
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdlib>
#include <cstring>

namespace {

constexpr int kMaxFd = 4096;

pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
long long g_done[kMaxFd];  // bytes read or written so far; -1: not hurt
bool g_writes[kMaxFd];     // opened for writing
bool g_init = false;

void Init(void) {
  if (g_init) return;
  for (int i = 0; i < kMaxFd; ++i) g_done[i] = -1;
  g_init = true;
}

bool Hurts(const char* path) {
  const char* suffix = getenv("NS_FAULT_FILE");
  if (!suffix || !*suffix || !path) return 0;
  size_t n = strlen(path), m = strlen(suffix);
  return n >= m && strcmp(path + n - m, suffix) == 0;
}

void Track(int fd, const char* path, int flags) {
  if (fd < 0 || fd >= kMaxFd) return;
  pthread_mutex_lock(&g_mu);
  Init();
  g_done[fd] = Hurts(path) ? 0 : -1;
  g_writes[fd] = (flags & O_ACCMODE) != O_RDONLY;
  pthread_mutex_unlock(&g_mu);
}

long long Limit(const char* name) {
  const char* v = getenv(name);
  return v && *v ? atoll(v) : -1;
}

// Bytes the call on `fd` may still move (-1: no limit), counting `want` more.
long long Allow(int fd, const char* limit_name, size_t want) {
  long long limit = Limit(limit_name);
  if (limit < 0 || fd < 0 || fd >= kMaxFd) return -1;
  pthread_mutex_lock(&g_mu);
  Init();
  long long allow = -1;
  if (g_done[fd] >= 0) {
    long long left = limit - g_done[fd];
    allow =
        left <= 0 ? 0 : (left < static_cast<long long>(want) ? left : static_cast<long long>(want));
  }
  pthread_mutex_unlock(&g_mu);
  return allow;
}

void Count(int fd, ssize_t n) {
  if (n <= 0 || fd < 0 || fd >= kMaxFd) return;
  pthread_mutex_lock(&g_mu);
  if (g_init && g_done[fd] >= 0) g_done[fd] += n;
  pthread_mutex_unlock(&g_mu);
}

}  // namespace

#define REAL(ret, name, ...)       \
  static ret (*real)(__VA_ARGS__); \
  if (!real) real = reinterpret_cast<ret (*)(__VA_ARGS__)>(dlsym(RTLD_NEXT, name))

extern "C" {

#define OPEN_WRAPPER(fn)                     \
  int fn(const char* path, int flags, ...) { \
    REAL(int, #fn, const char*, int, ...);   \
    mode_t mode = 0;                         \
    if (flags & (O_CREAT | __O_TMPFILE)) {   \
      va_list ap;                            \
      va_start(ap, flags);                   \
      mode = va_arg(ap, mode_t);             \
      va_end(ap);                            \
    }                                        \
    int fd = real(path, flags, mode);        \
    Track(fd, path, flags);                  \
    return fd;                               \
  }
OPEN_WRAPPER(open)
OPEN_WRAPPER(open64)

#define OPENAT_WRAPPER(fn)                            \
  int fn(int dir, const char* path, int flags, ...) { \
    REAL(int, #fn, int, const char*, int, ...);       \
    mode_t mode = 0;                                  \
    if (flags & (O_CREAT | __O_TMPFILE)) {            \
      va_list ap;                                     \
      va_start(ap, flags);                            \
      mode = va_arg(ap, mode_t);                      \
      va_end(ap);                                     \
    }                                                 \
    int fd = real(dir, path, flags, mode);            \
    Track(fd, path, flags);                           \
    return fd;                                        \
  }
OPENAT_WRAPPER(openat)
OPENAT_WRAPPER(openat64)

int __open_2(const char* path, int flags) { return open(path, flags); }
int __open64_2(const char* path, int flags) { return open64(path, flags); }

ssize_t read(int fd, void* buf, size_t n) {
  REAL(ssize_t, "read", int, void*, size_t);
  long long allow = Allow(fd, "NS_FAULT_READ_EIO_AFTER", n);
  if (allow == 0 && n > 0) {
    errno = EIO;
    return -1;
  }
  ssize_t got = real(fd, buf, allow > 0 ? static_cast<size_t>(allow) : n);
  Count(fd, got);
  return got;
}

ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  (void)buflen;
  return read(fd, buf, n);
}

ssize_t write(int fd, const void* buf, size_t n) {
  REAL(ssize_t, "write", int, const void*, size_t);
  long long allow = Allow(fd, "NS_FAULT_WRITE_ENOSPC_AFTER", n);
  if (allow == 0 && n > 0) {
    errno = ENOSPC;
    return -1;
  }
  ssize_t put = real(fd, buf, allow > 0 ? static_cast<size_t>(allow) : n);
  Count(fd, put);
  return put;
}

int close(int fd) {
  REAL(int, "close", int);
  bool hurt = false;
  if (fd >= 0 && fd < kMaxFd) {
    pthread_mutex_lock(&g_mu);
    if (g_init) {
      hurt = g_done[fd] >= 0 && g_writes[fd];
      g_done[fd] = -1;
    }
    pthread_mutex_unlock(&g_mu);
  }
  int rc = real(fd);
  if (rc == 0 && hurt && Limit("NS_FAULT_CLOSE_EIO") == 1) {
    errno = EIO;
    return -1;
  }
  return rc;
}

}  // extern "C"
