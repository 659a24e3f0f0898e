// JSON output that never throws on bytes that are not UTF-8 (file names and
// params may hold any bytes): invalid sequences become U+FFFD in the output.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace ns {

inline std::string DumpJson(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace ns
