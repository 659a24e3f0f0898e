// Diagnostics: every problem found in a pipeline file, reported together.
//
// A diagnostic names the file and the place (1-based line and column), says what
// is wrong and, where it can, what to do. Not thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ns::spec {

struct SourcePos {
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based
};

struct Diagnostic {
  SourcePos pos;
  std::string message;
  std::string hint;  // may be empty
};

class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}
  void Error(SourcePos pos, std::string message, std::string hint = "") {
    items_.push_back({pos, std::move(message), std::move(hint)});
  }
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  const std::vector<Diagnostic>& items() const { return items_; }
  const std::string& file() const { return file_; }
  // "file:line:col: error: message\n    hint: ...\n" for each, in source order.
  std::string Format() const;

 private:
  std::string file_;
  std::vector<Diagnostic> items_;
};

// User text quoted in a message: as is up to 80 characters, else its start and
// the length, so that a 100,000-character name gives a readable diagnostic.
inline std::string Excerpt(std::string_view s) {
  constexpr size_t kMax = 80;
  if (s.size() <= kMax) return std::string(s);
  return std::string(s.substr(0, 40)) + "... (" + std::to_string(s.size()) + " characters)";
}

}  // namespace ns::spec
