#include "exec/local_executor.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sched.h>
#include <sys/mount.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <set>
#include <chrono>
#include <cstring>
#include <vector>

#include "util/fs.h"
#include "util/process.h"
#include "util/strings.h"

#ifndef P_PIDFD
#define P_PIDFD 3  // Linux 5.4; older glibc headers lack the name
#endif

namespace ns {

const char* OutcomeName(AttemptOutcome o) {
  switch (o) {
    case AttemptOutcome::kSucceeded: return "succeeded";
    case AttemptOutcome::kFailed: return "failed";
    case AttemptOutcome::kRetryable: return "retryable";
    case AttemptOutcome::kTimedOut: return "timed_out";
    case AttemptOutcome::kSignal: return "signal";
    case AttemptOutcome::kCancelled: return "cancelled";
    case AttemptOutcome::kLost: return "lost";
    case AttemptOutcome::kPreempted: return "preempted";
  }
  return "?";
}

namespace {

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// epoll keys: the kind in the top byte, an attempt id or a pid below.
constexpr uint64_t kKeyWake = 0;
constexpr uint64_t kKeyChild = 1ull << 56;
constexpr uint64_t kKeyOut = 2ull << 56;
constexpr uint64_t kKeyErr = 3ull << 56;
constexpr uint64_t kKeyOrphan = 4ull << 56;
constexpr uint64_t kKindMask = 0xffull << 56;

constexpr char kUidVar[] = "NIGHTSHIFT_ATTEMPT_UID=";

struct SpawnArgs {
  const char* program = nullptr;
  char** argv = nullptr;
  char** envp = nullptr;
  const char* cwd = nullptr;
  int fds[3] = {-1, -1, -1};
  pid_t parent = 0;
  // Folders the attempt sees read-only: bound over themselves in a private
  // mount namespace (null-terminated; null: none).
  char** readonly = nullptr;
  int error = 0;  // written by the child when exec fails (shared memory)
  bool mount_failed = false;  // the error came from making `readonly` read-only
};

// Runs in the child, on its own stack, sharing the parent's memory until execve.
// Only raw system calls: no libc wrapper (nor a sanitizer's interceptor, which
// would change state the parent shares) runs between clone and execve.
int SpawnChild(void* p) {
  auto* a = static_cast<SpawnArgs*>(p);
  ::syscall(SYS_setpgid, 0, 0);
  ::syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (::syscall(SYS_getppid) != a->parent) ::syscall(SYS_exit, 127);
  struct KernelSigaction {
    void* handler;
    unsigned long flags;
    void* restorer;
    uint64_t mask;
  } dfl{};  // SIG_DFL, no flags, empty mask
  for (int s = 1; s < 65; ++s) {
    if (s == SIGKILL || s == SIGSTOP) continue;
    ::syscall(SYS_rt_sigaction, s, &dfl, nullptr, sizeof(uint64_t));
  }
  uint64_t none = 0;
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, sizeof none);
  for (int fd = 0; fd < 3; ++fd) {
    if (::syscall(SYS_dup3, a->fds[fd], fd, 0) < 0) {
      a->error = errno;
      ::syscall(SYS_exit, 127);
    }
  }
  if (a->readonly && a->readonly[0]) {
    // Mounts made here are the child's alone (MS_SLAVE: the host's new mounts,
    // autofs among them, still reach the child; nothing goes back).
    bool ok = ::syscall(SYS_unshare, CLONE_NEWNS) == 0 &&
              ::syscall(SYS_mount, nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) == 0;
    for (char** p = a->readonly; ok && *p; ++p) {
      ok = ::syscall(SYS_mount, *p, *p, nullptr, MS_BIND | MS_REC, nullptr) == 0 &&
           ::syscall(SYS_mount, nullptr, *p, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) == 0;
    }
    if (!ok) {
      a->error = errno;
      a->mount_failed = true;
      ::syscall(SYS_exit, 127);
    }
  }
  if (a->cwd && ::syscall(SYS_chdir, a->cwd) != 0) {
    a->error = errno;
    ::syscall(SYS_exit, 127);
  }
  ::syscall(SYS_execve, a->program, a->argv, a->envp);
  a->error = errno;
  ::syscall(SYS_exit, 127);
  return 127;
}

// Like posix_spawn (clone with CLONE_VM | CLONE_VFORK: no page tables copied,
// the parent resumes once the child has exec'd or failed), plus what
// posix_spawn cannot do: die with the engine (PR_SET_PDEATHSIG).
pid_t Spawn(SpawnArgs* a) {
  constexpr size_t kStack = 256 * 1024;
  void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                       -1, 0);
  if (stack == MAP_FAILED) return -1;
  // No signal handler may run in the child while it shares our memory.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer intercepts clone() as a fork and marks the shared runtime
  // "forked" from the child, which shares its memory: call glibc's clone.
  using CloneFn = int (*)(int (*)(void*), void*, int, void*, ...);
  static CloneFn real_clone = reinterpret_cast<CloneFn>(
      ::dlsym(::dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD), "clone"));
