// Parsing and validation of pipeline YAML files.
//
// Reports every problem at once (Diagnostics), each with file:line:column and a
// hint: malformed YAML, unknown keys (with did-you-mean), wrong types, bad units,
// duplicate or invalid step ids, `needs` to unknown steps, cycles (the cycle is
// printed), and templates that name unknown things. Thread-safe (no shared state).
#pragma once

#include <optional>
#include <string>

#include "spec/diagnostics.h"
#include "spec/pipeline.h"

namespace ns::spec {

// Parses `text` as if read from `file`. Returns nullopt when `diags` got errors.
std::optional<Pipeline> ParsePipelineText(const std::string& text, const std::string& file,
                                          Diagnostics* diags);
// Reads and parses a file. An unreadable file is one diagnostic at 0:0.
std::optional<Pipeline> ParsePipelineFile(const std::string& path, Diagnostics* diags);

}  // namespace ns::spec
