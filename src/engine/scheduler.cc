#include "engine/scheduler.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <nlohmann/json.hpp>
#include <set>

#include "spec/manifest.h"

#include "engine/cost.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/media.h"
#include "util/hash.h"
#include "util/strings.h"

namespace ns {

using nlohmann::json;

const char* RunStatusName(RunStatus s) {
  switch (s) {
    case RunStatus::kSucceeded: return "succeeded";
    case RunStatus::kFailed: return "failed";
    case RunStatus::kCancelled: return "cancelled";
  }
  return "?";
}

const char* TaskStateName(TaskState s) {
  switch (s) {
    case TaskState::kPending: return "pending";
    case TaskState::kRunning: return "running";
    case TaskState::kRetrying: return "retrying";
    case TaskState::kSucceeded: return "succeeded";
    case TaskState::kCached: return "cached";
    case TaskState::kFailed: return "failed";
    case TaskState::kCancelled: return "cancelled";
  }
  return "?";
}

const char* StepStatusName(StepStatus s) {
  switch (s) {
    case StepStatus::kWaiting: return "waiting";
    case StepStatus::kRunning: return "running";
    case StepStatus::kSucceeded: return "succeeded";
    case StepStatus::kFailed: return "failed";
    case StepStatus::kSkipped: return "skipped";
    case StepStatus::kCancelled: return "cancelled";
  }
  return "?";
}

struct Scheduler::Task {
  size_t index = 0;
  size_t step = 0;
  std::string id;          // "step" or "step/item"
  std::string key;         // "step" or "step.item": log and staging names
  std::string item;        // folder name of a foreach item; "" otherwise
  std::string item_value;  // ${item}
  json fields;             // a manifest entry's fields (${item.FIELD}); null otherwise
  TaskState state = TaskState::kPending;
  std::vector<std::string> argv;
  std::string fingerprint;
  int attempts = 0;  // attempts made so far, earlier runs of a resumed run included
  int session_attempts = 0;  // attempts made by this engine; the retry budget (preemptions excluded)
  int interruptions = 0;     // preemptions so far, earlier runs of a resumed run included
  CapacityClass cls = CapacityClass::kOnDemand;  // of the running attempt
  uint64_t handle = 0;
  int64_t pid = 0;  // of the running attempt
  bool spawned = false;  // the running attempt reached its executor (a result will follow)
  int64_t input_ms = 0;  // milliseconds of video in its input (0: none)
  int slot = -1;    // scratch folder (TMPDIR) of the running attempt
  std::vector<int> gpus;
  TimeMs started_at = 0;
  TimeMs finished_at = 0;
  std::string message;
  std::vector<AttemptRow> history;  // every attempt, earlier runs of a resumed run included
};

struct Scheduler::StepState {
  enum class Phase { kWaiting, kRunning, kDone };
  Phase phase = Phase::kWaiting;
  std::vector<size_t> tasks;
  size_t remaining = 0;
  StepStatus status = StepStatus::kWaiting;
  std::deque<size_t> ready;
  std::string fingerprint;
  std::string error;  // why the step failed before it had tasks (its foreach could not be listed)
  TimeMs started_at = 0;
  TimeMs finished_at = 0;
};

CapacityPool::CapacityPool(const Capacity& cap, double spot_cpus, double on_demand_cpus)
    : total(cap), free(cap) {
  separate_classes = spot_cpus >= 0 && on_demand_cpus >= 0;
  class_cpus[static_cast<int>(CapacityClass::kOnDemand)] = on_demand_cpus;
  class_cpus[static_cast<int>(CapacityClass::kSpot)] = spot_cpus;
  class_free_cpus[0] = class_cpus[0];
  class_free_cpus[1] = class_cpus[1];
  gpu_busy.assign(static_cast<size_t>(std::max(0, cap.gpus)), false);
}

Scheduler::Scheduler(const spec::Pipeline& pipeline, RunConfig config, Store* store,
                     Executor* executor, Clock* clock, EventQueue* events, RunObserver* observer,
                     CapacityPool* pool)
    : pipeline_(pipeline),
      config_(std::move(config)),
      store_(store),
      executor_(executor),
      clock_(clock),
      events_(events),
      observer_(observer),
      rng_(config_.seed ? config_.seed : 0x9E3779B97F4A7C15ull) {
  registry_ = models::Registry(store_, config_.layout.root);
  steps_.resize(pipeline_.steps.size());
  needs_.resize(pipeline_.steps.size());
  dependents_.resize(pipeline_.steps.size());
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < pipeline_.steps.size(); ++i) index[pipeline_.steps[i].id] = i;
  for (size_t i = 0; i < pipeline_.steps.size(); ++i) {
    for (const auto& dep : pipeline_.steps[i].needs) {
      auto it = index.find(dep);
      if (it == index.end()) continue;  // the parser refuses unknown needs
      needs_[i].push_back(it->second);
      dependents_[it->second].push_back(i);
    }
  }
  // Dependents wake in topological order, as before.
  std::vector<size_t> rank(pipeline_.steps.size());
  for (size_t k = 0; k < pipeline_.topo_order.size(); ++k) rank[pipeline_.topo_order[k]] = k;
  for (auto& d : dependents_) std::sort(d.begin(), d.end(), [&](size_t x, size_t y) { return rank[x] < rank[y]; });
  if (!pool) {
    own_pool_ = std::make_unique<CapacityPool>(executor_->capacity(), config_.spot_cpus, config_.on_demand_cpus);
    pool = own_pool_.get();
  }
  pool_ = pool;
  market_rng_ = config_.preempt_seed ? config_.preempt_seed : 1;
  run_dir_ = config_.layout.RunDir(config_.run_id);
}

Scheduler::~Scheduler() = default;

// ---------------------------------------------------------------- recording

Status Scheduler::SaveTask(const Task& t) {
  TaskRow row;
  row.run_id = config_.run_id;
  row.task_id = t.id;
  row.step = pipeline_.steps[t.step].id;
  row.item = t.item;
  row.status = TaskStateName(t.state);
  row.fingerprint = t.fingerprint;
  row.attempts = t.attempts;
  row.argv_json = DumpJson(json(t.argv));
  row.started_at = t.started_at;
  row.finished_at = t.finished_at;
  row.message = t.message;
  writes_.push_back([this, row] { return store_->UpsertTask(row); });
  return Status::Ok();
}

AttemptRow Scheduler::MakeAttemptRow(const Task& t, const AttemptResult& r, const std::string& status) {
  AttemptRow a;
  a.run_id = config_.run_id;
  a.task_id = t.id;
  a.attempt = t.attempts;
  a.status = status;
  a.started_at = t.started_at;
  a.capacity_class = CapacityClassName(t.cls);
  a.input_ms = t.input_ms;
  if (status != "running") {
    a.exit_code = r.exit_code;
    a.signal = r.signal;
    a.pid = r.pid ? r.pid : t.pid;
    a.finished_at = clock_->Now();
    a.max_rss_kb = r.max_rss_kb;
    a.cpu_ms = r.cpu_ms;
    a.message = r.message;
  }
  return a;
}

Status Scheduler::SaveAttempt(const AttemptRow& a) {
  writes_.push_back([this, a] { return store_->UpsertAttempt(a); });
  return Status::Ok();
}

Status Scheduler::Event(const std::string& kind, const Task* t, const std::string& data) {
  EventRow e;
  e.run_id = config_.run_id;
  e.time = clock_->Now();
  e.kind = kind;
  if (t) {
    e.task_id = t->id;
    e.attempt = t->attempts;
  }
  e.data = data;
  writes_.push_back([this, e] { return store_->AppendEvent(e); });
  return Status::Ok();
}

Status Scheduler::Flush() {
  if (writes_.empty()) return Status::Ok();
  std::vector<std::function<Status()>> batch;
  batch.swap(writes_);
  return store_->Transaction([&]() -> Status {
    for (const auto& w : batch) NS_RETURN_IF_ERROR(w());
    return Status::Ok();
  });
}

// ---------------------------------------------------------------- templates

spec::Resolver Scheduler::MakeResolver(const Task& t) {
  return [this, &t](const spec::TemplatePart& p) -> Result<spec::RefValue> {
    spec::RefValue v;
    switch (p.kind) {
      case spec::RefKind::kParam: {
        auto it = config_.params.find(p.name);
        if (it == config_.params.end()) return Status::Invalid("no value for " + p.text);
        if (it->second.type == spec::ParamType::kList) {
          v.is_list = true;
          v.list = it->second.list;
        } else {
          v.scalar = it->second.scalar;
        }
        return v;
      }
      case spec::RefKind::kStepOutput:
        v.scalar = config_.layout.StepDir(config_.run_id, p.name);
        return v;
      case spec::RefKind::kItem:
        v.scalar = t.item_value;
        return v;
      case spec::RefKind::kItemField: {
        if (!t.fields.is_object() || !t.fields.contains(p.name)) {
          return Status::Invalid("its manifest entry has no field '" + p.name + "' (used as " + p.text + ")");
        }
        const json& f = t.fields[p.name];
        v.scalar = f.is_string() ? f.get<std::string>() : f.dump();
        return v;
      }
      case spec::RefKind::kModel: {
        auto it = config_.models.find(pipeline_.steps[t.step].id);
        if (it != config_.models.end()) {
          for (const auto& m : it->second) {
            if (m.alias == p.name) {
              v.scalar = m.dir;
              return v;
            }
          }
        }
        return Status::Invalid(p.text + " names no model: its reference rendered empty for this run");
      }
      case spec::RefKind::kRunId:
        v.scalar = config_.run_id;
        return v;
      case spec::RefKind::kPipelineDir:
        v.scalar = pipeline_.dir;
        return v;
    }
    return Status::Internal("bad reference");
  };
}

