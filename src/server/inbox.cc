// The inbox folder: a file that finishes arriving (closed after writing, or
// renamed into the folder) becomes a job, seen through inotify.
#include <dirent.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>

#include "server/server.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strings.h"

namespace ns::server {

namespace {

// Names a writer is still busy with, by convention: hidden files and the
// suffixes of partial downloads and copies.
bool LooksPartial(const std::string& name) {
  if (name.empty() || name[0] == '.') return true;
  for (const char* s : {".part", ".partial", ".tmp", ".crdownload", ".filepart", "~"}) {
    if (EndsWith(name, s)) return true;
  }
  return false;
}

// Whether any process holds `path` open for writing (a copy still running
// when the server started). Reads /proc/*/fdinfo of the processes we may see.
bool OpenForWriting(const std::string& path) {
  struct stat target {};
  if (::stat(path.c_str(), &target) != 0) return false;
  DIR* proc = ::opendir("/proc");
  if (!proc) return false;
  bool busy = false;
  while (struct dirent* p = ::readdir(proc)) {
    if (busy) break;
    std::string pid = p->d_name;
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string fd_dir = "/proc/" + pid + "/fd";
    DIR* fds = ::opendir(fd_dir.c_str());
    if (!fds) continue;
    while (struct dirent* f = ::readdir(fds)) {
      std::string fd = f->d_name;
      if (fd == "." || fd == "..") continue;
      struct stat st {};
      if (::stat((fd_dir + "/" + fd).c_str(), &st) != 0 || st.st_dev != target.st_dev || st.st_ino != target.st_ino) {
        continue;
      }
      auto info = ReadFile("/proc/" + pid + "/fdinfo/" + fd);
      if (!info.ok()) continue;
      for (const auto& line : Split(info.value(), '\n')) {
        if (!StartsWith(line, "flags:")) continue;
        unsigned long flags = std::strtoul(std::string(Trim(line.substr(6))).c_str(), nullptr, 8);
        if ((flags & 3) != 0) busy = true;  // O_WRONLY or O_RDWR
      }
    }
    ::closedir(fds);
  }
  ::closedir(proc);
  return busy;
}

}  // namespace

void Server::InboxFile(Store* store, const std::string& path) {
  std::string name = BaseName(path);
  if (LooksPartial(name)) return;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;  // FIFOs, devices, folders: never
  if (!IsValidUtf8(path)) {
    std::cerr << "nightshift: inbox: skipped a file whose name is not UTF-8; rename it\n";
    return;
  }
  Submission s;
  s.pipeline = o_.inbox_pipeline;
  s.params = {{o_.inbox_param, path}};
  // One job per arrived file version: the same file seen again (a restart)
  // is not submitted twice; a new file under the same name is.
  s.key = "inbox:" + path + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
          std::to_string(st.st_mtim.tv_nsec);
  std::string problems;
  auto r = SubmitJob(store, s, sh_.root, sh_.clock.Now(), &problems);
  if (!r.ok()) {
    std::cerr << "nightshift: inbox: " << path << " was not queued: "
              << (problems.empty() ? r.status().message() : problems) << "\n";
    return;
  }
  if (r.value().second) {
    std::cerr << "nightshift: inbox: " << path << " -> job " << r.value().first.job_id << "\n";
    PublishJob(r.value().first);
    sh_.events.RequestWake();
  }
}

void Server::InboxLoop(int inotify_fd, int stop_fd) {
  auto opened = Store::Open(sh_.layout.Db());
  if (!opened.ok()) {
    std::cerr << "nightshift: inbox: cannot open the store: " << opened.status().message() << "\n";
    return;
  }
  Store* store = opened.value().get();
  // Files already there (and after the kernel dropped events): taken unless
  // a process still writes them (their close will be seen).
  auto scan = [&] {
    DIR* d = ::opendir(o_.inbox.c_str());
    if (!d) return;
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) names.push_back(e->d_name);
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      std::string p = o_.inbox + "/" + n;
      if (n == "." || n == ".." || LooksPartial(n) || OpenForWriting(p)) continue;
      InboxFile(store, p);
    }
  };
  scan();
  alignas(struct inotify_event) char buf[64 * 1024];
  while (true) {
    struct pollfd p[2] = {{inotify_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents) return;
    ssize_t n = ::read(inotify_fd, buf, sizeof buf);
    if (n <= 0) continue;
    for (char* ptr = buf; ptr < buf + n;) {
      auto* ev = reinterpret_cast<struct inotify_event*>(ptr);
      if (ev->len > 0 && !(ev->mask & IN_ISDIR)) {
        // One writer closed it; another (or a copy of the fd in a child) may
        // still write: then its last close comes as another event.
        std::string p = o_.inbox + "/" + ev->name;
        if (!OpenForWriting(p)) InboxFile(store, p);
      }
      if (ev->mask & IN_Q_OVERFLOW) scan();
      ptr += sizeof(struct inotify_event) + ev->len;
    }
  }
}

}  // namespace ns::server