#else
  auto real_clone = &::clone;
#endif
  pid_t pid = real_clone(SpawnChild, static_cast<char*>(stack) + kStack, CLONE_VM | CLONE_VFORK | SIGCHLD, a);
  int err = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::munmap(stack, kStack);
  if (pid > 0) ::setpgid(pid, pid);
  errno = err;
  return pid;
}

}  // namespace

// One output stream of a child: the read end of its pipe, and the log file
// opened on the first byte.
struct LogPipe {
  int fd = -1;
  int file = -1;
  std::string path;
  bool failed = false;  // the log file could not be written: drop the rest
  bool splice_ok = true;
};

struct LocalExecutor::Child {
  uint64_t id = 0;
  std::string uid;
  pid_t pid = 0;
  int pidfd = -1;
  LogPipe out, err;
  int64_t started = 0;     // steady ms
  int64_t term_at = 0;     // steady ms when SIGTERM is due; 0: none
  int64_t kill_at = 0;     // steady ms when SIGKILL is due; 0: none
  int64_t grace_ms = 0;
  bool timed_out = false;
  bool cancelled = false;
  bool preempted = false;
};

namespace {

// Moves what the pipe holds into the log file, opening it on the first byte.
// Returns false at end of file (every writer closed).
bool DrainPipe(LogPipe* p) {
  if (p->fd < 0) return false;
  char buf[65536];
  while (true) {
    // splice moves pages from the pipe to the file without copying them here;
    // it needs the file open, which waits for the first byte (read below).
    if (p->file >= 0 && p->splice_ok) {
      ssize_t n = ::splice(p->fd, nullptr, p->file, nullptr, 1 << 20, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
      if (n > 0) continue;
      if (n == 0) return false;
      if (errno == EAGAIN) return true;
      if (errno == EINTR) continue;
      p->splice_ok = false;  // this file system refuses splice: copy instead
    }
    ssize_t n = ::read(p->fd, buf, sizeof buf);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN;
    }
    if (p->file < 0 && !p->failed) {
      p->file = ::open(p->path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (p->file < 0) p->failed = true;
    }
    for (ssize_t off = 0; p->file >= 0 && off < n;) {
      ssize_t w = ::write(p->file, buf + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        p->failed = true;  // a full disk: keep draining so the step is not blocked
        ::close(p->file);
        p->file = -1;
        break;
      }
      off += w;
    }
  }
}

void ClosePipe(LogPipe* p) {
  if (p->fd >= 0) ::close(p->fd);
  if (p->file >= 0) ::close(p->file);
  p->fd = p->file = -1;
}

}  // namespace

Capacity LocalExecutor::MachineCapacity() {
  Capacity c;
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  c.cpus = n > 0 ? static_cast<double>(n) : 1.0;
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long page = ::sysconf(_SC_PAGE_SIZE);
  c.memory_bytes = pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
  int gpus = 0;
  while (PathExists("/dev/nvidia" + std::to_string(gpus))) ++gpus;
  c.gpus = gpus;
  return c;
}

Result<std::unique_ptr<LocalExecutor>> LocalExecutor::Create(ExecutorListener* listener,
                                                             Capacity capacity) {
  std::unique_ptr<LocalExecutor> e(new LocalExecutor(listener, capacity));
  e->null_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (e->null_fd_ < 0) return Status::FromErrno("cannot open /dev/null", errno);
  e->epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (e->epoll_fd_ < 0) return Status::FromErrno("epoll_create1", errno);
  e->wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (e->wake_fd_ < 0) return Status::FromErrno("eventfd", errno);
  struct epoll_event ev {};
  ev.events = EPOLLIN;
  ev.data.u64 = kKeyWake;
  if (::epoll_ctl(e->epoll_fd_, EPOLL_CTL_ADD, e->wake_fd_, &ev) != 0) {
    return Status::FromErrno("epoll_ctl", errno);
  }
  // Descendants that leave the attempt's process group (setsid, daemons) are
  // re-parented to the engine instead of init, so it can find and end them.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    return Status::FromErrno("prctl(PR_SET_CHILD_SUBREAPER)", errno);
  }
  e->monitor_ = std::thread([p = e.get()] { p->MonitorLoop(); });
  return e;
}

