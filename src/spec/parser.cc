#include "spec/parser.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <regex>
#include <set>

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

const std::regex& StepIdRe() {
  static const std::regex re("[a-z0-9][a-z0-9_-]*");
  return re;
}
const std::regex& ParamNameRe() {
  static const std::regex re("[a-z_][a-z0-9_]*");
  return re;
}
const std::regex& EnvNameRe() {
  static const std::regex re("[A-Za-z_][A-Za-z0-9_]*");
  return re;
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

// One parse: the diagnostics sink plus typed getters that report as they go.
class Parser {
 public:
  explicit Parser(Diagnostics* d) : d_(d) {}

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
        d_->Error(Pos(it->first), "duplicate key '" + key + "' in " + what,
                  "remove one of the two");
        continue;
      }
      if (allowed.empty()) continue;
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        auto dym = DidYouMean(key, allowed);
        d_->Error(Pos(it->first), "unknown key '" + key + "' in " + what,
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
      d_->Error(Pos(n), what + " must be an integer, found '" + (n.IsScalar() ? n.Scalar() : KindName(n)) + "'");
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
      d_->Error(Pos(n), what + " must be a number, found '" + (n.IsScalar() ? n.Scalar() : KindName(n)) + "'");
      return false;
    }
    *out = v;
    return true;
  }

  bool GetBool(const YAML::Node& n, const std::string& what, bool* out) {
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, *out)) {
      d_->Error(Pos(n), what + " must be true or false, found '" + (n.IsScalar() ? n.Scalar() : KindName(n)) + "'");
      return false;
    }
    return true;
  }

  bool GetDuration(const YAML::Node& n, const std::string& what, int64_t* out) {
    std::string s;
    if (!GetString(n, what, &s)) return false;
    auto v = ParseDurationMs(s);
    if (!v) {
      d_->Error(Pos(n), what + ": bad duration '" + s + "'",
                "use a number with a unit: 500ms, 30s, 5m, 1h30m");
      return false;
    }
    *out = *v;
    return true;
  }

  void ParseResources(const YAML::Node& n, const std::string& where, Resources* r) {
    if (!CheckMap(n, "resources of " + where, {"cpus", "memory", "gpus"})) return;
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
          d_->Error(Pos(n["memory"]), "resources.memory: bad size '" + s + "'",
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

  void ParseRetry(const YAML::Node& n, const std::string& where, RetryPolicy* r) {
    if (!CheckMap(n, "retry of " + where, {"max_attempts", "backoff", "max_backoff", "on"})) return;
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
          auto dym = DidYouMean(s, kNames);
          d_->Error(Pos(x), "unknown outcome '" + s + "' in retry.on",
                    dym ? "did you mean '" + *dym + "'?" : "use: " + Join(kNames, ", "));
          continue;
        }
        mask |= 1u << (it - kNames.begin());
      }
      r->on = mask;
    }
  }

  void ParseEnv(const YAML::Node& n, const std::string& where, std::vector<EnvVar>* env) {
    if (!CheckMap(n, "env of " + where, {})) return;
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string name = it->first.Scalar();
      if (!std::regex_match(name, EnvNameRe())) {
        d_->Error(Pos(it->first), "invalid environment variable name '" + name + "'",
                  "use letters, digits and _; not starting with a digit");
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
      env_pos_[where + "/" + name] = Pos(it->second);
    }
  }

  Diagnostics* d_;
  std::map<std::string, SourcePos> env_pos_;
};

struct Defaults {
  Resources resources;
  RetryPolicy retry;
  int64_t timeout_ms = 0;
  int64_t grace_ms = 10000;
  std::vector<EnvVar> env;
  bool cache = true;
};

