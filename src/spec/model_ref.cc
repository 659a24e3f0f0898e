#include "spec/model_ref.h"

#include <algorithm>
#include <cctype>

#include "spec/diagnostics.h"

namespace ns::spec {

bool IsModelName(const std::string& name) {
  if (name.empty() || name.size() > 128 || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

Result<ModelRef> ParseModelRef(const std::string& text) {
  ModelRef ref;
  auto at = text.find('@');
  ref.name = text.substr(0, at);
  if (!IsModelName(ref.name)) {
    return Status::Invalid("'" + Excerpt(text) +
                           "' is not a model reference; use NAME, NAME@latest or NAME@VERSION, where NAME "
                           "matches [A-Za-z0-9][A-Za-z0-9._-]*");
  }
  if (at != std::string::npos) {
    std::string v = text.substr(at + 1);
    if (v == "latest") return ref;
    if (v.empty() || v.size() > 12 || v.find_first_not_of("0123456789") != std::string::npos || v[0] == '0') {
      return Status::Invalid("'" + Excerpt(text) + "': the version after '@' must be a number from 1, or latest");
    }
    ref.version = std::stoll(v);
  }
  return ref;
}

}  // namespace ns::spec