LocalExecutor::LocalExecutor(ExecutorListener* listener, Capacity capacity)
    : listener_(listener), capacity_(capacity) {}

LocalExecutor::~LocalExecutor() {
  if (monitor_.joinable()) {
    {
      std::lock_guard<std::mutex> g(mu_);
      stopping_ = true;
      for (auto& [id, c] : children_) ::kill(-c->pid, SIGKILL);
    }
    Wake();
    monitor_.join();
  }
  // What the run's attempts left behind outside their groups ends with the run.
  // Orphans are re-parented to us as their parents die, so look a few times.
  for (int round = 0; round < 50; ++round) {
    int killed = SweepOrphans(/*all=*/true);
    for (auto& [pid, fd] : orphans_) {
      siginfo_t si{};
      ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(fd), &si, WEXITED);  // SIGKILLed: at once
      ::close(fd);
    }
    orphans_.clear();
    if (killed == 0 && round > 0) break;
    ::usleep(20000);
  }
  if (epoll_fd_ >= 0) ::close(epoll_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
  if (null_fd_ >= 0) ::close(null_fd_);
}

void LocalExecutor::Wake() {
  uint64_t one = 1;
  ssize_t n = ::write(wake_fd_, &one, sizeof one);
  (void)n;
}

int LocalExecutor::SweepOrphans(bool all) {
  std::vector<std::string> uids;
  std::vector<pid_t> kids = ChildrenWithEnvPrefix(kUidVar, &uids, /*all_threads=*/all);
  std::set<std::string> live;
  std::set<pid_t> leaders;
  {
    std::lock_guard<std::mutex> g(mu_);
    for (const auto& [id, c] : children_) {
      leaders.insert(c->pid);
      if (!all) live.insert(c->uid);
    }
    if (!all) live.insert(starting_.begin(), starting_.end());
  }
  int killed = 0;
  for (size_t i = 0; i < kids.size(); ++i) {
    if (leaders.count(kids[i]) || live.count(uids[i])) continue;
    // Ours: our child, carrying the uid of an attempt that has ended. Signal it
    // through a pidfd checked again, so a reused pid is never hit.
    int fd = PidfdOpen(kids[i]);
    if (fd < 0) continue;
    if (orphans_.count(kids[i]) || !ProcessHasEnv(kids[i], kUidVar + uids[i])) {
      ::close(fd);
      continue;
    }
    ::syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0);
    ++killed;
    // Reaped by the monitor loop when it has died (not yet: SIGKILL takes a moment).
    struct epoll_event ev {};
    ev.events = EPOLLIN;
    ev.data.u64 = kKeyOrphan | static_cast<uint64_t>(kids[i]);
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0) {
      orphans_[kids[i]] = fd;
    } else {
      ::close(fd);
    }
  }
  // Reap every child that is not an attempt's leader (those are reaped by the
  // monitor loop with their rusage): killed orphans and daemons that exited.
  while (true) {
    siginfo_t si{};
    if (::waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0) break;
    bool leader;
    {
      std::lock_guard<std::mutex> g(mu_);
      // A child being spawned is not in children_ yet: it may be the one.
      leader = !starting_.empty();
      for (const auto& [id, c] : children_) leader |= c->pid == si.si_pid;
    }
    if (leader) break;
    ::waitpid(si.si_pid, nullptr, WNOHANG);
  }
  return killed;
}