void ParseParam(Parser& p, const std::string& name, const YAML::Node& key, const YAML::Node& n,
                Pipeline* pl) {
  Diagnostics* d = p.d_;
  Param prm;
  prm.name = name;
  prm.pos = Pos(key);
  if (!std::regex_match(name, ParamNameRe())) {
    d->Error(Pos(key), "invalid param name '" + name + "'",
             "use lower-case letters, digits and _ (it becomes NIGHTSHIFT_PARAM_" + ToUpper(name) + ")");
  }
  if (!p.CheckMap(n, "param '" + name + "'", {"type", "default", "required", "description"})) return;
  static const std::vector<std::string> kTypes = {"string", "int", "number", "bool", "path", "list"};
  if (n["type"]) {
    std::string t;
    if (p.GetString(n["type"], "type", &t)) {
      auto it = std::find(kTypes.begin(), kTypes.end(), t);
      if (it == kTypes.end()) {
        auto dym = DidYouMean(t, kTypes);
        d->Error(Pos(n["type"]), "unknown type '" + t + "' for param '" + name + "'",
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
    std::string what = "default of param '" + name + "'";
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
    d->Error(prm.pos, "param '" + name + "' is required and has a default",
             "drop 'required' or the default");
  }
  pl->params.push_back(std::move(prm));
}

void ParseDefaults(Parser& p, const YAML::Node& n, Defaults* def) {
  if (!p.CheckMap(n, "defaults", {"resources", "retry", "timeout", "grace", "env", "cache"})) return;
  if (n["resources"]) p.ParseResources(n["resources"], "defaults", &def->resources);
  if (n["retry"]) p.ParseRetry(n["retry"], "defaults", &def->retry);
  if (n["timeout"]) p.GetDuration(n["timeout"], "timeout", &def->timeout_ms);
  if (n["grace"]) p.GetDuration(n["grace"], "grace", &def->grace_ms);
  if (n["env"]) p.ParseEnv(n["env"], "defaults", &def->env);
  if (n["cache"]) p.GetBool(n["cache"], "cache", &def->cache);
}

void ParseStep(Parser& p, const std::string& id, const YAML::Node& key, const YAML::Node& n,
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
  std::string where = "step '" + id + "'";
  if (!std::regex_match(id, StepIdRe())) {
    d->Error(Pos(key), "invalid step id '" + id + "'",
             "step ids match [a-z0-9][a-z0-9_-]* (they name folders under the run)");
  }
  if (!p.CheckMap(n, where, {"run", "shell", "script", "needs", "foreach", "resources", "env",
                            "timeout", "grace", "retry", "cache", "checkpoint", "description"})) {
    pl->steps.push_back(std::move(s));
    return;
  }
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
    static const std::regex kTemplateInScript(R"(\$\{\s*(params\.|steps\.|item\s*\}|run\.|pipeline\.))");
    std::smatch m;
    if (std::regex_search(s.script, m, kTemplateInScript)) {
      d->Error(Pos(n["script"]),
               where + ": templates are not substituted inside a script (found '" + m.str(0) + "...')",
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
    if (f.IsSequence()) {
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
              d->Error(Pos(f), where + ": foreach glob '" + s.foreach.pattern +
                                   "' must stay inside the step's output", "remove '..' and empty parts");
              break;
            }
          }
        } else {
          d->Error(Pos(f), where + ": foreach '" + raw + "' is not a list source", hint);
        }
      }
    }
  }
  if (n["resources"]) p.ParseResources(n["resources"], where, &s.resources);
  if (n["env"]) p.ParseEnv(n["env"], where, &s.env);
  if (n["timeout"]) p.GetDuration(n["timeout"], "timeout", &s.timeout_ms);
  if (n["grace"]) p.GetDuration(n["grace"], "grace", &s.grace_ms);
  if (n["retry"]) {
    p.ParseRetry(n["retry"], where, &s.retry);
  }
  if (n["cache"]) p.GetBool(n["cache"], "cache", &s.cache);
  if (n["checkpoint"]) p.GetBool(n["checkpoint"], "checkpoint", &s.checkpoint);
  pl->steps.push_back(std::move(s));
}

