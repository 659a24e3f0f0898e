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
#include "cli/run_setup.h"
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
    rc = Create(&sh, &runs[i]);
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
