#include "spec/template.h"

#include <cctype>

#include "spec/diagnostics.h"
#include "util/strings.h"

namespace ns::spec {

bool Template::HasRefs() const {
  for (const auto& p : parts)
    if (p.is_ref) return true;
  return false;
}

Result<std::vector<std::string>> SplitWords(const std::string& line) {
  std::vector<std::string> words;
  std::string cur;
  bool in_word = false;
  size_t i = 0;
  while (i < line.size()) {
    char c = line[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
      ++i;
    } else if (c == '\'') {
      size_t end = line.find('\'', i + 1);
      if (end == std::string::npos) return Status::Invalid("unterminated single quote");
      cur.append(line, i + 1, end - i - 1);
      in_word = true;
      i = end + 1;
    } else if (c == '"') {
      ++i;
      bool closed = false;
      while (i < line.size()) {
        char d = line[i];
        if (d == '"') {
          closed = true;
          ++i;
          break;
        }
        if (d == '\\' && i + 1 < line.size() &&
            (line[i + 1] == '"' || line[i + 1] == '\\' || line[i + 1] == '$' ||
             line[i + 1] == '`')) {
          cur += line[i + 1];
          i += 2;
          continue;
        }
        cur += d;
        ++i;
      }
      if (!closed) return Status::Invalid("unterminated double quote");
      in_word = true;
    } else if (c == '\\') {
      if (i + 1 >= line.size()) return Status::Invalid("trailing backslash");
      if (line[i + 1] != '\n') cur += line[i + 1];
      in_word = in_word || line[i + 1] != '\n';
      i += 2;
    } else {
      cur += c;
      in_word = true;
      ++i;
    }
  }
  if (in_word) words.push_back(std::move(cur));
  return words;
}

namespace {

bool IsIdent(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  }
  return true;
}

}  // namespace

Result<Template> ParseTemplate(const std::string& text) {
  Template t;
  std::string lit;
  size_t i = 0;
  auto flush = [&] {
    if (!lit.empty()) {
      TemplatePart p;
      p.literal = std::move(lit);
      t.parts.push_back(std::move(p));
      lit.clear();
    }
  };
  while (i < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      lit += "${";
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      lit += text[i++];
      continue;
    }
    size_t end = text.find('}', i + 2);
    if (end == std::string::npos) {
      return Status::Invalid("unterminated reference '" +
                             Excerpt(std::string_view(text).substr(i)) + "' (missing '}')");
    }
    std::string inner(Trim(std::string_view(text).substr(i + 2, end - i - 2)));
    std::string whole = text.substr(i, end - i + 1);
    TemplatePart p;
    p.is_ref = true;
    p.text = whole;
    std::vector<std::string> f = Split(inner, '.');
    if (f.size() == 2 && f[0] == "params" && IsIdent(f[1])) {
      p.kind = RefKind::kParam;
      p.name = f[1];
    } else if (f.size() == 3 && f[0] == "steps" && IsIdent(f[1]) && f[2] == "output") {
      p.kind = RefKind::kStepOutput;
      p.name = f[1];
    } else if (f.size() == 1 && f[0] == "item") {
      p.kind = RefKind::kItem;
    } else if (f.size() == 2 && f[0] == "item" && f[1] == "path") {
      p.kind = RefKind::kItem;
    } else if (f.size() == 2 && f[0] == "item" && IsIdent(f[1])) {
      p.kind = RefKind::kItemField;
      p.name = f[1];
    } else if (f.size() == 2 && f[0] == "models" && IsIdent(f[1])) {
      p.kind = RefKind::kModel;
      p.name = f[1];
    } else if (f.size() == 2 && f[0] == "run" && f[1] == "id") {
      p.kind = RefKind::kRunId;
    } else if (f.size() == 2 && f[0] == "pipeline" && f[1] == "dir") {
      p.kind = RefKind::kPipelineDir;
    } else {
      return Status::Invalid("unknown reference '" + Excerpt(whole) +
                             "'; use ${params.NAME}, ${steps.STEP.output}, ${item}, "
                             "${item.FIELD}, ${models.ALIAS}, ${run.id} or ${pipeline.dir}");
    }
    flush();
    t.parts.push_back(std::move(p));
    i = end + 1;
  }
  flush();
  return t;
}

Result<std::vector<std::string>> RenderWord(const Template& t, const Resolver& resolve) {
  if (t.IsSingleRef()) {
    Result<RefValue> v = resolve(t.parts[0]);
    if (!v.ok()) return v.status();
    if (v->is_list) return v->list;
    return std::vector<std::string>{v->scalar};
  }
  Result<std::string> s = RenderString(t, resolve);
  if (!s.ok()) return s.status();
  return std::vector<std::string>{std::move(s.value())};
}

Result<std::string> RenderString(const Template& t, const Resolver& resolve) {
  std::string out;
  for (const auto& p : t.parts) {
    if (!p.is_ref) {
      out += p.literal;
      continue;
    }
    Result<RefValue> v = resolve(p);
    if (!v.ok()) return v.status();
    out += v->is_list ? Join(v->list, " ") : v->scalar;
  }
  return out;
}

}  // namespace ns::spec