Result<std::vector<std::string>> Scheduler::RenderArgv(const spec::Step& step, const Task& t) {
  std::vector<std::string> argv;
  if (step.is_shell()) {
    if (step.shell == "bash") argv = {"bash", "-eo", "pipefail", "-c", step.script};
    else if (step.shell == "sh") argv = {"sh", "-e", "-c", step.script};
    else argv = {step.shell, "-c", step.script};
    return argv;
  }
  auto resolve = MakeResolver(t);
  for (const auto& w : step.run) {
    auto words = spec::RenderWord(w, resolve);
    if (!words.ok()) return words.status();
    for (auto& x : words.value()) argv.push_back(std::move(x));
  }
  if (argv.empty()) return Status::Invalid("the command is empty after substitution");
  // A relative program path is relative to the pipeline file's folder.
  if (argv[0].find('/') != std::string::npos && argv[0][0] != '/') {
    argv[0] = pipeline_.dir + "/" + argv[0];
  }
  return argv;
}

Result<std::vector<std::pair<std::string, std::string>>> Scheduler::RenderEnv(const spec::Step& step,
                                                                              const Task& t) {
  std::vector<std::pair<std::string, std::string>> env;
  auto resolve = MakeResolver(t);
  for (const auto& e : step.env) {
    auto v = spec::RenderString(e.value, resolve);
    if (!v.ok()) return v.status();
    env.emplace_back(e.name, std::move(v.value()));
  }
  return env;
}

Result<std::string> Scheduler::Fingerprint(const spec::Step& step, const Task& t,
                                           const std::vector<std::pair<std::string, std::string>>& env) {
  Hasher h;
  h.Add("nightshift-task-v1");
  h.Add(step.id);
  h.Add(t.item);
  // Paths inside this run are named relative to it, so the fingerprint does not
  // depend on the run id or the root.
  auto normal = [this](const std::string& s) {
    std::string out = s;
    for (size_t pos; (pos = out.find(run_dir_)) != std::string::npos;) out.replace(pos, run_dir_.size(), "<run>");
    return out;
  };
  std::vector<std::string> words;
  h.Add("argv");
  for (const auto& a : t.argv) {
    h.Add(normal(a));
    words.push_back(a);
  }
  h.Add("env");
  for (const auto& [k, v] : env) {
    h.Add(k);
    h.Add(normal(v));
    words.push_back(v);
  }
  // Params a shell script reads from NIGHTSHIFT_PARAM_<NAME>.
  if (step.is_shell()) {
    for (const auto& [name, value] : config_.params) {
      if (step.script.find("NIGHTSHIFT_PARAM_" + ToUpper(name)) != std::string::npos) {
        h.Add(name);
        h.Add(value.type == spec::ParamType::kList ? Join(value.list, "\n") : value.scalar);
        words.push_back(value.scalar);
      }
    }
  }
  // Contents of the input files named by argv and env (outside this run) and of
  // path params; upstream outputs are covered by the upstream fingerprints.
  std::set<std::string> path_params;
  for (const auto& [name, value] : config_.params)
    if (value.type == spec::ParamType::kPath) path_params.insert(value.scalar);
  // A manifest entry is the task's input, whether or not argv names it (a
  // script may read $NIGHTSHIFT_ITEM): its path and its content.
  if (step.foreach.kind == spec::ForeachKind::kManifest) {
    path_params.insert(t.item_value);
    words.push_back(t.item_value);
  }
  h.Add("inputs");
  for (const auto& w : words) {
    if (w.empty() || w[0] != '/' || StartsWith(w, run_dir_ + "/") || w == run_dir_) continue;
    // Only regular files and folders are read: a device or FIFO named in argv is
    // not an input (preflight refuses one given as a path param).
    bool hash_it = IsRegularFile(w) || (path_params.count(w) && IsDirectory(w));
    if (!hash_it) continue;
    auto it = input_hash_cache_.find(w);
    if (it == input_hash_cache_.end()) {
      Result<std::string> hv = HashPath(w, [this] { return events_->cancel_requested(); });
      if (!hv.ok()) return hv.status();
      it = input_hash_cache_.emplace(w, hv.value()).first;
    }
    h.Add(w);
    h.Add(it->second);
  }
  // What a step runs with beyond its command: the content of its models, its
  // image, its manifest entry.
  h.Add("models");
  if (auto m = config_.models.find(step.id); m != config_.models.end()) {
    for (const auto& pin : m->second) {
      h.Add(pin.alias);
      h.Add(pin.digest);
      h.Add(pin.meta_json);
    }
  }
  h.Add("image");
  if (auto im = config_.images.find(step.id); im != config_.images.end()) h.Add(im->second.id);
  if (t.fields.is_object()) {
    h.Add("fields");
    h.Add(DumpJson(t.fields));
  }
  h.Add("upstream");
  for (size_t di : needs_[t.step]) h.Add(steps_[di].fingerprint);
  return h.HexDigest();
}

// ---------------------------------------------------------------- expansion

std::string Scheduler::OutputDirOf(const Task& t) const {
  std::string dir = config_.layout.StepDir(config_.run_id, pipeline_.steps[t.step].id);
  return t.item.empty() ? dir : dir + "/" + t.item;
}

namespace {

// Expands a relative glob (components separated by '/') under `base`.
// A folder that cannot be listed is an error, not zero items.
Status GlobUnder(const std::string& base, const std::vector<std::string>& comps, size_t i,
                 std::vector<std::string>* out) {
  auto names = ListDir(base);
  if (!names.ok()) return names.status();
  for (const auto& n : names.value()) {
    if (n == "_task.json") continue;
    if (!GlobMatch(comps[i], n)) continue;
    std::string p = base + "/" + n;
    if (i + 1 == comps.size()) out->push_back(p);
    else if (IsDirectory(p)) NS_RETURN_IF_ERROR(GlobUnder(p, comps, i + 1, out));
  }
  return Status::Ok();
}

}  // namespace

Status Scheduler::ExpandItems(size_t si, std::vector<std::pair<std::string, std::string>>* items,
                              std::vector<json>* fields) {
  const spec::Step& step = pipeline_.steps[si];
  std::set<std::string> taken;
  auto add = [&](const std::string& value, const std::string& name_source) {
    items->emplace_back(ItemFolderName(name_source, &taken), value);
  };
  switch (step.foreach.kind) {
    case spec::ForeachKind::kNone:
      items->emplace_back("", "");
      break;
    case spec::ForeachKind::kLiteral:
      for (const auto& v : step.foreach.literal) add(v, v);
      break;
    case spec::ForeachKind::kParam: {
      const auto& pv = config_.params.at(step.foreach.param);
      for (const auto& v : pv.list) add(v, PathExists(v) ? StemOf(v) : v);
      break;
    }
    case spec::ForeachKind::kManifest: {
      auto file = config_.manifests.find(step.id);
      if (file == config_.manifests.end()) return Status::Internal("no manifest for step " + step.id);
      auto digest = HashPath(file->second);
      if (!digest.ok()) return digest.status();
      auto pinned = config_.manifest_digests.find(step.id);
      if (pinned != config_.manifest_digests.end() && pinned->second != digest.value()) {
        return Status::Invalid("manifest " + file->second +
                               " changed since the run started; its entries are read as they were checked: "
                               "continue with --resume, which checks it again");
      }
      auto m = spec::LoadManifest(file->second);
      if (!m.ok()) return m.status();
      for (auto& e : m.value().entries) {
        items->emplace_back(ItemFolderName(spec::ManifestItemName(e), &taken), e.path);
        fields->push_back(std::move(e.fields));
      }
      break;
    }
    case spec::ForeachKind::kGlob: {
      std::string base = config_.layout.StepDir(config_.run_id, step.foreach.step);
      std::vector<std::string> files;
      Status listed = GlobUnder(base, Split(step.foreach.pattern, '/'), 0, &files);
      if (!listed.ok()) {
        return Status::IoError("foreach " + step.foreach.step + "/" + step.foreach.pattern + ": " +
                               listed.message());
      }
      char* real_base = ::realpath(base.c_str(), nullptr);
      if (!real_base) return Status::FromErrno("foreach: cannot resolve " + base, errno);
      std::string rb = real_base;
      free(real_base);
      for (const auto& f : files) {
        char* rf = ::realpath(f.c_str(), nullptr);
        if (!rf) {
          // A dangling symlink is named, not dropped silently.
          return Status::FromErrno("foreach " + step.foreach.step + "/" + step.foreach.pattern +
                                       ": cannot resolve " + f,
                                   errno);
        }
        std::string r = rf;
        free(rf);
        if (!StartsWith(r, rb + "/")) {
          return Status::Invalid("foreach " + step.foreach.step + "/" + step.foreach.pattern + ": " + f +
                                 " is a symlink out of step '" + step.foreach.step +
                                 "''s output; a step's items must be inside its output");
        }
        add(f, StemOf(f));
      }
      break;
    }
  }
  return Status::Ok();
}

