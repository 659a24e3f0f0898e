// Store: the durable record of runs, tasks, attempts and events (SQLite, WAL).
//
// One Store object per thread: a Store is not thread-safe, but any number of
// Stores (in one or many processes) may share one database file; SQLite's WAL
// and a busy timeout serialise writers. The schema is versioned
// (PRAGMA user_version) and migrated forward on Open. Every state change the
// engine makes goes through Transaction(), so a crash leaves either all of a
// change or none of it.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace ns {

struct RunRow {
  std::string run_id;
  std::string pipeline;       // pipeline name
  std::string pipeline_file;  // absolute path of the spec as given
  std::string spec_hash;
  std::string params_json;
  std::string status;  // running, succeeded, failed, cancelled, lost
  int64_t created_at = 0;
  int64_t finished_at = 0;
  int64_t pid = 0;  // of the engine process driving the run
  std::string host;
  std::string message;
  std::string owner;  // ProcessIdentity::ToString() of that engine; "" before schema 2
};

struct TaskRow {
  std::string run_id;
  std::string task_id;  // "step" or "step/item"
  std::string step;
  std::string item;
  std::string status;  // pending, running, retrying, succeeded, cached, failed, skipped, cancelled
  std::string fingerprint;
  int attempts = 0;
  std::string argv_json;
  int64_t started_at = 0;
  int64_t finished_at = 0;
  std::string message;
};

struct AttemptRow {
  std::string run_id;
  std::string task_id;
  int attempt = 0;
  std::string status;  // running, succeeded, failed, retryable, timed_out, signal, cancelled, lost
  int exit_code = -1;
  int signal = 0;
  int64_t pid = 0;
  int64_t started_at = 0;
  int64_t finished_at = 0;
  int64_t max_rss_kb = 0;
  int64_t cpu_ms = 0;
  std::string message;
  std::string capacity_class = "on-demand";  // or "spot"
  int64_t input_ms = 0;  // milliseconds of video its task had as input (0: not video); written, not listed
};

// A job of the server's queue (docs/server.md, "Jobs").
struct JobRow {
  std::string job_id;
  std::string key;            // idempotency key; "" when none
  std::string pipeline_file;  // absolute
  std::string params_json;    // a JSON object of NAME: VALUE
  int priority = 0;
  int64_t deadline = 0;       // ms since the epoch; 0: none
  std::string state;          // pending, leased, succeeded, cancelled, dead
  int attempts = 0;           // runs of it that failed
  int max_attempts = 3;
  std::string run_id;         // "" until first leased; later deliveries resume it
  std::string resume;         // a run to resume rather than create (retry of a run)
  std::string lease_owner;    // ProcessIdentity of the server holding the lease
  int64_t lease_expires = 0;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  std::string message;
};

// Filters of Store::ListRunsFiltered; "" matches everything.
struct RunFilter {
  std::string status;    // exact
  std::string pipeline;  // exact pipeline name
  std::string text;      // substring of run id, pipeline name or params
  std::string before;    // only runs whose id sorts before this one (the next page)
  int limit = 50;
};

// One version of a model in the registry (docs/models.md). Its files are under
// <root>/models/<name>/<version>/; removed_at != 0: removed (the number stays taken).
struct ModelRow {
  std::string name;
  int64_t version = 0;
  std::string digest;  // "sha256:<hex>" of the version's manifest
  int64_t size_bytes = 0;
  int64_t files = 0;
  std::string meta_json = "{}";
  std::string source;  // the path it was pushed from
  int64_t created_at = 0;
  int64_t removed_at = 0;
};

struct EventRow {
  int64_t id = 0;
  std::string run_id;
  int64_t time = 0;
  std::string kind;
  std::string task_id;
  int attempt = 0;
  std::string data;
};

class Store {
 public:
  static constexpr int kSchemaVersion = 6;

  enum class Mode {
    kReadWrite,  // creates the file if needed and migrates it to kSchemaVersion
    kReadOnly,   // never creates, writes or migrates; every write method fails
  };
  // Opens the database. kReadWrite (the default) creates and migrates it. Errors:
  // the folder is not writable, the file is not a database, or it has a newer
  // schema. kReadOnly also works on read-only media (a WAL database whose -shm
  // cannot be created there is opened immutable: a writer elsewhere is not
  // seen) and reads an older schema through temporary views where the change is
  // additive; otherwise it asks for a write command to migrate first. Errors:
  // the file is missing or not a database, or its schema is newer or too old.
  static Result<std::unique_ptr<Store>> Open(const std::string& path, Mode mode = Mode::kReadWrite);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Runs `fn` inside BEGIN IMMEDIATE ... COMMIT; rolls back if `fn` fails.
  Status Transaction(const std::function<Status()>& fn);

