// `nightshift run FILE`: validates, creates (or resumes) a run and drives it to its end.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <iostream>
#include <limits.h>
#include <time.h>

#include <cstdio>
#include <optional>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/run_cost.h"
#include "engine/cost.h"
#include "engine/engine.h"
#include "engine/preflight.h"
#include "engine/scheduler.h"
#include "cli/slurm_config.h"
#include "exec/local_executor.h"
#include "exec/slurm_executor.h"
#include "spec/parser.h"
#include "util/fs.h"
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

// Forwards SIGINT/SIGTERM/SIGHUP to the scheduler as a cancel request. Signals
// are blocked in every thread and taken here with sigwait, so no handler runs
// on an arbitrary thread.
class SignalForwarder {
 public:
  explicit SignalForwarder(EventQueue* q) {
    // A shell starts background jobs with SIGINT ignored; an ignored signal is
    // discarded even while blocked, so restore the default before blocking.
    // SIGHUP keeps what it inherited (nohup).
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2}) sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    thread_ = std::thread([q, set] {
      while (true) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGUSR1) return;
        if (sig == SIGUSR2) {  // `nightshift preempt` left a request in the store
          q->RequestPoll();
          continue;
        }
        std::cerr << "\nnightshift: " << (sig == SIGINT ? "interrupted" : "terminated")
                  << ": cancelling the run (its tasks get SIGTERM, then SIGKILL after their grace)\n";
        q->RequestCancel();
      }
    });
  }
  ~SignalForwarder() {
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }

 private:
  std::thread thread_;
};

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

// What every run of one `nightshift run` shares: the root and its store, the
// clock, the event queue and the executor's capacity.
struct Shared {
  std::string root;
  Layout layout;
  std::unique_ptr<Store> store;
  RealClock clock;
  EventQueue events{&clock};
  std::unique_ptr<SlurmExecutor> slurm;
  Capacity cap;
  std::string path_env;
};

// One run, checked and configured, before anything is created for it.
struct Prepared {
  std::string file;
  std::optional<spec::Pipeline> pipeline;
  std::optional<RunRow> previous;  // --resume
  RunConfig cfg;
  std::optional<cost::InstanceCatalogue> catalogue;
  std::string catalogue_path;
  std::string label;  // before each progress line of a batch
};

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
          const std::string& resume, Shared* sh, Prepared* p) {
  p->file = file;
  spec::Diagnostics diags(file);
  p->pipeline = spec::ParsePipelineFile(file, &diags);
  if (!p->pipeline) {
    std::cerr << diags.Format();
    std::cerr << diags.size() << " error" << (diags.size() == 1 ? "" : "s") << " in " << file
              << "; nothing was run\n";
    return kExitBadInput;
  }
  const spec::Pipeline& pipeline = *p->pipeline;
  Store* store = sh->store.get();
  std::vector<std::pair<std::string, std::string>> overrides;
  if (!resume.empty()) {
    auto r = store->GetRun(resume);
    if (!r.ok()) {
      PrintError(r.status().message());
      return kExitEngine;
    }
    if (!r.value()) {
      PrintError("--resume " + resume + ": no such run in " + sh->root + " (see `nightshift runs`)");
      return kExitBadInput;
    }
    p->previous = *r.value();
    std::string who;
    if (OwnerMayBeAlive(*p->previous, &who)) {
      PrintError("run " + resume + " is already running (engine " + who + "); cancel it first or wait for it");
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
      PrintError("-p " + kv + ": expected NAME=VALUE");
      return kExitBadInput;
    }
    overrides.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  auto resolved = spec::ResolveParams(pipeline, overrides);
  if (!resolved.ok()) {
    for (const auto& line : Split(resolved.status().message(), '\n')) PrintError(file + ": " + line);
    return kExitBadInput;
  }
  Status st = Preflight(pipeline, resolved.value(), sh->cap, sh->path_env);
  if (!st.ok()) {
    for (const auto& line : Split(st.message(), '\n')) PrintError(line);
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
          std::cerr << line << "\n";
        } else {
          PrintError(p->catalogue_path + ": " + line);
        }
      }
    }
  }
  if (!st.ok() || !costable) return kExitBadInput;

  RunConfig& cfg = p->cfg;
  cfg.layout = sh->layout;
  if (p->catalogue) cfg.catalogue = AbsolutePath(p->catalogue_path);
  cfg.params = resolved.value();
  cfg.path_env = sh->path_env;
  cfg.seed = static_cast<uint64_t>(sh->clock.Now()) ^ static_cast<uint64_t>(::getpid());
  cfg.fault_kill_after_spawn = ::getenv("NIGHTSHIFT_TEST_KILL_AFTER_SPAWN") != nullptr;
  if (!o.deadline.empty()) {
    auto at = ParseDeadline(o.deadline, sh->clock.Now());
    if (!at) {
      PrintError("--deadline " + o.deadline + ": expected HH:MM (24-hour local time) or a duration such as 6h or 90m");
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
      PrintError("--preempt " + o.preempt + ": expected RATE[,seed=N] with RATE from 0 to 1, e.g. 0.3,seed=7");
      return kExitBadInput;
    }
    cfg.preempt_rate = r;
  }
  return kExitOk;
}

