#include "spec/parser.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <new>
#include <set>
#include <string_view>
#include <tuple>

#include "spec/limits.h"
#include "spec/model_ref.h"
#include "spec/yaml_loader.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/strings.h"

namespace ns::spec {

const char* ParamTypeName(ParamType t) {
  switch (t) {
    case ParamType::kString: return "string";
    case ParamType::kInt: return "int";
    case ParamType::kNumber: return "number";
    case ParamType::kBool: return "bool";
    case ParamType::kPath: return "path";
    case ParamType::kList: return "list";
  }
  return "?";
}

const Step* Pipeline::FindStep(const std::string& id) const {
  for (const auto& s : steps)
    if (s.id == id) return &s;
  return nullptr;
}

const Param* Pipeline::FindParam(const std::string& name) const {
  for (const auto& p : params)
    if (p.name == name) return &p;
  return nullptr;
}

std::string Diagnostics::Format() const {
  std::vector<Diagnostic> sorted = items_;
  std::stable_sort(sorted.begin(), sorted.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.pos.line, a.pos.column) < std::tie(b.pos.line, b.pos.column);
  });
  std::string out;
  for (const auto& d : sorted) {
    out += file_ + ":" + std::to_string(d.pos.line) + ":" + std::to_string(d.pos.column) +
           ": error: " + d.message + "\n";
    if (!d.hint.empty()) out += "    hint: " + d.hint + "\n";
  }
  return out;
}

namespace {

// Names are checked by hand, not with std::regex: libstdc++'s regex recurses once
// per character and overflows the stack on long input.
bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsLetter(char c) { return IsLower(c) || (c >= 'A' && c <= 'Z'); }

// [a-z0-9][a-z0-9_-]*
bool IsStepId(std::string_view s) {
  if (s.empty() || !(IsLower(s[0]) || IsDigit(s[0]))) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsLower(c) || IsDigit(c) || c == '_' || c == '-'; });
}
// [a-z_][a-z0-9_]*
bool IsParamName(std::string_view s) {
  if (s.empty() || !(IsLower(s[0]) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsLower(c) || IsDigit(c) || c == '_'; });
}
// [A-Za-z_][A-Za-z0-9_]*
bool IsEnvName(std::string_view s) {
  if (s.empty() || !(IsLetter(s[0]) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return IsLetter(c) || IsDigit(c) || c == '_'; });
}

bool IsRegexSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// The first template in a shell script, as "${params." (also "${steps.", "${run.",
// "${pipeline.", "${item}"; blanks may follow "${"), or "" if none. Linear.
std::string FindTemplateInScript(std::string_view s) {
  static constexpr std::string_view kPrefixes[] = {"params.", "steps.", "run.", "pipeline."};
  for (size_t i = s.find("${"); i != std::string_view::npos; i = s.find("${", i + 2)) {
    size_t j = i + 2;
    while (j < s.size() && IsRegexSpace(s[j])) ++j;
    std::string_view rest = s.substr(j);
    for (std::string_view p : kPrefixes)
      if (StartsWith(rest, p)) return "${" + std::string(p);
    if (StartsWith(rest, "item")) {
      size_t k = j + 4;
      while (k < s.size() && IsRegexSpace(s[k])) ++k;
      if (k < s.size() && s[k] == '}') return "${item}";
    }
  }
  return "";
}

// At most `max` names joined with ", ", then how many there are in all.
std::string ListSome(const std::vector<std::string>& names, size_t max = 10) {
  std::vector<std::string> some;
  for (size_t k = 0; k < names.size() && k < max; ++k) some.push_back(Excerpt(names[k]));
  std::string out = Join(some, ", ");
  if (names.size() > max) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out;
}

SourcePos Pos(const YAML::Node& n) {
  YAML::Mark m = n.Mark();
  if (m.line < 0) return {0, 0};
  return {m.line + 1, m.column + 1};
}

const char* KindName(const YAML::Node& n) {
  if (n.IsMap()) return "a mapping";
  if (n.IsSequence()) return "a list";
  if (n.IsNull()) return "nothing";
  return "a scalar";
}

// The values of a mapping by key, read once. yaml-cpp's operator[] searches the
// mapping and builds a std::stringstream for every missing key, which made a
// 30,000-step file spend a second on lookups of optional keys.
class Fields {
 public:
  explicit Fields(const YAML::Node& map) {
    if (!map.IsMap()) return;
    for (auto it = map.begin(); it != map.end(); ++it)
      if (it->first.IsScalar()) items_.emplace_back(it->first.Scalar(), it->second);
  }
  // The value of the first `key`, as yaml-cpp's operator[]; an undefined node
  // (false in a condition) if there is none.
  const YAML::Node& operator[](std::string_view key) const {
    for (const auto& [k, v] : items_)
      if (k == key) return v;
    return Missing();
  }

 private:
  static const YAML::Node& Missing() {
    static const YAML::Node kMissing =
        static_cast<const YAML::Node&>(YAML::Node(YAML::NodeType::Map))["-"];
    return kMissing;
  }
  std::vector<std::pair<std::string, YAML::Node>> items_;
};

// One parse: the diagnostics sink plus typed getters that report as they go.
class Parser {
 public:
  explicit Parser(Diagnostics* d) : d_(d) {}

