#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/remote.h"
#include "server/server.h"

namespace ns::cli {

int Main(int argc, char** argv) {
  // The step's own words follow `--` as they are: no option parsing for them.
  if (argc > 1 && std::string(argv[1]) == "container-exec") return ContainerExecCommand(argc, argv);
  CLI::App app{
      "nightshift: runs batch ML inference pipelines over video, on one machine or a cluster.\n"
      "Exit codes: 0 ok, 1 run failed, 2 bad input, 3 engine error, 130 cancelled."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "nightshift 0.1.0");

  RunOptions run;
  auto* run_cmd = app.add_subcommand("run", "Run a pipeline (or several at once, or resume a run), locally or on Slurm");
  run_cmd->add_option("files", run.files, "Pipeline YAML file(s): several run at once, sharing the machine");
  run_cmd->add_option("--batch", run.batch,
                      "A batch file: one JSON object per line, {\"pipeline\": FILE, \"params\": {...}, "
                      "\"priority\": N}");
  run_cmd->add_option("-p,--param", run.params, "Set a param: -p name=value (repeatable)");
  run_cmd->add_option("--root", run.root, "Root folder for runs/ and nightshift.db (default: $NIGHTSHIFT_ROOT or .)");
  run_cmd->add_option("--resume", run.resume, "Continue RUN_ID: reuse unchanged committed outputs, rerun the rest");
  run_cmd->add_flag("--json", run.json, "Print events as JSON lines on stdout");
  run_cmd->add_flag("--plain", run.plain, "Plain progress lines even on a terminal");
  run_cmd->add_option("--cpus", run.cpus, "CPUs the local executor may use (default: all)");
  run_cmd->add_option("--memory", run.memory, "Memory the local executor may use, e.g. 8GiB (default: all)");
  run_cmd->add_option("--deadline", run.deadline,
                      "Finish by HH:MM (the next such local time) or within a duration (6h, 90m): when the "
                      "estimate passes it, spot tasks move to on-demand");
  run_cmd->add_option("--spot-cpus", run.spot_cpus,
                      "CPUs for spot attempts (with --on-demand-cpus; default: all cpus serve both classes)");
  run_cmd->add_option("--on-demand-cpus", run.on_demand_cpus, "CPUs for on-demand attempts (with --spot-cpus)");
  run_cmd->add_option("--catalogue", run.catalogue,
                      "Instance catalogue YAML: every step must fit an instance, and the run's cost is "
                      "recorded in run.json (default: $NIGHTSHIFT_CATALOGUE, else <root>/instances.yaml)");
  run_cmd->add_option("--preempt", run.preempt,
                      "A reproducible spot market: RATE[,seed=N], the chance (0 to 1) that a spot attempt is "
                      "preempted at a moment drawn over its step's estimated duration");

  std::string vfile;
  bool vquiet = false;
  run_cmd->add_option("--executor", run.executor, "Where attempts run: local (default) or slurm (docs/slurm.md)")
      ->check(CLI::IsMember({"local", "slurm"}));
  run_cmd->add_option("--slurm-config", run.slurm_config,
                      "Slurm settings file (default: $NIGHTSHIFT_SLURM_CONFIG, else ROOT/slurm.yaml if present)");
  run_cmd->add_option("--slurm-partition", run.slurm_partitions,
                      "Partition of a capacity class: spot=NAME or on-demand=NAME (repeatable)");
  run_cmd->add_option("--slurm-account", run.slurm_account, "Slurm account for every job");
  run_cmd->add_option("--slurm-qos", run.slurm_qos, "Slurm QOS for every job");
  run_cmd->add_option("--sbatch-arg", run.sbatch_args, "An extra sbatch argument, as it is (repeatable)")
      ->allow_extra_args(false);
  auto* validate = app.add_subcommand("validate", "Check a pipeline file; report every error with file:line:col");
  validate->add_option("file", vfile, "Pipeline YAML file")->required();
  validate->add_flag("-q,--quiet", vquiet, "Print nothing when the file is valid");

  InspectOptions io;
  auto add_root = [&](CLI::App* c) {
    c->add_option("--root", io.root, "Root folder (default: $NIGHTSHIFT_ROOT or .)");
  };
  auto* runs = app.add_subcommand("runs", "List runs, newest first");
  add_root(runs);
  runs->add_option("--server", io.server, "Ask a running `nightshift serve` at this URL (token: $NIGHTSHIFT_TOKEN)");
  runs->add_option("-n,--limit", io.limit, "How many runs");
  runs->add_flag("--json", io.json, "JSON output");

  auto* show = app.add_subcommand("show", "Show one run: per step status, attempts, durations");
  add_root(show);
  show->add_option("--server", io.server, "Ask a running `nightshift serve` at this URL (token: $NIGHTSHIFT_TOKEN)");
  show->add_option("run", io.run_id, "Run id")->required();
  show->add_flag("--json", io.json, "JSON output (every task)");

  auto* logs = app.add_subcommand("logs", "Print a task's stdout/stderr");
  add_root(logs);
  logs->add_option("--server", io.server, "Ask a running `nightshift serve` at this URL (token: $NIGHTSHIFT_TOKEN)");
  logs->add_option("run", io.run_id, "Run id")->required();
  logs->add_option("step", io.step, "Step id")->required();
  logs->add_option("--item", io.item, "Item of a foreach step (its folder name)");
  logs->add_option("--attempt", io.attempt, "Attempt number (default: the latest)");
  logs->add_option("--stream", io.stream, "out, err or both")->check(CLI::IsMember({"out", "err", "both"}));
  logs->add_option("-n,--tail", io.tail, "Only the last N lines of each log (with -f: then follow)")
      ->check(CLI::NonNegativeNumber);
  logs->add_flag("-f,--follow", io.follow, "Keep printing until the attempt ends");

  std::string preempt_task;
  auto* preempt = app.add_subcommand(
      "preempt", "Send a preemption notice to a running attempt (SIGTERM, its step's notice, SIGKILL)");
  add_root(preempt);
  preempt->add_option("run", io.run_id, "Run id")->required();
  preempt->add_option("task", preempt_task, "Task id: STEP or STEP/ITEM")->required();
  auto* cancel = app.add_subcommand("cancel", "Cancel a running run: its tasks get SIGTERM, then SIGKILL");
  add_root(cancel);
  cancel->add_option("--server", io.server, "Ask a running `nightshift serve` at this URL (token: $NIGHTSHIFT_TOKEN)");
  cancel->add_option("run", io.run_id, "Run id")->required();

  server::ServeOptions so;
  auto* serve = app.add_subcommand(
      "serve", "Serve a durable job queue, an HTTP API, a web UI and metrics over one root (docs/server.md)");
  serve->add_option("--root", so.run.root, "Root folder (default: $NIGHTSHIFT_ROOT or .)");
  serve->add_option("--listen", so.listen, "HOST:PORT to listen on (default 127.0.0.1:8470; port 0: any free one)");
  serve->add_flag("--allow-remote", so.allow_remote,
                  "Allow a --listen address other machines can reach (requests still need the token)");
  serve->add_option("--max-runs", so.max_runs, "Runs driven at once; more jobs wait in the queue (default 4)");
  serve->add_option("--inbox", so.inbox, "A folder: each file that finishes arriving there becomes a job");
  serve->add_option("--inbox-pipeline", so.inbox_pipeline, "The pipeline inbox jobs run");
  serve->add_option("--inbox-param", so.inbox_param, "The param that gets the arrived file's path (default video)");
  serve->add_option("--cpus", so.run.cpus, "CPUs the local executor may use (default: all)");
  serve->add_option("--memory", so.run.memory, "Memory the local executor may use, e.g. 8GiB (default: all)");
  serve->add_option("--spot-cpus", so.run.spot_cpus, "CPUs for spot attempts (with --on-demand-cpus)");
  serve->add_option("--on-demand-cpus", so.run.on_demand_cpus, "CPUs for on-demand attempts (with --spot-cpus)");
  serve->add_option("--catalogue", so.run.catalogue, "Instance catalogue YAML: runs are billed on it");
  serve->add_option("--executor", so.run.executor, "Where attempts run: local (default) or slurm")
      ->check(CLI::IsMember({"local", "slurm"}));
  serve->add_option("--slurm-config", so.run.slurm_config, "Slurm settings file (docs/slurm.md)");
  serve->add_option("--slurm-partition", so.run.slurm_partitions, "Partition of a capacity class: spot=NAME or on-demand=NAME");
  serve->add_option("--slurm-account", so.run.slurm_account, "Slurm account for every job");
  serve->add_option("--slurm-qos", so.run.slurm_qos, "Slurm QOS for every job");
  serve->add_option("--sbatch-arg", so.run.sbatch_args, "An extra sbatch argument, as it is (repeatable)");

  SubmitOptions sub;
  auto* submit = app.add_subcommand("submit", "Queue a job for `nightshift serve` (a run of a pipeline, once per --key)");
  submit->add_option("file", sub.file, "Pipeline YAML file")->required();
  submit->add_option("-p,--param", sub.params, "Set a param: -p name=value (repeatable)");
  submit->add_option("--priority", sub.priority, "Higher starts first (default 0)");
  submit->add_option("--deadline", sub.deadline, "Finish by HH:MM or within a duration (6h)");
  submit->add_option("--key", sub.key, "Idempotency key: a key makes one job, ever");
  submit->add_option("--max-attempts", sub.max_attempts, "Failed runs before the job is dead-lettered (default 3)")
      ->check(CLI::Range(1, 100));
  submit->add_option("--server", sub.server, "Server URL (default: the server serving --root, else its store directly)");
  submit->add_option("--root", sub.root, "Root folder (default: $NIGHTSHIFT_ROOT or .)");
  submit->add_flag("--json", sub.json, "JSON output");
  submit->add_option("--manifest", sub.manifest,
                     "A manifest (JSON array or JSON Lines, docs/manifests.md): one job per entry, keyed by it");
  submit->add_option("--manifest-param", sub.manifest_param,
                     "The param that gets each entry's path (default: the pipeline's one required path param)");

  CostOptions co;
  auto* cost = app.add_subcommand(
      "cost", "What a run cost on a catalogue's instances, vs all on-demand and one big machine");
  cost->add_option("--root", co.root, "Root folder (default: $NIGHTSHIFT_ROOT or .)");
  cost->add_option("run", co.run_id, "Run id")->required();
  cost->add_option("--catalogue", co.catalogue,
                   "Instance catalogue YAML (default: $NIGHTSHIFT_CATALOGUE, else "
                   "<root>/instances.yaml)");
  cost->add_flag("--json", co.json, "JSON output");

  std::string task_spec;
  ModelOptions mo;
  auto* model = app.add_subcommand("model", "The model registry: push, list, show, rm, verify (docs/models.md)");
  model->require_subcommand(1);
  auto model_sub = [&](const char* name, const char* help) {
    auto* c = model->add_subcommand(name, help);
    c->add_option("--root", mo.root, "Root folder (default: $NIGHTSHIFT_ROOT or .)");
    c->add_flag("--json", mo.json, "JSON output");
    c->callback([&mo, name] { mo.action = name; });
    return c;
  };
  auto* mpush = model_sub("push", "Add a version of a model: a file or a folder, copied and hashed (sha256)");
  mpush->add_option("name", mo.name, "Model name")->required();
  mpush->add_option("path", mo.path, "A file, or a folder of files")->required();
  mpush->add_option("--version", mo.version, "The version number (default: the next; never one used before)")
      ->check(CLI::PositiveNumber);
  mpush->add_option("--meta", mo.meta, "Metadata: --meta key=value (repeatable)");
  auto* mlist = model_sub("list", "List model versions");
  mlist->add_option("name", mo.name, "Only this model");
  auto* mshow = model_sub("show", "Show a version: digest, files, metadata, the runs that used it");
  mshow->add_option("ref", mo.name, "NAME, NAME@latest or NAME@VERSION")->required();
  auto* mrm = model_sub("rm", "Remove a version (refused while a run that has not finished uses it)");
  mrm->add_option("ref", mo.name, "NAME@VERSION")->required();
  auto* mverify = model_sub("verify", "Hash every file of a version again and compare (exit 1 on a mismatch)");
  mverify->add_option("ref", mo.name, "NAME, NAME@latest or NAME@VERSION")->required();

  auto* task_exec = app.add_subcommand("task-exec", "Run one attempt on a cluster node (the Slurm executor's job body)");
  task_exec->add_option("spec", task_spec, "The attempt's spec (.json, written by the engine)")->required();
  task_exec->group("");  // not for users: hidden from --help

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? kExitOk : kExitBadInput;
  }
  if (*run_cmd) return RunCommand(run);
  if (*validate) return ValidateCommand(vfile, vquiet);
  if (*runs) return io.server.empty() ? RunsCommand(io) : RemoteRuns(io);
  if (*show) return io.server.empty() ? ShowCommand(io) : RemoteShow(io);
  if (*logs) return io.server.empty() ? LogsCommand(io) : RemoteLogs(io);
  if (*cancel) return io.server.empty() ? CancelCommand(io) : RemoteCancel(io);
  if (*serve) return server::Server(so).Run();
  if (*submit) return SubmitCommand(sub);
  if (*model) return ModelCommand(mo);
  if (*preempt) return PreemptCommand(io, preempt_task);
  if (*cost) return CostCommand(co);
  if (*task_exec) return TaskExecCommand(task_spec);
  return kExitBadInput;
}

}  // namespace ns::cli
