#include "engine/preflight.h"

#include <sys/stat.h>

#include "util/fs.h"
#include "util/strings.h"

namespace ns {

Status Preflight(const spec::Pipeline& pl, const spec::ParamValues& params, const Capacity& cap,
                 const std::string& path_env) {
  std::vector<std::string> errors;
  for (const auto& p : pl.params) {
    if (p.type != spec::ParamType::kPath) continue;
    auto it = params.find(p.name);
    if (it == params.end() || it->second.scalar.empty()) continue;
    const std::string& path = it->second.scalar;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) continue;  // a missing file is ResolveParams' to report
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
      errors.push_back(pl.file + ":" + std::to_string(p.pos.line) + ":" + std::to_string(p.pos.column) +
                       ": param '" + p.name + "': " + path +
                       " is not a regular file or folder (a device, FIFO or socket); pass a file");
    }
  }
  for (const auto& s : pl.steps) {
    std::string where = pl.file + ":" + std::to_string(s.pos.line) + ":" + std::to_string(s.pos.column) +
                        ": step '" + s.id + "'";
    std::string program;
    if (s.is_shell()) {
      program = s.shell;
    } else if (!s.run.empty() && !s.run[0].HasRefs() && !s.run[0].parts.empty()) {
      program = s.run[0].parts[0].literal;
    }
    if (!program.empty()) {
      std::string found;
      if (program.find('/') != std::string::npos) {
        std::string p = program[0] == '/' ? program : pl.dir + "/" + program;
        found = FindProgram(p, "");
      } else {
        found = FindProgram(program, path_env);
      }
      if (found.empty()) {
        errors.push_back(where + ": program '" + program + "' not found" +
                         (program.find('/') == std::string::npos ? " on PATH" : "") +
                         "; install it or fix the path (relative paths are relative to " + pl.dir + ")");
      }
    }
    if (s.resources.cpus > cap.cpus + 1e-9) {
      errors.push_back(where + ": asks for " + std::to_string(s.resources.cpus).substr(0, 4) +
                       " cpus but the executor has " + std::to_string(cap.cpus).substr(0, 4) +
                       "; lower resources.cpus or pass --cpus");
    }
    if (cap.memory_bytes > 0 && s.resources.memory_bytes > cap.memory_bytes) {
      errors.push_back(where + ": asks for " + FormatBytes(s.resources.memory_bytes) +
                       " of memory but the executor has " + FormatBytes(cap.memory_bytes) +
                       "; lower resources.memory or pass --memory");
    }
    if (s.resources.gpus > cap.gpus) {
      errors.push_back(where + ": asks for " + std::to_string(s.resources.gpus) +
                       " gpus but the executor has " + std::to_string(cap.gpus));
    }
  }
  if (!errors.empty()) return Status::Invalid(Join(errors, "\n"));
  return Status::Ok();
}

}  // namespace ns
