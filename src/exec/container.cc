#include "exec/container.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdlib>

#include "util/fs.h"
#include "util/strings.h"
#include "util/subprocess.h"

namespace ns::container {

namespace {

int64_t HardLimit(int resource, int64_t cap) {
  struct rlimit rl;
  if (::getrlimit(resource, &rl) != 0 || rl.rlim_max == RLIM_INFINITY) return cap;
  return std::min<int64_t>(static_cast<int64_t>(rl.rlim_max), cap);
}

std::string ConfText() {
  std::string nofile = std::to_string(HardLimit(RLIMIT_NOFILE, 1048576));
  std::string nproc = std::to_string(HardLimit(RLIMIT_NPROC, 32768));
  return "# Written by nightshift (docs/containers.md); set NIGHTSHIFT_CONTAINERS_CONF to use another.\n"
         "[containers]\n"
         "default_ulimits = [\"nofile=" + nofile + ":" + nofile + "\", \"nproc=" + nproc + ":" + nproc + "\"]\n"
         "netns = \"none\"\n"
         "[engine]\n"
         "runtime = \"runc\"\n"
         "cgroup_manager = \"cgroupfs\"\n"
         "events_logger = \"file\"\n"
         "tmp_dir = \"/tmp/nightshift-podman\"\n";
}

}  // namespace

Result<Settings> Prepare(const std::string& root) {
  Settings s;
  const char* conf = ::getenv("NIGHTSHIFT_CONTAINERS_CONF");
  if (conf && *conf) {
    if (!IsRegularFile(conf)) {
      return Status::Invalid("NIGHTSHIFT_CONTAINERS_CONF=" + std::string(conf) + " is not a file");
    }
    s.conf = AbsolutePath(conf);
  } else {
    s.conf = root + "/containers/containers.conf";
    std::string want = ConfText();
    auto have = ReadFile(s.conf);
    if (!have.ok() || have.value() != want) {
      NS_RETURN_IF_ERROR(MakeDirs(root + "/containers"));
      NS_RETURN_IF_ERROR(WriteFileAtomic(s.conf, want));
    }
  }
  const char* storage = ::getenv("NIGHTSHIFT_PODMAN_STORAGE");
  if (storage && *storage) s.storage = AbsolutePath(storage);
  return s;
}

std::vector<std::string> PodmanPrefix(const Settings& s) {
  std::vector<std::string> a = {"env", "CONTAINERS_CONF=" + s.conf, "podman"};
  if (!s.storage.empty()) {
    a.insert(a.end(), {"--root", s.storage + "/storage", "--runroot", s.storage + "/run"});
  }
  return a;
}

Status CheckInstalled(const std::string& path_env) {
  for (const char* p : {"podman", "runc", "catatonit"}) {
    std::string found = FindProgram(p, path_env);
    if (found.empty() && std::string(p) == "catatonit" && IsRegularFile("/usr/libexec/podman/catatonit")) continue;
    if (found.empty()) {
      return Status::NotFound(std::string(p) + " is not installed (steps with image: run through podman with runc); " +
                              "install them: apt-get install podman runc catatonit");
    }
  }
  return Status::Ok();
}

Result<std::string> ResolveImage(const Settings& s, const std::string& ref) {
  std::vector<std::string> argv = PodmanPrefix(s);
  argv.insert(argv.end(), {"image", "inspect", "--format", "{{.Id}}", "--", ref});
  auto out = RunProgram(argv, "", 60000);
  if (!out.ok()) return Status::Unavailable("podman image inspect " + ref + ": " + out.status().message());
  std::string id(Trim(out.value().out));
  if (out.value().exit_code != 0 || id.empty()) {
    std::string err(Trim(out.value().err));
    if (err.size() > 300) err = err.substr(0, 300) + "...";
    return Status::NotFound("image '" + ref + "' is not in podman's storage" +
                            (s.storage.empty() ? "" : " (" + s.storage + ")") + (err.empty() ? "" : ": " + err) +
                            "; get it first with podman pull, podman load or podman import");
  }
  if (id.size() != 64 || id.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return Status::Internal("podman image inspect " + ref + " gave '" + id + "', not an image id");
  }
  return id;
}

}  // namespace ns::container
