// Small string helpers shared by every module. Pure functions, thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ns {

std::vector<std::string> Split(std::string_view s, char sep);
std::string Join(const std::vector<std::string>& parts, std::string_view sep);
std::string_view Trim(std::string_view s);
bool StartsWith(std::string_view s, std::string_view prefix);
bool EndsWith(std::string_view s, std::string_view suffix);
std::string ToUpper(std::string_view s);

// Edit distance, for "did you mean" hints.
size_t EditDistance(std::string_view a, std::string_view b);
// The candidate closest to `word` if it is close enough to be a likely typo.
// `budget`, when given, bounds the edit-distance work ((|word|+1)*(|c|+1) per
// candidate) and is spent: once it runs out there is no suggestion.
std::optional<std::string> DidYouMean(std::string_view word, const std::vector<std::string>& candidates,
                                      size_t* budget = nullptr);

// "90", "90s", "2m", "1h30m", "500ms" -> milliseconds. A bare number means seconds.
std::optional<int64_t> ParseDurationMs(std::string_view s);
// "512MiB", "2GiB", "1G", "100M", "1024" (bytes) -> bytes.
std::optional<int64_t> ParseMemoryBytes(std::string_view s);
std::string FormatDurationMs(int64_t ms);  // "1.2s", "3m04s", "1h02m"
std::string FormatDouble(double v);  // "%g": 1, 0.5, 2.25
// Well-formed UTF-8 (no check of overlong forms or surrogates).
bool IsValidUtf8(std::string_view s);
std::string FormatBytes(int64_t bytes);    // "1.5 GiB"

}  // namespace ns
