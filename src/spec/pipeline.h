// Pipeline: a validated pipeline spec (params, defaults, and a DAG of steps).
//
// Produced only by ParsePipeline (parser.h), which guarantees: step ids are valid
// and unique, every `needs` names a known step, the graph has no cycle, every
// template names a known param, a needed step, or `item` in a foreach step.
// Immutable after parsing; safe to share read-only between threads.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "spec/diagnostics.h"
#include "spec/template.h"

namespace ns::spec {

enum class ParamType { kString, kInt, kNumber, kBool, kPath, kList };
const char* ParamTypeName(ParamType t);

struct Param {
  std::string name;
  ParamType type = ParamType::kString;
  bool required = false;
  bool has_default = false;
  std::string default_scalar;             // canonical text of the default
  std::vector<std::string> default_list;  // for kList
  std::string description;
  SourcePos pos;
};

struct Resources {
  double cpus = 1;
  int64_t memory_bytes = 0;  // 0: not limited / not counted
  int gpus = 0;
};

// Which attempt outcomes a retry policy retries. Bit flags.
enum RetryOn : unsigned {
  kRetryRetryable = 1u << 0,  // exit code 75 (EX_TEMPFAIL); also lost attempts
  kRetryFailed = 1u << 1,     // any other non-zero exit code
  kRetryTimedOut = 1u << 2,
  kRetrySignal = 1u << 3,  // killed by a signal it did not ask for
};

struct RetryPolicy {
  int max_attempts = 3;
  int64_t backoff_ms = 1000;       // first delay; doubles each retry
  int64_t max_backoff_ms = 300000;  // cap
  unsigned on = kRetryRetryable;
};

enum class ForeachKind { kNone, kLiteral, kParam, kGlob, kManifest };

struct Foreach {
  ForeachKind kind = ForeachKind::kNone;
  std::vector<std::string> literal;  // kLiteral
  std::string param;                 // kParam: a list param
  std::string step;                  // kGlob: the upstream step whose output is globbed
  std::string pattern;               // kGlob: relative glob, e.g. "*.mp4" or "*/x.json"
  Template manifest;                 // kManifest: the manifest file (params, pipeline.dir)
  std::string manifest_raw;
};

// `models: {ALIAS: REF}`: a registered model the step uses, pinned when the run
// starts and given to it read-only as NIGHTSHIFT_MODEL_DIR_<ALIAS> and
// ${models.ALIAS}. REF is NAME, NAME@latest or NAME@VERSION, and may use
// ${params.X}; a REF that renders empty means the step runs without it.
struct ModelUse {
  std::string alias;
  Template ref;
  std::string raw;
  SourcePos pos;
};

struct EnvVar {
  std::string name;
  Template value;
  std::string raw;
};

struct SpotPolicy {
  bool enabled = false;            // `spot: true`
  int max_interruptions = 3;       // preemptions before the task moves to on-demand
  int64_t notice_ms = 120000;      // SIGTERM to SIGKILL when preempted
};

struct Step {
  std::string id;
  SourcePos pos;
  std::string description;
  // Exactly one of: argv template words (run), or shell + script.
  std::vector<Template> run;
  std::vector<std::string> run_raw;  // the words as written, for display
  std::string shell;                 // e.g. "bash"; empty for run steps
  std::string script;
  std::vector<std::string> needs;
  Foreach foreach;
  Resources resources;
  std::vector<EnvVar> env;
  int64_t timeout_ms = 0;  // 0: none
  int64_t grace_ms = 10000;
  RetryPolicy retry;
  bool cache = true;
  // The step can resume from a checkpoint: it gets NIGHTSHIFT_CHECKPOINT_DIR, a
  // folder kept across its attempts (made only for such steps).
  bool checkpoint = false;
  // Capacity class: spot capacity is cheaper and may be taken away after a
  // notice (SIGTERM, `notice`, SIGKILL). A preempted attempt never counts
  // against retry.max_attempts; after `max_interruptions` preemptions the task
  // runs on on-demand capacity.
  SpotPolicy spot;
  std::vector<ModelUse> models;
  // `image: NAME[:TAG|@sha256:DIGEST]`: the step runs in this OCI image through
  // podman (docs/containers.md); may use ${params.X}. Empty: a plain process.
  Template image;
  std::string image_raw;
  SourcePos image_pos;

  bool is_shell() const { return !shell.empty(); }
};

struct Pipeline {
  std::string file;  // absolute path of the spec file
  std::string dir;   // its folder (${pipeline.dir})
  std::string text;  // the spec exactly as read
  std::string hash;  // content hash of `text`
  std::string name;
  std::string version;
  std::string description;
  std::vector<Param> params;
  std::vector<Step> steps;          // in file order
  std::vector<size_t> topo_order;   // indices into steps, dependencies first

  const Step* FindStep(const std::string& id) const;
  const Param* FindParam(const std::string& name) const;
};

}  // namespace ns::spec
