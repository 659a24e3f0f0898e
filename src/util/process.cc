#include "util/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace ns {

namespace {

// Reads a small /proc file whole; "" on any error.
std::string ReadProcFile(const std::string& path, size_t limit = 1 << 20) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  char buf[4096];
  while (out.size() < limit) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

bool AllDigits(const char* s) {
  if (!*s) return false;
  for (; *s; ++s)
    if (*s < '0' || *s > '9') return false;
  return true;
}

}  // namespace

std::string ProcessIdentity::ToString() const {
  return host + ":" + std::to_string(pid) + ":" + std::to_string(start_ticks) + ":" + boot_id;
}

ProcessIdentity ProcessIdentity::Parse(const std::string& s) {
  ProcessIdentity id;
  // host may not hold ':' (hostnames cannot); boot ids do not either.
  size_t a = s.find(':');
  size_t b = a == std::string::npos ? a : s.find(':', a + 1);
  size_t c = b == std::string::npos ? b : s.find(':', b + 1);
  if (c == std::string::npos) return id;
  id.host = s.substr(0, a);
  id.pid = std::strtoll(s.c_str() + a + 1, nullptr, 10);
  id.start_ticks = std::strtoll(s.c_str() + b + 1, nullptr, 10);
  id.boot_id = s.substr(c + 1);
  return id;
}

std::string HostName() {
  char buf[256] = {0};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

std::string BootId() {
  std::string s = ReadProcFile("/proc/sys/kernel/random/boot_id", 128);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

int64_t ProcessStartTicks(pid_t pid) {
  if (pid <= 0) return 0;
  std::string stat = ReadProcFile("/proc/" + std::to_string(pid) + "/stat", 4096);
  // The command name (field 2) is in parentheses and may hold anything.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  // Fields after ')': 3 (state) ... 22 (starttime) is the 20th.
  const char* p = stat.c_str() + close + 1;
  for (int field = 3; field < 22; ++field) {
    while (*p == ' ') ++p;
    while (*p && *p != ' ') ++p;
    if (!*p) return 0;
  }
  return std::strtoll(p, nullptr, 10);
}

ProcessIdentity SelfIdentity() {
  ProcessIdentity id;
  id.pid = ::getpid();
  id.start_ticks = ProcessStartTicks(::getpid());
  id.boot_id = BootId();
  id.host = HostName();
  return id;
}

bool IsForeign(const ProcessIdentity& id) {
  return id.host != HostName() || id.boot_id.empty() || id.boot_id != BootId();
}

bool IsAlive(const ProcessIdentity& id) {
  if (id.pid <= 0 || id.start_ticks <= 0 || IsForeign(id)) return false;
  return ProcessStartTicks(static_cast<pid_t>(id.pid)) == id.start_ticks;
}

Status SignalIdentity(const ProcessIdentity& id, int sig) {
  if (id.pid <= 0 || id.start_ticks <= 0 || IsForeign(id)) {
    return Status::NotFound("process " + id.ToString() + " is not on this host and boot");
  }
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, static_cast<pid_t>(id.pid), 0));
  if (fd < 0) return Status::NotFound("process " + std::to_string(id.pid) + " has exited");
  // The pidfd pins the process: if the start time matches now, the signal
  // below reaches this process or nobody.
  if (ProcessStartTicks(static_cast<pid_t>(id.pid)) != id.start_ticks) {
    ::close(fd);
    return Status::NotFound("process " + std::to_string(id.pid) +
                            " has exited (its pid now names another process)");
  }
  int rc = static_cast<int>(::syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0));
  int err = errno;
  ::close(fd);
  if (rc != 0) return Status::FromErrno("cannot signal process " + std::to_string(id.pid), err);
  return Status::Ok();
}

bool ProcessHasEnv(pid_t pid, const std::string& entry, bool prefix) {
  std::string env = ReadProcFile("/proc/" + std::to_string(pid) + "/environ", 4 << 20);
  size_t pos = 0;
  while (pos < env.size()) {
    size_t end = env.find('\0', pos);
    if (end == std::string::npos) end = env.size();
    size_t len = end - pos;
    if (prefix ? len >= entry.size() && env.compare(pos, entry.size(), entry) == 0
               : env.compare(pos, len, entry) == 0) {
      return true;
    }
    pos = end + 1;
  }
  return false;
}

Status SignalIfHasEnvPrefix(pid_t pid, const std::string& prefix, int sig) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return Status::NotFound("process " + std::to_string(pid) + " has exited");
  Status st = Status::Ok();
  if (!ProcessHasEnv(pid, prefix, /*prefix=*/true)) {
    st = Status::NotFound("process " + std::to_string(pid) + " is not ours");
  } else if (::syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0) != 0) {
    st = Status::FromErrno("cannot signal process " + std::to_string(pid), errno);
  }
  ::close(fd);
  return st;
}

std::vector<pid_t> FindProcessesWithEnvPrefix(const std::string& entry) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  pid_t self = ::getpid();
  while (struct dirent* e = ::readdir(d)) {
    if (!AllDigits(e->d_name)) continue;
    pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
    if (pid == self) continue;
    if (ProcessHasEnv(pid, entry, /*prefix=*/true)) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

std::vector<pid_t> ChildrenWithEnvPrefix(const std::string& prefix, std::vector<std::string>* values,
                                         bool all_threads) {
  std::vector<pid_t> out;
  // Children belong to the thread that made them; orphans re-parented to a
  // subreaper go to its first live thread, the main one.
  std::vector<std::string> tids;
  if (all_threads) {
    DIR* d = ::opendir("/proc/self/task");
    if (!d) return out;
    while (struct dirent* e = ::readdir(d))
      if (AllDigits(e->d_name)) tids.push_back(e->d_name);
    ::closedir(d);
  } else {
    tids.push_back(std::to_string(::getpid()));
  }
  for (const auto& tid : tids) {
    std::string kids = ReadProcFile("/proc/self/task/" + tid + "/children");
    const char* p = kids.c_str();
    while (*p) {
      char* end = nullptr;
      long pid = std::strtol(p, &end, 10);
      if (end == p) break;
      p = end;
      while (*p == ' ' || *p == '\n') ++p;
      std::string env = ReadProcFile("/proc/" + std::to_string(pid) + "/environ", 4 << 20);
      size_t pos = 0;
      while (pos < env.size()) {
        size_t stop = env.find('\0', pos);
        if (stop == std::string::npos) stop = env.size();
        if (env.compare(pos, prefix.size(), prefix) == 0 && stop - pos >= prefix.size()) {
          out.push_back(static_cast<pid_t>(pid));
          if (values) values->push_back(env.substr(pos + prefix.size(), stop - pos - prefix.size()));
          break;
        }
        pos = stop + 1;
      }
    }
  }
  return out;
}

}  // namespace ns
