// The steps of starting a run that `nightshift run` and `nightshift serve` share.
#include "cli/run_setup.h"

#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <limits.h>
#include <time.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/run_cost.h"
#include "cli/slurm_config.h"
#include "exec/local_executor.h"
#include "engine/models.h"
#include "engine/preflight.h"
#include "exec/container.h"
#include "spec/manifest.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/process.h"
#include "util/strings.h"

namespace ns::cli {

namespace {

std::string SelfDir() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "";
  buf[n] = 0;
  return DirName(buf);
}

// Renders a template that may use only params and ${pipeline.dir}.
Result<std::string> RenderStatic(const spec::Template& t, const spec::Pipeline& pl, const spec::ParamValues& params) {
  return spec::RenderString(t, [&](const spec::TemplatePart& p) -> Result<spec::RefValue> {
    spec::RefValue v;
    if (p.kind == spec::RefKind::kPipelineDir) {
      v.scalar = pl.dir;
    } else if (p.kind == spec::RefKind::kParam && params.count(p.name)) {
      const auto& pv = params.at(p.name);
      v.is_list = pv.type == spec::ParamType::kList;
      v.scalar = pv.scalar;
      v.list = pv.list;
    } else {
      return Status::Invalid("no value for " + p.text);
    }
    return v;
  });
}

// The models, images and manifests of a run, pinned and checked before it
// exists; every problem is reported. A resumed run keeps what it pinned when
// the step still asks for the same reference.
bool PinInputs(Shared* sh, Prepared* p, const Report& report) {
  const spec::Pipeline& pl = *p->pipeline;
  RunConfig& cfg = p->cfg;
  nlohmann::json before = nlohmann::json::object();
  if (p->previous) {
    auto text = ReadFile(sh->layout.RunDir(p->previous->run_id) + "/run.json");
    if (text.ok()) {
      before = nlohmann::json::parse(text.value(), nullptr, false);
      if (!before.is_object()) before = nlohmann::json::object();
    }
  }
  bool ok = true;
  models::Registry registry(sh->store.get(), sh->root);
  bool any_image = false;
  for (const auto& step : pl.steps) any_image = any_image || !step.image_raw.empty();
  std::optional<container::Settings> containers;
  if (any_image) {
    Status installed = container::CheckInstalled(sh->path_env);
    auto prepared = container::Prepare(sh->root);
    if (!installed.ok() || !prepared.ok()) {
      report(pl.file + ": " + (!installed.ok() ? installed.message() : prepared.status().message()));
      ok = false;
    } else {
      containers = prepared.value();
      cfg.containers.conf = containers->conf;
      cfg.containers.storage = containers->storage;
      // This very binary (or the one the Slurm nodes are told to run), not
      // whichever `nightshift` is first on the steps' PATH.
      char self[PATH_MAX];
      ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
      if (n > 0) cfg.containers.nightshift = std::string(self, static_cast<size_t>(n));
      if (sh->slurm && !sh->slurm->NightshiftOnNodes().empty()) cfg.containers.nightshift = sh->slurm->NightshiftOnNodes();
    }
  }
  for (const auto& step : pl.steps) {
    std::string where = pl.file + ":" + std::to_string(step.pos.line) + ": step '" + step.id + "'";
    for (const auto& use : step.models) {
      auto text = RenderStatic(use.ref, pl, cfg.params);
      if (!text.ok()) {
        report(where + ": models." + use.alias + ": " + text.status().message());
        ok = false;
        continue;
      }
      if (text.value().empty()) continue;  // this run does without it
      auto ref = models::ParseModelRef(text.value());
      if (!ref.ok()) {
        report(where + ": models." + use.alias + ": " + ref.status().message());
        ok = false;
        continue;
      }
      models::Pinned pin;
      pin.alias = use.alias;
      const nlohmann::json* old = nullptr;
      if (before.contains("models") && before["models"].is_object() && before["models"].contains(step.id) &&
          before["models"][step.id].is_object() && before["models"][step.id].contains(use.alias)) {
        old = &before["models"][step.id][use.alias];
      }
      if (old && old->is_object() && old->value("requested", "") == text.value() && old->contains("version") &&
          (*old)["version"].is_number_integer()) {
        ref.value().version = (*old)["version"].get<int64_t>();
      }
      auto row = registry.Resolve(ref.value());
      if (!row.ok()) {
        report(where + ": models." + use.alias + ": " + row.status().message());
        ok = false;
        continue;
      }
      pin.name = row.value().name;
      pin.version = row.value().version;
      pin.digest = row.value().digest;
      pin.dir = registry.VersionDir(pin.name, pin.version);
      pin.requested = text.value();
      pin.meta_json = row.value().meta_json;
      Status verified = registry.Verify(pin.name, pin.version, false, pin.digest);
      if (!verified.ok()) {
        report(where + ": " + verified.message());
        ok = false;
        continue;
      }
      cfg.models[step.id].push_back(pin);
    }
    if (!step.image_raw.empty() && containers) {
      auto ref = RenderStatic(step.image, pl, cfg.params);
      if (!ref.ok() || ref.value().empty()) {
        report(where + ": image: " + (ref.ok() ? "renders empty" : ref.status().message()));
        ok = false;
      } else {
        nlohmann::json old = nlohmann::json::object();
        if (before.contains("images") && before["images"].is_object() && before["images"].contains(step.id)) {
          old = before["images"][step.id];
        }
        if (old.is_object() && old.value("ref", "") == ref.value() && !old.value("id", "").empty()) {
          cfg.images[step.id] = {ref.value(), old.value("id", "")};
        } else {
          auto id = container::ResolveImage(*containers, ref.value());
          if (!id.ok()) {
            report(where + ": " + id.status().message());
            ok = false;
          } else {
            cfg.images[step.id] = {ref.value(), id.value()};
          }
        }
      }
    }
    if (step.foreach.kind == spec::ForeachKind::kManifest) {
      auto file = RenderStatic(step.foreach.manifest, pl, cfg.params);
      if (!file.ok() || file.value().empty()) {
        report(where + ": foreach manifest: " + (file.ok() ? "renders empty" : file.status().message()));
        ok = false;
        continue;
      }
      std::string path = AbsolutePath(file.value()[0] == '/' ? file.value() : pl.dir + "/" + file.value());
      auto m = spec::LoadManifest(path);
      if (!m.ok()) {
        for (const auto& line : Split(m.status().message(), '\n')) report(line);
        ok = false;
        continue;
      }
      auto digest = HashPath(path);
      if (!digest.ok()) {
        report(where + ": foreach manifest: " + digest.status().message());
        ok = false;
        continue;
      }
      cfg.manifests[step.id] = path;
      cfg.manifest_digests[step.id] = digest.value();
    }
  }
  return ok;
}

}  // namespace