  // DidYouMean within a budget of edit-distance work for the whole file, so that
  // thousands of misspelt names among thousands of steps stay fast; names longer
  // than any valid name are not compared.
  std::optional<std::string> Suggest(std::string_view word,
                                     const std::vector<std::string>& candidates) {
    if (word.size() > kMaxNameLength) return std::nullopt;
    return DidYouMean(word, candidates, &suggest_budget_);
  }

  // Reports a name longer than kMaxNameLength or not of the form `valid` checks.
  bool CheckName(const YAML::Node& key, const std::string& what, const std::string& name,
                 bool valid, const std::string& hint) {
    if (name.size() > kMaxNameLength) {
      d_->Error(Pos(key),
                what + " '" + Excerpt(name) + "' is longer than " + std::to_string(kMaxNameLength) +
                    " characters",
                "use a shorter name");
      return false;
    }
    if (!valid) {
      d_->Error(Pos(key), "invalid " + what + " '" + Excerpt(name) + "'", hint);
      return false;
    }
    return true;
  }

  // Reports unknown and duplicate keys of a mapping. Returns false if not a map.
  bool CheckMap(const YAML::Node& n, const std::string& what,
                const std::vector<std::string>& allowed) {
    if (!n.IsMap()) {
      d_->Error(Pos(n), what + " must be a mapping, found " + KindName(n));
      return false;
    }
    std::set<std::string> seen;
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string key = it->first.Scalar();
      if (!seen.insert(key).second) {
        d_->Error(Pos(it->first), "duplicate key '" + Excerpt(key) + "' in " + what,
                  "remove one of the two");
        continue;
      }
      if (allowed.empty()) continue;
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        auto dym = Suggest(key, allowed);
        d_->Error(Pos(it->first), "unknown key '" + Excerpt(key) + "' in " + what,
                  dym ? "did you mean '" + *dym + "'?" : "allowed keys: " + Join(allowed, ", "));
      }
    }
    return true;
  }

  bool GetString(const YAML::Node& n, const std::string& what, std::string* out) {
    if (!n.IsScalar()) {
      d_->Error(Pos(n), what + " must be a string, found " + KindName(n));
      return false;
    }
    *out = n.Scalar();
    return true;
  }

  bool GetInt(const YAML::Node& n, const std::string& what, int64_t* out, int64_t min) {
    long long v = 0;
    if (!n.IsScalar() || !YAML::convert<long long>::decode(n, v)) {
      d_->Error(Pos(n), what + " must be an integer, found '" +
                            (n.IsScalar() ? Excerpt(n.Scalar()) : KindName(n)) + "'");
      return false;
    }
    if (v < min) {
      d_->Error(Pos(n), what + " must be at least " + std::to_string(min));
      return false;
    }
    *out = v;
    return true;
  }

  bool GetNumber(const YAML::Node& n, const std::string& what, double* out) {
    double v = 0;
    if (!n.IsScalar() || !YAML::convert<double>::decode(n, v)) {
      d_->Error(Pos(n), what + " must be a number, found '" +
                            (n.IsScalar() ? Excerpt(n.Scalar()) : KindName(n)) + "'");
      return false;
    }
    *out = v;
    return true;
  }

  bool GetBool(const YAML::Node& n, const std::string& what, bool* out) {
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, *out)) {
      d_->Error(Pos(n), what + " must be true or false, found '" +
                            (n.IsScalar() ? Excerpt(n.Scalar()) : KindName(n)) + "'");
      return false;
    }
    return true;
  }

  bool GetDuration(const YAML::Node& n, const std::string& what, int64_t* out) {
    std::string s;
    if (!GetString(n, what, &s)) return false;
    auto v = ParseDurationMs(s);
    if (!v) {
      d_->Error(Pos(n), what + ": bad duration '" + Excerpt(s) + "'",
                "use a number with a unit: 500ms, 30s, 5m, 1h30m");
      return false;
    }
    *out = *v;
    return true;
  }

  void ParseResources(const YAML::Node& node, const std::string& where, Resources* r) {
    if (!CheckMap(node, "resources of " + where, {"cpus", "memory", "gpus"})) return;
    Fields n(node);
    if (n["cpus"]) {
      double c;
      if (GetNumber(n["cpus"], "resources.cpus", &c)) {
        if (c <= 0) d_->Error(Pos(n["cpus"]), "resources.cpus must be greater than 0");
        else r->cpus = c;
      }
    }
    if (n["memory"]) {
      std::string s;
      if (GetString(n["memory"], "resources.memory", &s)) {
        auto b = ParseMemoryBytes(s);
        if (!b) {
          d_->Error(Pos(n["memory"]), "resources.memory: bad size '" + Excerpt(s) + "'",
                    "use a number with a unit: 512MiB, 2GiB, 1G");
        } else {
          r->memory_bytes = *b;
        }
      }
    }
    if (n["gpus"]) {
      int64_t g;
      if (GetInt(n["gpus"], "resources.gpus", &g, 0)) r->gpus = static_cast<int>(g);
    }
  }

  void ParseRetry(const YAML::Node& node, const std::string& where, RetryPolicy* r) {
    if (!CheckMap(node, "retry of " + where, {"max_attempts", "backoff", "max_backoff", "on"}))
      return;
    Fields n(node);
    if (n["max_attempts"]) {
      int64_t v;
      if (GetInt(n["max_attempts"], "retry.max_attempts", &v, 1)) r->max_attempts = static_cast<int>(v);
    }
    if (n["backoff"]) GetDuration(n["backoff"], "retry.backoff", &r->backoff_ms);
    if (n["max_backoff"]) GetDuration(n["max_backoff"], "retry.max_backoff", &r->max_backoff_ms);
    if (n["on"]) {
      const YAML::Node& on = n["on"];
      std::vector<YAML::Node> items;
      if (on.IsSequence()) {
        for (const auto& x : on) items.push_back(x);
      } else {
        items.push_back(on);
      }
      static const std::vector<std::string> kNames = {"retryable", "failed", "timed_out", "signal"};
      unsigned mask = 0;
      for (const auto& x : items) {
        std::string s;
        if (!GetString(x, "retry.on", &s)) continue;
        auto it = std::find(kNames.begin(), kNames.end(), s);
        if (it == kNames.end()) {
          auto dym = Suggest(s, kNames);
          d_->Error(Pos(x), "unknown outcome '" + Excerpt(s) + "' in retry.on",
                    dym ? "did you mean '" + *dym + "'?" : "use: " + Join(kNames, ", "));
          continue;
        }
        mask |= 1u << (it - kNames.begin());
      }
      r->on = mask;
    }
  }

  // `scope` keys env_pos_: "defaults" or "step 'ID'".
  void ParseEnv(const YAML::Node& n, const std::string& where, const std::string& scope,
                std::vector<EnvVar>* env) {
    if (!CheckMap(n, "env of " + where, {})) return;
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string name = it->first.Scalar();
      if (!CheckName(it->first, "environment variable name", name, IsEnvName(name),
                     "use letters, digits and _; not starting with a digit")) {
        continue;
      }
      if (StartsWith(name, "NIGHTSHIFT_")) {
        d_->Error(Pos(it->first), "'" + name + "' is reserved: NIGHTSHIFT_* variables are set by the engine");
        continue;
      }
      std::string raw;
      if (!GetString(it->second, "env." + name, &raw)) continue;
      auto t = ParseTemplate(raw);
      if (!t.ok()) {
        d_->Error(Pos(it->second), "env." + name + ": " + t.status().message());
        continue;
      }
      EnvVar v{name, std::move(t.value()), raw};
      auto existing = std::find_if(env->begin(), env->end(), [&](const EnvVar& e) { return e.name == name; });
      if (existing != env->end()) *existing = std::move(v);
      else env->push_back(std::move(v));
      env_pos_[scope + "/" + name] = Pos(it->second);
    }
  }

  Diagnostics* d_;
  std::map<std::string, SourcePos> env_pos_;
  size_t suggest_budget_ = 50'000'000;  // about 0.1 s of EditDistance
};

