#include "exec/local_executor.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sched.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "util/fs.h"
#include "util/strings.h"

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

struct SpawnArgs {
  const char* program = nullptr;
  char** argv = nullptr;
  char** envp = nullptr;
  const char* cwd = nullptr;
  int fds[3] = {-1, -1, -1};
  pid_t parent = 0;
  int error = 0;  // written by the child when exec fails (shared memory)
};

// Runs in the child, on its own stack, sharing the parent's memory until execve.
int SpawnChild(void* p) {
  auto* a = static_cast<SpawnArgs*>(p);
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != a->parent) ::_exit(127);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int fd = 0; fd < 3; ++fd) {
    if (::dup2(a->fds[fd], fd) < 0) {
      a->error = errno;
      ::_exit(127);
    }
  }
  if (a->cwd && ::chdir(a->cwd) != 0) {
    a->error = errno;
    ::_exit(127);
  }
  ::execve(a->program, a->argv, a->envp);
  a->error = errno;
  ::_exit(127);
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
  pid_t pid = ::clone(SpawnChild, static_cast<char*>(stack) + kStack,
                      CLONE_VM | CLONE_VFORK | SIGCHLD, a);
  int err = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::munmap(stack, kStack);
  if (pid > 0) ::setpgid(pid, pid);
  errno = err;
  return pid;
}

}  // namespace

struct LocalExecutor::Child {
  uint64_t id = 0;
  pid_t pid = 0;
  int pidfd = -1;
  int64_t started = 0;     // steady ms
  int64_t term_at = 0;     // steady ms when SIGTERM is due; 0: none
  int64_t kill_at = 0;     // steady ms when SIGKILL is due; 0: none
  int64_t grace_ms = 0;
  bool timed_out = false;
  bool cancelled = false;
};

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

LocalExecutor::LocalExecutor(ExecutorListener* listener, Capacity capacity)
    : listener_(listener), capacity_(capacity) {
  null_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event ev {};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;  // 0 is the wake fd; children use id + 1
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
  monitor_ = std::thread([this] { MonitorLoop(); });
}

LocalExecutor::~LocalExecutor() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_ = true;
    for (auto& [id, c] : children_) ::kill(-c->pid, SIGKILL);
  }
  Wake();
  monitor_.join();
  ::close(epoll_fd_);
  ::close(wake_fd_);
  ::close(null_fd_);
}

void LocalExecutor::Wake() {
  uint64_t one = 1;
  ssize_t n = ::write(wake_fd_, &one, sizeof one);
  (void)n;
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
  int out_fd = ::open(spec.stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out_fd < 0) return Status::FromErrno("cannot open log " + spec.stdout_path, errno);
  int err_fd = ::open(spec.stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (err_fd < 0) {
    int e = errno;
    ::close(out_fd);
    return Status::FromErrno("cannot open log " + spec.stderr_path, e);
  }
  int null_fd = null_fd_;
  // Everything the child needs is prepared before it exists: between clone and
  // execve it only makes system calls.
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  SpawnArgs args;
  args.program = program.c_str();
  args.argv = argv.data();
  args.envp = envp.data();
  args.cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();
  args.fds[0] = null_fd;
  args.fds[1] = out_fd;
  args.fds[2] = err_fd;
  args.parent = ::getpid();
  pid_t pid = Spawn(&args);
  int spawn_errno = errno;
  ::close(out_fd);
  ::close(err_fd);
  if (pid < 0) return Status::FromErrno("cannot start '" + spec.argv[0] + "'", spawn_errno);
  if (args.error != 0) {
    int status;
    ::waitpid(pid, &status, 0);
    return Status::FromErrno("cannot start '" + spec.argv[0] + "'" +
                                 (args.cwd ? std::string(" in ") + args.cwd : ""),
                             args.error);
  }

  auto child = std::make_unique<Child>();
  child->id = spec.id;
  child->pid = pid;
  child->pidfd = PidfdOpen(pid);
  child->started = SteadyMs();
  child->grace_ms = spec.grace_ms;
  if (spec.timeout_ms > 0) child->term_at = child->started + spec.timeout_ms;
  {
    std::lock_guard<std::mutex> g(mu_);
    struct epoll_event ev {};
    ev.events = EPOLLIN;
    ev.data.u64 = spec.id + 1;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, child->pidfd, &ev);
    children_[spec.id] = std::move(child);
  }
  if (spec.timeout_ms > 0) Wake();
  return static_cast<int64_t>(pid);
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
    if (n < 0 && errno != EINTR) return;
    for (int i = 0; i < n; ++i) {
      uint64_t key = events[i].data.u64;
      if (key == 0) {
        uint64_t v;
        ssize_t r = ::read(wake_fd_, &v, sizeof v);
        (void)r;
        continue;
      }
      std::unique_ptr<Child> c;
      {
        std::lock_guard<std::mutex> g(mu_);
        auto it = children_.find(key - 1);
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

      AttemptResult r;
      r.id = c->id;
      r.pid = c->pid;
      r.duration_ms = SteadyMs() - c->started;
      r.max_rss_kb = ru.ru_maxrss;
      r.cpu_ms = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
                 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
      if (WIFEXITED(status)) {
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
      } else if (c->timed_out) {
        r.outcome = AttemptOutcome::kTimedOut;
        r.message = "timed out after " + FormatDurationMs(r.duration_ms);
      }
      listener_->OnAttemptFinished(r);
    }
  }
}

}  // namespace ns