// Checks one reference in step `s` at `pos`.
void CheckRef(Diagnostics* d, const Pipeline& pl, const Step& s, const TemplatePart& r,
              SourcePos pos, bool whole_word_ok) {
  std::string where = "step '" + s.id + "'";
  switch (r.kind) {
    case RefKind::kParam: {
      const Param* prm = pl.FindParam(r.name);
      if (!prm) {
        std::vector<std::string> names;
        for (const auto& x : pl.params) names.push_back(x.name);
        auto dym = DidYouMean(r.name, names);
        d->Error(pos, where + " uses unknown param '" + r.name + "' in " + r.text,
                 dym ? "did you mean '" + *dym + "'?" : "declare it under params:");
      } else if (prm->type == ParamType::kList && !whole_word_ok) {
        d->Error(pos, where + ": list param '" + r.name + "' must be a whole argument",
                 "write " + r.text + " as its own word; it expands to one argument per element");
      }
      break;
    }
    case RefKind::kStepOutput:
      if (!pl.FindStep(r.name)) {
        std::vector<std::string> ids;
        for (const auto& x : pl.steps) ids.push_back(x.id);
        auto dym = DidYouMean(r.name, ids);
        d->Error(pos, where + " uses " + r.text + " but there is no step '" + r.name + "'",
                 dym ? "did you mean '" + *dym + "'?" : "");
      } else if (std::find(s.needs.begin(), s.needs.end(), r.name) == s.needs.end()) {
        d->Error(pos, where + " uses " + r.text + " but does not need step '" + r.name + "'",
                 "add '" + r.name + "' to its needs");
      }
      break;
    case RefKind::kItem:
      if (s.foreach.kind == ForeachKind::kNone) {
        d->Error(pos, where + " uses ${item} but has no foreach", "add foreach: or remove ${item}");
      }
      break;
    default:
      break;
  }
}

void ValidateGraph(Parser& p, const std::map<std::string, YAML::Node>& step_nodes, Pipeline* pl) {
  Diagnostics* d = p.d_;
  std::vector<std::string> ids;
  for (const auto& s : pl->steps) ids.push_back(s.id);
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < pl->steps.size(); ++i) index[pl->steps[i].id] = i;

  for (auto& s : pl->steps) {
    const YAML::Node& node = step_nodes.at(s.id);
    SourcePos needs_pos = node.IsMap() && node["needs"] ? Pos(node["needs"]) : s.pos;
    std::set<std::string> seen;
    for (const auto& dep : s.needs) {
      if (!seen.insert(dep).second) d->Error(needs_pos, "step '" + s.id + "' needs '" + dep + "' twice");
      if (dep == s.id) {
        d->Error(needs_pos, "step '" + s.id + "' needs itself");
      } else if (!index.count(dep)) {
        auto dym = DidYouMean(dep, ids);
        d->Error(needs_pos, "step '" + s.id + "' needs unknown step '" + dep + "'",
                 dym ? "did you mean '" + *dym + "'?" : "known steps: " + Join(ids, ", "));
      }
    }
    SourcePos run_pos = node.IsMap() && node["run"] ? Pos(node["run"]) : s.pos;
    for (const auto& w : s.run)
      for (const auto& part : w.parts)
        if (part.is_ref) CheckRef(d, *pl, s, part, run_pos, w.IsSingleRef());
    for (const auto& e : s.env) {
      auto it = p.env_pos_.find("step '" + s.id + "'/" + e.name);
      if (it == p.env_pos_.end()) it = p.env_pos_.find("defaults/" + e.name);
      SourcePos pos = it != p.env_pos_.end() ? it->second : s.pos;
      for (const auto& part : e.value.parts)
        if (part.is_ref) CheckRef(d, *pl, s, part, pos, true);
    }
    SourcePos fpos = node.IsMap() && node["foreach"] ? Pos(node["foreach"]) : s.pos;
    if (s.foreach.kind == ForeachKind::kParam) {
      const Param* prm = pl->FindParam(s.foreach.param);
      if (!prm) {
        TemplatePart r;
        r.is_ref = true;
        r.kind = RefKind::kParam;
        r.name = s.foreach.param;
        r.text = "${params." + r.name + "}";
        CheckRef(d, *pl, s, r, fpos, true);
      } else if (prm->type != ParamType::kList) {
        d->Error(fpos, "step '" + s.id + "': foreach over param '" + prm->name + "' of type " +
                           ParamTypeName(prm->type), "foreach needs a param of type list");
      }
    } else if (s.foreach.kind == ForeachKind::kGlob) {
      TemplatePart r;
      r.is_ref = true;
      r.kind = RefKind::kStepOutput;
      r.name = s.foreach.step;
      r.text = "${steps." + r.name + ".output}";
      CheckRef(d, *pl, s, r, fpos, true);
    }
  }

  // Cycles: depth-first search with colours; report each cycle once.
  std::vector<int> colour(pl->steps.size(), 0);
  std::vector<size_t> stack;
  std::set<std::set<size_t>> reported;
  std::function<void(size_t)> visit = [&](size_t i) {
    colour[i] = 1;
    stack.push_back(i);
    for (const auto& dep : pl->steps[i].needs) {
      auto it = index.find(dep);
      if (it == index.end() || it->second == i) continue;
      size_t j = it->second;
      if (colour[j] == 1) {
        auto from = std::find(stack.begin(), stack.end(), j);
        std::vector<std::string> cyc;
        std::set<size_t> members;
        for (auto k = from; k != stack.end(); ++k) {
          cyc.push_back(pl->steps[*k].id);
          members.insert(*k);
        }
        cyc.push_back(pl->steps[j].id);
        if (reported.insert(members).second) {
          // Printed in the direction of the edges: a needs b.
          d->Error(pl->steps[j].pos, "cycle in needs: " + Join(cyc, " -> "),
                   "a step cannot (indirectly) need itself; remove one of these needs");
        }
      } else if (colour[j] == 0) {
        visit(j);
      }
    }
    stack.pop_back();
    colour[i] = 2;
  };
  for (size_t i = 0; i < pl->steps.size(); ++i)
    if (colour[i] == 0) visit(i);

  // Topological order (Kahn), dependencies first, stable in file order.
  std::vector<int> indeg(pl->steps.size(), 0);
  for (size_t i = 0; i < pl->steps.size(); ++i)
    for (const auto& dep : pl->steps[i].needs)
      if (index.count(dep) && dep != pl->steps[i].id) ++indeg[i];
  std::vector<bool> done(pl->steps.size(), false);
  while (pl->topo_order.size() < pl->steps.size()) {
    bool progressed = false;
    for (size_t i = 0; i < pl->steps.size(); ++i) {
      if (done[i] || indeg[i] != 0) continue;
      done[i] = true;
      progressed = true;
      pl->topo_order.push_back(i);
      for (size_t k = 0; k < pl->steps.size(); ++k)
        for (const auto& dep : pl->steps[k].needs)
          if (dep == pl->steps[i].id) --indeg[k];
    }
    if (!progressed) break;  // cycle, already reported
  }
}

}  // namespace

