// A reference to a model of the registry, as a step's `models:` names it.
#pragma once

#include <cstdint>
#include <string>

#include "util/status.h"

namespace ns::spec {

// "players", "players@latest" (version 0) or "players@3".
struct ModelRef {
  std::string name;
  int64_t version = 0;  // 0: the newest version not removed
  std::string Text() const { return name + "@" + (version ? std::to_string(version) : "latest"); }
};
// [A-Za-z0-9][A-Za-z0-9._-]*, at most 128 characters.
bool IsModelName(const std::string& name);
Result<ModelRef> ParseModelRef(const std::string& text);

}  // namespace ns::spec
