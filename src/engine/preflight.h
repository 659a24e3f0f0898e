// Preflight: what can be checked before a run folder is created, so a run that
// could never start leaves nothing behind. Pure (reads the file system only).
#pragma once

#include <string>

#include "exec/executor.h"
#include "spec/pipeline.h"
#include "util/status.h"

namespace ns {

// Checks that every literal program exists on `path_env` (or relative to the
// pipeline's folder) and that every step fits `capacity`. All problems are
// returned together, one per line, each naming file:line:col and the step.
Status Preflight(const spec::Pipeline& pipeline, const Capacity& capacity,
                 const std::string& path_env);

}  // namespace ns