struct Defaults {
  Resources resources;
  RetryPolicy retry;
  int64_t timeout_ms = 0;
  int64_t grace_ms = 10000;
  std::vector<EnvVar> env;
  bool cache = true;
  SpotPolicy spot;
};

// spot, max_interruptions, notice: in `defaults` and in a step.
void ParseSpot(Parser& p, Fields& n, SpotPolicy* spot) {
  if (n["spot"]) p.GetBool(n["spot"], "spot", &spot->enabled);
  if (n["max_interruptions"]) {
    int64_t v = 0;
    if (p.GetInt(n["max_interruptions"], "max_interruptions", &v, 0)) spot->max_interruptions = static_cast<int>(v);
  }
  if (n["notice"]) p.GetDuration(n["notice"], "notice", &spot->notice_ms);
}

void ParseParam(Parser& p, const std::string& name, const YAML::Node& key, const YAML::Node& node,
                Pipeline* pl) {
  Diagnostics* d = p.d_;
  Param prm;
  prm.name = name;
  prm.pos = Pos(key);
  p.CheckName(
      key, "param name", name, IsParamName(name),
      "use lower-case letters, digits and _ (it becomes NIGHTSHIFT_PARAM_" + ToUpper(name) + ")");
  std::string where = "param '" + Excerpt(name) + "'";
  if (!p.CheckMap(node, where, {"type", "default", "required", "description"})) return;
  Fields n(node);
  static const std::vector<std::string> kTypes = {"string", "int", "number", "bool", "path", "list"};
  if (n["type"]) {
    std::string t;
    if (p.GetString(n["type"], "type", &t)) {
      auto it = std::find(kTypes.begin(), kTypes.end(), t);
      if (it == kTypes.end()) {
        auto dym = p.Suggest(t, kTypes);
        d->Error(Pos(n["type"]), "unknown type '" + Excerpt(t) + "' for " + where,
                 dym ? "did you mean '" + *dym + "'?" : "use one of: " + Join(kTypes, ", "));
      } else {
        prm.type = static_cast<ParamType>(it - kTypes.begin());
      }
    }
  }
  if (n["required"]) p.GetBool(n["required"], "required", &prm.required);
  if (n["description"]) p.GetString(n["description"], "description", &prm.description);
  if (n["default"]) {
    const YAML::Node& dv = n["default"];
    std::string what = "default of " + where;
    prm.has_default = true;
    switch (prm.type) {
      case ParamType::kList:
        if (!dv.IsSequence()) {
          d->Error(Pos(dv), what + " must be a list");
        } else {
          for (const auto& x : dv) {
            std::string s;
            if (p.GetString(x, what, &s)) prm.default_list.push_back(s);
          }
        }
        break;
      case ParamType::kInt: {
        int64_t v;
        if (p.GetInt(dv, what, &v, INT64_MIN)) prm.default_scalar = std::to_string(v);
        break;
      }
      case ParamType::kNumber: {
        double v;
        if (p.GetNumber(dv, what, &v)) prm.default_scalar = dv.Scalar();
        break;
      }
      case ParamType::kBool: {
        bool v;
        if (p.GetBool(dv, what, &v)) prm.default_scalar = v ? "true" : "false";
        break;
      }
      default:
        p.GetString(dv, what, &prm.default_scalar);
    }
  }
  if (prm.required && prm.has_default) {
    d->Error(prm.pos, where + " is required and has a default", "drop 'required' or the default");
  }
  pl->params.push_back(std::move(prm));
}