// Creates the run (its row and folder) or takes the resumed one.
int Create(const RunOptions& o, Shared* sh, Prepared* p) {
  Store* store = sh->store.get();
  RunConfig& cfg = p->cfg;
  const spec::Pipeline& pipeline = *p->pipeline;
  ProcessIdentity self = SelfIdentity();
  Status st = Status::Ok();
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
      return store->AppendEvent({0, cfg.run_id, sh->clock.Now(), "run_resumed", "", 0, ""});
    });
    if (st.ok() && taken_by_other) {
      PrintError("run " + o.resume + " is already running (engine " + who + "); cancel it first or wait for it");
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
        return store->AppendEvent({0, cfg.run_id, sh->clock.Now(), "run_created", "", 0, ""});
      });
    }
  }
  if (st.ok()) st = WriteFileAtomic(sh->layout.RunDir(cfg.run_id) + "/pipeline.yaml", pipeline.text);
  if (!st.ok()) {
    PrintError(st.message());
    return kExitEngine;
  }
  return kExitOk;
}

// A batch file: one JSON object per line, {"pipeline": FILE, "params": {...},
// "priority": N}; FILE relative to the batch file's folder. Blank lines and
// lines starting with # are skipped.
struct BatchEntry {
  std::string file;
  std::vector<std::string> params;
  int priority = 0;
};

bool ReadBatch(const std::string& path, std::vector<BatchEntry>* out) {
  auto text = ReadFile(path);
  if (!text.ok()) {
    PrintError("--batch " + path + ": " + text.status().message());
    return false;
  }
  bool ok = true;
  int n = 0;
  for (const auto& raw : Split(text.value(), '\n')) {
    ++n;
    std::string line(Trim(raw));
    if (line.empty() || line[0] == '#') continue;
    auto where = path + ":" + std::to_string(n) + ": ";
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_object() || !j.contains("pipeline") || !j["pipeline"].is_string()) {
      PrintError(where + "expected {\"pipeline\": FILE, \"params\": {...}, \"priority\": N}");
      ok = false;
      continue;
    }
    BatchEntry e;
    e.file = j["pipeline"].get<std::string>();
    if (!e.file.empty() && e.file[0] != '/') e.file = DirName(AbsolutePath(path)) + "/" + e.file;
    if (j.contains("params")) {
      if (!j["params"].is_object()) {
        PrintError(where + "params: expected an object of NAME: VALUE");
        ok = false;
        continue;
      }
      for (auto it = j["params"].begin(); it != j["params"].end(); ++it) {
        e.params.push_back(it.key() + "=" + (it->is_string() ? it->get<std::string>() : it->dump()));
      }
    }
    if (j.contains("priority")) {
      if (!j["priority"].is_number_integer()) {
        PrintError(where + "priority: expected an integer");
        ok = false;
        continue;
      }
      e.priority = j["priority"].get<int>();
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() != "pipeline" && it.key() != "params" && it.key() != "priority") {
        PrintError(where + "unknown key '" + it.key() + "' (known: pipeline, params, priority)");
        ok = false;
      }
    }
    out->push_back(std::move(e));
  }
  if (ok && out->empty()) {
    PrintError("--batch " + path + ": no runs in it");
    return false;
  }
  return ok;
}

