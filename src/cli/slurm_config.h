// The Slurm executor's settings file (docs/slurm.md, "Configuration").
#pragma once

#include <string>

#include "exec/slurm_executor.h"
#include "util/status.h"

namespace ns::cli {

// Reads the YAML file at `path` into `config` (keys not in the file keep their
// value). Errors name the file, line and column, and say what to write.
Status LoadSlurmConfig(const std::string& path, SlurmConfig* config);

}  // namespace ns::cli