Result<int64_t> LocalExecutor::Submit(const AttemptSpec& spec) {
  if (spec.argv.empty()) return Status::Invalid("empty command");
  std::string path_env = "/usr/local/bin:/usr/bin:/bin";
  for (const auto& e : spec.env)
    if (StartsWith(e, "PATH=")) path_env = e.substr(5);
  std::string program = spec.argv[0];
  if (program.find('/') == std::string::npos) {
    // Resolved once per program and PATH: a fan-out starts the same one many times.
    std::string key = path_env + '\0' + program;
    auto it = programs_.find(key);
    if (it == programs_.end() || ::access(it->second.c_str(), X_OK) != 0) {
      std::string found = FindProgram(spec.argv[0], path_env);
      if (found.empty()) {
        return Status::NotFound("program '" + spec.argv[0] + "' not found on PATH (" + path_env + ")");
      }
      it = programs_.insert_or_assign(key, found).first;
    }
    program = it->second;
  }
  // stdout and stderr go through pipes that the monitor moves into the log
  // files, so a silent attempt creates no files.
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return Status::FromErrno("pipe", errno);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    int e = errno;
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return Status::FromErrno("pipe", e);
  }
  auto close_all = [&] {
    for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
  };
  // Everything the child needs is prepared before it exists: between clone and
  // execve it only makes system calls.
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  std::vector<char*> readonly;
  for (const auto& r : spec.readonly_paths) readonly.push_back(const_cast<char*>(r.c_str()));
  readonly.push_back(nullptr);
  {
    // Until it is in children_, the sweep must not take the new child for a
    // leftover of an ended attempt.
    std::lock_guard<std::mutex> g(mu_);
    starting_.insert(spec.uid);
  }
  struct Unmark {
    LocalExecutor* e;
    const std::string& uid;
    ~Unmark() {
      std::lock_guard<std::mutex> g(e->mu_);
      e->starting_.erase(uid);
    }
  } unmark{this, spec.uid};
  SpawnArgs args;
  args.program = program.c_str();
  args.argv = argv.data();
  args.envp = envp.data();
  args.cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  args.fds[0] = null_fd_;
  args.fds[1] = out_pipe[1];
  args.fds[2] = err_pipe[1];
  args.parent = ::getpid();
  args.readonly = readonly.data();
  pid_t pid = Spawn(&args);
  int spawn_errno = errno;
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  out_pipe[1] = err_pipe[1] = -1;
  if (pid < 0) {
    close_all();
    return Status::FromErrno("cannot start '" + spec.argv[0] + "'", spawn_errno);
  }
  if (args.error != 0) {
    int status;
    ::waitpid(pid, &status, 0);
    close_all();
    if (args.error == E2BIG) return Status::Invalid(ArgListTooLong(spec));
    if (args.mount_failed) {
      return Status::FromErrno("cannot start '" + spec.argv[0] + "': its models (" + Join(spec.readonly_paths, ", ") +
                                   ") could not be made read-only in a private mount namespace (this needs root "
                                   "or CAP_SYS_ADMIN)",
                               args.error);
    }
    return Status::FromErrno("cannot start '" + spec.argv[0] + "'" +
                                 (args.cwd ? std::string(" in ") + args.cwd : ""),
                             args.error);
  }
  auto child = std::make_unique<Child>();
  child->id = spec.id;
  child->uid = spec.uid;
  child->pid = pid;
  child->pidfd = PidfdOpen(pid);
  child->out.fd = out_pipe[0];
  child->out.path = spec.stdout_path;
  child->err.fd = err_pipe[0];
  child->err.path = spec.stderr_path;
  child->started = SteadyMs();
  child->grace_ms = spec.grace_ms;
  if (spec.timeout_ms > 0) child->term_at = child->started + spec.timeout_ms;
  ::fcntl(child->out.fd, F_SETFL, O_NONBLOCK);
  ::fcntl(child->err.fd, F_SETFL, O_NONBLOCK);
  Status watched = Status::Ok();
  {
    std::lock_guard<std::mutex> g(mu_);
    struct epoll_event ev {};
    ev.events = EPOLLIN;
    auto add = [&](int fd, uint64_t key) {
      ev.data.u64 = key | spec.id;
      if (watched.ok() && (fd < 0 || ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0)) {
        watched = Status::FromErrno("cannot watch attempt process " + std::to_string(pid), errno);
      }
    };
    add(child->pidfd, kKeyChild);
    add(child->out.fd, kKeyOut);
    add(child->err.fd, kKeyErr);
    if (watched.ok()) children_[spec.id] = std::move(child);
  }
  if (!watched.ok()) {
    // Without a pidfd in the epoll set its end would never be seen: end it now.
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    if (child->pidfd >= 0) {
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, child->pidfd, nullptr);
      ::close(child->pidfd);
    }
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, child->out.fd, nullptr);
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, child->err.fd, nullptr);
    ClosePipe(&child->out);
    ClosePipe(&child->err);
    return watched;
  }
  if (spec.timeout_ms > 0) Wake();
  return static_cast<int64_t>(pid);
}

