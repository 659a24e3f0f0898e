// Preflight: what can be checked before a run folder is created, so a run that
// could never start leaves nothing behind. Pure (reads the file system only).
#pragma once

#include <string>

#include "exec/executor.h"
#include "spec/params.h"
#include "spec/pipeline.h"
#include "util/status.h"

namespace ns {

// Checks that every literal program exists on `path_env` (or relative to the
// pipeline's folder), that every step fits `capacity`, and that every path
// param names a regular file or a folder (not a device, FIFO or socket, which
// would hang the fingerprint). All problems are returned together, one per
// line, each naming file:line:col and the step or param.
Status Preflight(const spec::Pipeline& pipeline, const spec::ParamValues& params,
                 const Capacity& capacity, const std::string& path_env);

}  // namespace ns
