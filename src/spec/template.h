// Templates: `${params.x}`, `${steps.s.output}`, `${item}`, `${item.FIELD}`
// (a manifest entry's field; `${item.path}` is `${item}`), `${models.ALIAS}`
// (the folder of a model the step pins), `${run.id}`, `${pipeline.dir}` inside
// argv words and env values.
//
// A `run:` string is first split into words the way a POSIX shell splits them
// (whitespace, single and double quotes, backslashes) and only then are templates
// substituted inside each word, so a value can never become a second argument or
// a command. `$${` is a literal `${`. A word that is exactly one reference to a
// list param expands to one argument per element. Pure functions; thread-safe.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "util/status.h"

namespace ns::spec {

enum class RefKind { kParam, kStepOutput, kItem, kItemField, kModel, kRunId, kPipelineDir };

struct TemplatePart {
  bool is_ref = false;
  std::string literal;  // when !is_ref
  RefKind kind = RefKind::kParam;
  std::string name;  // param name, step id, item field or model alias
  std::string text;  // the reference as written, e.g. "${params.x}"
};

struct Template {
  std::vector<TemplatePart> parts;
  bool IsSingleRef() const { return parts.size() == 1 && parts[0].is_ref; }
  bool HasRefs() const;
};

// Splits a command line into words. Errors: unterminated quote, trailing backslash.
Result<std::vector<std::string>> SplitWords(const std::string& line);
// Parses the references in one word. Errors name the offending reference.
Result<Template> ParseTemplate(const std::string& text);

// Supplies values while rendering. `list` is set (and `scalar` ignored) for list params.
struct RefValue {
  std::string scalar;
  bool is_list = false;
  std::vector<std::string> list;
};
using Resolver = std::function<Result<RefValue>(const TemplatePart&)>;

// Renders one argv word; may yield several arguments (whole-word list expansion).
Result<std::vector<std::string>> RenderWord(const Template& t, const Resolver& resolve);
// Renders to a single string (env values): lists are joined with spaces.
Result<std::string> RenderString(const Template& t, const Resolver& resolve);

}  // namespace ns::spec
