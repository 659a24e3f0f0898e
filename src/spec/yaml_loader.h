// The adapter between pipeline text and yaml-cpp: parses the first YAML document
// within the limits of spec/limits.h and turns every yaml-cpp or std exception
// into a diagnostic.
//
// Before yaml-cpp builds nodes, two linear passes bound what it will do:
//   1. a lexical pre-scan refuses flow collections nested deeper than
//      kMaxFlowDepth (yaml-cpp's parser recurses once per level);
//   2. an event-only parse counts the document as expanded, each alias (*name)
//      counted as a full copy of its anchor, and refuses more than kMaxYamlNodes
//      nodes or kMaxYamlScalarBytes of scalar text ("billion laughs").
// yaml-cpp keeps one shared node per anchor, so once these pass, walking the tree
// (which visits an anchor once per alias) costs at most the counted size.
//
// Thread-safe (no shared state).
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>

#include "spec/diagnostics.h"

namespace ns::spec {

// Returns the root node, or nullopt after adding one diagnostic (with line:column
// and a hint) to `diags`. Never throws.
std::optional<YAML::Node> LoadYaml(const std::string& text, Diagnostics* diags);

// The diagnostic for a file of `bytes` > kMaxFileBytes (also given by LoadYaml).
void ReportFileTooBig(size_t bytes, Diagnostics* diags);

}  // namespace ns::spec