void ParseDefaults(Parser& p, const YAML::Node& node, Defaults* def) {
  if (!p.CheckMap(node, "defaults",
                  {"resources", "retry", "timeout", "grace", "env", "cache", "spot", "max_interruptions",
                   "notice"}))
    return;
  Fields n(node);
  if (n["resources"]) p.ParseResources(n["resources"], "defaults", &def->resources);
  if (n["retry"]) p.ParseRetry(n["retry"], "defaults", &def->retry);
  if (n["timeout"]) p.GetDuration(n["timeout"], "timeout", &def->timeout_ms);
  if (n["grace"]) p.GetDuration(n["grace"], "grace", &def->grace_ms);
  if (n["env"]) p.ParseEnv(n["env"], "defaults", "defaults", &def->env);
  if (n["cache"]) p.GetBool(n["cache"], "cache", &def->cache);
  ParseSpot(p, n, &def->spot);
}

void ParseStep(Parser& p, const std::string& id, const YAML::Node& key, const YAML::Node& node,
               const Defaults& def, Pipeline* pl) {
  Diagnostics* d = p.d_;
  Step s;
  s.id = id;
  s.pos = Pos(key);
  s.resources = def.resources;
  s.retry = def.retry;
  s.timeout_ms = def.timeout_ms;
  s.grace_ms = def.grace_ms;
  s.env = def.env;
  s.cache = def.cache;
  s.spot = def.spot;
  std::string where = "step '" + Excerpt(id) + "'";
  p.CheckName(key, "step id", id, IsStepId(id),
              "step ids match [a-z0-9][a-z0-9_-]* (they name folders under the run)");
  if (!p.CheckMap(node, where,
                  {"run", "shell", "script", "needs", "foreach", "resources", "env", "timeout",
                   "grace", "retry", "cache", "checkpoint", "spot", "max_interruptions", "notice",
                   "description", "models", "image"})) {
    pl->steps.push_back(std::move(s));
    return;
  }
  Fields n(node);
  if (n["description"]) p.GetString(n["description"], "description", &s.description);
  bool has_run = static_cast<bool>(n["run"]);
  bool has_script = static_cast<bool>(n["script"]);
  if (has_run && has_script) {
    d->Error(Pos(n["script"]), where + " has both 'run' and 'script'",
             "use 'run' for a program with arguments, or 'shell' + 'script' for a shell script");
  } else if (!has_run && !has_script) {
    d->Error(Pos(key), where + " has neither 'run' nor 'script'",
             "add 'run: program --flag ${params.x}'");
  }
  if (has_run) {
    const YAML::Node& r = n["run"];
    std::vector<std::string> words;
    if (r.IsSequence()) {
      for (const auto& w : r) {
        std::string s2;
        if (p.GetString(w, "run", &s2)) words.push_back(s2);
      }
    } else if (r.IsScalar()) {
      auto split = SplitWords(r.Scalar());
      if (!split.ok()) d->Error(Pos(r), where + ": run: " + split.status().message());
      else words = std::move(split.value());
    } else {
      d->Error(Pos(r), where + ": run must be a string or a list of arguments");
    }
    if (words.empty() && (r.IsScalar() || r.IsSequence())) {
      d->Error(Pos(r), where + ": run is empty");
    }
    for (const auto& w : words) {
      auto t = ParseTemplate(w);
      if (!t.ok()) {
        d->Error(Pos(r), where + ": run: " + t.status().message());
        continue;
      }
      s.run.push_back(std::move(t.value()));
      s.run_raw.push_back(w);
    }
  }
  if (n["shell"] && !has_script) {
    d->Error(Pos(n["shell"]), where + " has 'shell' but no 'script'");
  }
  if (has_script) {
    s.shell = "bash";
    if (n["shell"]) p.GetString(n["shell"], "shell", &s.shell);
    p.GetString(n["script"], "script", &s.script);
    std::string found = FindTemplateInScript(s.script);
    if (!found.empty()) {
      d->Error(
          Pos(n["script"]),
          where + ": templates are not substituted inside a script (found '" + found + "...')",
          "pass values through env (env: {VIDEO: \"${params.video}\"}) and read \"$VIDEO\" in the "
          "script; parameters are also in $NIGHTSHIFT_PARAM_<NAME>");
    }
  }
  if (n["needs"]) {
    const YAML::Node& nd = n["needs"];
    std::vector<YAML::Node> items;
    if (nd.IsSequence()) for (const auto& x : nd) items.push_back(x);
    else items.push_back(nd);
    for (const auto& x : items) {
      std::string dep;
      if (p.GetString(x, "needs", &dep)) s.needs.push_back(dep);
    }
  }
  if (n["foreach"]) {
    const YAML::Node& f = n["foreach"];
    if (f.IsMap()) {
      // foreach: {manifest: FILE}
      // On a mistake the step still counts as a foreach: ${item} is not reported too.
      s.foreach.kind = ForeachKind::kLiteral;
      bool known = p.CheckMap(f, where + ": foreach", {"manifest"});
      if (known && f["manifest"]) {
        std::string raw;
        if (p.GetString(f["manifest"], "foreach manifest", &raw)) {
          auto t = ParseTemplate(raw);
          if (!t.ok()) {
            d->Error(Pos(f["manifest"]), where + ": foreach manifest: " + t.status().message());
          } else if (raw.empty()) {
            d->Error(Pos(f["manifest"]), where + ": foreach manifest is empty", "name a manifest file");
          } else {
            s.foreach.kind = ForeachKind::kManifest;
            s.foreach.manifest = std::move(t.value());
            s.foreach.manifest_raw = raw;
          }
        }
      } else if (known && f.size() == 0) {
        d->Error(Pos(f), where + ": foreach as a mapping needs 'manifest: FILE'",
                 "use foreach: {manifest: ${params.NAME}}, a list, ${params.LIST} or ${steps.STEP.output}/GLOB");
      }
    } else if (f.IsSequence()) {
      s.foreach.kind = ForeachKind::kLiteral;
      for (const auto& x : f) {
        std::string v;
        if (p.GetString(x, "foreach item", &v)) s.foreach.literal.push_back(v);
      }
      if (s.foreach.literal.empty()) d->Error(Pos(f), where + ": foreach list is empty");
    } else {
      std::string raw;
      if (p.GetString(f, "foreach", &raw)) {
        auto t = ParseTemplate(raw);
        std::string hint = "use a list, ${params.LIST}, or ${steps.STEP.output}/GLOB";
        if (!t.ok()) {
          d->Error(Pos(f), where + ": foreach: " + t.status().message(), hint);
        } else if (t->IsSingleRef() && t->parts[0].kind == RefKind::kParam) {
          s.foreach.kind = ForeachKind::kParam;
          s.foreach.param = t->parts[0].name;
        } else if (t->parts.size() == 2 && t->parts[0].is_ref &&
                   t->parts[0].kind == RefKind::kStepOutput && !t->parts[1].is_ref &&
                   StartsWith(t->parts[1].literal, "/") && t->parts[1].literal.size() > 1) {
          s.foreach.kind = ForeachKind::kGlob;
          s.foreach.step = t->parts[0].name;
          s.foreach.pattern = t->parts[1].literal.substr(1);
          for (const auto& comp : Split(s.foreach.pattern, '/')) {
            if (comp == ".." || comp.empty()) {
              d->Error(Pos(f),
                       where + ": foreach glob '" + Excerpt(s.foreach.pattern) +
                           "' must stay inside the step's output",
                       "remove '..' and empty parts");
              break;
            }
          }
        } else {
          d->Error(Pos(f), where + ": foreach '" + Excerpt(raw) + "' is not a list source", hint);
        }
      }
    }
  }
  if (n["resources"]) p.ParseResources(n["resources"], where, &s.resources);
  if (n["env"]) p.ParseEnv(n["env"], where, "step '" + id + "'", &s.env);
  if (n["timeout"]) p.GetDuration(n["timeout"], "timeout", &s.timeout_ms);
  if (n["grace"]) p.GetDuration(n["grace"], "grace", &s.grace_ms);
  if (n["retry"]) {
    p.ParseRetry(n["retry"], where, &s.retry);
  }
  if (n["cache"]) p.GetBool(n["cache"], "cache", &s.cache);
  if (n["checkpoint"]) p.GetBool(n["checkpoint"], "checkpoint", &s.checkpoint);
  ParseSpot(p, n, &s.spot);
  if (n["models"]) {
    const YAML::Node& m = n["models"];
    if (!m.IsMap()) {
      d->Error(Pos(m), where + ": models must be a mapping of ALIAS: MODEL",
               "e.g. models: {players: players@3} (or players@latest)");
    } else {
      for (const auto& kv : m) {
        std::string alias, raw;
        if (!p.GetString(kv.first, "model alias", &alias)) continue;
        SourcePos pos = Pos(kv.first);
        bool ok_alias = !alias.empty() && alias.size() <= 64 && std::islower(static_cast<unsigned char>(alias[0]));
        for (char c : alias) ok_alias = ok_alias && (std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_');
        if (!ok_alias) {
          d->Error(pos, where + ": model alias '" + Excerpt(alias) + "' must match [a-z][a-z0-9_]*",
                   "it becomes NIGHTSHIFT_MODEL_DIR_<ALIAS> and ${models.ALIAS}");
          continue;
        }
        if (!p.GetString(kv.second, "model", &raw)) continue;
        auto t = ParseTemplate(raw);
        if (!t.ok()) {
          d->Error(Pos(kv.second), where + ": models." + alias + ": " + t.status().message());
          continue;
        }
        if (!t->HasRefs()) {
          auto ref = ParseModelRef(raw);
          if (!ref.ok()) d->Error(Pos(kv.second), where + ": models." + alias + ": " + ref.status().message());
        }
        bool dup = false;
        for (const auto& u : s.models) dup = dup || u.alias == alias;
        if (dup) {
          d->Error(pos, where + ": model alias '" + alias + "' is given twice");
          continue;
        }
        s.models.push_back({alias, std::move(t.value()), raw, Pos(kv.second)});
      }
    }
  }
  if (n["image"]) {
    std::string raw;
    s.image_pos = Pos(n["image"]);
    if (p.GetString(n["image"], "image", &raw)) {
      auto t = ParseTemplate(raw);
      if (!t.ok()) {
        d->Error(s.image_pos, where + ": image: " + t.status().message());
      } else if (raw.empty() || raw.find_first_of(" \t\n") != std::string::npos || raw[0] == '-') {
        d->Error(s.image_pos, where + ": image '" + Excerpt(raw) + "' is not an image name",
                 "use NAME[:TAG] or NAME@sha256:DIGEST, as `podman images` lists it");
      } else {
        s.image = std::move(t.value());
        s.image_raw = raw;
      }
    }
  }
  pl->steps.push_back(std::move(s));
}

// Name lookups for the graph checks (Pipeline::FindStep and FindParam search
// linearly, which is quadratic over a large pipeline).
struct Names {
  std::map<std::string, size_t> step_index;
  std::vector<std::string> step_ids;
  std::map<std::string, const Param*> param;  // the first of duplicates, as FindParam
  std::vector<std::string> param_names;
};

// Checks one reference in step `s` at `pos`; `needs` holds the steps s needs.
void CheckRef(Parser& p, const Names& names, const Step& s, const std::set<std::string>& needs,
              const TemplatePart& r, SourcePos pos, bool whole_word_ok) {
  Diagnostics* d = p.d_;
  std::string where = "step '" + Excerpt(s.id) + "'";
  std::string text = Excerpt(r.text);
  switch (r.kind) {
    case RefKind::kParam: {
      auto it = names.param.find(r.name);
      if (it == names.param.end()) {
        auto dym = p.Suggest(r.name, names.param_names);
        d->Error(pos, where + " uses unknown param '" + Excerpt(r.name) + "' in " + text,
                 dym ? "did you mean '" + *dym + "'?" : "declare it under params:");
      } else if (it->second->type == ParamType::kList && !whole_word_ok) {
        d->Error(pos, where + ": list param '" + r.name + "' must be a whole argument",
                 "write " + text + " as its own word; it expands to one argument per element");
      }
      break;
    }
    case RefKind::kStepOutput:
      if (!names.step_index.count(r.name)) {
        auto dym = p.Suggest(r.name, names.step_ids);
        d->Error(pos, where + " uses " + text + " but there is no step '" + Excerpt(r.name) + "'",
                 dym ? "did you mean '" + *dym + "'?" : "");
      } else if (!needs.count(r.name)) {
        d->Error(pos, where + " uses " + text + " but does not need step '" + r.name + "'",
                 "add '" + r.name + "' to its needs");
      }
      break;
    case RefKind::kItem:
      if (s.foreach.kind == ForeachKind::kNone) {
        d->Error(pos, where + " uses " + text + " but has no foreach", "add foreach: or remove " + text);
      }
      break;
    case RefKind::kItemField:
      if (s.foreach.kind != ForeachKind::kManifest) {
        d->Error(pos, where + " uses " + text + " but does not iterate a manifest",
                 "only a manifest's entries have fields: foreach: {manifest: FILE}; ${item} is the item itself");
      }
      break;
    case RefKind::kModel: {
      bool known = false;
      for (const auto& u : s.models) known = known || u.alias == r.name;
      if (!known) {
        d->Error(pos, where + " uses " + text + " but has no model '" + Excerpt(r.name) + "'",
                 "declare it: models: {" + r.name + ": NAME@VERSION}");
      }
      break;
    }
    default:
      break;
  }
}

// "a -> b -> c -> a"; a long cycle shows its first and last steps.
std::string CycleText(const std::vector<std::string>& ids) {
  constexpr size_t kEnds = 10;
  std::vector<std::string> shown;
  for (size_t k = 0; k < ids.size(); ++k) {
    if (ids.size() > 2 * kEnds + 1 && k == kEnds) {
      shown.push_back("... (" + std::to_string(ids.size() - 2 * kEnds) + " more)");
      k = ids.size() - kEnds - 1;
      continue;
    }
    shown.push_back(Excerpt(ids[k]));
  }
  return Join(shown, " -> ");
}

// Reports cycles among the steps that are not in `ordered` (those on a cycle or
// after one): depth-first search with colours, with an explicit stack so that a
// long chain cannot overflow the call stack. `deps` lists each need once, so
// every back edge closes a different cycle; at most kMaxCycles are reported.
void ReportCycles(Diagnostics* d, const Pipeline& pl, const std::vector<std::vector<size_t>>& deps,
                  const std::vector<size_t>& ordered) {
  constexpr int kMaxCycles = 20;
  enum Colour : char { kWhite, kGrey, kBlack };
  const size_t n = pl.steps.size();
  std::vector<char> colour(n, kWhite);
  for (size_t i : ordered) colour[i] = kBlack;
  struct Frame {
    size_t step;
    size_t next_dep;
  };
  std::vector<Frame> stack;
  std::vector<size_t> at(n);  // where a grey step is on the stack
  int reported = 0;
  for (size_t root = 0; root < n && reported < kMaxCycles; ++root) {
    if (colour[root] != kWhite) continue;
    colour[root] = kGrey;
    at[root] = 0;
    stack.push_back({root, 0});
    while (!stack.empty()) {
      Frame& f = stack.back();
      if (f.next_dep == deps[f.step].size()) {
        colour[f.step] = kBlack;
        stack.pop_back();
        continue;
      }
      size_t j = deps[f.step][f.next_dep++];
      if (colour[j] == kWhite) {
        colour[j] = kGrey;
        at[j] = stack.size();
        stack.push_back({j, 0});
      } else if (colour[j] == kGrey && reported < kMaxCycles) {
        ++reported;
        std::vector<std::string> cyc;
        for (size_t k = at[j]; k < stack.size(); ++k) cyc.push_back(pl.steps[stack[k].step].id);
        cyc.push_back(pl.steps[j].id);
        // Printed in the direction of the edges: a needs b.
        d->Error(pl.steps[j].pos, "cycle in needs: " + CycleText(cyc),
                 "a step cannot (indirectly) need itself; remove one of these needs");
      }
    }
  }
}

void ValidateGraph(Parser& p, const std::map<std::string, YAML::Node>& step_nodes, Pipeline* pl) {
  Diagnostics* d = p.d_;
  const size_t n = pl->steps.size();
  Names names;
  for (size_t i = 0; i < n; ++i) {
    names.step_index[pl->steps[i].id] = i;
    names.step_ids.push_back(pl->steps[i].id);
  }
  for (const auto& prm : pl->params) {
    if (names.param.emplace(prm.name, &prm).second) names.param_names.push_back(prm.name);
  }

  // deps[i]: the steps step i needs, each once, in the order written.
  std::vector<std::vector<size_t>> deps(n), dependents(n);
  for (size_t i = 0; i < n; ++i) {
    const Step& s = pl->steps[i];
    std::string where = "step '" + Excerpt(s.id) + "'";
    Fields node(step_nodes.at(s.id));
    SourcePos needs_pos = node["needs"] ? Pos(node["needs"]) : s.pos;
    std::set<std::string> needs;
    for (const auto& dep : s.needs) {
      bool first = needs.insert(dep).second;
      if (!first) d->Error(needs_pos, where + " needs '" + Excerpt(dep) + "' twice");
      auto it = names.step_index.find(dep);
      if (dep == s.id) {
        d->Error(needs_pos, where + " needs itself");
      } else if (it == names.step_index.end()) {
        auto dym = p.Suggest(dep, names.step_ids);
        d->Error(needs_pos, where + " needs unknown step '" + Excerpt(dep) + "'",
                 dym ? "did you mean '" + *dym + "'?" : "known steps: " + ListSome(names.step_ids));
      } else if (first) {
        deps[i].push_back(it->second);
        dependents[it->second].push_back(i);
      }
    }
    SourcePos run_pos = node["run"] ? Pos(node["run"]) : s.pos;
    for (const auto& w : s.run)
      for (const auto& part : w.parts)
        if (part.is_ref) CheckRef(p, names, s, needs, part, run_pos, w.IsSingleRef());
    for (const auto& e : s.env) {
      auto it = p.env_pos_.find("step '" + s.id + "'/" + e.name);
      if (it == p.env_pos_.end()) it = p.env_pos_.find("defaults/" + e.name);
      SourcePos pos = it != p.env_pos_.end() ? it->second : s.pos;
      for (const auto& part : e.value.parts)
        if (part.is_ref) CheckRef(p, names, s, needs, part, pos, true);
    }
    // Known before the run starts: only params and the pipeline's folder.
    auto check_static = [&](const Template& t, SourcePos pos, const std::string& field) {
      for (const auto& part : t.parts) {
        if (!part.is_ref) continue;
        if (part.kind == RefKind::kParam) {
          CheckRef(p, names, s, needs, part, pos, false);
        } else if (part.kind != RefKind::kPipelineDir) {
          d->Error(pos, where + ": " + field + " uses " + Excerpt(part.text) + ", which is not known when the run starts",
                   "use ${params.NAME} or ${pipeline.dir}");
        }
      }
    };
    for (const auto& u : s.models) check_static(u.ref, u.pos, "models." + u.alias);
    check_static(s.image, s.image_pos, "image");
    SourcePos fpos = node["foreach"] ? Pos(node["foreach"]) : s.pos;
    if (s.foreach.kind == ForeachKind::kManifest) check_static(s.foreach.manifest, fpos, "foreach manifest");
    if (s.foreach.kind == ForeachKind::kParam) {
      auto it = names.param.find(s.foreach.param);
      if (it == names.param.end()) {
        TemplatePart r;
        r.is_ref = true;
        r.kind = RefKind::kParam;
        r.name = s.foreach.param;
        r.text = "${params." + r.name + "}";
        CheckRef(p, names, s, needs, r, fpos, true);
      } else if (it->second->type != ParamType::kList) {
        d->Error(fpos,
                 where + ": foreach over param '" + it->second->name + "' of type " +
                     ParamTypeName(it->second->type),
                 "foreach needs a param of type list");
      }
    } else if (s.foreach.kind == ForeachKind::kGlob) {
      TemplatePart r;
      r.is_ref = true;
      r.kind = RefKind::kStepOutput;
      r.name = s.foreach.step;
      r.text = "${steps." + r.name + ".output}";
      CheckRef(p, names, s, needs, r, fpos, true);
    }
  }

  // Topological order (Kahn), dependencies first, stable in file order: sweeping
  // the file again and again, taking each step whose needs are all taken, a step
  // is taken in sweep(i) = max over its needs j of sweep(j), plus one if j comes
  // after i in the file. Sorted by (sweep, file order). Linear but for the sort.
  std::vector<size_t> waiting(n), sweep(n, 0), order;
  order.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    waiting[i] = deps[i].size();
    if (waiting[i] == 0) order.push_back(i);
  }
  for (size_t q = 0; q < order.size(); ++q) {
    size_t j = order[q];
    for (size_t i : dependents[j]) {
      sweep[i] = std::max(sweep[i], sweep[j] + (j > i ? 1 : 0));
      if (--waiting[i] == 0) order.push_back(i);
    }
  }
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return std::tie(sweep[a], a) < std::tie(sweep[b], b); });
  if (order.size() < n) ReportCycles(d, *pl, deps, order);  // the rest is on or after a cycle
  pl->topo_order = std::move(order);
}