Status Scheduler::ExpandStep(size_t si) {
  const spec::Step& step = pipeline_.steps[si];
  StepState& ss = steps_[si];
  ss.phase = StepState::Phase::kRunning;
  ss.status = StepStatus::kRunning;
  ss.started_at = clock_->Now();
  std::vector<std::pair<std::string, std::string>> items;
  std::vector<json> fields;
  Status expanded = ExpandItems(si, &items, &fields);
  if (!expanded.ok()) {
    // The step fails with the reason (its dependents are skipped); the engine goes on.
    ss.error = expanded.message();
    return OnStepDone(si);
  }
  bool foreach = step.foreach.kind != spec::ForeachKind::kNone;
  std::string step_dir = config_.layout.StepDir(config_.run_id, step.id);
  if (foreach) {
    NS_RETURN_IF_ERROR(MakeDirs(step_dir));
    if (config_.resume) {
      // Items that no longer exist leave no stale outputs behind.
      std::set<std::string> keep;
      for (const auto& it : items) keep.insert(it.first);
      auto names = ListDir(step_dir);
      if (names.ok()) {
        for (const auto& n : names.value()) {
          if (n != "_task.json" && !keep.count(n)) NS_RETURN_IF_ERROR(RemoveTree(step_dir + "/" + n));
        }
      }
      for (const auto& [task_id, prev] : previous_) {
        if (StartsWith(task_id, step.id + "/") && !keep.count(task_id.substr(step.id.size() + 1))) {
          writes_.push_back([this, id = task_id] { return store_->DeleteTask(config_.run_id, id); });
        }
      }
    }
  }
  RunEvent started{RunEvent::Kind::kStepStarted, step.id};
  started.total = static_cast<int>(items.size());
  observer_->OnEvent(started);
  NS_RETURN_IF_ERROR(Event("step_started", nullptr, DumpJson(json{{"step", step.id}, {"tasks", items.size()}})));

  for (size_t k = 0; k < items.size(); ++k) {
    auto& [name, value] = items[k];
    auto t = std::make_unique<Task>();
    t->index = tasks_.size();
    t->step = si;
    t->item = name;
    t->item_value = value;
    if (k < fields.size()) t->fields = std::move(fields[k]);
    t->id = foreach ? step.id + "/" + name : step.id;
    t->key = foreach ? step.id + "." + name : step.id;
    auto prev_attempts = previous_attempts_.find(t->id);
    if (prev_attempts != previous_attempts_.end()) t->attempts = prev_attempts->second;
    auto prev_history = previous_history_.find(t->id);
    if (prev_history != previous_history_.end()) t->history = std::move(prev_history->second);
    // Interruptions persist: the earlier preempted attempts count.
    for (const auto& a : t->history) t->interruptions += a.status == "preempted";
    ss.tasks.push_back(t->index);
    tasks_.push_back(std::move(t));
  }
  ss.remaining = ss.tasks.size();
  for (size_t ti : ss.tasks) {
    Task& t = *tasks_[ti];
    auto argv = RenderArgv(step, t);
    auto env = argv.ok() ? RenderEnv(step, t) : Result<std::vector<std::pair<std::string, std::string>>>(argv.status());
    if (argv.ok()) t.argv = argv.value();
    t.input_ms = InputMs(si, t);
    Result<std::string> fp = env.ok() ? Fingerprint(step, t, env.value()) : Result<std::string>(env.status());
    if (!fp.ok()) {
      NS_RETURN_IF_ERROR(FinishTask(t, TaskState::kFailed, fp.status().message()));
      continue;
    }
    t.fingerprint = fp.value();
    auto prev = previous_.find(t.id);
    bool reusable = step.cache && prev != previous_.end() &&
                    (prev->second.first == TaskStateName(TaskState::kSucceeded) ||
                     prev->second.first == TaskStateName(TaskState::kCached)) &&
                    prev->second.second == t.fingerprint && IsDirectory(OutputDirOf(t));
    if (reusable) {
      t.started_at = t.finished_at = clock_->Now();
      NS_RETURN_IF_ERROR(FinishTask(t, TaskState::kCached, "output reused: fingerprint unchanged"));
      continue;
    }
    if (unresolved_running_.count(t.id)) {
      auto adopted = AdoptRunning(t);
      if (!adopted.ok()) return adopted.status();
      if (adopted.value()) continue;
    }
    // No row until it finishes: the attempt row records the launch (intent first).
    t.state = TaskState::kPending;
    ss.ready.push_back(ti);
  }
  if (ss.tasks.empty()) return OnStepDone(si);
  return Status::Ok();
}

Status Scheduler::OnStepDone(size_t si) {
  StepState& ss = steps_[si];
  if (ss.phase == StepState::Phase::kDone) return Status::Ok();
  ss.phase = StepState::Phase::kDone;
  ss.finished_at = clock_->Now();
  if (!ss.error.empty()) {
    ss.status = StepStatus::kFailed;
  } else if (ss.status != StepStatus::kSkipped && ss.status != StepStatus::kCancelled) {
    bool failed = false, cancelled = false;
    Hasher h;
    for (size_t ti : ss.tasks) {
      const Task& t = *tasks_[ti];
      failed |= t.state == TaskState::kFailed;
      cancelled |= t.state == TaskState::kCancelled;
      h.Add(t.id);
      h.Add(t.fingerprint);
    }
    ss.fingerprint = h.HexDigest();
    ss.status = failed ? StepStatus::kFailed : cancelled ? StepStatus::kCancelled : StepStatus::kSucceeded;
  }
  const spec::Step& step = pipeline_.steps[si];
  if (ss.status != StepStatus::kSkipped && ss.status != StepStatus::kCancelled) NS_RETURN_IF_ERROR(WriteTaskJson(si));
  RunEvent done{RunEvent::Kind::kStepFinished, step.id};
  done.status = StepStatusName(ss.status);
  done.total = static_cast<int>(ss.tasks.size());
  done.duration_ms = ss.finished_at - ss.started_at;
  done.message = ss.error;
  observer_->OnEvent(done);
  NS_RETURN_IF_ERROR(Event("step_finished", nullptr,
                           DumpJson(json{{"step", step.id}, {"status", StepStatusName(ss.status)}, {"message", ss.error}})));

  // Wake the steps that were waiting for this one: iteratively, through a
  // queue, so a chain of 30,000 steps that skip or reuse their outputs does not
  // recurse 30,000 deep.
  done_queue_.push_back(si);
  if (draining_) return Status::Ok();
  draining_ = true;
  Status st = Status::Ok();
  while (st.ok() && !done_queue_.empty()) {
    size_t finished = done_queue_.front();
    done_queue_.pop_front();
    for (size_t j : dependents_[finished]) {
      StepState& next = steps_[j];
      if (next.phase != StepState::Phase::kWaiting) continue;
      bool all_done = true, blocked = false;
      for (size_t di : needs_[j]) {
        all_done &= steps_[di].phase == StepState::Phase::kDone;
        blocked |= steps_[di].phase == StepState::Phase::kDone && steps_[di].status != StepStatus::kSucceeded;
      }
      if (blocked || (all_done && cancelling_)) {
        next.status = cancelling_ ? StepStatus::kCancelled : StepStatus::kSkipped;
        next.started_at = clock_->Now();
        st = OnStepDone(j);
      } else if (all_done) {
        st = ExpandStep(j);
      }
      if (!st.ok()) break;
    }
  }
  draining_ = false;
  return st;
}

// ---------------------------------------------------------------- running

std::string Scheduler::AttemptStaging(const Task& t) const {
  return config_.layout.StagingDir(config_.run_id) + "/" + t.key + "." + std::to_string(t.attempts);
}

std::string Scheduler::SlotDir(int slot) const {
  return config_.layout.StagingDir(config_.run_id) + "/tmp." + std::to_string(slot);
}

void Scheduler::RemoveAttemptStaging(const std::string& staging) {
  if (PathExists(staging)) (void)RemoveTree(staging);
  ::unlink((staging + ".progress").c_str());
}

bool Scheduler::Fits(const spec::Resources& r, CapacityClass cls) const {
  // Memory counts only when the executor knows how much it has.
  bool memory_ok = executor_->capacity().memory_bytes == 0 || r.memory_bytes <= pool_->free.memory_bytes;
  bool class_ok = !pool_->separate_classes || r.cpus <= pool_->class_free_cpus[static_cast<int>(cls)] + 1e-9;
  return r.cpus <= pool_->free.cpus + 1e-9 && memory_ok && r.gpus <= pool_->free.gpus && class_ok;
}

CapacityClass Scheduler::ClassFor(const Task& t) const {
  const spec::Step& step = pipeline_.steps[t.step];
  if (!step.spot.enabled || t.interruptions >= step.spot.max_interruptions || escalated_) {
    return CapacityClass::kOnDemand;
  }
  // A spot pool that could never hold the task: on-demand it is.
  if (pool_->separate_classes && step.resources.cpus > pool_->class_cpus[static_cast<int>(CapacityClass::kSpot)] + 1e-9) return CapacityClass::kOnDemand;
  return CapacityClass::kSpot;
}