int ExitCodeOf(RunStatus s) {
  switch (s) {
    case RunStatus::kSucceeded: return kExitOk;
    case RunStatus::kFailed: return kExitRunFailed;
    case RunStatus::kCancelled: return kExitCancelled;
  }
  return kExitEngine;
}

}  // namespace

int RunCommand(const RunOptions& o) {
  // 1. What runs: one file, several files (each with the same -p), or a batch file.
  std::vector<BatchEntry> entries;
  for (const auto& f : o.files) entries.push_back({f, o.params, 0});
  if (!o.batch.empty() && !ReadBatch(o.batch, &entries)) return kExitBadInput;
  if (entries.empty()) {
    PrintError("nothing to run: give a pipeline file (or several, or --batch FILE)");
    return kExitBadInput;
  }
  bool batch = entries.size() > 1;
  if (batch && !o.resume.empty()) {
    PrintError("--resume takes one pipeline file; resume the runs of a batch one by one");
    return kExitBadInput;
  }
  // 2. The root, the store, the executor's capacity. Signals are taken by one
  // thread from here on: every thread started later (progress, executors)
  // inherits them blocked.
  Shared sh;
  SignalForwarder signals(&sh.events);
  int rc = SetUp(o, &sh);
  if (rc != kExitOk) return rc;
  // 3. Every run is checked before any is created.
  std::vector<Prepared> runs(entries.size());
  int worst = kExitOk;
  for (size_t i = 0; i < entries.size(); ++i) {
    rc = Check(o, entries[i].file, entries[i].params, o.resume, &sh, &runs[i]);
    runs[i].cfg.priority = entries[i].priority;
    if (rc != kExitOk) worst = std::max(worst, rc);
  }
  if (worst != kExitOk) {
    if (batch) PrintError("nothing was run: fix the " + std::string(entries.size() > 1 ? "batch" : "run") + " above");
    return worst;
  }
  for (size_t i = 0; i < runs.size(); ++i) {
    rc = Create(o, &sh, &runs[i]);
    if (rc != kExitOk) {
      // The runs already created never start: say so in the store.
      for (size_t k = 0; k < i; ++k) {
        (void)sh.store->UpdateRun(runs[k].cfg.run_id, "failed", sh.clock.Now(),
                                  "not started: another run of the batch could not be created");
      }
      return rc;
    }
  }

  // 4. Run, every run over one executor and one capacity pool.
  Progress::Mode mode = o.json ? Progress::Mode::kJson
                        : (!o.plain && !batch && ::isatty(2)) ? Progress::Mode::kTty
                                                              : Progress::Mode::kPlain;
  std::vector<std::unique_ptr<Progress>> progress;
  for (size_t i = 0; i < runs.size(); ++i) {
    Prepared& p = runs[i];
    if (batch) p.label = "[" + std::to_string(i + 1) + "/" + std::to_string(runs.size()) + "] ";
    std::vector<std::string> order;
    for (size_t k : p.pipeline->topo_order) order.push_back(p.pipeline->steps[k].id);
    if (mode != Progress::Mode::kJson) {
      std::cerr << p.label << (p.cfg.resume ? "resuming run " : "run ") << p.cfg.run_id << " of "
                << p.pipeline->name << " in " << sh.layout.RunDir(p.cfg.run_id) << "\n";
    }
    progress.push_back(std::make_unique<Progress>(mode, p.cfg.run_id, order, p.label));
  }
  std::vector<Result<RunStatus>> results;
  {
    std::unique_ptr<LocalExecutor> local;
    Executor* executor = sh.slurm.get();
    if (!executor) {
      auto created = LocalExecutor::Create(&sh.events, sh.cap);
      if (!created.ok()) {
        for (auto& pr : progress) pr->Stop();
        PrintError("cannot start the local executor: " + created.status().message());
        for (auto& p : runs) (void)sh.store->UpdateRun(p.cfg.run_id, "failed", sh.clock.Now(), created.status().message());
        return kExitEngine;
      }
      local = std::move(created.value());
      executor = local.get();
    }
    CapacityPool pool(sh.cap, runs[0].cfg.spot_cpus, runs[0].cfg.on_demand_cpus);
    std::vector<std::unique_ptr<Scheduler>> schedulers;
    Engine engine(&sh.events);
    for (size_t i = 0; i < runs.size(); ++i) {
      schedulers.push_back(std::make_unique<Scheduler>(*runs[i].pipeline, runs[i].cfg, sh.store.get(), executor,
                                                       &sh.clock, &sh.events, progress[i].get(), &pool));
      engine.Add(schedulers.back().get());
    }
    results = engine.Run();
  }
  for (auto& pr : progress) pr->Stop();

  // 5. Report: each run's end, its cost; the exit code is the worst run's.
  int exit_code = kExitOk;
  for (size_t i = 0; i < runs.size(); ++i) {
    Prepared& p = runs[i];
    const std::string& run_id = p.cfg.run_id;
    if (!results[i].ok()) {
      PrintError(p.label + "run " + run_id + " stopped: " + results[i].status().message());
      exit_code = std::max(exit_code, kExitEngine);
      continue;
    }
    RunStatus status = results[i].value();
    std::string cost_line;
    if (p.catalogue) {
      cost_line = RecordCost(sh.store.get(), sh.layout, run_id, *p.catalogue, p.catalogue_path, sh.clock.Now());
    }
    if (mode != Progress::Mode::kJson) {
      std::cerr << p.label << "run " << run_id << " " << RunStatusName(status) << "; outputs in "
                << sh.layout.RunDir(run_id) << "\n";
      if (status == RunStatus::kFailed) {
        std::cerr << "  see `nightshift show " << run_id << "` and `nightshift logs " << run_id
                  << " STEP`; fix and continue with `nightshift run " << p.file << " --resume " << run_id
                  << "`\n";
      }
      if (!cost_line.empty()) std::cerr << p.label << "cost " << cost_line << "\n";
    }
    int code = ExitCodeOf(status);
    // Cancelled outranks failed: the user stopped the batch.
    if (code == kExitCancelled || exit_code == kExitCancelled) {
      exit_code = exit_code == kExitEngine ? kExitEngine : kExitCancelled;
    } else {
      exit_code = std::max(exit_code, code);
    }
  }
  return exit_code;
}

int ValidateCommand(const std::string& file, bool quiet) {
  spec::Diagnostics diags(file);
  auto pipeline = spec::ParsePipelineFile(file, &diags);
  if (!pipeline) {
    std::cerr << diags.Format();
    std::cerr << diags.size() << " error" << (diags.size() == 1 ? "" : "s") << " in " << file << "\n";
    return kExitBadInput;
  }
  if (!quiet) {
    size_t foreach = 0;
    for (const auto& s : pipeline->steps) foreach += s.foreach.kind != spec::ForeachKind::kNone;
    std::cout << file << ": ok: pipeline '" << pipeline->name << "', " << pipeline->params.size()
              << " params, " << pipeline->steps.size() << " steps (" << foreach << " foreach)\n";
  }
  return kExitOk;
}

}  // namespace ns::cli