std::optional<Pipeline> ParseText(const std::string& text, const std::string& file,
                                  Diagnostics* d) {
  std::optional<YAML::Node> loaded = LoadYaml(text, d);
  if (!loaded) return std::nullopt;
  const YAML::Node& root_node = *loaded;
  Parser p(d);
  Pipeline pl;
  pl.file = file;
  pl.dir = DirName(file);
  pl.text = text;
  Hasher h;
  h.Add(text);
  pl.hash = h.HexDigest();
  if (!root_node.IsMap()) {
    d->Error(Pos(root_node), "a pipeline file must be a mapping with name, params, steps; found " +
                                 std::string(KindName(root_node)));
    return std::nullopt;
  }
  Fields root(root_node);
  p.CheckMap(root_node, "the pipeline",
             {"name", "version", "description", "params", "defaults", "steps"});
  if (root["name"])
    p.GetString(root["name"], "name", &pl.name);
  else
    d->Error({1, 1}, "the pipeline has no 'name'", "add 'name: my-pipeline' at the top");
  if (root["version"]) p.GetString(root["version"], "version", &pl.version);
  if (root["description"]) p.GetString(root["description"], "description", &pl.description);
  if (root["params"]) {
    const YAML::Node& ps = root["params"];
    if (p.CheckMap(ps, "params", {})) {
      for (auto it = ps.begin(); it != ps.end(); ++it)
        ParseParam(p, it->first.Scalar(), it->first, it->second, &pl);
    }
  }
  Defaults def;
  if (root["defaults"]) ParseDefaults(p, root["defaults"], &def);
  std::map<std::string, YAML::Node> step_nodes;
  if (!root["steps"]) {
    d->Error({1, 1}, "the pipeline has no 'steps'", "add a 'steps:' mapping of step id to step");
  } else if (p.CheckMap(root["steps"], "steps", {})) {
    const YAML::Node& ss = root["steps"];
    if (ss.size() == 0) d->Error(Pos(ss), "'steps' is empty");
    for (auto it = ss.begin(); it != ss.end(); ++it) {
      std::string id = it->first.Scalar();
      if (step_nodes.count(id)) continue;  // duplicate, reported by CheckMap
      step_nodes[id] = it->second;
      ParseStep(p, id, it->first, it->second, def, &pl);
    }
  }
  ValidateGraph(p, step_nodes, &pl);
  if (!d->empty()) return std::nullopt;
  return pl;
}

}  // namespace