void ReportToStderr(const std::string& line) { PrintError(line); }

// "07:00": the next 07:00 local time after `now`; "6h", "90m": now plus that.
std::optional<TimeMs> ParseDeadline(const std::string& text, TimeMs now) {
  if (text.find(':') != std::string::npos) {
    int h = -1, m = -1;
    char extra = 0;
    if (std::sscanf(text.c_str(), "%d:%d%c", &h, &m, &extra) != 2 || h < 0 || h > 23 || m < 0 || m > 59) {
      return std::nullopt;
    }
    time_t t = static_cast<time_t>(now / 1000);
    struct tm tm {};
    localtime_r(&t, &tm);
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = 0;
    tm.tm_isdst = -1;
    time_t at = mktime(&tm);
    if (at * 1000 <= now) {
      tm.tm_mday += 1;
      tm.tm_isdst = -1;
      at = mktime(&tm);
    }
    return static_cast<TimeMs>(at) * 1000;
  }
  auto d = ParseDurationMs(text);
  if (!d || *d <= 0) return std::nullopt;
  return now + *d;
}

// Whether the engine that owns `r` may still be driving it (alive here, on
// another host, or unverifiable): then nobody else may take the run.
bool OwnerMayBeAlive(const RunRow& r, std::string* who) {
  if (r.status != "running") return false;
  ProcessIdentity id = ProcessIdentity::Parse(r.owner);
  *who = id.pid > 0 ? "pid " + std::to_string(id.pid) + " on " + id.host
                    : "pid " + std::to_string(r.pid) + " on " + r.host;
  return RunEngineState(r) != EngineState::kGone;
}

