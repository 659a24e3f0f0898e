// Paths from URLs, kept inside a run's folder.
#pragma once

#include <string>

#include "util/status.h"

namespace ns::server {

// The real path of `rel` (a URL path, already percent-decoded) inside `base`
// (a run folder), following symlinks. Refused (kInvalidArgument): an absolute
// path, a ".." component, a NUL byte, or a real path outside base's real path
// (a symlink out). kNotFound when it does not exist.
Result<std::string> ResolveInside(const std::string& base, const std::string& rel);

// A Content-Type for a file name, by its extension.
std::string ContentType(const std::string& name);

}  // namespace ns::server