double Scheduler::NextRandom(uint64_t* state) {
  // xorshift64*: reproducible from the seed, fast, good enough for a market.
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return static_cast<double>((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

// The video a task works on: its foreach item when that is a video file, else
// the video files among the path params its command uses.
int64_t Scheduler::InputMs(size_t si, const Task& t) {
  const spec::Step& step = pipeline_.steps[si];
  std::vector<std::string> files;
  if (step.foreach.kind != spec::ForeachKind::kNone) {
    files.push_back(t.item_value);
  } else {
    std::set<std::string> names;
    for (const auto& w : step.run)
      for (const auto& part : w.parts)
        if (part.is_ref && part.kind == spec::RefKind::kParam) names.insert(part.text);
    for (const auto& name : names) {
      const spec::Param* p = pipeline_.FindParam(name);
      auto v = config_.params.find(name);
      if (p && p->type == spec::ParamType::kPath && v != config_.params.end()) files.push_back(v->second.scalar);
    }
  }
  int64_t total = 0;
  for (const auto& f : files) {
    auto it = media_ms_cache_.find(f);
    if (it == media_ms_cache_.end()) {
      it = media_ms_cache_.emplace(f, MediaDurationMs(f)).first;
    }
    total += it->second;
  }
  return total;
}

double Scheduler::MsPerInputSecond(size_t si) {
  auto it = ms_per_input_s_.find(si);
  if (it != ms_per_input_s_.end()) return it->second;
  auto rate = store_->MsPerInputSecond(pipeline_.name, pipeline_.steps[si].id);
  double r = rate.ok() ? rate.value() : 0;
  ms_per_input_s_[si] = r;
  return r;
}

int64_t Scheduler::EstimateTaskMs(const Task& t) {
  if (t.input_ms > 0) {
    double rate = MsPerInputSecond(t.step);
    if (rate > 0) return std::max<int64_t>(1, static_cast<int64_t>(rate * static_cast<double>(t.input_ms) / 1000.0));
  }
  return EstimateMs(t.step);
}

int64_t Scheduler::EstimateMs(size_t si) {
  auto it = estimate_ms_.find(si);
  if (it != estimate_ms_.end()) return it->second;
  auto mean = store_->MeanSucceededMs(pipeline_.name, pipeline_.steps[si].id);
  int64_t est = mean.ok() && mean.value() > 0 ? mean.value() : kDefaultEstimateMs;
  estimate_ms_[si] = est;
  return est;
}

void Scheduler::SchedulePreemption(const Task& t) {
  if (config_.preempt_rate <= 0 || t.cls != CapacityClass::kSpot) return;
  double draw = NextRandom(&market_rng_);
  double when = NextRandom(&market_rng_);
  if (draw >= config_.preempt_rate) return;
  TimeMs at = t.started_at + static_cast<TimeMs>(when * static_cast<double>(EstimateTaskMs(t)));
  preempt_heap_.emplace(at, t.handle);
}

TimeMs Scheduler::EstimateFinish() {
  TimeMs now = clock_->Now();
  double cpus = std::max(1e-9, executor_->capacity().cpus);
  std::vector<TimeMs> finish(pipeline_.steps.size(), 0);
  TimeMs last = now;
  for (size_t si : pipeline_.topo_order) {
    const spec::Step& step = pipeline_.steps[si];
    const StepState& ss = steps_[si];
    TimeMs start = now;
    for (size_t di : needs_[si]) start = std::max(start, finish[di]);
    int64_t slots = std::max<int64_t>(1, static_cast<int64_t>(cpus / std::max(0.01, step.resources.cpus)));
    int64_t span = 0;
    if (ss.phase == StepState::Phase::kWaiting) {
      // Not expanded: a foreach's items are not known yet; count one wave.
      span = EstimateMs(si);
    } else if (ss.phase == StepState::Phase::kRunning) {
      // The tasks left, spread over the slots; never less than the longest.
      int64_t total = 0, longest = 0;
      for (size_t ti : ss.tasks) {
        const Task& t = *tasks_[ti];
        if (IsFinal(t.state)) continue;
        int64_t est = EstimateTaskMs(t);
        total += est;
        longest = std::max(longest, est);
      }
      span = std::max(longest, (total + slots - 1) / slots);
    }
    finish[si] = start + span;
    last = std::max(last, finish[si]);
  }
  return last;
}

Status Scheduler::CheckDeadline() {
  if (!config_.deadline || !finished_since_estimate_) return Status::Ok();
  finished_since_estimate_ = false;
  TimeMs now = clock_->Now();
  TimeMs finish = EstimateFinish();
  if (estimates_.empty() || estimates_.back().finish != finish) estimates_.push_back({now, finish});
  if (escalated_) return Status::Ok();
  // The margin: a tenth of the work still ahead, at least a second.
  TimeMs margin = std::max<TimeMs>(1000, (finish - now) / 10);
  if (finish + margin <= config_.deadline) return Status::Ok();
  escalated_ = true;
  escalated_at_ = now;
  int moved = 0;
  for (const auto& ss : steps_)
    for (size_t ti : ss.ready) moved += pipeline_.steps[tasks_[ti]->step].spot.enabled;
  escalation_reason_ = "the estimated finish " + FormatDurationMs(finish - now) + " from now (margin " +
                       FormatDurationMs(margin) + ") passes the deadline, " +
                       (config_.deadline > now ? FormatDurationMs(config_.deadline - now) + " away"
                                               : "already past") +
                       ": spot tasks not yet started (" + std::to_string(moved) +
                       " ready now) run on on-demand capacity";
  NS_RETURN_IF_ERROR(Event("deadline_escalation", nullptr,
                           DumpJson(json{{"estimated_finish", finish}, {"deadline", config_.deadline},
                                         {"margin_ms", margin}, {"reason", escalation_reason_}})));
  return Status::Ok();
}

Status Scheduler::FirePreemptions() {
  TimeMs now = clock_->Now();
  while (!preempt_heap_.empty() && preempt_heap_.top().first <= now) {
    uint64_t handle = preempt_heap_.top().second;
    preempt_heap_.pop();
    auto it = running_.find(handle);
    if (it == running_.end() || cancelling_) continue;  // it ended first
    Task& t = *tasks_[it->second];
    const spec::Step& step = pipeline_.steps[t.step];
    executor_->Preempt(handle, step.spot.notice_ms);
    NS_RETURN_IF_ERROR(Event("preemption_notice", &t,
                             DumpJson(json{{"notice_ms", step.spot.notice_ms}, {"source", "market"}})));
  }
  return Status::Ok();
}

// `nightshift cancel RUN` names this run: cancel it, and only it (the engine
// may drive others).
Status Scheduler::ReadCancelRequests() {
  auto requests = store_->ListEvents(config_.run_id, "cancel_requested", cancel_requests_seen_);
  if (!requests.ok()) return requests.status();
  if (requests.value().empty()) return Status::Ok();
  cancel_requests_seen_ = requests.value().back().id;
  if (cancelling_) return Status::Ok();
  return CancelEverything();
}

Status Scheduler::ReadPreemptRequests() {
  auto requests = store_->ListEvents(config_.run_id, "preempt_requested", preempt_requests_seen_);
  if (!requests.ok()) return requests.status();
  for (const auto& e : requests.value()) {
    preempt_requests_seen_ = e.id;
    for (const auto& [handle, ti] : running_) {
      Task& t = *tasks_[ti];
      if (t.id != e.task_id || !tasks_[ti]->spawned) continue;
      const spec::Step& step = pipeline_.steps[t.step];
      executor_->Preempt(handle, step.spot.notice_ms);
      NS_RETURN_IF_ERROR(Event("preemption_notice", &t,
                               DumpJson(json{{"notice_ms", step.spot.notice_ms}, {"source", "request"}})));
    }
  }
  return Status::Ok();
}

bool Scheduler::FitsEmpty(const spec::Resources& r, CapacityClass cls) const {
  Capacity cap = executor_->capacity();
  double class_cpus = pool_->class_cpus[static_cast<int>(cls)];
  return r.cpus <= cap.cpus + 1e-9 && (cap.memory_bytes == 0 || r.memory_bytes <= cap.memory_bytes) &&
         r.gpus <= cap.gpus && (!pool_->separate_classes || r.cpus <= class_cpus + 1e-9);
}

// Decides what starts now and records each launch (the attempt row) before
// anything runs: SpawnPending acts only after Flush has committed them, so a
// crash in between leaves a record ("running", later "lost") and the attempt
// number is never used twice.
Status Scheduler::LaunchReady() {
  if (cancelling_) return Status::Ok();
  for (size_t si : pipeline_.topo_order) {
    StepState& ss = steps_[si];
    const spec::Resources& res = pipeline_.steps[si].resources;
    if (!ss.ready.empty() && !FitsEmpty(res, ClassFor(*tasks_[ss.ready.front()]))) {
      // It would wait forever: fail it, naming what it asks for.
      while (!ss.ready.empty()) {
        size_t ti = ss.ready.front();
        ss.ready.pop_front();
        Capacity cap = executor_->capacity();
        std::string pools =
            pool_->separate_classes
                ? " (spot " + FormatDouble(pool_->class_cpus[static_cast<int>(CapacityClass::kSpot)]) +
                      ", on-demand " +
                      FormatDouble(pool_->class_cpus[static_cast<int>(CapacityClass::kOnDemand)]) + ")"
                              : "";
        NS_RETURN_IF_ERROR(FinishTask(*tasks_[ti], TaskState::kFailed,
                                      "asks for more than the executor has (cpus " +
                                          FormatDouble(res.cpus) + " of " + FormatDouble(cap.cpus) + pools +
                                          ", gpus " + std::to_string(res.gpus) + " of " +
                                          std::to_string(cap.gpus) + "); it can never start"));
      }
      continue;
    }
    while (!ss.ready.empty() && Fits(res, ClassFor(*tasks_[ss.ready.front()]))) {
      size_t ti = ss.ready.front();
      ss.ready.pop_front();
      Task& t = *tasks_[ti];
      t.cls = ClassFor(t);
      if (pool_->separate_classes) pool_->class_free_cpus[static_cast<int>(t.cls)] -= res.cpus;
      t.attempts += 1;
      t.session_attempts += 1;
      t.started_at = clock_->Now();
      t.finished_at = 0;
      t.state = TaskState::kRunning;
      t.pid = 0;  // until this attempt's spawn succeeds
      t.spawned = false;
      t.handle = pool_->next_handle++;
      running_[t.handle] = ti;
      pool_->free.cpus -= res.cpus;
      pool_->free.memory_bytes -= res.memory_bytes;
      pool_->free.gpus -= res.gpus;
      for (size_t g = 0; g < pool_->gpu_busy.size() && t.gpus.size() < static_cast<size_t>(res.gpus); ++g) {
        if (!pool_->gpu_busy[g]) {
          pool_->gpu_busy[g] = true;
          t.gpus.push_back(static_cast<int>(g));
        }
      }
      if (free_slots_.empty()) free_slots_.push_back(next_slot_++);
      t.slot = free_slots_.back();
      free_slots_.pop_back();
      NS_RETURN_IF_ERROR(SaveAttempt(MakeAttemptRow(t, AttemptResult{}, "running")));
      to_spawn_.push_back(ti);
    }
  }
  return Status::Ok();
}

void Scheduler::SpawnPending() {
  std::vector<size_t> batch;
  batch.swap(to_spawn_);
  for (size_t ti : batch) {
    Task& t = *tasks_[ti];
    Result<int64_t> pid = Spawn(t);
    if (!pid.ok()) {
      // Reported like any other end of an attempt, in the next round.
      AttemptResult r;
      r.id = t.handle;
      r.outcome = AttemptOutcome::kFailed;
      r.message = pid.status().message();
      if (r.message.find("argument list too long") != std::string::npos) {
        // Name the templates that made the command line that long.
        std::set<std::string> refs;
        for (const auto& w : pipeline_.steps[t.step].run)
          for (const auto& part : w.parts)
            if (part.is_ref && part.kind == spec::RefKind::kParam) refs.insert(part.text);
        if (!refs.empty()) r.message += "; its run: line expands " + Join({refs.begin(), refs.end()}, ", ");
      }
      local_results_.push_back(r);
      continue;
    }
    t.pid = pid.value();
    t.spawned = true;
    if (config_.fault_kill_after_spawn) ::kill(::getpid(), SIGKILL);  // tests: a crash right here
    SchedulePreemption(t);
    const spec::Step& step = pipeline_.steps[t.step];
    RunEvent e{RunEvent::Kind::kTaskStarted, step.id, t.id, t.item, t.attempts, "running"};
    e.progress_file = AttemptStaging(t) + ".progress";
    observer_->OnEvent(e);
  }
}

Result<int64_t> Scheduler::Spawn(Task& t) {
  const spec::Step& step = pipeline_.steps[t.step];
  // The attempt's output folder (also its working folder) is <key>.<n> under
  // _staging/; its TMPDIR is the scratch folder of its slot, made once and
  // reused; its progress file is <key>.<n>.progress, made by the step if it
  // reports progress. One mkdir per attempt on this path.
  NS_RETURN_IF_ERROR(MakeDir(AttemptStaging(t)));
  if (static_cast<size_t>(t.slot) >= slot_made_.size()) slot_made_.resize(static_cast<size_t>(t.slot) + 1, false);
  if (!slot_made_[static_cast<size_t>(t.slot)]) {
    NS_RETURN_IF_ERROR(MakeDir(SlotDir(t.slot)));
    slot_made_[static_cast<size_t>(t.slot)] = true;
  }
  if (step.checkpoint) {
    std::string ckpt = config_.layout.CheckpointDir(config_.run_id, t.key);
    if (!IsDirectory(ckpt)) NS_RETURN_IF_ERROR(MakeDirs(ckpt));
  }
  // A registered model is checked before every attempt that uses it: a few
  // stat(2) calls, and a hash of a file only when its stat moved.
  if (auto m = config_.models.find(step.id); m != config_.models.end()) {
    for (const auto& pin : m->second) NS_RETURN_IF_ERROR(registry_.Verify(pin.name, pin.version, false, pin.digest));
  }
  if (config_.images.count(step.id)) {
    // Bound into the container read-write, so it must exist first.
    std::string progress = AttemptStaging(t) + ".progress";
    int fd = ::open(progress.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Status::FromErrno("cannot create " + progress, errno);
    ::close(fd);
  }
  auto spec = MakeSpec(t);
  if (!spec.ok()) return spec.status();
  return executor_->Submit(spec.value());
}

std::string Scheduler::AttemptUid(const std::string& task_id, int attempt) const {
  return config_.run_id + "/" + task_id + "/" + std::to_string(attempt);
}

std::string Scheduler::RecordPrefix(const std::string& key, int attempt) const {
  return run_dir_ + "/_jobs/" + key + "." + std::to_string(attempt);
}

// The attempt as the executor gets it: argv, the step contract's environment,
// folders, resources. No side effects (an adopted attempt is compared with it).
Result<AttemptSpec> Scheduler::MakeSpec(Task& t) {
  const spec::Step& step = pipeline_.steps[t.step];
  const Layout& L = config_.layout;
  std::string out_dir = AttemptStaging(t);
  std::string tmp_dir = t.slot >= 0 ? SlotDir(t.slot) : config_.layout.StagingDir(config_.run_id);
  std::string progress = out_dir + ".progress";
  std::string ckpt = step.checkpoint ? L.CheckpointDir(config_.run_id, t.key) : "";

  AttemptSpec spec;
  spec.id = t.handle;
  spec.uid = AttemptUid(t.id, t.attempts);
  spec.argv = t.argv;
  spec.cwd = out_dir;
  spec.stdout_path = L.LogPath(config_.run_id, t.key, t.attempts, "out");
  spec.stderr_path = L.LogPath(config_.run_id, t.key, t.attempts, "err");
  spec.cpus = step.resources.cpus;
  spec.memory_bytes = step.resources.memory_bytes;
  spec.gpus = step.resources.gpus;
  spec.timeout_ms = step.timeout_ms;
  spec.grace_ms = step.grace_ms;
  spec.capacity_class = CapacityClassName(t.cls);
  spec.fingerprint = t.fingerprint;
  if (config_.remote) spec.record_prefix = RecordPrefix(t.key, t.attempts);

  auto env = RenderEnv(step, t);
  if (!env.ok()) return env.status();
  auto put = [&](const std::string& k, const std::string& v) { spec.env.push_back(k + "=" + v); };
  put("PATH", config_.path_env);
  const char* home = ::getenv("HOME");
  put("HOME", home ? home : "/");
  const char* lang = ::getenv("LANG");
  put("LANG", lang ? lang : "C.UTF-8");
  const char* tz = ::getenv("TZ");
  put("TZ", tz ? tz : "UTC");
  put("TMPDIR", tmp_dir);
  put("NIGHTSHIFT_RUN_ID", config_.run_id);
  put("NIGHTSHIFT_ROOT", L.root);
  if (!config_.catalogue.empty()) put("NIGHTSHIFT_CATALOGUE", config_.catalogue);
  put("NIGHTSHIFT_STEP", step.id);
  put("NIGHTSHIFT_TASK_ID", t.id);
  put("NIGHTSHIFT_ATTEMPT", std::to_string(t.attempts));
  put("NIGHTSHIFT_ATTEMPT_UID", spec.uid);
  put("NIGHTSHIFT_CAPACITY_CLASS", spec.capacity_class);
  if (step.foreach.kind != spec::ForeachKind::kNone) put("NIGHTSHIFT_ITEM", t.item_value);
  if (t.fields.is_object()) put("NIGHTSHIFT_ITEM_FIELDS", DumpJson(t.fields));
  if (auto m = config_.models.find(step.id); m != config_.models.end()) {
    for (const auto& pin : m->second) {
      put("NIGHTSHIFT_MODEL_DIR_" + ToUpper(pin.alias), pin.dir);
      put("NIGHTSHIFT_MODEL_META_" + ToUpper(pin.alias), pin.meta_json);
      // Bound read-only for the attempt: a step cannot change a registered
      // model (as root a plain file mode would not stop it).
      if (::geteuid() == 0) spec.readonly_paths.push_back(pin.dir);
    }
  }
  put("NIGHTSHIFT_OUTPUT_DIR", out_dir);
  if (!ckpt.empty()) put("NIGHTSHIFT_CHECKPOINT_DIR", ckpt);
  put("NIGHTSHIFT_PROGRESS_FILE", progress);
  // What the step was given, so it can size its thread pools to it.
  put("NIGHTSHIFT_CPUS", FormatDouble(step.resources.cpus));
  put("NIGHTSHIFT_MEMORY_BYTES", std::to_string(step.resources.memory_bytes));
  for (const auto& [name, value] : param_env_) put(name, value);
  if (step.resources.gpus > 0) {
    std::vector<std::string> ids;
    for (int g : t.gpus) ids.push_back(std::to_string(g));
    put("CUDA_VISIBLE_DEVICES", Join(ids, ","));
    put("NIGHTSHIFT_GPUS", Join(ids, ","));
  }
  for (const auto& [k, v] : env.value()) put(k, v);
  if (config_.images.count(step.id)) {
    // podman mounts the models read-only itself.
    spec.argv = ContainerArgv(step, t, spec);
    spec.readonly_paths.clear();
  }
  return spec;
}

// nightshift container-exec runs podman in the foreground and stops the
// container on SIGTERM (cli/container_exec.cc). The step sees every path of its
// contract at the same place as on the host: its output, checkpoint and
// scratch folders read-write; the run folder (upstream outputs), the models,
// the path params, its item and the pipeline's folder read-only; nothing else
// of the host.
std::vector<std::string> Scheduler::ContainerArgv(const spec::Step& step, const Task& t,
                                                  const AttemptSpec& spec) const {
  const RunConfig::Image& image = config_.images.at(step.id);
  Hasher h;
  h.Add(spec.uid);
  std::vector<std::string> a = {config_.containers.nightshift, "container-exec", "--image", image.id, "--name",
                                "nightshift-" + h.HexDigest().substr(0, 24), "--grace-ms",
                                std::to_string(step.grace_ms), "--cpus", FormatDouble(step.resources.cpus),
                                "--workdir", spec.cwd};
  if (step.resources.memory_bytes > 0) {
    a.push_back("--memory");
    a.push_back(std::to_string(step.resources.memory_bytes));
  }
  if (!config_.containers.conf.empty()) {
    a.push_back("--conf");
    a.push_back(config_.containers.conf);
  }
  if (!config_.containers.storage.empty()) {
    a.push_back("--storage");
    a.push_back(config_.containers.storage);
  }
  std::set<std::string> seen;
  auto mount = [&](const std::string& path, bool rw) {
    if (path.empty() || path[0] != '/' || !seen.insert(path).second || !PathExists(path)) return;
    a.push_back(rw ? "--rw" : "--ro");
    a.push_back(path);
  };
  // The same folders MakeSpec gives the attempt.
  mount(run_dir_, false);
  mount(spec.cwd, true);
  mount(spec.cwd + ".progress", true);  // made by Spawn for image steps
  mount(t.slot >= 0 ? SlotDir(t.slot) : config_.layout.StagingDir(config_.run_id), true);
  if (step.checkpoint) mount(config_.layout.CheckpointDir(config_.run_id, t.key), true);
  if (auto m = config_.models.find(step.id); m != config_.models.end()) {
    for (const auto& pin : m->second) mount(pin.dir, false);
  }
  for (const auto& [name, value] : config_.params) {
    if (value.type == spec::ParamType::kPath) mount(value.scalar, false);
  }
  if (!t.item_value.empty() && t.item_value[0] == '/') mount(t.item_value, false);
  // The pipeline's folder only when the step names it (its scripts): it may
  // hold much else.
  bool uses_dir = false;
  auto scan = [&](const spec::Template& tpl) {
    for (const auto& part : tpl.parts) uses_dir = uses_dir || (part.is_ref && part.kind == spec::RefKind::kPipelineDir);
  };
  for (const auto& w : step.run) scan(w);
  for (const auto& e : step.env) scan(e.value);
  // A relative program (scripts/x.sh) was made a path in the pipeline's folder.
  if (!t.argv.empty() && StartsWith(t.argv[0], pipeline_.dir + "/")) uses_dir = true;
  if (uses_dir) mount(pipeline_.dir, false);
  a.push_back("--");
  a.insert(a.end(), t.argv.begin(), t.argv.end());
  return a;
}

// Params as the step contract exports them: NIGHTSHIFT_PARAM_<NAME>, or, for a
// value too big for an environment (a list of thousands of paths),
// NIGHTSHIFT_PARAM_<NAME>_FILE naming a file in the run folder that holds it.
Status Scheduler::PrepareParamEnv() {
  param_env_.clear();
  for (const auto& [name, value] : config_.params) {
    std::string var = "NIGHTSHIFT_PARAM_" + ToUpper(name);
    std::string text = value.type == spec::ParamType::kList ? DumpJson(json(value.list)) : value.scalar;
    if (text.size() <= kMaxParamEnvBytes) {
      param_env_.emplace_back(var, std::move(text));
      continue;
    }
    std::string dir = run_dir_ + "/_params";
    NS_RETURN_IF_ERROR(MakeDirs(dir));
    std::string file = dir + "/" + name + (value.type == spec::ParamType::kList ? ".json" : ".txt");
    NS_RETURN_IF_ERROR(WriteFileAtomic(file, text));
    param_env_.emplace_back(var + "_FILE", file);
  }
  return Status::Ok();
}

int64_t Scheduler::Backoff(const spec::RetryPolicy& p, int attempt) {
  double base = static_cast<double>(p.backoff_ms) * std::pow(2.0, std::max(0, attempt - 1));
  base = std::min(base, static_cast<double>(p.max_backoff_ms));
  // "Equal jitter": half fixed, half random, so retries of many tasks spread out.
  double frac = NextRandom(&rng_);
  return static_cast<int64_t>(base / 2 + frac * base / 2);
}

// Gives a running attempt's cpus, memory, gpus (and its class's cpus) back to
// the pool, which other runs may be waiting on.
void Scheduler::ReleaseCapacity(Task& t) {
  const spec::Resources& res = pipeline_.steps[t.step].resources;
  pool_->free.cpus += res.cpus;
  pool_->free.memory_bytes += res.memory_bytes;
  pool_->free.gpus += res.gpus;
  if (pool_->separate_classes) pool_->class_free_cpus[static_cast<int>(t.cls)] += res.cpus;
  for (int g : t.gpus) pool_->gpu_busy[static_cast<size_t>(g)] = false;
  t.gpus.clear();
}

Status Scheduler::HandleResult(const AttemptResult& r) {
  auto it = running_.find(r.id);
  if (it == running_.end()) return Status::Ok();
  Task& t = *tasks_[it->second];
  running_.erase(it);
  const spec::Step& step = pipeline_.steps[t.step];
  ReleaseCapacity(t);
  if (t.slot >= 0) {
    // The slot's scratch folder is reused: empty it if the attempt left files.
    // Emptied for the next attempt. (Not judged by the folder's mtime: it moves
    // in clock ticks, so a file made in the tick of the last check would stay.)
    std::string tmp = SlotDir(t.slot);
    auto left = ListDir(tmp);
    if (left.ok()) {
      for (const auto& n : left.value()) (void)RemoveTree(tmp + "/" + n);
    }
    free_slots_.push_back(t.slot);
    t.slot = -1;
  }

  AttemptOutcome outcome = r.outcome;
  std::string message = r.message;
  std::string staging = AttemptStaging(t);
  if (outcome == AttemptOutcome::kSucceeded) {
    Status st = ReplaceDir(staging, OutputDirOf(t));
    if (!st.ok()) {
      outcome = AttemptOutcome::kFailed;
      message = "cannot commit output: " + st.message();
    }
  }
  RemoveAttemptStaging(staging);
  AttemptResult recorded = r;
  recorded.message = message;
  AttemptRow a = MakeAttemptRow(t, recorded, OutcomeName(outcome));
  t.history.push_back(a);
  NS_RETURN_IF_ERROR(SaveAttempt(a));

  if (outcome == AttemptOutcome::kSucceeded) return FinishTask(t, TaskState::kSucceeded, "");
  if (outcome == AttemptOutcome::kCancelled || cancelling_) return FinishTask(t, TaskState::kCancelled, message);
  if (outcome == AttemptOutcome::kPreempted) {
    // Not the step's fault: no retry budget is spent, the checkpoint stays, and
    // the task goes back to the front of its queue at once (on-demand once it
    // has been interrupted max_interruptions times).
    t.session_attempts -= 1;
    t.interruptions += 1;
    bool moved = step.spot.enabled && t.interruptions >= step.spot.max_interruptions;
    t.state = TaskState::kPending;
    t.message = "preempted (" + std::to_string(t.interruptions) + " of " +
                std::to_string(step.spot.max_interruptions) + " interruptions)" +
                (moved ? "; runs on on-demand capacity now" : "");
    NS_RETURN_IF_ERROR(SaveTask(t));
    steps_[t.step].ready.push_front(t.index);
    RunEvent e{RunEvent::Kind::kTaskFinished, step.id, t.id, t.item, t.attempts, "preempted", t.message};
    e.duration_ms = a.finished_at - a.started_at;
    observer_->OnEvent(e);
    return Status::Ok();
  }
  unsigned cls = 0;
  switch (outcome) {
    case AttemptOutcome::kRetryable:
    case AttemptOutcome::kLost: cls = spec::kRetryRetryable; break;
    case AttemptOutcome::kFailed: cls = spec::kRetryFailed; break;
    case AttemptOutcome::kTimedOut: cls = spec::kRetryTimedOut; break;
    case AttemptOutcome::kSignal: cls = spec::kRetrySignal; break;
    default: break;
  }
  if ((step.retry.on & cls) && t.session_attempts < step.retry.max_attempts) {
    int64_t delay = Backoff(step.retry, t.session_attempts);
    t.state = TaskState::kRetrying;
    t.message = message + "; retry in " + FormatDurationMs(delay);
    NS_RETURN_IF_ERROR(SaveTask(t));
    retry_heap_.emplace(clock_->Now() + delay, t.index);
    RunEvent e{RunEvent::Kind::kTaskFinished, step.id, t.id, t.item, t.attempts, TaskStateName(t.state), t.message};
    e.duration_ms = a.finished_at - a.started_at;
    observer_->OnEvent(e);
    return Status::Ok();
  }
  return FinishTask(t, TaskState::kFailed, message);
}

Status Scheduler::FinishTask(Task& t, TaskState state, const std::string& message) {
  finished_since_estimate_ = true;
  t.state = state;
  t.message = message;
  t.finished_at = clock_->Now();
  if (!t.started_at) t.started_at = t.finished_at;
  NS_RETURN_IF_ERROR(SaveTask(t));
  const spec::Step& step = pipeline_.steps[t.step];
  RunEvent e{RunEvent::Kind::kTaskFinished, step.id, t.id, t.item, t.attempts, TaskStateName(state), message};
  e.duration_ms = t.finished_at - t.started_at;
  observer_->OnEvent(e);
  StepState& ss = steps_[t.step];
  if (--ss.remaining == 0) return OnStepDone(t.step);
  return Status::Ok();
}

Status Scheduler::CancelEverything() {
  cancelling_ = true;
  for (const auto& [handle, ti] : running_) executor_->Cancel(handle);
  for (size_t si : pipeline_.topo_order) {
    StepState& ss = steps_[si];
    while (!ss.ready.empty()) {
      size_t ti = ss.ready.front();
      ss.ready.pop_front();
      NS_RETURN_IF_ERROR(FinishTask(*tasks_[ti], TaskState::kCancelled, "the run was cancelled"));
    }
  }
  while (!retry_heap_.empty()) {
    size_t ti = retry_heap_.top().second;
    retry_heap_.pop();
    NS_RETURN_IF_ERROR(FinishTask(*tasks_[ti], TaskState::kCancelled, "the run was cancelled"));
  }
  return Status::Ok();
}

Result<bool> Scheduler::AdoptRunning(Task& t) {
  auto node = unresolved_running_.extract(t.id);
  const AttemptRow row = node.mapped().second;
  const spec::Step& step = pipeline_.steps[t.step];
  // The attempt as the previous engine launched it: same number and class.
  t.attempts = std::max(t.attempts, row.attempt);
  int latest = t.attempts;
  t.attempts = row.attempt;
  t.cls = cost::ParseCapacityClass(row.capacity_class).value_or(CapacityClass::kOnDemand);
  t.handle = pool_->next_handle++;
  t.slot = -1;
  auto spec = MakeSpec(t);
  bool adopted = spec.ok() && executor_->Adopt(spec.value());
  std::string staging = AttemptStaging(t);
  // The row of this attempt leaves the history: its end is recorded anew.
  std::erase_if(t.history, [&](const AttemptRow& a) { return a.attempt == row.attempt; });
  if (!adopted) {
    t.attempts = latest;
    AttemptRow lost = row;
    lost.status = "lost";
    lost.finished_at = clock_->Now();
    lost.message = "the engine stopped while this attempt ran, and the executor no longer has it";
    t.history.push_back(lost);
    NS_RETURN_IF_ERROR(SaveAttempt(lost));
    RemoveAttemptStaging(staging);
    if (spec.ok()) executor_->Abandon(spec.value());
    return false;
  }
  const spec::Resources& res = step.resources;
  t.session_attempts += 1;
  t.started_at = row.started_at;
  t.finished_at = 0;
  t.state = TaskState::kRunning;
  t.pid = row.pid;
  t.spawned = true;
  running_[t.handle] = t.index;
  pool_->free.cpus -= res.cpus;
  pool_->free.memory_bytes -= res.memory_bytes;
  pool_->free.gpus -= res.gpus;
  if (pool_->separate_classes) pool_->class_free_cpus[static_cast<int>(t.cls)] -= res.cpus;
  NS_RETURN_IF_ERROR(Event("attempt_adopted", &t, ""));
  RunEvent e{RunEvent::Kind::kTaskStarted, step.id, t.id, t.item, t.attempts, "running", "adopted"};
  e.progress_file = staging + ".progress";
  observer_->OnEvent(e);
  return true;
}

// Attempts the previous engine left running whose tasks this engine did not
// reach: recorded lost, and stopped if they still run.
Status Scheduler::ResolveUnadopted() {
  for (auto& [task_id, ka] : unresolved_running_) {
    AttemptRow lost = ka.second;
    lost.status = "lost";
    lost.finished_at = clock_->Now();
    lost.message = "the engine stopped while this attempt ran; its task was not run again";
    NS_RETURN_IF_ERROR(SaveAttempt(lost));
    AttemptSpec spec;
    spec.uid = AttemptUid(task_id, lost.attempt);
    spec.record_prefix = RecordPrefix(ka.first, lost.attempt);
    executor_->Abandon(spec);
  }
  unresolved_running_.clear();
  return Status::Ok();
}

Status Scheduler::LoadPrevious() {
  auto prev = store_->ListTasks(config_.run_id);
  if (!prev.ok()) return prev.status();
  auto attempts = store_->ListAttempts(config_.run_id);
  if (!attempts.ok()) return attempts.status();
  std::set<std::string> step_ids;
  for (const auto& s : pipeline_.steps) step_ids.insert(s.id);
  std::set<std::string> gone;  // steps removed from the pipeline since
  for (const auto& row : prev.value()) {
    if (!step_ids.count(row.step)) {
      gone.insert(row.step);
      continue;
    }
    previous_[row.task_id] = {row.status, row.fingerprint};
    previous_attempts_[row.task_id] = std::max(previous_attempts_[row.task_id], row.attempts);
  }
  for (const auto& a : attempts.value()) {
    std::string step = a.task_id.substr(0, a.task_id.find('/'));
    if (!step_ids.count(step)) {
      gone.insert(step);
      continue;
    }
    // Attempt numbers are never reused: launches that were recorded but never
    // finished (the engine was killed) count too.
    previous_attempts_[a.task_id] = std::max(previous_attempts_[a.task_id], a.attempt);
    previous_history_[a.task_id].push_back(a);
    if (config_.remote && a.status == "running") {
      std::string key = a.task_id;
      if (auto slash = key.find('/'); slash != std::string::npos) key[slash] = '.';
      unresolved_running_[a.task_id] = {key, a};
    }
  }
  // A step removed from the pipeline leaves neither rows nor outputs behind.
  for (const auto& step : gone) {
    writes_.push_back([this, step] { return store_->DeleteStep(config_.run_id, step); });
    if (IsSafeStepName(step)) NS_RETURN_IF_ERROR(RemoveTree(config_.layout.StepDir(config_.run_id, step)));
  }
  return Status::Ok();
}

bool Scheduler::IsSafeStepName(const std::string& step) {
  if (step.empty() || step[0] == '_' || step[0] == '.') return false;
  for (char c : step)
    if (c == '/' || c == '\0') return false;
  return true;
}

Result<RunStatus> Scheduler::Run() {
  Status st = Start();
  if (st.ok()) st = Launch();
  if (!st.ok()) Fail(st);
  while (!Done()) {
    std::deque<AttemptResult> results = events_->Wait(NextWake());
    st = Absorb(results, events_->cancel_requested(), events_->TakePoll());
    if (st.ok()) st = Launch();
    if (!st.ok()) Fail(st);
  }
  return Finish();
}

Status Scheduler::Start() {
  started_at_ = clock_->Now();
  const Layout& L = config_.layout;
  NS_RETURN_IF_ERROR(MakeDirs(L.LogsDir(config_.run_id)));
  if (config_.resume) {
    NS_RETURN_IF_ERROR(LoadPrevious());
    // What earlier engines left in staging goes, except the folders of attempts
    // that may be adopted (they still run elsewhere).
    std::set<std::string> keep;
    for (const auto& [task, ka] : unresolved_running_) {
      std::string base = ka.first + "." + std::to_string(ka.second.attempt);
      keep.insert(base);
      keep.insert(base + ".progress");
    }
    if (keep.empty()) {
      (void)RemoveTree(L.StagingDir(config_.run_id));
    } else if (auto names = ListDir(L.StagingDir(config_.run_id)); names.ok()) {
      for (const auto& n : names.value()) {
        if (!keep.count(n)) (void)RemoveTree(L.StagingDir(config_.run_id) + "/" + n);
      }
    }
  }
  if (config_.remote) NS_RETURN_IF_ERROR(MakeDirs(run_dir_ + "/_jobs"));
  NS_RETURN_IF_ERROR(MakeDirs(L.StagingDir(config_.run_id)));
  NS_RETURN_IF_ERROR(PrepareParamEnv());
  // Preemption and cancel requests made to an earlier engine of this run are history.
  if (auto old = store_->ListEvents(config_.run_id, "preempt_requested", 0); old.ok() && !old.value().empty()) {
    preempt_requests_seen_ = old.value().back().id;
  }
  if (auto old = store_->ListEvents(config_.run_id, "cancel_requested", 0); old.ok() && !old.value().empty()) {
    cancel_requests_seen_ = old.value().back().id;
  }
  NS_RETURN_IF_ERROR(WriteRunJson("running"));
  for (size_t si : pipeline_.topo_order) {
    if (pipeline_.steps[si].needs.empty() && steps_[si].phase == StepState::Phase::kWaiting) {
      NS_RETURN_IF_ERROR(ExpandStep(si));
    }
  }
  return CheckDeadline();
}

bool Scheduler::Done() const {
  if (failing_) {
    for (const auto& [handle, ti] : running_) {
      if (tasks_[ti]->spawned) return false;
    }
    return true;
  }
  bool ready = false;
  for (const auto& ss : steps_) ready |= !ss.ready.empty();
  return running_.empty() && retry_heap_.empty() && local_results_.empty() && (!ready || cancelling_);
}

TimeMs Scheduler::NextWake() const {
  if (failing_) return kForever;
  if (!local_results_.empty()) return clock_->Now();
  TimeMs wake = retry_heap_.empty() ? kForever : retry_heap_.top().first;
  if (!preempt_heap_.empty()) wake = std::min(wake, preempt_heap_.top().first);
  return wake;
}

// Each round: take results, decide (buffering store writes), commit them in
// one transaction, then act (spawn). No I/O happens inside the transaction.
Status Scheduler::Absorb(const std::deque<AttemptResult>& in, bool cancel_requested, bool poll) {
  std::deque<AttemptResult> results = in;
  while (!local_results_.empty()) {
    results.push_back(local_results_.front());
    local_results_.pop_front();
  }
  if (failing_) {
    for (const auto& r : results) {  // ended; none is waited for
      auto it = running_.find(r.id);
      if (it == running_.end()) continue;
      ReleaseCapacity(*tasks_[it->second]);
      running_.erase(it);
    }
    return Status::Ok();
  }
  Status st = Status::Ok();
  if ((cancel_requested || cancel_asked_) && !cancelling_) st = CancelEverything();
  if (st.ok() && poll) st = ReadCancelRequests();
  if (st.ok() && poll) st = ReadPreemptRequests();
  for (const auto& r : results) {
    if (st.ok()) {
      st = HandleResult(r);
    } else if (auto it = running_.find(r.id); it != running_.end()) {
      ReleaseCapacity(*tasks_[it->second]);  // the engine failed: these ended, none is waited for
      running_.erase(it);
    }
  }
  NS_RETURN_IF_ERROR(st);
  TimeMs now = clock_->Now();
  while (!retry_heap_.empty() && retry_heap_.top().first <= now) {
    size_t ti = retry_heap_.top().second;
    retry_heap_.pop();
    tasks_[ti]->state = TaskState::kPending;
    steps_[tasks_[ti]->step].ready.push_back(ti);
  }
  NS_RETURN_IF_ERROR(FirePreemptions());
  return CheckDeadline();
}

Status Scheduler::Launch() {
  if (failing_) return Status::Ok();
  NS_RETURN_IF_ERROR(LaunchReady());
  NS_RETURN_IF_ERROR(Flush());
  SpawnPending();
  return Status::Ok();
}

// The engine itself failed: stop what runs and report why once it has ended.
// Launches that were decided but not committed never start.
void Scheduler::Fail(const Status& st) {
  if (failing_) return;
  failing_ = true;
  failed_ = st;
  to_spawn_.clear();
  local_results_.clear();
  writes_.clear();
  // Attempts that never reached the executor end here (no result will come);
  // the others are cancelled and end when their results arrive.
  for (auto it = running_.begin(); it != running_.end();) {
    Task& t = *tasks_[it->second];
    if (t.spawned) {
      executor_->Cancel(it->first);
      ++it;
    } else {
      ReleaseCapacity(t);
      it = running_.erase(it);
    }
  }
}

Result<RunStatus> Scheduler::Finish() {
  const Layout& L = config_.layout;
  if (failing_) {
    (void)store_->UpdateRun(config_.run_id, "failed", clock_->Now(), failed_.message());
    return failed_;
  }
  // Steps never reached (cancelled before their needs finished).
  for (size_t si : pipeline_.topo_order) {
    if (steps_[si].phase != StepState::Phase::kDone) {
      steps_[si].phase = StepState::Phase::kDone;
      steps_[si].status = cancelling_ ? StepStatus::kCancelled : StepStatus::kSkipped;
    }
  }
  RunStatus result = RunStatus::kSucceeded;
  for (const auto& ss : steps_) {
    if (ss.status != StepStatus::kSucceeded) result = RunStatus::kFailed;
  }
  if (cancelling_) result = RunStatus::kCancelled;
  NS_RETURN_IF_ERROR(ResolveUnadopted());
  std::string status = RunStatusName(result);
  NS_RETURN_IF_ERROR(Event("run_finished", nullptr, DumpJson(json{{"status", status}})));
  writes_.push_back([this, status] { return store_->UpdateRun(config_.run_id, status, clock_->Now(), ""); });
  NS_RETURN_IF_ERROR(Flush());
  NS_RETURN_IF_ERROR(WriteRunJson(status));
  (void)RemoveTree(L.StagingDir(config_.run_id));
  if (result == RunStatus::kSucceeded) (void)RemoveTree(L.RunCheckpoints(config_.run_id));
  RunEvent done{RunEvent::Kind::kRunFinished};
  done.status = status;
  done.duration_ms = clock_->Now() - started_at_;
  observer_->OnEvent(done);
  return result;
}

// ---------------------------------------------------------------- reports

json PinsJson(const std::map<std::string, std::vector<models::Pinned>>& pins) {
  json out = json::object();
  for (const auto& [step, list] : pins) {
    json m = json::object();
    for (const auto& p : list) {
      m[p.alias] = {{"name", p.name}, {"version", p.version}, {"ref", p.name + "@" + std::to_string(p.version)},
                    {"digest", p.digest}, {"dir", p.dir}, {"requested", p.requested},
                    {"meta", json::parse(p.meta_json, nullptr, false)}};
    }
    out[step] = m;
  }
  return out;
}


// One task as run.json and _task.json show it: argv, fingerprint, every attempt.
std::string Scheduler::TaskJson(const Task& t) const {
  json attempts = json::array();
  for (const auto& a : t.history) {
    attempts.push_back(json{{"attempt", a.attempt},    {"outcome", a.status},
                            {"exit_code", a.exit_code}, {"signal", a.signal},
                            {"started_at", a.started_at}, {"finished_at", a.finished_at},
                            {"duration_ms", a.finished_at - a.started_at},
                            {"max_rss_kb", a.max_rss_kb}, {"cpu_ms", a.cpu_ms},
                            {"capacity_class", a.capacity_class}, {"message", a.message}});
  }
  return DumpJson(json{{"task_id", t.id},         {"item", t.item},
              {"status", TaskStateName(t.state)}, {"cached", t.state == TaskState::kCached},
              {"fingerprint", t.fingerprint}, {"argv", t.argv},
              {"started_at", t.started_at}, {"finished_at", t.finished_at},
              {"attempts", attempts},    {"interruptions", t.interruptions},
              {"message", t.message}});
}

Status Scheduler::WriteTaskJson(size_t si) {
  const spec::Step& step = pipeline_.steps[si];
  const StepState& ss = steps_[si];
  std::string dir = config_.layout.StepDir(config_.run_id, step.id);
  NS_RETURN_IF_ERROR(MakeDirs(dir));
  std::string out = "{\"step\":" + DumpJson(json(step.id)) + ",\"status\":" + DumpJson(json(StepStatusName(ss.status))) +
                    ",\"fingerprint\":" + DumpJson(json(ss.fingerprint)) +
                    ",\"resources\":" +
                    DumpJson(json{{"cpus", step.resources.cpus}, {"memory_bytes", step.resources.memory_bytes},
                         {"gpus", step.resources.gpus}}) +
                    ",\"tasks\":[";
  bool first = true;
  for (size_t ti : ss.tasks) {
    if (!first) out += ",";
    first = false;
    out += "\n  " + TaskJson(*tasks_[ti]);
  }
  out += "\n]}\n";
  return WriteFileAtomic(dir + "/_task.json", out);
}

Status Scheduler::WriteRunJson(const std::string& status) {
  std::string out = "{\n";
  json head{{"run_id", config_.run_id},
            {"status", status},
            {"pipeline", {{"name", pipeline_.name}, {"version", pipeline_.version},
                          {"file", pipeline_.file}, {"spec_hash", pipeline_.hash}}},
            {"params", json::parse(spec::ParamValuesToJson(config_.params))},
            {"resumed", config_.resume},
            {"started_at", started_at_},
            {"finished_at", status == "running" ? 0 : clock_->Now()},
            {"capacity", {{"cpus", executor_->capacity().cpus},
                          {"memory_bytes", executor_->capacity().memory_bytes},
                          {"gpus", executor_->capacity().gpus}}},
            // Counts no machine changes: SQL statements and transactions this
            // engine ran against the store for the run (see bench/dag_overhead).
            {"engine", {{"sql_statements", store_->statements()}, {"transactions", store_->transactions()}}}};
  if (!config_.models.empty()) head["models"] = PinsJson(config_.models);
  if (!config_.images.empty()) {
    json im = json::object();
    for (const auto& [step, image] : config_.images) im[step] = {{"ref", image.ref}, {"id", image.id}};
    head["images"] = im;
  }
  if (!config_.manifests.empty()) head["manifests"] = config_.manifests;
  if (auto stats = executor_->Stats(); !stats.empty()) {
    json ex = json::object();
    for (const auto& [name, n] : stats) ex[name] = n;
    head["executor"] = ex;
  }
  if (config_.deadline) {
    json est = json::array();
    for (const auto& e : estimates_) est.push_back({{"at", e.at}, {"finish", e.finish}});
    TimeMs finished = status == "running" ? 0 : clock_->Now();
    head["deadline"] = {{"at", config_.deadline},
                        {"met", status == "running" ? json(nullptr) : json(finished <= config_.deadline &&
                                                                          status == "succeeded")},
                        {"escalated", escalated_},
                        {"escalated_at", escalated_at_},
                        {"reason", escalation_reason_},
                        {"estimates", est}};
  }
  for (auto it = head.begin(); it != head.end(); ++it) {
    out += "  " + DumpJson(json(it.key())) + ": " + DumpJson(it.value()) + ",\n";
  }
  out += "  \"steps\": [";
  for (size_t k = 0; k < pipeline_.topo_order.size(); ++k) {
    size_t si = pipeline_.topo_order[k];
    const StepState& ss = steps_[si];
    int counts[4] = {0, 0, 0, 0};  // succeeded, cached, failed, other
    TimeMs cpu = 0;
    for (size_t ti : ss.tasks) {
      const Task& t = *tasks_[ti];
      counts[t.state == TaskState::kSucceeded ? 0 : t.state == TaskState::kCached ? 1 : t.state == TaskState::kFailed ? 2 : 3]++;
      for (const auto& a : t.history) cpu += a.cpu_ms;
    }
    json sj{{"step", pipeline_.steps[si].id}, {"status", StepStatusName(ss.status)},
            {"fingerprint", ss.fingerprint},  {"started_at", ss.started_at},
            {"finished_at", ss.finished_at},  {"tasks_total", ss.tasks.size()},
            {"tasks_succeeded", counts[0]},   {"tasks_cached", counts[1]},
            {"tasks_failed", counts[2]},      {"cpu_ms", cpu}, {"message", ss.error}};
    if (config_.deadline || config_.preempt_rate > 0) {
      // What the deadline and the spot market planned with.
      double rate = MsPerInputSecond(si);
      sj["estimate"] = {{"ms_per_task", EstimateMs(si)},
                        {"ms_per_input_second", rate > 0 ? json(rate) : json(nullptr)}};
    }
    std::string s = DumpJson(sj);
    s.pop_back();
    out += std::string(k ? "," : "") + "\n    " + s + ",\"tasks\":[";
    bool first = true;
    for (size_t ti : ss.tasks) {
      out += std::string(first ? "" : ",") + "\n      " + TaskJson(*tasks_[ti]);
      first = false;
    }
    out += "]}";
  }
  out += "\n  ]\n}\n";
  return WriteFileAtomic(run_dir_ + "/run.json", out);
}

}  // namespace ns
