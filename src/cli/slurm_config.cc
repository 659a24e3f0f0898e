#include "cli/slurm_config.h"

#include "spec/yaml_loader.h"
#include "util/fs.h"
#include "util/strings.h"

namespace ns::cli {

namespace {

spec::SourcePos PosOf(const YAML::Node& n) {
  YAML::Mark m = n.Mark();
  return {m.line + 1, m.column + 1};
}

std::string TrimNewline(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace

Status LoadSlurmConfig(const std::string& path, SlurmConfig* c) {
  auto text = ReadFile(path);
  if (!text.ok()) return Status::Invalid(text.status().message());
  spec::Diagnostics d(path);
  auto root = spec::LoadYaml(text.value(), &d);
  if (!root) return Status::Invalid(TrimNewline(d.Format()));
  const YAML::Node top = *root;
  if (!top.IsMap()) {
    d.Error(PosOf(top), "a Slurm settings file is a mapping", "e.g. partitions: {spot: spot, on-demand: ondemand}");
    return Status::Invalid(TrimNewline(d.Format()));
  }
  auto scalar = [&](const YAML::Node& n, const std::string& key, std::string* out) {
    if (!n.IsScalar()) {
      d.Error(PosOf(n), key + ": expected a single value");
      return false;
    }
    *out = n.Scalar();
    return true;
  };
  for (const auto& kv : top) {
    const YAML::Node k = kv.first;
    const YAML::Node v = kv.second;
    std::string key = k.IsScalar() ? k.Scalar() : "";
    std::string s;
    if (key == "partitions") {
      if (!v.IsMap()) {
        d.Error(PosOf(v), "partitions: expected a mapping of capacity class to partition",
                "e.g. partitions: {spot: spot, on-demand: ondemand}");
        continue;
      }
      for (const auto& p : v) {
        const YAML::Node cls = p.first;
        const YAML::Node part = p.second;
        std::string name = cls.IsScalar() ? cls.Scalar() : "";
        if (name != "spot" && name != "on-demand") {
          d.Error(PosOf(cls), "partitions: unknown capacity class '" + name + "'", "use spot or on-demand");
        } else if (scalar(part, "partitions." + name, &s)) {
          c->partitions[name] = s;
        }
      }
    } else if (key == "account") {
      (void)scalar(v, key, &c->account);
    } else if (key == "qos") {
      (void)scalar(v, key, &c->qos);
    } else if (key == "nightshift") {
      (void)scalar(v, key, &c->nightshift);
    } else if (key == "sbatch_args") {
      if (!v.IsSequence()) {
        d.Error(PosOf(v), "sbatch_args: expected a list of strings", "e.g. sbatch_args: [--exclusive]");
        continue;
      }
      for (const auto& a : v) {
        const YAML::Node arg = a;
        if (scalar(arg, key, &s)) c->sbatch_args.push_back(s);
      }
    } else if (key == "default_memory") {
      if (!scalar(v, key, &s)) continue;
      auto m = ParseMemoryBytes(s);
      if (!m || *m <= 0) {
        d.Error(PosOf(v), "default_memory: bad size '" + s + "'", "use e.g. 512MiB or 2GiB");
      } else {
        c->default_memory_bytes = *m;
      }
    } else if (key == "poll_interval" || key == "record_grace" || key == "notice") {
      if (!scalar(v, key, &s)) continue;
      auto ms = ParseDurationMs(s);
      if (!ms || *ms <= 0) {
        d.Error(PosOf(v), key + ": bad duration '" + s + "'", "use e.g. 1s, 500ms or 2m");
      } else if (key == "poll_interval") {
        c->poll_ms = std::max<int64_t>(*ms, 100);
      } else if (key == "record_grace") {
        c->record_grace_ms = *ms;
      } else {
        c->notice_s = std::max<int64_t>(*ms / 1000, 1);
      }
    } else {
      d.Error(PosOf(k), "unknown key '" + key + "'",
              "known: partitions, account, qos, sbatch_args, nightshift, default_memory, poll_interval, "
              "record_grace, notice");
    }
  }
  if (d.size() > 0) return Status::Invalid(TrimNewline(d.Format()));
  return Status::Ok();
}

}  // namespace ns::cli
