#include "spec/yaml_loader.h"

#include <yaml-cpp/eventhandler.h>

#include <new>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include "spec/limits.h"

#if __has_include(<yaml-cpp/depthguard.h>)
#include <yaml-cpp/depthguard.h>
#define NS_YAML_HAS_DEPTH_GUARD 1
#endif

namespace ns::spec {

namespace {

SourcePos PosOf(const YAML::Mark& m) {
  if (m.is_null()) return {0, 0};
  return {m.line + 1, m.column + 1};
}

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// A lexical pre-scan for the depth of flow collections, linear in the text. It
// knows just enough YAML to skip what cannot open a collection: quoted scalars,
// comments, block scalars (| and >) and brackets inside plain scalars (echo a[1]).
// Where it is unsure it errs both ways only for odd files: an unbalanced '[' in a
// multi-line plain scalar counts, a line wrongly taken as block scalar content is
// skipped. yaml-cpp's own depth guard stays behind it.
class FlowDepthScan {
 public:
  explicit FlowDepthScan(std::string_view text) : t_(text) {}

  // Where a '[' or '{' opens level max_depth + 1, or nullopt.
  std::optional<SourcePos> FindTooDeep(int max_depth) {
    int depth = 0;
    bool node_start = true;  // a node may begin here
    size_t owner_col = 0;    // 0-based column of the node a block scalar belongs to
    while (i_ < t_.size()) {
      char c = t_[i_];
      if (c == '\n') {
        NewLine();
        if (depth == 0) node_start = true;
        continue;
      }
      if (IsBlank(c)) {
        ++i_;
        continue;
      }
      if (c == '#' && (i_ == line_begin_ || IsBlank(t_[i_ - 1]))) {
        SkipToLineEnd();
        continue;
      }
      if (node_start && (c == '"' || c == '\'')) {
        if (!SkipQuoted(c)) return std::nullopt;  // unterminated: yaml-cpp reports it
        node_start = false;
        continue;
      }
      if (node_start && (c == '&' || c == '!')) {  // anchor or tag: the node follows
        while (i_ < t_.size() && !IsBlank(t_[i_]) && t_[i_] != '\n' &&
               (depth == 0 || !IsFlowIndicator(t_[i_])))
          ++i_;
        continue;
      }
      if (node_start && depth == 0 && (c == '|' || c == '>')) {
        SkipBlockScalar(owner_col);
        continue;
      }
      if ((c == '[' || c == '{') && (node_start || depth > 0)) {
        if (++depth > max_depth) return SourcePos{line_, Column()};
        ++i_;
        node_start = true;
        continue;
      }
      if (depth > 0 && (c == ']' || c == '}')) {
        --depth;
        ++i_;
        node_start = false;
        continue;
      }
      if (depth > 0 && c == ',') {
        ++i_;
        node_start = true;
        continue;
      }
      bool ends_token = i_ + 1 >= t_.size() || IsBlank(t_[i_ + 1]) || t_[i_ + 1] == '\n' ||
                        (depth > 0 && IsFlowIndicator(t_[i_ + 1]));
      if (c == ':' && ends_token) {
        ++i_;
        node_start = true;
        continue;
      }
      if (node_start && (c == '-' || c == '?') && ends_token) {
        if (depth == 0) owner_col = i_ - line_begin_;
        ++i_;
        continue;
      }
      // Anything else is part of a plain scalar (a key or a value).
      if (node_start && depth == 0) owner_col = i_ - line_begin_;
      node_start = false;
      ++i_;
    }
    return std::nullopt;
  }

