// Param values for one run: the pipeline's defaults overridden by `-p k=v`.
//
// Values are checked against their declared type; path values must exist and are
// made absolute (steps run in their own folder). Pure; thread-safe.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "spec/pipeline.h"
#include "util/status.h"

namespace ns::spec {

struct ParamValue {
  ParamType type = ParamType::kString;
  std::string scalar;             // canonical text (int, number, bool, string, absolute path)
  std::vector<std::string> list;  // for kList
};

using ParamValues = std::map<std::string, ParamValue>;

// Parses "k=v" overrides. List values: comma-separated, or a JSON array "[...]".
// All problems are returned together in one Status message, one per line.
Result<ParamValues> ResolveParams(const Pipeline& pl,
                                  const std::vector<std::pair<std::string, std::string>>& overrides);
std::string ParamValuesToJson(const ParamValues& values);

}  // namespace ns::spec