std::optional<Pipeline> ParsePipelineText(const std::string& text, const std::string& file,
                                          Diagnostics* d) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    std::string hint = "check indentation and quoting near this place";
    static const std::regex kFlowTemplate(R"(:\s*\{[^\n]*\$\{)");
    if (std::regex_search(text, kFlowTemplate)) {
      hint += "; a ${...} template inside a {flow: mapping} must be quoted, or use block style";
    }
    d->Error({e.mark.line + 1, e.mark.column + 1}, "malformed YAML: " + e.msg, hint);
    return std::nullopt;
  }
  Parser p(d);
  Pipeline pl;
  pl.file = file;
  pl.dir = DirName(file);
  pl.text = text;
  Hasher h;
  h.Add(text);
  pl.hash = h.HexDigest();
  if (!root.IsMap()) {
    d->Error(Pos(root), "a pipeline file must be a mapping with name, params, steps; found " +
                            std::string(KindName(root)));
    return std::nullopt;
  }
  try {
    p.CheckMap(root, "the pipeline", {"name", "version", "description", "params", "defaults", "steps"});
    if (root["name"]) p.GetString(root["name"], "name", &pl.name);
    else d->Error({1, 1}, "the pipeline has no 'name'", "add 'name: my-pipeline' at the top");
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
  } catch (const YAML::Exception& e) {
    d->Error({e.mark.line + 1, e.mark.column + 1}, "invalid pipeline: " + e.msg);
  }
  if (!d->empty()) return std::nullopt;
  return pl;
}

std::optional<Pipeline> ParsePipelineFile(const std::string& path, Diagnostics* d) {
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) {
    d->Error({0, 0}, text.status().message(), "check the path of the pipeline file");
    return std::nullopt;
  }
  return ParsePipelineText(*text, AbsolutePath(path), d);
}

}  // namespace ns::spec