// Bills the run that just ended on `catalogue` (the code path of `nightshift
// cost`) and records the result as the "cost" of its run.json, or, when it
// cannot be billed, the catalogue and why. Returns the summary for the last
// line of `run`. Never changes the run's exit code: the run is what it was.
std::string RecordCost(Store* store, const Layout& layout, const std::string& run_id,
                       const cost::InstanceCatalogue& catalogue, const std::string& path,
                       TimeMs now) {
  nlohmann::json j;
  auto row = store->GetRun(run_id);
  if (!row.ok() || !row.value()) {
    j = CostErrorJson(catalogue, path,
                      row.ok() ? "the run has no row in the store" : row.status().message());
  } else {
    auto report = CostOfRun(store, layout, *row.value(), catalogue, now);
    j = report.ok() ? CostJson(report.value(), catalogue, path)
                    : CostErrorJson(catalogue, path, report.status().message());
  }
  std::string run_json = layout.RunDir(run_id) + "/run.json";
  Status st = WriteRunCost(run_json, j);
  if (!st.ok()) PrintError("the cost was not recorded in " + run_json + ": " + st.message());
  return CostSummary(j);
}

// The flags every run of the command shares: executor, capacity, root.
int SetUp(const RunOptions& o, Shared* sh) {
  sh->root = ResolveRoot(o.root);
  Status st = MakeDirs(sh->root);
  if (!st.ok() || ::access(sh->root.c_str(), W_OK) != 0) {
    PrintError("cannot write to root folder " + sh->root + (st.ok() ? ": permission denied" : ": " + st.message()) +
               "; pass --root DIR with a folder you can write");
    return kExitBadInput;
  }
  sh->layout = Layout{sh->root};
  sh->store = OpenStoreOrReport(sh->root, true);
  if (!sh->store) return kExitBadInput;
  if (o.executor == "slurm") {
    SlurmConfig sc;
    std::string file = o.slurm_config;
    if (file.empty()) {
      const char* env = ::getenv("NIGHTSHIFT_SLURM_CONFIG");
      file = env && *env ? env : (IsRegularFile(sh->root + "/slurm.yaml") ? sh->root + "/slurm.yaml" : "");
    }
    if (!file.empty()) {
      Status loaded = LoadSlurmConfig(file, &sc);
      if (!loaded.ok()) {
        for (const auto& line : Split(loaded.message(), '\n')) PrintError(line);
        return kExitBadInput;
      }
    }
    for (const auto& kv : o.slurm_partitions) {
      auto eq = kv.find('=');
      std::string cls = eq == std::string::npos ? "" : kv.substr(0, eq);
      if ((cls != "spot" && cls != "on-demand") || eq + 1 >= kv.size()) {
        PrintError("--slurm-partition " + kv + ": expected spot=NAME or on-demand=NAME");
        return kExitBadInput;
      }
      sc.partitions[cls] = kv.substr(eq + 1);
    }
    if (!o.slurm_account.empty()) sc.account = o.slurm_account;
    if (!o.slurm_qos.empty()) sc.qos = o.slurm_qos;
    for (const auto& a : o.sbatch_args) sc.sbatch_args.push_back(a);
    auto created = SlurmExecutor::Create(&sh->events, sc);
    if (!created.ok()) {
      PrintError("--executor slurm: " + created.status().message());
      return created.status().code() == StatusCode::kInvalidArgument ? kExitBadInput : kExitEngine;
    }
    sh->slurm = std::move(created.value());
  }
  sh->cap = sh->slurm ? sh->slurm->capacity() : LocalExecutor::MachineCapacity();
  if (o.cpus > 0) sh->cap.cpus = o.cpus;
  if (o.spot_cpus >= 0 && o.on_demand_cpus >= 0 && o.cpus <= 0) sh->cap.cpus = o.spot_cpus + o.on_demand_cpus;
  if (!o.memory.empty()) {
    auto m = ParseMemoryBytes(o.memory);
    if (!m) {
      PrintError("--memory " + o.memory + ": bad size; use e.g. 8GiB");
      return kExitBadInput;
    }
    sh->cap.memory_bytes = *m;
  }
  if ((o.spot_cpus >= 0) != (o.on_demand_cpus >= 0)) {
    PrintError("--spot-cpus and --on-demand-cpus go together (without both, all cpus serve both classes)");
    return kExitBadInput;
  }
  const char* path = ::getenv("PATH");
  sh->path_env = SelfDir() + ":" + (path ? path : "/usr/local/bin:/usr/bin:/bin");
  return kExitOk;
}