  Status InsertRun(const RunRow& r);
  Status UpdateRun(const std::string& run_id, const std::string& status, int64_t finished_at,
                   const std::string& message);
  // Makes the calling engine the run's owner (status running again) and stores
  // the params it runs with (a resume's -p values stay for the next resume).
  Status SetRunOwner(const std::string& run_id, int64_t pid, const std::string& host,
                     const std::string& owner, const std::string& params_json);
  Status UpsertTask(const TaskRow& t);
  // Deletes a task's row and its attempts' rows.
  Status DeleteTask(const std::string& run_id, const std::string& task_id);
  // Deletes every task and attempt row of a step (removed from the pipeline).
  Status DeleteStep(const std::string& run_id, const std::string& step);
  Status UpsertAttempt(const AttemptRow& a);
  Status AppendEvent(const EventRow& e);

  Result<std::optional<RunRow>> GetRun(const std::string& run_id);
  // Newest first.
  Result<std::vector<RunRow>> ListRuns(int limit);
  Result<std::vector<TaskRow>> ListTasks(const std::string& run_id);
  Result<std::vector<AttemptRow>> ListAttempts(const std::string& run_id);
  // Mean duration of the succeeded attempts of `step` in every run of the
  // pipeline named `pipeline`; 0 when it never succeeded.
  Result<int64_t> MeanSucceededMs(const std::string& pipeline, const std::string& step);
  // Milliseconds of run time per second of input video of the step's
  // succeeded attempts whose input was video, in every run of the pipeline; 0
  // when there are none.
  Result<double> MsPerInputSecond(const std::string& pipeline, const std::string& step);
  // Events of one kind after `after_id`, oldest first.
  Result<std::vector<EventRow>> ListEvents(const std::string& run_id, const std::string& kind,
                                           int64_t after_id);

  // Jobs. SubmitJob inserts `j` unless its key names a job already: then it
  // returns that job and false (one key, one job, ever). Call it inside no
  // transaction: it opens its own.
  Result<std::pair<JobRow, bool>> SubmitJob(const JobRow& j);
  Status UpdateJob(const JobRow& j);
  Result<std::optional<JobRow>> GetJob(const std::string& job_id);
  // The job that made or will resume the run (its run_id, or its resume).
  Result<std::optional<JobRow>> JobOfRun(const std::string& run_id);
  Result<std::optional<JobRow>> JobWithKey(const std::string& key);
  // Newest first; state "" lists every state.
  Result<std::vector<JobRow>> ListJobs(const std::string& state, int limit);
  // The jobs a server may lease now, in launch order (priority, then age):
  // pending ones, and leased ones whose lease expired before `now`.
  Result<std::vector<JobRow>> LeasableJobs(int64_t now, int limit);
  // Leased jobs whatever their lease (a starting server checks their owners).
  Result<std::vector<JobRow>> LeasedJobs();
  // Pushes every lease held by `owner` to `expires`; returns how many.
  Result<int64_t> RenewLeases(const std::string& owner, int64_t expires);
  Result<std::vector<std::pair<std::string, int64_t>>> JobCounts();
  // Runs newest first, filtered; each with the id of the job that made it ("" if none).
  Result<std::vector<std::pair<RunRow, std::string>>> ListRunsFiltered(const RunFilter& f);
  Result<std::vector<std::pair<std::string, int64_t>>> RunCounts();
  // Every finished attempt's duration with its step, for histograms: (step, status, ms).
  Status ForEachAttempt(const std::function<void(const std::string& step, const std::string& status,
                                                 const std::string& capacity_class, int64_t ms)>& fn);

  // Tasks per step as the engine expanded them since the run was last created or
  // resumed (its step_started events), in the order the steps started: a task has a row only
  // once it has finished, so this is how pending tasks are counted.
  Result<std::vector<std::pair<std::string, int64_t>>> StepTaskCounts(const std::string& run_id);

  // The model registry (engine/models.h keeps the files). ListModels: every
  // version of `name` ("" for all names), oldest first; removed ones too when
  // `removed`. MaxModelVersion counts removed versions (a number is never
  // given twice); 0 when the name has none.
  Status InsertModel(const ModelRow& m);
  Status RemoveModel(const std::string& name, int64_t version, int64_t now);
  Result<std::vector<ModelRow>> ListModels(const std::string& name, bool removed = false);
  Result<int64_t> MaxModelVersion(const std::string& name);
  // A run pinned name@version (recorded when it is created or resumed).
  Status AddRunModel(const std::string& run_id, const std::string& name, int64_t version);
  // The runs that pinned name@version; only those not finished when `unfinished`.
  Result<std::vector<std::string>> RunsUsingModel(const std::string& name, int64_t version, bool unfinished);

  // Statements and transactions that changed the database through this Store
  // (BEGIN and COMMIT are not counted as statements).
  int64_t statements() const { return statements_; }
  int64_t transactions() const { return transactions_; }

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  static Result<std::unique_ptr<Store>> OpenReadOnly(const std::string& path);
  Status Exec(const std::string& sql);
  Status Migrate();
  sqlite3_stmt* Prepare(const char* sql);  // cached; nullptr on error (see last_error_)
  Status Error(const std::string& what);

  sqlite3* db_;  // owned
  std::vector<std::pair<const char*, sqlite3_stmt*>> stmts_;
  int64_t statements_ = 0;
  int64_t transactions_ = 0;
};

}  // namespace ns
