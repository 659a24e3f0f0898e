#include "server/files.h"

#include <limits.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>

#include "util/strings.h"

namespace ns::server {

namespace {

std::string RealPath(const std::string& p, int* err) {
  char buf[PATH_MAX];
  if (!::realpath(p.c_str(), buf)) {
    *err = errno;
    return "";
  }
  *err = 0;
  return buf;
}

}  // namespace

Result<std::string> ResolveInside(const std::string& base, const std::string& rel) {
  if (rel.find('\0') != std::string::npos) return Status::Invalid("the path holds a NUL byte");
  if (!rel.empty() && rel[0] == '/') return Status::Invalid("an absolute path is not inside the run folder");
  for (const auto& part : Split(rel, '/')) {
    if (part == "..") return Status::Invalid("'..' leaves the run folder");
  }
  int err = 0;
  std::string real_base = RealPath(base, &err);
  if (real_base.empty()) return Status::NotFound("the run folder " + base + " does not exist");
  std::string real = RealPath(rel.empty() ? base : base + "/" + rel, &err);
  if (real.empty()) {
    if (err == ENOENT || err == ENOTDIR) return Status::NotFound("no such file in the run folder: " + rel);
    return Status::FromErrno(rel, err);
  }
  if (real != real_base && !StartsWith(real, real_base + "/")) {
    return Status::Invalid("the path leads out of the run folder (through a symlink)");
  }
  return real;
}

std::string ContentType(const std::string& name) {
  auto dot = name.rfind('.');
  std::string ext = dot == std::string::npos ? "" : name.substr(dot + 1);
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::pair<const char*, const char*> kTypes[] = {
      {"json", "application/json"}, {"jsonl", "application/x-ndjson"}, {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"}, {"txt", "text/plain; charset=utf-8"}, {"log", "text/plain; charset=utf-8"},
      {"out", "text/plain; charset=utf-8"}, {"err", "text/plain; charset=utf-8"}, {"csv", "text/csv; charset=utf-8"},
      {"yaml", "text/plain; charset=utf-8"}, {"yml", "text/plain; charset=utf-8"}, {"md", "text/plain; charset=utf-8"},
      {"png", "image/png"}, {"jpg", "image/jpeg"}, {"jpeg", "image/jpeg"}, {"gif", "image/gif"},
      {"webp", "image/webp"}, {"svg", "image/svg+xml"}, {"mp4", "video/mp4"}, {"webm", "video/webm"},
      {"mkv", "video/x-matroska"}, {"avi", "video/x-msvideo"}, {"css", "text/css"}, {"js", "text/javascript"},
  };
  for (const auto& [e, t] : kTypes) {
    if (ext == e) return t;
  }
  return "application/octet-stream";
}

}  // namespace ns::server