 private:
  static bool IsFlowIndicator(char c) {
    return c == '[' || c == ']' || c == '{' || c == '}' || c == ',';
  }
  int Column() const { return static_cast<int>(i_ - line_begin_) + 1; }
  void NewLine() {
    ++i_;
    ++line_;
    line_begin_ = i_;
  }
  void SkipToLineEnd() {
    while (i_ < t_.size() && t_[i_] != '\n') ++i_;
  }
  // From an opening quote to after its closing one; false if there is none.
  bool SkipQuoted(char q) {
    ++i_;
    while (i_ < t_.size()) {
      char c = t_[i_];
      if (c == '\n') {
        NewLine();
      } else if (q == '"' && c == '\\') {
        ++i_;
        if (i_ < t_.size() && t_[i_] == '\n')
          NewLine();
        else if (i_ < t_.size())
          ++i_;
      } else if (c == q) {
        ++i_;
        if (q == '\'' && i_ < t_.size() && t_[i_] == '\'') {
          ++i_;  // '' inside single quotes
          continue;
        }
        return true;
      } else {
        ++i_;
      }
    }
    return false;
  }
  // From a '|' or '>' header past every following line that is blank or indented
  // more than the node the scalar belongs to.
  void SkipBlockScalar(size_t owner_col) {
    SkipToLineEnd();
    while (i_ < t_.size()) {
      NewLine();
      size_t j = i_;
      while (j < t_.size() && t_[j] == ' ') ++j;
      bool blank = true;
      for (size_t k = j; k < t_.size() && t_[k] != '\n'; ++k) {
        if (!IsBlank(t_[k])) {
          blank = false;
          break;
        }
      }
      if (!blank && j - line_begin_ <= owner_col) return;  // the next node
      SkipToLineEnd();
    }
  }

  std::string_view t_;
  size_t i_ = 0;
  size_t line_begin_ = 0;
  int line_ = 1;
};

// Counts the document as a walk of the built tree would see it: an alias adds
// the whole size of its anchor. Throws Exceeded at the first event past a limit.
class ExpansionCounter : public YAML::EventHandler {
 public:
  struct Exceeded {
    YAML::Mark mark;
    bool nodes;      // else scalar bytes
    bool saw_alias;  // else the file is simply that big
  };

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& m, YAML::anchor_t a) override { Leaf(m, a, 0); }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t a) override {
    saw_alias_ = true;
    // An alias of an anchor still open refers to a node being built: yaml-cpp
    // links it (a cycle) and the parser never walks through it twice.
    Add(m, a < anchors_.size() && anchors_[a].nodes > 0 ? anchors_[a] : Size{1, 0});
  }
  void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t a,
                const std::string& value) override {
    Leaf(m, a, value.size());
  }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t a,
                       YAML::EmitterStyle::value) override {
    Open(m, a);
  }
  void OnSequenceEnd() override { Close(); }
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t a,
                  YAML::EmitterStyle::value) override {
    Open(m, a);
  }
  void OnMapEnd() override { Close(); }

 private:
  struct Size {
    size_t nodes = 0;
    size_t bytes = 0;
  };

  // Both stay below twice their limit: each addition is at most a recorded size.
  void Add(const YAML::Mark& m, Size s) {
    total_.nodes += s.nodes;
    total_.bytes += s.bytes;
    if (total_.nodes > kMaxYamlNodes) throw Exceeded{m, true, saw_alias_};
    if (total_.bytes > kMaxYamlScalarBytes) throw Exceeded{m, false, saw_alias_};
  }
  void Record(YAML::anchor_t a, Size s) {
    if (a == YAML::NullAnchor) return;
    if (anchors_.size() <= a) anchors_.resize(a + 1);  // yaml-cpp numbers anchors 1, 2, ...
    anchors_[a] = s;
  }
  void Leaf(const YAML::Mark& m, YAML::anchor_t a, size_t bytes) {
    Add(m, {1, bytes});
    Record(a, {1, bytes});
  }
  void Open(const YAML::Mark& m, YAML::anchor_t a) {
    open_.push_back({a, total_});
    Add(m, {1, 0});
  }
  void Close() {
    if (open_.empty()) return;
    auto [a, start] = open_.back();
    open_.pop_back();
    Record(a, {total_.nodes - start.nodes, total_.bytes - start.bytes});
  }

  Size total_;
  bool saw_alias_ = false;
  std::vector<Size> anchors_;                          // by anchor number
  std::vector<std::pair<YAML::anchor_t, Size>> open_;  // open collections
};