std::string LocalExecutor::ArgListTooLong(const AttemptSpec& spec) {
  // Name the culprits: the largest words of argv and of the environment.
  std::vector<std::pair<size_t, std::string>> sizes;
  size_t total = 0;
  for (size_t i = 0; i < spec.argv.size(); ++i) {
    total += spec.argv[i].size() + 1;
    sizes.emplace_back(spec.argv[i].size(), "argument " + std::to_string(i) + " ('" +
                                                spec.argv[i].substr(0, 40) +
                                                (spec.argv[i].size() > 40 ? "...'" : "'") + ")");
  }
  for (const auto& e : spec.env) {
    total += e.size() + 1;
    sizes.emplace_back(e.size(), "environment variable " + e.substr(0, e.find('=')));
  }
  std::sort(sizes.rbegin(), sizes.rend());
  std::string msg = "cannot start '" + spec.argv[0] + "': argument list too long (" +
                    FormatBytes(static_cast<int64_t>(total)) + " in " +
                    std::to_string(spec.argv.size()) + " arguments and " +
                    std::to_string(spec.env.size()) + " variables; the largest: ";
  for (size_t i = 0; i < sizes.size() && i < 3; ++i) {
    msg += (i ? ", " : "") + sizes[i].second + " " + FormatBytes(static_cast<int64_t>(sizes[i].first));
  }
  return msg + "); pass big values through a file instead of the command line";
}

void LocalExecutor::Cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> g(mu_);
    auto it = children_.find(id);
    if (it == children_.end()) return;
    Child& c = *it->second;
    if (c.cancelled) return;
    c.cancelled = true;
    ::kill(-c.pid, SIGTERM);
    c.term_at = 0;
    c.kill_at = SteadyMs() + c.grace_ms;
  }
  Wake();
}

void LocalExecutor::Preempt(uint64_t id, int64_t notice_ms) {
  {
    std::lock_guard<std::mutex> g(mu_);
    auto it = children_.find(id);
    if (it == children_.end()) return;
    Child& c = *it->second;
    if (c.cancelled || c.preempted) return;
    c.preempted = true;
    ::kill(-c.pid, SIGTERM);
    c.term_at = 0;
    c.kill_at = SteadyMs() + std::max<int64_t>(0, notice_ms);
  }
  Wake();
}

