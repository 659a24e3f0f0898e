#include "exec/attempt_file.h"

#include <nlohmann/json.hpp>

namespace ns {

using nlohmann::json;

namespace {

bool IsUtf8(const std::string& s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < len; ++k) {
      auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

json Bytes(const std::string& s) {
  if (IsUtf8(s)) return s;
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : s) {
    hex += kHex[c >> 4];
    hex += kHex[c & 15];
  }
  return json{{"hex", hex}};
}

bool FromBytes(const json& j, std::string* out) {
  if (j.is_string()) {
    *out = j.get<std::string>();
    return true;
  }
  if (!j.is_object() || !j.contains("hex") || !j["hex"].is_string()) return false;
  const std::string& hex = j["hex"].get_ref<const std::string&>();
  if (hex.size() % 2) return false;
  out->clear();
  auto val = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = val(hex[i]), lo = val(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

json BytesList(const std::vector<std::string>& v) {
  json a = json::array();
  for (const auto& s : v) a.push_back(Bytes(s));
  return a;
}

bool FromBytesList(const json& j, std::vector<std::string>* out) {
  if (!j.is_array()) return false;
  out->clear();
  for (const auto& e : j) {
    std::string s;
    if (!FromBytes(e, &s)) return false;
    out->push_back(std::move(s));
  }
  return true;
}

}  // namespace

AttemptOutcome OutcomeFromName(const std::string& name, bool* ok) {
  *ok = true;
  for (auto o : {AttemptOutcome::kSucceeded, AttemptOutcome::kFailed, AttemptOutcome::kRetryable,
                 AttemptOutcome::kTimedOut, AttemptOutcome::kSignal, AttemptOutcome::kCancelled,
                 AttemptOutcome::kLost, AttemptOutcome::kPreempted}) {
    if (name == OutcomeName(o)) return o;
  }
  *ok = false;
  return AttemptOutcome::kFailed;
}

std::string AttemptSpecToJson(const AttemptSpec& s) {
  json j{{"uid", Bytes(s.uid)},
         {"argv", BytesList(s.argv)},
         {"env", BytesList(s.env)},
         {"cwd", Bytes(s.cwd)},
         {"stdout", Bytes(s.stdout_path)},
         {"stderr", Bytes(s.stderr_path)},
         {"cpus", s.cpus},
         {"memory_bytes", s.memory_bytes},
         {"gpus", s.gpus},
         {"timeout_ms", s.timeout_ms},
         {"grace_ms", s.grace_ms},
         {"capacity_class", s.capacity_class},
         {"fingerprint", s.fingerprint},
         {"record_prefix", Bytes(s.record_prefix)},
         {"readonly_paths", BytesList(s.readonly_paths)}};
  return j.dump(1) + "\n";
}

Result<AttemptSpec> AttemptSpecFromJson(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return Status::Invalid("not a JSON object");
  AttemptSpec s;
  try {
    bool ok = FromBytes(j.at("uid"), &s.uid) && FromBytesList(j.at("argv"), &s.argv) &&
              FromBytesList(j.at("env"), &s.env) && FromBytes(j.at("cwd"), &s.cwd) &&
              FromBytes(j.at("stdout"), &s.stdout_path) && FromBytes(j.at("stderr"), &s.stderr_path) &&
              FromBytes(j.at("record_prefix"), &s.record_prefix);
    if (!ok) return Status::Invalid("a string field is neither a string nor {\"hex\": ...}");
    s.cpus = j.at("cpus").get<double>();
    s.memory_bytes = j.at("memory_bytes").get<int64_t>();
    s.gpus = j.at("gpus").get<int>();
    s.timeout_ms = j.at("timeout_ms").get<int64_t>();
    s.grace_ms = j.at("grace_ms").get<int64_t>();
    s.capacity_class = j.at("capacity_class").get<std::string>();
    s.fingerprint = j.at("fingerprint").get<std::string>();
    if (j.contains("readonly_paths") && !FromBytesList(j.at("readonly_paths"), &s.readonly_paths)) {
      return Status::Invalid("bad attempt spec: readonly_paths");
    }
  } catch (const json::exception& e) {
    return Status::Invalid(std::string("bad attempt spec: ") + e.what());
  }
  if (s.argv.empty()) return Status::Invalid("bad attempt spec: argv is empty");
  return s;
}

std::string AttemptRecordToJson(const AttemptRecord& r) {
  json j{{"uid", Bytes(r.uid)},
         {"outcome", OutcomeName(r.result.outcome)},
         {"exit_code", r.result.exit_code},
         {"signal", r.result.signal},
         {"pid", r.result.pid},
         {"duration_ms", r.result.duration_ms},
         {"max_rss_kb", r.result.max_rss_kb},
         {"cpu_ms", r.result.cpu_ms},
         {"message", Bytes(r.result.message)},
         {"node", Bytes(r.node)},
         {"job_id", r.job_id},
         {"restart_count", r.restart_count},
         {"interrupted_by", r.interrupted_by}};
  return j.dump(1) + "\n";
}

Result<AttemptRecord> AttemptRecordFromJson(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  if (!j.is_object()) return Status::Invalid("not a JSON object");
  AttemptRecord r;
  try {
    bool ok = FromBytes(j.at("uid"), &r.uid) && FromBytes(j.at("message"), &r.result.message) &&
              FromBytes(j.at("node"), &r.node);
    if (!ok) return Status::Invalid("a string field is neither a string nor {\"hex\": ...}");
    r.result.outcome = OutcomeFromName(j.at("outcome").get<std::string>(), &ok);
    if (!ok) return Status::Invalid("unknown outcome " + j.at("outcome").dump());
    r.result.exit_code = j.at("exit_code").get<int>();
    r.result.signal = j.at("signal").get<int>();
    r.result.pid = j.at("pid").get<int64_t>();
    r.result.duration_ms = j.at("duration_ms").get<int64_t>();
    r.result.max_rss_kb = j.at("max_rss_kb").get<int64_t>();
    r.result.cpu_ms = j.at("cpu_ms").get<int64_t>();
    r.job_id = j.at("job_id").get<std::string>();
    r.restart_count = j.at("restart_count").get<int>();
    r.interrupted_by = j.at("interrupted_by").get<int>();
  } catch (const json::exception& e) {
    return Status::Invalid(std::string("bad result record: ") + e.what());
  }
  return r;
}

}  // namespace ns
