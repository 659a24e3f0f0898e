#include "util/status.h"

#include <cstring>

namespace ns {

Status Status::FromErrno(const std::string& what, int err) {
  StatusCode code = err == ENOENT ? StatusCode::kNotFound : StatusCode::kIoError;
  return Status(code, what + ": " + std::strerror(err));
}

}  // namespace ns
