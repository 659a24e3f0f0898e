// Steps in OCI containers through podman (docs/containers.md): the settings
// nightshift gives podman, and the image a step's `image:` names.
//
// Measured on Debian 12 hosts with cgroup v1 (hybrid) and no CAP_SYS_RESOURCE:
// podman's defaults fail there (crun refuses hybrid mode; the default ulimits
// exceed the hard limits), so nightshift writes its own containers.conf
// (runc, cgroupfs, no network, ulimits at the host's hard limits, a private
// tmp_dir) unless $NIGHTSHIFT_CONTAINERS_CONF names another. Thread-safe.
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace ns::container {

struct Settings {
  std::string conf;     // CONTAINERS_CONF given to podman
  std::string storage;  // "": podman's default storage; else --root DIR/storage --runroot DIR/run
};

// The settings for a root: $NIGHTSHIFT_CONTAINERS_CONF or <root>/containers/
// containers.conf (written when missing or different), and
// $NIGHTSHIFT_PODMAN_STORAGE.
Result<Settings> Prepare(const std::string& root);

// `env CONTAINERS_CONF=... podman [--root ... --runroot ...]`: the start of
// every podman command line (no shell; the env program sets the variable).
std::vector<std::string> PodmanPrefix(const Settings& s);

// Checks that podman and its runtime are installed (on `path_env`).
Status CheckInstalled(const std::string& path_env);

// The id (sha256 hex) of the image `ref` names in podman's storage: what a
// run pins. Errors name the image and say how to get it.
Result<std::string> ResolveImage(const Settings& s, const std::string& ref);

}  // namespace ns::container