// Everything that can be checked before a run exists: the spec, its params
// (a resumed run's, overridden by `params`), programs and resources, the
// instance catalogue, the run's flags. Nothing is created.
int Check(const RunOptions& o, const std::string& file, const std::vector<std::string>& params,
          const std::string& resume, Shared* sh, Prepared* p, const Report& report) {
  p->file = file;
  spec::Diagnostics diags(file);
  p->pipeline = spec::ParsePipelineFile(file, &diags);
  if (!p->pipeline) {
    for (const auto& line : Split(diags.Format(), '\n')) {
      if (!line.empty()) report(line);
    }
    report(std::to_string(diags.size()) + " error" + (diags.size() == 1 ? "" : "s") + " in " + file +
           "; nothing was run");
    return kExitBadInput;
  }
  const spec::Pipeline& pipeline = *p->pipeline;
  Store* store = sh->store.get();
  std::vector<std::pair<std::string, std::string>> overrides;
  if (!resume.empty()) {
    auto r = store->GetRun(resume);
    if (!r.ok()) {
      report(r.status().message());
      return kExitEngine;
    }
    if (!r.value()) {
      report("--resume " + resume + ": no such run in " + sh->root + " (see `nightshift runs`)");
      return kExitBadInput;
    }
    p->previous = *r.value();
    std::string who;
    if (OwnerMayBeAlive(*p->previous, &who)) {
      report("run " + resume + " is already running (engine " + who + "); cancel it first or wait for it");
      return kExitBadInput;
    }
    auto j = nlohmann::json::parse(p->previous->params_json, nullptr, false);
    if (j.is_object()) {
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (!pipeline.FindParam(it.key())) continue;
        overrides.emplace_back(it.key(), it->is_array() ? it->dump() : it->get<std::string>());
      }
    }
  }
  for (const auto& kv : params) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      report("-p " + kv + ": expected NAME=VALUE");
      return kExitBadInput;
    }
    overrides.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  auto resolved = spec::ResolveParams(pipeline, overrides);
  if (!resolved.ok()) {
    for (const auto& line : Split(resolved.status().message(), '\n')) report(file + ": " + line);
    return kExitBadInput;
  }
  Status st = Preflight(pipeline, resolved.value(), sh->cap, sh->path_env);
  if (!st.ok()) {
    for (const auto& line : Split(st.message(), '\n')) report(line);
  }
  // The instance catalogue, if any: every step must fit an instance so that the
  // run can be billed at its end. A resumed run keeps the catalogue it had.
  std::string recorded;
  if (p->previous) {
    auto j = ReadRunCost(sh->layout.RunDir(p->previous->run_id) + "/run.json");
    if (j.ok()) recorded = RecordedCatalogue(j.value());
  }
  p->catalogue_path = CataloguePath(o.catalogue, recorded, sh->root);
  bool costable = true;
  if (!p->catalogue_path.empty()) {
    p->catalogue = LoadCatalogueOrReport(p->catalogue_path);
    costable = p->catalogue.has_value();
  }
  if (p->catalogue) {
    std::vector<cost::StepResources> steps;
    for (const auto& s : pipeline.steps) {
      steps.push_back({s.id, {s.resources.cpus, s.resources.memory_bytes, s.resources.gpus}});
    }
    Status fits = CheckCostable(*p->catalogue, steps);
    if (!fits.ok()) {
      costable = false;
      for (const auto& line : Split(fits.message(), '\n')) {
        if (StartsWith(line, " ")) {
          report(line);
        } else {
          report(p->catalogue_path + ": " + line);
        }
      }
    }
  }
  RunConfig& cfg = p->cfg;
  cfg.params = resolved.value();
  bool pinned = PinInputs(sh, p, report);
  if (!st.ok() || !costable || !pinned) return kExitBadInput;

  cfg.layout = sh->layout;
  if (p->catalogue) cfg.catalogue = AbsolutePath(p->catalogue_path);
  cfg.path_env = sh->path_env;
  cfg.seed = static_cast<uint64_t>(sh->clock.Now()) ^ static_cast<uint64_t>(::getpid());
  cfg.fault_kill_after_spawn = ::getenv("NIGHTSHIFT_TEST_KILL_AFTER_SPAWN") != nullptr;
  if (!o.deadline.empty()) {
    auto at = ParseDeadline(o.deadline, sh->clock.Now());
    if (!at) {
      report("--deadline " + o.deadline + ": expected HH:MM (24-hour local time) or a duration such as 6h or 90m");
      return kExitBadInput;
    }
    cfg.deadline = *at;
  }
  if (o.spot_cpus >= 0) {
    cfg.spot_cpus = o.spot_cpus;
    cfg.on_demand_cpus = o.on_demand_cpus;
  }
  if (sh->slurm) {
    cfg.remote = true;
    // Each class has the cpus of its own partition, when both are named.
    double spot = sh->slurm->ClassCpus("spot"), on_demand = sh->slurm->ClassCpus("on-demand");
    if (o.spot_cpus < 0 && spot > 0 && on_demand > 0) {
      cfg.spot_cpus = spot;
      cfg.on_demand_cpus = on_demand;
    }
  }
  if (!o.preempt.empty()) {
    // RATE[,seed=N]
    std::string rate = o.preempt, seed;
    auto comma = rate.find(',');
    if (comma != std::string::npos) {
      seed = rate.substr(comma + 1);
      rate = rate.substr(0, comma);
    }
    char* end = nullptr;
    double r = std::strtod(rate.c_str(), &end);
    bool ok = !rate.empty() && end && *end == 0 && r >= 0 && r <= 1;
    if (ok && !seed.empty()) {
      ok = StartsWith(seed, "seed=") && seed.size() > 5 &&
           seed.find_first_not_of("0123456789", 5) == std::string::npos && seed.size() < 25;
      if (ok) cfg.preempt_seed = std::strtoull(seed.c_str() + 5, nullptr, 10);
    }
    if (!ok) {
      report("--preempt " + o.preempt + ": expected RATE[,seed=N] with RATE from 0 to 1, e.g. 0.3,seed=7");
      return kExitBadInput;
    }
    cfg.preempt_rate = r;
  }
  return kExitOk;
}