std::optional<Pipeline> ParsePipelineText(const std::string& text, const std::string& file,
                                          Diagnostics* d) {
  // yaml-cpp throws from accessors too (e.g. a conversion); nothing escapes.
  try {
    return ParseText(text, file, d);
  } catch (const YAML::Exception& e) {
    d->Error(e.mark.is_null() ? SourcePos{0, 0} : SourcePos{e.mark.line + 1, e.mark.column + 1},
             "invalid pipeline: " + e.msg);
  } catch (const std::bad_alloc&) {
    d->Error({1, 1}, "out of memory while checking the pipeline", "make the file smaller");
  } catch (const std::exception& e) {
    d->Error({1, 1}, std::string("cannot check the pipeline: ") + e.what());
  }
  return std::nullopt;
}

std::optional<Pipeline> ParsePipelineFile(const std::string& path, Diagnostics* d) {
  try {
    std::error_code ec;
    uintmax_t size = std::filesystem::file_size(path, ec);
    if (!ec && size > kMaxFileBytes) {  // do not read it all first
      ReportFileTooBig(size, d);
      return std::nullopt;
    }
    Result<std::string> text = ReadFile(path);
    if (!text.ok()) {
      d->Error({0, 0}, text.status().message(), "check the path of the pipeline file");
      return std::nullopt;
    }
    return ParsePipelineText(*text, AbsolutePath(path), d);
  } catch (const std::bad_alloc&) {
    d->Error({0, 0}, "out of memory while reading the pipeline file", "make the file smaller");
  } catch (const std::exception& e) {
    d->Error({0, 0}, std::string("cannot read the pipeline file: ") + e.what());
  }
  return std::nullopt;
}

}  // namespace ns::spec
