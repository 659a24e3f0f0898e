#include "util/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "util/strings.h"

extern char** environ;

namespace ns {

namespace {

int64_t MonotonicMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

struct Fds {
  int fd[6] = {-1, -1, -1, -1, -1, -1};  // in r/w, out r/w, err r/w
  ~Fds() {
    for (int f : fd)
      if (f >= 0) ::close(f);
  }
  void Close(int i) {
    if (fd[i] >= 0) ::close(fd[i]);
    fd[i] = -1;
  }
};

}  // namespace

Result<ProgramOutput> RunProgram(const std::vector<std::string>& argv, const std::string& input,
                                 int64_t timeout_ms) {
  if (argv.empty()) return Status::Invalid("RunProgram: empty argv");
  Fds p;
  for (int i = 0; i < 3; ++i) {
    if (::pipe2(&p.fd[2 * i], O_CLOEXEC) != 0) return Status::FromErrno("pipe", errno);
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p.fd[0], 0);
  posix_spawn_file_actions_adddup2(&fa, p.fd[3], 1);
  posix_spawn_file_actions_adddup2(&fa, p.fd[5], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Status::FromErrno("cannot run " + argv[0], rc);
  p.Close(0);
  p.Close(3);
  p.Close(5);
  for (int i : {1, 2, 4}) ::fcntl(p.fd[i], F_SETFL, O_NONBLOCK);
  if (input.empty()) p.Close(1);

  ProgramOutput out;
  size_t written = 0;
  int64_t deadline = MonotonicMs() + timeout_ms;
  bool timed_out = false;
  char buf[65536];
  while (p.fd[1] >= 0 || p.fd[2] >= 0 || p.fd[4] >= 0) {
    pollfd fds[3];
    int n = 0;
    int which[3];
    if (p.fd[1] >= 0) fds[n] = {p.fd[1], POLLOUT, 0}, which[n++] = 1;
    if (p.fd[2] >= 0) fds[n] = {p.fd[2], POLLIN, 0}, which[n++] = 2;
    if (p.fd[4] >= 0) fds[n] = {p.fd[4], POLLIN, 0}, which[n++] = 4;
    int64_t left = deadline - MonotonicMs();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    int r = ::poll(fds, static_cast<nfds_t>(n), static_cast<int>(std::min<int64_t>(left, 1000)));
    if (r < 0 && errno != EINTR) break;
    for (int i = 0; i < n && r > 0; ++i) {
      if (!fds[i].revents) continue;
      int f = which[i];
      if (f == 1) {
        ssize_t w = ::write(p.fd[1], input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN && errno != EINTR) written = input.size();
        if (written >= input.size()) p.Close(1);
        continue;
      }
      ssize_t got = ::read(p.fd[f], buf, sizeof buf);
      if (got > 0) {
        (f == 2 ? out.out : out.err).append(buf, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        p.Close(f);
      }
    }
  }
  if (timed_out) ::kill(pid, SIGKILL);  // our own child, not yet reaped: its pid is still ours
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return Status::IoError(argv[0] + " did not answer within " + FormatDurationMs(timeout_ms));
  }
  if (WIFEXITED(status)) {
    out.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    out.signal = WTERMSIG(status);
  }
  return out;
}

}  // namespace ns
