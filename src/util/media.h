// How much video a file holds, for estimates per second of video (a step's
// tasks on a 90-minute match and on a 5-minute clip do not take the same time).
//
// Reads the container's header through libavformat, loaded with dlopen on the
// first call (commands that never look at a video never load it). Only regular
// files with a video extension are opened (a FIFO or device is never touched).
// Thread-safe.
#pragma once

#include <cstdint>
#include <string>

namespace ns {

// Milliseconds of media in `path`; 0 when it is not a video file, cannot be
// read, or libavformat is not installed.
int64_t MediaDurationMs(const std::string& path);

}  // namespace ns