// Creates the run (its row and folder) or takes the resumed one.
int Create(Shared* sh, Prepared* p, const std::function<Status()>& also,
           const Report& report) {
  Store* store = sh->store.get();
  RunConfig& cfg = p->cfg;
  const spec::Pipeline& pipeline = *p->pipeline;
  ProcessIdentity self = SelfIdentity();
  Status st = Status::Ok();
  // The models the run pinned, recorded in the transaction that makes or takes
  // the run: `model rm` (a transaction too) either sees the run or has already
  // removed the version, which this then reports.
  auto record_models = [&]() -> Status {
    models::Registry registry(store, sh->root);
    for (const auto& [step, pins] : cfg.models) {
      for (const auto& pin : pins) {
        auto row = registry.Resolve({pin.name, pin.version});
        if (!row.ok()) return Status::Invalid("step '" + step + "': " + row.status().message());
        NS_RETURN_IF_ERROR(store->AddRunModel(cfg.run_id, pin.name, pin.version));
      }
    }
    return Status::Ok();
  };
  if (p->previous) {
    cfg.run_id = p->previous->run_id;
    cfg.resume = true;
    // Taking the run is one transaction: of two engines resuming it at once,
    // exactly one sees it free and takes it; the other sees the new owner.
    bool taken_by_other = false;
    std::string who;
    st = store->Transaction([&]() -> Status {
      auto now = store->GetRun(cfg.run_id);
      if (!now.ok()) return now.status();
      if (!now.value()) return Status::NotFound("run " + cfg.run_id + " disappeared");
      if (OwnerMayBeAlive(*now.value(), &who)) {
        taken_by_other = true;
        return Status::Ok();
      }
      NS_RETURN_IF_ERROR(store->SetRunOwner(cfg.run_id, ::getpid(), HostName(), self.ToString(),
                                            spec::ParamValuesToJson(cfg.params)));
      // Attempts the previous engine left running are lost (on a cluster they
      // may still run: the scheduler adopts them or records them lost).
      auto attempts = store->ListAttempts(cfg.run_id);
      if (!attempts.ok()) return attempts.status();
      for (auto a : attempts.value()) {
        if (cfg.remote) break;
        if (a.status != "running") continue;
        a.status = "lost";
        a.finished_at = sh->clock.Now();
        a.message = "the engine stopped while this attempt ran";
        NS_RETURN_IF_ERROR(store->UpsertAttempt(a));
      }
      NS_RETURN_IF_ERROR(store->AppendEvent({0, cfg.run_id, sh->clock.Now(), "run_resumed", "", 0, ""}));
      NS_RETURN_IF_ERROR(record_models());
      return also ? also() : Status::Ok();
    });
    if (st.ok() && taken_by_other) {
      report("run " + cfg.run_id + " is already running (engine " + who + "); cancel it first or wait for it");
      return kExitBadInput;
    }
    // What is left of the lost attempts on this machine dies: only processes
    // that carry this run's attempt uid in their environment, never a bare pid.
    if (st.ok() && !cfg.remote) {
      for (pid_t pid : FindProcessesWithEnvPrefix("NIGHTSHIFT_ATTEMPT_UID=" + cfg.run_id + "/")) {
        (void)SignalIfHasEnvPrefix(pid, "NIGHTSHIFT_ATTEMPT_UID=" + cfg.run_id + "/", SIGKILL);
      }
    }
  } else {
    cfg.run_id = NewRunId(sh->clock.Now());
    st = MakeDirs(sh->layout.RunDir(cfg.run_id));
    RunRow row;
    row.run_id = cfg.run_id;
    row.pipeline = pipeline.name;
    row.pipeline_file = pipeline.file;
    row.spec_hash = pipeline.hash;
    row.params_json = spec::ParamValuesToJson(cfg.params);
    row.status = "running";
    row.created_at = sh->clock.Now();
    row.pid = ::getpid();
    row.host = HostName();
    row.owner = self.ToString();
    if (st.ok()) {
      st = store->Transaction([&]() -> Status {
        NS_RETURN_IF_ERROR(store->InsertRun(row));
        NS_RETURN_IF_ERROR(store->AppendEvent({0, cfg.run_id, sh->clock.Now(), "run_created", "", 0, ""}));
        NS_RETURN_IF_ERROR(record_models());
        return also ? also() : Status::Ok();
      });
    }
  }
  if (st.ok()) st = WriteFileAtomic(sh->layout.RunDir(cfg.run_id) + "/pipeline.yaml", pipeline.text);
  if (!st.ok()) {
    report(st.message());
    return kExitEngine;
  }
  return kExitOk;
}

}  // namespace ns::cli
