#include "spec/params.h"

#include <nlohmann/json.hpp>

#include "util/fs.h"
#include "util/strings.h"

namespace ns::spec {

namespace {

bool ParseScalar(ParamType type, const std::string& raw, std::string* out, std::string* err) {
  switch (type) {
    case ParamType::kInt: {
      try {
        size_t used = 0;
        long long v = std::stoll(raw, &used);
        if (used != raw.size()) throw std::invalid_argument("x");
        *out = std::to_string(v);
      } catch (...) {
        *err = "expected an integer, got '" + raw + "'";
        return false;
      }
      return true;
    }
    case ParamType::kNumber: {
      try {
        size_t used = 0;
        (void)std::stod(raw, &used);
        if (used != raw.size()) throw std::invalid_argument("x");
        *out = raw;
      } catch (...) {
        *err = "expected a number, got '" + raw + "'";
        return false;
      }
      return true;
    }
    case ParamType::kBool:
      if (raw == "true" || raw == "yes" || raw == "1" || raw == "on") *out = "true";
      else if (raw == "false" || raw == "no" || raw == "0" || raw == "off") *out = "false";
      else {
        *err = "expected true or false, got '" + raw + "'";
        return false;
      }
      return true;
    case ParamType::kPath:
      if (raw.empty()) {
        *err = "expected a path, got an empty value";
        return false;
      }
      if (!PathExists(raw)) {
        *err = "no such file or folder '" + raw + "'";
        return false;
      }
      *out = AbsolutePath(raw);
      return true;
    default:
      *out = raw;
      return true;
  }
}

}  // namespace

Result<ParamValues> ResolveParams(const Pipeline& pl,
                                  const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::vector<std::string> errors;
  ParamValues values;
  std::map<std::string, std::string> given;
  std::vector<std::string> names;
  for (const auto& p : pl.params) names.push_back(p.name);
  for (const auto& [k, v] : overrides) {
    if (!pl.FindParam(k)) {
      auto dym = DidYouMean(k, names);
      errors.push_back("-p " + k + ": the pipeline has no param '" + k + "'" +
                       (dym ? " (did you mean '" + *dym + "'?)"
                            : names.empty() ? "" : " (params: " + Join(names, ", ") + ")"));
      continue;
    }
    given[k] = v;
  }
  for (const auto& p : pl.params) {
    ParamValue pv;
    pv.type = p.type;
    auto it = given.find(p.name);
    if (it == given.end()) {
      if (!p.has_default) {
        if (p.required) errors.push_back("param '" + p.name + "' is required: pass -p " + p.name + "=...");
        else if (p.type != ParamType::kList) pv.scalar = "";
        values[p.name] = pv;
        continue;
      }
      if (p.type == ParamType::kList) {
        pv.list = p.default_list;
      } else if (p.type == ParamType::kPath) {
        // A relative default path is relative to the pipeline file.
        std::string raw = p.default_scalar;
        if (!raw.empty() && raw[0] != '/') raw = pl.dir + "/" + raw;
        std::string err;
        if (!ParseScalar(p.type, raw, &pv.scalar, &err)) {
          errors.push_back("param '" + p.name + "' (default): " + err);
        }
      } else {
        pv.scalar = p.default_scalar;
      }
      values[p.name] = pv;
      continue;
    }
    const std::string& raw = it->second;
    if (p.type == ParamType::kList) {
      if (StartsWith(Trim(raw), "[")) {
        try {
          auto j = nlohmann::json::parse(raw);
          if (!j.is_array()) throw std::invalid_argument("x");
          for (const auto& x : j) pv.list.push_back(x.is_string() ? x.get<std::string>() : x.dump());
        } catch (...) {
          errors.push_back("-p " + p.name + ": not a valid JSON array: " + raw);
        }
      } else if (!raw.empty()) {
        pv.list = Split(raw, ',');
      }
    } else {
      std::string err;
      if (!ParseScalar(p.type, raw, &pv.scalar, &err)) errors.push_back("-p " + p.name + ": " + err);
    }
    values[p.name] = pv;
  }
  if (!errors.empty()) return Status::Invalid(Join(errors, "\n"));
  return values;
}

std::string ParamValuesToJson(const ParamValues& values) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [k, v] : values) {
    if (v.type == ParamType::kList) j[k] = v.list;
    else j[k] = v.scalar;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}


}  // namespace ns::spec
