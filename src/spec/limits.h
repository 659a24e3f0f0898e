// Limits on a pipeline file, so that a hostile or broken file gets one clear
// diagnostic (exit 2) instead of exhausting memory, time or the stack.
//
// Each is far above what a real pipeline needs; docs/pipeline.md lists them.
#pragma once

#include <cstddef>

namespace ns::spec {

// Step ids, param names and env variable names.
inline constexpr size_t kMaxNameLength = 128;

// The pipeline file itself, checked before YAML parsing.
inline constexpr size_t kMaxFileBytes = 16u << 20;

// Nesting of flow collections ([...] and {...}), checked by a lexical pre-scan
// before yaml-cpp sees the text (its parser recurses once per level).
inline constexpr int kMaxFlowDepth = 64;

// The document as the parser walks it, with every alias (*name) counted as a copy
// of its anchor (&name): nodes (scalars, lists, mappings) and bytes of scalar text.
// Bounds "billion laughs" files, which are small but expand enormously.
inline constexpr size_t kMaxYamlNodes = 1'000'000;
inline constexpr size_t kMaxYamlScalarBytes = 16u << 20;

}  // namespace ns::spec
