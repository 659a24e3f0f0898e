// Diagnostics: every problem found in a pipeline file, reported together.
//
// A diagnostic names the file and the place (1-based line and column), says what
// is wrong and, where it can, what to do. Not thread-safe.
#pragma once

#include <string>
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

}  // namespace ns::spec