void LocalExecutor::MonitorLoop() {
  std::vector<struct epoll_event> events(64);
  while (true) {
    int timeout = -1;
    {
      std::lock_guard<std::mutex> g(mu_);
      if (stopping_ && children_.empty()) return;
      int64_t now = SteadyMs();
      int64_t next = INT64_MAX;
      for (auto& [id, c] : children_) {
        if (c->term_at && c->term_at <= now) {
          c->timed_out = true;
          c->term_at = 0;
          ::kill(-c->pid, SIGTERM);
          c->kill_at = now + c->grace_ms;
        }
        if (c->kill_at && c->kill_at <= now) {
          ::kill(-c->pid, SIGKILL);
          c->kill_at = 0;
        }
        if (c->term_at) next = std::min(next, c->term_at);
        if (c->kill_at) next = std::min(next, c->kill_at);
      }
      if (next != INT64_MAX) timeout = static_cast<int>(std::max<int64_t>(0, next - now));
      if (stopping_) timeout = timeout < 0 ? 100 : std::min(timeout, 100);
    }
    int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0 && errno != EINTR) {
      // Nothing can be watched any more: end every attempt and report it, so
      // the scheduler is never left waiting.
      std::map<uint64_t, std::unique_ptr<Child>> all;
      {
        std::lock_guard<std::mutex> g(mu_);
        all.swap(children_);
      }
      for (auto& [id, c] : all) {
        ::kill(-c->pid, SIGKILL);
        ::waitpid(c->pid, nullptr, 0);
        ClosePipe(&c->out);
        ClosePipe(&c->err);
        AttemptResult r;
        r.id = id;
        r.pid = c->pid;
        r.outcome = AttemptOutcome::kLost;
        r.message = std::string("the executor stopped watching processes: epoll_wait: ") + ::strerror(errno);
        listener_->OnAttemptFinished(r);
      }
      return;
    }
    bool reaped = false;
    for (int i = 0; i < n; ++i) {
      uint64_t key = events[i].data.u64;
      uint64_t kind = key & kKindMask;
      uint64_t id = key & ~kKindMask;
      if (kind == kKeyWake) {
        uint64_t v;
        ssize_t r = ::read(wake_fd_, &v, sizeof v);
        (void)r;
        continue;
      }
      if (kind == kKeyOut || kind == kKeyErr) {
        // The monitor thread is the only one that touches a child's pipes.
        Child* c = nullptr;
        {
          std::lock_guard<std::mutex> g(mu_);
          auto it = children_.find(id);
          if (it != children_.end()) c = it->second.get();
        }
        if (!c) continue;
        LogPipe* p = kind == kKeyOut ? &c->out : &c->err;
        if (!DrainPipe(p)) {
          ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, p->fd, nullptr);
          ClosePipe(p);
        }
        continue;
      }
      if (kind == kKeyOrphan) {
        auto it = orphans_.find(static_cast<pid_t>(id));
        if (it != orphans_.end()) {
          ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, it->second, nullptr);
          // Through the pidfd, not the pid: if the sweep reaped it already, the
          // pid may name a new attempt's leader by now.
          siginfo_t si{};
          ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(it->second), &si, WEXITED | WNOHANG);
          ::close(it->second);
          orphans_.erase(it);
        }
        continue;
      }
      if (kind != kKeyChild) continue;
      std::unique_ptr<Child> c;
      {
        std::lock_guard<std::mutex> g(mu_);
        auto it = children_.find(id);
        if (it == children_.end()) continue;
        c = std::move(it->second);
        children_.erase(it);
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->pidfd, nullptr);
      }
      int status = 0;
      struct rusage ru {};
      pid_t w;
      do {
        w = ::wait4(c->pid, &status, 0, &ru);
      } while (w < 0 && errno == EINTR);
      ::close(c->pidfd);
      // Whatever the step left behind in its group ends with it.
      ::kill(-c->pid, SIGKILL);
      // The log is complete before the result is reported.
      for (LogPipe* p : {&c->out, &c->err}) {
        if (p->fd < 0) continue;
        DrainPipe(p);
        ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, p->fd, nullptr);
        ClosePipe(p);
      }
      reaped = true;

      AttemptResult r;
      r.id = c->id;
      r.pid = c->pid;
      r.duration_ms = SteadyMs() - c->started;
      r.max_rss_kb = ru.ru_maxrss;
      r.cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
                 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
      if (w < 0) {
        r.outcome = AttemptOutcome::kLost;
        r.message = std::string("cannot wait for the attempt's process: ") + ::strerror(errno);
      } else if (WIFEXITED(status)) {
        r.exit_code = WEXITSTATUS(status);
        if (r.exit_code == 0) r.outcome = AttemptOutcome::kSucceeded;
        else if (r.exit_code == 75) r.outcome = AttemptOutcome::kRetryable;
        else r.outcome = AttemptOutcome::kFailed;
        r.message = r.exit_code == 0 ? "" : "exit code " + std::to_string(r.exit_code);
      } else if (WIFSIGNALED(status)) {
        r.signal = WTERMSIG(status);
        r.outcome = AttemptOutcome::kSignal;
        r.message = std::string("killed by signal ") + std::to_string(r.signal) + " (" +
                    ::strsignal(r.signal) + ")";
        if (r.signal == SIGKILL) r.message += "; out of memory?";
      }
      // What the engine did decides over how the process ended.
      if (c->cancelled) {
        r.outcome = AttemptOutcome::kCancelled;
        r.message = "cancelled";
      } else if (c->preempted) {
        r.outcome = AttemptOutcome::kPreempted;
        r.message = "preempted (" + (WIFEXITED(status) ? "exit code " + std::to_string(WEXITSTATUS(status))
                                                       : std::string("killed after the notice")) + ")";
      } else if (c->timed_out) {
        r.outcome = AttemptOutcome::kTimedOut;
        r.message = "timed out after " + FormatDurationMs(r.duration_ms);
      }
      if (c->out.failed || c->err.failed) {
        r.message += std::string(r.message.empty() ? "" : "; ") + "could not write its log " +
                     (c->out.failed ? c->out.path : c->err.path);
      }
      listener_->OnAttemptFinished(r);
    }
    // Descendants that left the group of an attempt that has ended; after the
    // results are out, so the sweep is not on the path to the next launch.
    if (reaped) SweepOrphans(/*all=*/false);
  }
}

}  // namespace ns
