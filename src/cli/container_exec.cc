// `nightshift container-exec`: the body of an attempt whose step has an image
// (docs/containers.md). It runs `podman run` in the foreground and makes sure
// the container never outlives the attempt: podman's conmon is not our child,
// so a SIGKILL of podman alone would leave the container running. On SIGTERM
// (cancel, timeout, preemption notice, the engine's death) podman forwards the
// signal to the step; if the container has not ended shortly before the
// executor's SIGKILL, it is killed and removed by name.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/commands.h"
#include "exec/container.h"
#include "util/strings.h"
#include "util/subprocess.h"

extern char** environ;

namespace ns::cli {

namespace {

int64_t NowMs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int Usage(const std::string& what) {
  std::cerr << "nightshift container-exec: " << what
            << "\n(the engine's wrapper for steps with image:, not a command for users)\n";
  return kExitBadInput;
}

// Variables of the step contract the container gets; the image keeps its own
// PATH and HOME.
bool Passed(const std::string& name) {
  return name != "PATH" && name != "HOME" && name != "HOSTNAME" && name != "TERM" && name != "CONTAINERS_CONF" &&
         name != "NOTIFY_SOCKET" && !name.empty();
}

}  // namespace

int ContainerExecCommand(int argc, char** argv) {
  container::Settings settings;
  std::string image, name, workdir, cpus, memory;
  int64_t grace_ms = 10000;
  std::vector<std::pair<std::string, bool>> mounts;  // path, writable
  std::vector<std::string> command;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") {
      for (++i; i < argc; ++i) command.push_back(argv[i]);
      break;
    }
    if (i + 1 >= argc) return Usage(a + " needs a value");
    std::string v = argv[++i];
    if (a == "--image") image = v;
    else if (a == "--name") name = v;
    else if (a == "--workdir") workdir = v;
    else if (a == "--cpus") cpus = v;
    else if (a == "--memory") memory = v;
    else if (a == "--grace-ms") grace_ms = std::atoll(v.c_str());
    else if (a == "--conf") settings.conf = v;
    else if (a == "--storage") settings.storage = v;
    else if (a == "--ro") mounts.emplace_back(v, false);
    else if (a == "--rw") mounts.emplace_back(v, true);
    else return Usage("unknown option " + a);
  }
  if (image.empty() || name.empty() || command.empty()) return Usage("--image, --name and a command after -- are needed");

  std::vector<std::string> run = container::PodmanPrefix(settings);
  run.insert(run.end(), {"run", "--rm", "--init", "--name", name, "--pull", "never", "--log-driver", "none"});
  if (!cpus.empty()) run.insert(run.end(), {"--cpus", cpus});
  if (!memory.empty()) run.insert(run.end(), {"--memory", memory, "--memory-swap", memory});
  if (!workdir.empty()) run.insert(run.end(), {"--workdir", workdir});
  for (const auto& [path, rw] : mounts) {
    // A path with a ':' or ',' cannot be said in -v; --mount reads CSV, where a
    // quoted field may hold both, and a quote is written twice.
    std::string q;
    for (char c : path) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    run.insert(run.end(), {"--mount", "type=bind,\"source=" + q + "\",\"destination=" + q + "\"" +
                                          (rw ? "" : ",ro=true")});
  }
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    std::string n = kv.substr(0, kv.find('='));
    if (Passed(n)) run.insert(run.end(), {"--env", n});  // the value comes from podman's environment
  }
  run.push_back(image);
  run.insert(run.end(), command.begin(), command.end());

  // The engine's death reaches us as SIGTERM (not SIGKILL), so the container is stopped too.
  pid_t engine = ::getppid();
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  if (::getppid() != engine) return 128 + SIGTERM;  // the engine died before we could see it

  std::vector<char*> cargv;
  for (auto& s : run) cargv.push_back(s.data());
  cargv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("nightshift container-exec: fork");
    return 127;
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvp(cargv[0], cargv.data());
    std::fprintf(stderr, "nightshift container-exec: cannot run %s: %s\n", cargv[0], std::strerror(errno));
    ::_exit(127);
  }
  int64_t kill_at = -1;
  for (;;) {
    int status;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      return 128 + WTERMSIG(status);
    }
    struct timespec wait = {0, 200 * 1000 * 1000};
    if (kill_at >= 0) {
      int64_t left = kill_at - NowMs();
      if (left <= 0) {
        // The step did not end within its grace: end the container by name
        // (podman run then returns), before the executor's SIGKILL comes.
        std::vector<std::string> rm = container::PodmanPrefix(settings);
        rm.insert(rm.end(), {"rm", "--force", "--time", "0", "--ignore", name});
        (void)RunProgram(rm, "", 20000);
        kill_at = NowMs() + 3600 * 1000;
        continue;
      }
      if (left < 200) wait = {0, static_cast<long>(left) * 1000 * 1000};
    }
    siginfo_t info;
    int sig = ::sigtimedwait(&set, &info, &wait);
    if ((sig == SIGTERM || sig == SIGINT) && kill_at < 0) {
      // podman got the same signal (one process group) and passes it on to
      // the step; leave the step its grace, less the time a removal takes.
      int64_t margin = std::min<int64_t>(2000, grace_ms / 2);
      kill_at = NowMs() + std::max<int64_t>(0, grace_ms - margin);
      if (::getppid() != engine) ::kill(pid, SIGTERM);  // the engine died: nobody signalled podman
    }
  }
}

}  // namespace ns::cli
