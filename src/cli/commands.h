// Options and entry points of each command; main.cc wires them to CLI11.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ns::cli {

struct RunOptions {
  std::vector<std::string> files;  // several: one run each, all over one capacity pool
  std::string batch;               // a batch file (JSON lines); its runs join `files`
  std::vector<std::string> params;  // "k=v"
  std::string root;
  std::string resume;
  bool json = false;
  bool plain = false;
  double cpus = 0;       // 0: this machine's
  std::string memory;    // "": this machine's
  double spot_cpus = -1;       // with on_demand_cpus: cpus of each capacity class
  double on_demand_cpus = -1;
  std::string preempt;   // "RATE[,seed=N]": a reproducible spot market
  std::string deadline;  // "07:00" (the next such local time) or "6h" (from now)
  std::string catalogue;  // "": $NIGHTSHIFT_CATALOGUE, else <root>/instances.yaml (none: no cost)
  std::string executor = "local";  // or "slurm"
  std::string slurm_config;        // "": $NIGHTSHIFT_SLURM_CONFIG, else <root>/slurm.yaml if it exists
  std::vector<std::string> slurm_partitions;  // "CLASS=PARTITION"
  std::string slurm_account;
  std::string slurm_qos;
  std::vector<std::string> sbatch_args;
};
int RunCommand(const RunOptions& o);

int ValidateCommand(const std::string& file, bool quiet);

struct InspectOptions {
  std::string root;
  std::string run_id;
  std::string step;
  std::string item;
  int attempt = 0;  // 0: the latest
  bool follow = false;
  int tail = -1;  // logs: print only the last N lines of each log (-1: all)
  bool json = false;
  std::string stream = "both";  // out, err, both
  int limit = 20;
  std::string server;  // --server URL: ask a running `nightshift serve` instead of the root
};
int RunsCommand(const InspectOptions& o);
int ShowCommand(const InspectOptions& o);
int LogsCommand(const InspectOptions& o);
int CancelCommand(const InspectOptions& o);
// `nightshift preempt RUN TASK`: a preemption notice to one running attempt.
int PreemptCommand(const InspectOptions& o, const std::string& task);

struct CostOptions {
  std::string root;
  std::string run_id;
  std::string catalogue;  // "": $NIGHTSHIFT_CATALOGUE, else <root>/instances.yaml
  bool json = false;
};
// `nightshift cost RUN`: the run's cost on a catalogue's instances (docs/cli.md, "Cost").
int CostCommand(const CostOptions& o);

// `nightshift submit PIPELINE`: queues a job for `nightshift serve` (docs/server.md).
struct SubmitOptions {
  std::string file;
  std::vector<std::string> params;
  int priority = 0;
  std::string deadline;
  std::string key;
  int max_attempts = 3;
  std::string manifest;        // one job per entry (docs/manifests.md)
  std::string manifest_param;  // the param that gets an entry's path
  std::string server;  // "": the server serving --root if one runs, else straight into its store
  std::string root;
  bool json = false;
};
int SubmitCommand(const SubmitOptions& o);

// `nightshift model push|list|show|rm|verify` (docs/models.md).
struct ModelOptions {
  std::string action;
  std::string name;  // NAME (push, list) or NAME[@VERSION] (show, rm, verify)
  std::string path;  // push
  int64_t version = 0;
  std::vector<std::string> meta;  // "k=v"
  std::string root;
  bool json = false;
};
int ModelCommand(const ModelOptions& o);

// `nightshift container-exec ... -- COMMAND`: an attempt in a container (the
// engine's wrapper for steps with image:, docs/containers.md; not for users).
int ContainerExecCommand(int argc, char** argv);

// `nightshift task-exec SPEC.json`: runs one attempt on a cluster node and
// writes its result record (the Slurm executor's job body; not for users).
int TaskExecCommand(const std::string& spec_path);

}  // namespace ns::cli
