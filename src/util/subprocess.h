// Runs a short-lived program (sbatch, squeue, scancel) and captures what it
// prints. No shell: argv goes to execvp as it is. The child gets an empty
// signal mask and default dispositions whatever the calling thread blocks, and
// stdin from `input` (or /dev/null).
//
// Thread-safe (every call has its own pipes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace ns {

struct ProgramOutput {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

// Errors: it could not be started (not found), or it ran longer than
// `timeout_ms` (it is then killed). A non-zero exit is not an error: the
// caller reads exit_code.
Result<ProgramOutput> RunProgram(const std::vector<std::string>& argv, const std::string& input = "",
                                 int64_t timeout_ms = 30000);

}  // namespace ns