// True if some line has "key: {" and later a "${" on the line of that '{': the
// template's braces then end the flow mapping (a frequent cause of parse errors).
bool HasTemplateInFlowMapping(std::string_view t) {
  size_t i = 0;
  while (i < t.size()) {
    if (t[i] != ':') {
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < t.size() && (IsBlank(t[j]) || t[j] == '\n')) ++j;
    if (j >= t.size() || t[j] != '{') {
      i = j;
      continue;
    }
    size_t eol = t.find('\n', j);
    if (eol == std::string_view::npos) eol = t.size();
    size_t tmpl = t.find("${", j);
    if (tmpl != std::string_view::npos && tmpl < eol) return true;
    i = eol;  // a later "key: {" on this line would search the same rest of it
  }
  return false;
}

std::string WithCommas(size_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t k = 0; k < digits.size(); ++k) {
    if (k > 0 && (digits.size() - k) % 3 == 0) out += ',';
    out += digits[k];
  }
  return out;
}

std::string MiB(size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

void ReportFileTooBig(size_t bytes, Diagnostics* d) {
  d->Error(
      {1, 1},
      "the file has " + WithCommas(bytes) + " bytes, more than the limit of " + MiB(kMaxFileBytes),
      "a pipeline is a short text; keep data in files that its steps read");
}

std::optional<YAML::Node> LoadYaml(const std::string& text, Diagnostics* d) {
  if (text.size() > kMaxFileBytes) {
    ReportFileTooBig(text.size(), d);
    return std::nullopt;
  }
  if (auto deep = FlowDepthScan(text).FindTooDeep(kMaxFlowDepth)) {
    d->Error(*deep,
             "lists or mappings nest deeper than " + std::to_string(kMaxFlowDepth) + " levels",
             "a pipeline needs a few levels; check for runaway '[' or '{'");
    return std::nullopt;
  }
  try {
    {
      std::istringstream in(text);
      YAML::Parser events(in);
      ExpansionCounter counter;
      events.HandleNextDocument(counter);
    }
    return YAML::Load(text);
  } catch (const ExpansionCounter::Exceeded& e) {
    std::string what =
        e.nodes ? WithCommas(kMaxYamlNodes) + " nodes" : MiB(kMaxYamlScalarBytes) + " of text";
    if (e.saw_alias) {
      d->Error(PosOf(e.mark), "the YAML expands to more than " + what + " (aliases?)",
               "each *alias counts as a full copy of its &anchor; repeat less, or do not nest "
               "aliases of big lists");
    } else {
      d->Error(PosOf(e.mark), "the YAML has more than " + what,
               "a pipeline needs far less; keep data in files that its steps read");
    }
#ifdef NS_YAML_HAS_DEPTH_GUARD
  } catch (const YAML::DeepRecursion& e) {
    d->Error(
        PosOf(e.mark),
        "the YAML nests " + std::to_string(e.depth()) + " levels deep, more than the parser allows",
        "a pipeline needs a few levels; check the indentation here");
#endif
  } catch (const YAML::Exception& e) {
    std::string hint = "check indentation and quoting near this place";
    if (HasTemplateInFlowMapping(text)) {
      hint += "; a ${...} template inside a {flow: mapping} must be quoted, or use block style";
    }
    d->Error(PosOf(e.mark), "malformed YAML: " + e.msg, hint);
  } catch (const std::bad_alloc&) {
    d->Error({1, 1}, "out of memory while reading the YAML", "make the file smaller");
  } catch (const std::exception& e) {
    d->Error({1, 1}, std::string("cannot read the YAML: ") + e.what());
  }
  return std::nullopt;
}

}  // namespace ns::spec
