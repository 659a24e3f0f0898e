#include "store/store.h"

#include <sqlite3.h>

#include <unistd.h>

#include <cstring>

namespace ns {

namespace {

// Forward-only migrations; index i upgrades user_version i to i+1.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE runs(
  run_id TEXT PRIMARY KEY,
  pipeline TEXT NOT NULL,
  pipeline_file TEXT NOT NULL,
  spec_hash TEXT NOT NULL,
  params TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL DEFAULT 0,
  pid INTEGER NOT NULL DEFAULT 0,
  host TEXT NOT NULL DEFAULT '',
  message TEXT NOT NULL DEFAULT '');
CREATE TABLE tasks(
  run_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  step TEXT NOT NULL,
  item TEXT NOT NULL,
  status TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  argv TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL,
  message TEXT NOT NULL,
  PRIMARY KEY(run_id, task_id));
CREATE TABLE attempts(
  run_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  status TEXT NOT NULL,
  exit_code INTEGER NOT NULL,
  signal INTEGER NOT NULL,
  pid INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL,
  max_rss_kb INTEGER NOT NULL,
  cpu_ms INTEGER NOT NULL,
  message TEXT NOT NULL,
  PRIMARY KEY(run_id, task_id, attempt));
CREATE TABLE events(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id TEXT NOT NULL,
  time INTEGER NOT NULL,
  kind TEXT NOT NULL,
  task_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  data TEXT NOT NULL);
CREATE INDEX events_by_run ON events(run_id, id);
)sql",
    // 2: the engine that owns a run, as a ProcessIdentity ("host:pid:start:boot").
    R"sql(
ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
)sql",
    // 3: the capacity class an attempt ran on (spot capacity may be preempted).
    R"sql(
ALTER TABLE attempts ADD COLUMN capacity_class TEXT NOT NULL DEFAULT 'on-demand';
)sql",
    // 4: seconds of media (video) the attempt's task had as input; 0: not media.
    // Durations per second of video estimate tasks of different lengths.
    R"sql(
ALTER TABLE attempts ADD COLUMN input_ms INTEGER NOT NULL DEFAULT 0;
)sql",
    // 5: the server's job queue (docs/server.md). A key names one job, ever.
    R"sql(
CREATE TABLE jobs(
  job_id TEXT PRIMARY KEY,
  key TEXT UNIQUE,
  pipeline_file TEXT NOT NULL,
  params TEXT NOT NULL,
  priority INTEGER NOT NULL,
  deadline INTEGER NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  run_id TEXT NOT NULL,
  resume TEXT NOT NULL,
  lease_owner TEXT NOT NULL,
  lease_expires INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  message TEXT NOT NULL);
CREATE INDEX jobs_by_state ON jobs(state, priority, created_at);
CREATE INDEX jobs_by_run ON jobs(run_id);
CREATE INDEX jobs_by_resume ON jobs(resume);
CREATE INDEX runs_by_status ON runs(status, run_id);
)sql",
    // 6: the model registry (docs/models.md). A removed version keeps its row, so
    // its number is never given again; run_models says which runs pinned which.
    R"sql(
CREATE TABLE models(
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  digest TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  files INTEGER NOT NULL,
  meta TEXT NOT NULL,
  source TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  removed_at INTEGER NOT NULL,
  PRIMARY KEY(name, version));
CREATE TABLE run_models(
  run_id TEXT NOT NULL,
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  PRIMARY KEY(run_id, name, version));
CREATE INDEX run_models_by_model ON run_models(name, version);
)sql",
};

constexpr int kNumMigrations = sizeof(kMigrations) / sizeof(kMigrations[0]);
static_assert(kNumMigrations == Store::kSchemaVersion);

class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  ~Stmt() {
    if (s_) {
      sqlite3_reset(s_);
      sqlite3_clear_bindings(s_);
    }
  }
  Stmt& Bind(const std::string& v) {
    sqlite3_bind_text(s_, ++i_, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Bind(int64_t v) {
    sqlite3_bind_int64(s_, ++i_, v);
    return *this;
  }
  Stmt& Bind(int v) { return Bind(static_cast<int64_t>(v)); }
  int Step() { return sqlite3_step(s_); }
  std::string Text(int col) {
    const unsigned char* p = sqlite3_column_text(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s_, col)) : "";
  }
  int64_t Int(int col) { return sqlite3_column_int64(s_, col); }
  bool ok() const { return s_ != nullptr; }

 private:
  sqlite3_stmt* s_;
  int i_ = 0;
};

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::string& path, Mode mode) {
  if (mode == Mode::kReadOnly) return OpenReadOnly(path);
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status::IoError("cannot open database " + path + ": " + msg);
  }
  sqlite3_busy_timeout(db, 30000);
  std::unique_ptr<Store> s(new Store(db));
  // Switching to WAL needs an exclusive lock for a moment and may return BUSY
  // without calling the busy handler (two engines creating a fresh root at once):
  // retry it, and the first migration, for as long as the busy timeout.
  Status st;
  for (int waited_ms = 0;; waited_ms += 10) {
    st = s->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
    if (st.ok() || st.code() != StatusCode::kUnavailable || waited_ms >= 30000) break;
    ::usleep(10000);
  }
  if (!st.ok()) return Status::IoError("cannot open database " + path + ": " + st.message());
  for (int waited_ms = 0;; waited_ms += 10) {
    st = s->Migrate();
    if (st.ok() || st.code() != StatusCode::kUnavailable || waited_ms >= 30000) break;
    ::usleep(10000);
  }
  if (!st.ok()) return Status::IoError("database " + path + ": " + st.message());
  return s;
}

namespace {

// "file:" URI of a path, with the characters a URI gives meaning to escaped.
std::string FileUri(const std::string& path) {
  std::string uri = "file:";
  for (unsigned char c : path) {
    if (c == '%' || c == '?' || c == '#' || c <= ' ' || c >= 0x7f) {
      static const char kHex[] = "0123456789ABCDEF";
      uri += {'%', kHex[c >> 4], kHex[c & 15]};
    } else {
      uri += static_cast<char>(c);
    }
  }
  return uri;
}

// What makes schema version i readable as version i+1 without writing: temporary
// views (the temp schema is searched before main) that add what migration i+1
// added. A gap without an entry here cannot be read until a write command
// migrates the database.
const char* const kReadOnlyShims[] = {
    nullptr,  // 0 -> 1: an empty database has nothing to read
    "CREATE TEMP VIEW runs AS SELECT *, '' AS owner FROM main.runs;",  // 1 -> 2
    "CREATE TEMP VIEW attempts AS SELECT *, 'on-demand' AS capacity_class FROM main.attempts;",  // 2 -> 3
    "SELECT 1;",  // 3 -> 4: input_ms is only read by the engine (a writer), never by readers
    // 4 -> 5: no jobs yet
    "CREATE TEMP TABLE jobs(job_id TEXT PRIMARY KEY, key TEXT UNIQUE, pipeline_file TEXT, params TEXT, "
    "priority INTEGER, deadline INTEGER, state TEXT, attempts INTEGER, max_attempts INTEGER, run_id TEXT, "
    "resume TEXT, lease_owner TEXT, lease_expires INTEGER, created_at INTEGER, updated_at INTEGER, "
    "message TEXT);",
    // 5 -> 6: no models yet
    "CREATE TEMP TABLE models(name TEXT, version INTEGER, digest TEXT, size_bytes INTEGER, files INTEGER, "
    "meta TEXT, source TEXT, created_at INTEGER, removed_at INTEGER);"
    "CREATE TEMP TABLE run_models(run_id TEXT, name TEXT, version INTEGER);",
};

}  // namespace

Result<std::unique_ptr<Store>> Store::OpenReadOnly(const std::string& path) {
  // First a plain read-only open, which sees a live writer's WAL. On read-only
  // media a WAL database's -shm cannot be created and the first read fails
  // (CANTOPEN); nobody can be writing there, so open it immutable instead.
  int version = 0;
  std::unique_ptr<Store> s;
  std::string error;
  for (bool immutable : {false, true}) {
    std::string name = immutable ? FileUri(path) + "?immutable=1" : path;
    int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | (immutable ? SQLITE_OPEN_URI : 0);
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(name.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
      error = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close(db);
      return Status::IoError("cannot open database " + path + ": " + error);
    }
    sqlite3_busy_timeout(db, 30000);
    s.reset(new Store(db));
    Stmt q(s->Prepare("PRAGMA user_version"));
    rc = q.ok() ? q.Step() : sqlite3_extended_errcode(db);
    if (rc == SQLITE_ROW) {
      version = static_cast<int>(q.Int(0));
      error.clear();
      break;
    }
    error = sqlite3_errmsg(db);
    int primary = rc & 0xff;
    if (primary != SQLITE_CANTOPEN && primary != SQLITE_READONLY) break;
  }
  if (!error.empty()) return Status::IoError("cannot read database " + path + ": " + error);
  if (version > kSchemaVersion) {
    return Status::Invalid("database " + path + ": schema version " + std::to_string(version) +
                           " is newer than this nightshift understands (" +
                           std::to_string(kSchemaVersion) + "); upgrade nightshift");
  }
  if (version == 0) {
    return Status::Invalid("database " + path + " is empty (no nightshift command has written it)");
  }
  constexpr int kShims = sizeof(kReadOnlyShims) / sizeof(kReadOnlyShims[0]);
  for (int v = version; v < kSchemaVersion; ++v) {
    Status st = v < kShims && kReadOnlyShims[v] ? s->Exec(kReadOnlyShims[v])
                                                : Status::Invalid("no read-only view");
    if (!st.ok()) {
      return Status::Invalid("database " + path + " has schema version " + std::to_string(version) +
                             ", older than this nightshift's (" + std::to_string(kSchemaVersion) +
                             "), and cannot be read without migrating it: run a write command "
                             "(`nightshift run` or `nightshift cancel`) on a writable copy of the "
                             "root first");
    }
  }
  return s;
}

Store::~Store() {
  for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
  sqlite3_close(db_);
}

Status Store::Error(const std::string& what) {
  return Status::IoError(what + ": " + sqlite3_errmsg(db_));
}

Status Store::Exec(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return rc == SQLITE_BUSY ? Status::Unavailable(msg) : Status::IoError(msg);
  }
  return Status::Ok();
}

Status Store::Migrate() {
  int version = 0;
  {
    Stmt q(Prepare("PRAGMA user_version"));
    if (!q.ok()) {
      int ec = sqlite3_errcode(db_);
      if (ec == SQLITE_BUSY || ec == SQLITE_LOCKED) return Status::Unavailable("database is locked");
      return Error("read schema version");
    }
    int rc = q.Step();
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) return Status::Unavailable("database is locked");
    if (rc == SQLITE_ROW) version = static_cast<int>(q.Int(0));
  }
  if (version > kSchemaVersion) {
    return Status::Invalid("schema version " + std::to_string(version) +
                           " is newer than this nightshift understands (" +
                           std::to_string(kSchemaVersion) + "); upgrade nightshift");
  }
  if (version == kSchemaVersion) return Status::Ok();
  return Transaction([&]() -> Status {
    // Re-read inside the write lock: another process may have migrated meanwhile.
    int v = 0;
    {
      Stmt q(Prepare("PRAGMA user_version"));
      if (q.Step() == SQLITE_ROW) v = static_cast<int>(q.Int(0));
    }
    for (int i = v; i < kSchemaVersion; ++i) {
      NS_RETURN_IF_ERROR(Exec(kMigrations[i]));
    }
    return Exec("PRAGMA user_version=" + std::to_string(kSchemaVersion));
  });
}

sqlite3_stmt* Store::Prepare(const char* sql) {
  for (auto& [s, stmt] : stmts_)
    if (s == sql) return stmt;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr) != SQLITE_OK) return nullptr;
  stmts_.emplace_back(sql, stmt);
  return stmt;
}

Status Store::Transaction(const std::function<Status()>& fn) {
  NS_RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  Status st = fn();
  if (!st.ok()) {
    (void)Exec("ROLLBACK");
    return st;
  }
  st = Exec("COMMIT");
  if (!st.ok()) (void)Exec("ROLLBACK");
  else ++transactions_;
  return st;
}

#define NS_STEP_DONE(stmt, what)                          \
  do {                                                    \
    if (!(stmt).ok()) return Error(what);                 \
    ++statements_;                                        \
    if ((stmt).Step() != SQLITE_DONE) return Error(what); \
  } while (0)

Status Store::InsertRun(const RunRow& r) {
  Stmt q(Prepare(
      "INSERT INTO runs(run_id,pipeline,pipeline_file,spec_hash,params,status,created_at,"
      "finished_at,pid,host,message,owner) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)"));
  q.Bind(r.run_id).Bind(r.pipeline).Bind(r.pipeline_file).Bind(r.spec_hash).Bind(r.params_json)
      .Bind(r.status).Bind(r.created_at).Bind(r.finished_at).Bind(r.pid).Bind(r.host).Bind(r.message)
      .Bind(r.owner);
  NS_STEP_DONE(q, "insert run " + r.run_id);
  return Status::Ok();
}

Status Store::UpdateRun(const std::string& run_id, const std::string& status, int64_t finished_at,
                        const std::string& message) {
  Stmt q(Prepare("UPDATE runs SET status=?, finished_at=?, message=? WHERE run_id=?"));
  q.Bind(status).Bind(finished_at).Bind(message).Bind(run_id);
  NS_STEP_DONE(q, "update run " + run_id);
  return Status::Ok();
}

Status Store::SetRunOwner(const std::string& run_id, int64_t pid, const std::string& host,
                          const std::string& owner, const std::string& params_json) {
  Stmt q(Prepare("UPDATE runs SET pid=?, host=?, owner=?, params=?, status='running', finished_at=0, "
                 "message='' WHERE run_id=?"));
  q.Bind(pid).Bind(host).Bind(owner).Bind(params_json).Bind(run_id);
  NS_STEP_DONE(q, "update run " + run_id);
  return Status::Ok();
}

Status Store::UpsertTask(const TaskRow& t) {
  Stmt q(Prepare(
      "INSERT INTO tasks(run_id,task_id,step,item,status,fingerprint,attempts,argv,started_at,"
      "finished_at,message) VALUES(?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(run_id,task_id) DO UPDATE SET "
      "status=excluded.status, fingerprint=excluded.fingerprint, attempts=excluded.attempts, "
      "argv=excluded.argv, started_at=excluded.started_at, finished_at=excluded.finished_at, "
      "message=excluded.message"));
  q.Bind(t.run_id).Bind(t.task_id).Bind(t.step).Bind(t.item).Bind(t.status).Bind(t.fingerprint)
      .Bind(t.attempts).Bind(t.argv_json).Bind(t.started_at).Bind(t.finished_at).Bind(t.message);
  NS_STEP_DONE(q, "save task " + t.task_id);
  return Status::Ok();
}

Status Store::DeleteTask(const std::string& run_id, const std::string& task_id) {
  {
    Stmt q(Prepare("DELETE FROM tasks WHERE run_id=? AND task_id=?"));
    q.Bind(run_id).Bind(task_id);
    NS_STEP_DONE(q, "delete task " + task_id);
  }
  Stmt q(Prepare("DELETE FROM attempts WHERE run_id=? AND task_id=?"));
  q.Bind(run_id).Bind(task_id);
  NS_STEP_DONE(q, "delete attempts of " + task_id);
  return Status::Ok();
}

Status Store::DeleteStep(const std::string& run_id, const std::string& step) {
  {
    Stmt q(Prepare("DELETE FROM tasks WHERE run_id=? AND step=?"));
    q.Bind(run_id).Bind(step);
    NS_STEP_DONE(q, "delete tasks of step " + step);
  }
  // Attempt rows name the task ("step" or "step/item"), not the step.
  Stmt q(Prepare("DELETE FROM attempts WHERE run_id=? AND (task_id=? OR substr(task_id,1,?)=?)"));
  q.Bind(run_id).Bind(step).Bind(static_cast<int64_t>(step.size() + 1)).Bind(step + "/");
  NS_STEP_DONE(q, "delete attempts of step " + step);
  return Status::Ok();
}

Status Store::UpsertAttempt(const AttemptRow& a) {
  Stmt q(Prepare(
      "INSERT INTO attempts(run_id,task_id,attempt,status,exit_code,signal,pid,started_at,"
      "finished_at,max_rss_kb,cpu_ms,message,capacity_class,input_ms) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
      "ON CONFLICT(run_id,task_id,attempt) DO UPDATE SET status=excluded.status, "
      "exit_code=excluded.exit_code, signal=excluded.signal, pid=excluded.pid, "
      "finished_at=excluded.finished_at, max_rss_kb=excluded.max_rss_kb, cpu_ms=excluded.cpu_ms, "
      "message=excluded.message"));
  q.Bind(a.run_id).Bind(a.task_id).Bind(a.attempt).Bind(a.status).Bind(a.exit_code).Bind(a.signal)
      .Bind(a.pid).Bind(a.started_at).Bind(a.finished_at).Bind(a.max_rss_kb).Bind(a.cpu_ms)
      .Bind(a.message).Bind(a.capacity_class).Bind(a.input_ms);
  NS_STEP_DONE(q, "save attempt of " + a.task_id);
  return Status::Ok();
}

Status Store::AppendEvent(const EventRow& e) {
  Stmt q(Prepare("INSERT INTO events(run_id,time,kind,task_id,attempt,data) VALUES(?,?,?,?,?,?)"));
  q.Bind(e.run_id).Bind(e.time).Bind(e.kind).Bind(e.task_id).Bind(e.attempt).Bind(e.data);
  NS_STEP_DONE(q, "append event");
  return Status::Ok();
}

namespace {

RunRow ReadRun(Stmt& q) {
  RunRow r;
  r.run_id = q.Text(0);
  r.pipeline = q.Text(1);
  r.pipeline_file = q.Text(2);
  r.spec_hash = q.Text(3);
  r.params_json = q.Text(4);
  r.status = q.Text(5);
  r.created_at = q.Int(6);
  r.finished_at = q.Int(7);
  r.pid = q.Int(8);
  r.host = q.Text(9);
  r.message = q.Text(10);
  r.owner = q.Text(11);
  return r;
}

constexpr const char* kRunCols =
    "run_id,pipeline,pipeline_file,spec_hash,params,status,created_at,finished_at,pid,host,message,"
    "owner";

}  // namespace

Result<std::optional<RunRow>> Store::GetRun(const std::string& run_id) {
  static const std::string sql = std::string("SELECT ") + kRunCols + " FROM runs WHERE run_id=?";
  Stmt q(Prepare(sql.c_str()));
  if (!q.ok()) return Error("read run");
  q.Bind(run_id);
  int rc = q.Step();
  if (rc == SQLITE_ROW) return std::optional<RunRow>(ReadRun(q));
  if (rc != SQLITE_DONE) return Error("read run");
  return std::optional<RunRow>();
}

Result<std::vector<RunRow>> Store::ListRuns(int limit) {
  static const std::string sql =
      std::string("SELECT ") + kRunCols + " FROM runs ORDER BY run_id DESC LIMIT ?";
  Stmt q(Prepare(sql.c_str()));
  if (!q.ok()) return Error("list runs");
  q.Bind(limit);
  std::vector<RunRow> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) out.push_back(ReadRun(q));
  if (rc != SQLITE_DONE) return Error("list runs");
  return out;
}

Result<std::vector<TaskRow>> Store::ListTasks(const std::string& run_id) {
  Stmt q(Prepare(
      "SELECT run_id,task_id,step,item,status,fingerprint,attempts,argv,started_at,finished_at,"
      "message FROM tasks WHERE run_id=? ORDER BY rowid"));
  if (!q.ok()) return Error("list tasks");
  q.Bind(run_id);
  std::vector<TaskRow> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    TaskRow t;
    t.run_id = q.Text(0);
    t.task_id = q.Text(1);
    t.step = q.Text(2);
    t.item = q.Text(3);
    t.status = q.Text(4);
    t.fingerprint = q.Text(5);
    t.attempts = static_cast<int>(q.Int(6));
    t.argv_json = q.Text(7);
    t.started_at = q.Int(8);
    t.finished_at = q.Int(9);
    t.message = q.Text(10);
    out.push_back(std::move(t));
  }
  if (rc != SQLITE_DONE) return Error("list tasks");
  return out;
}

Result<std::vector<std::pair<std::string, int64_t>>> Store::StepTaskCounts(const std::string& run_id) {
  Stmt q(Prepare(
      "SELECT json_extract(data,'$.step'), json_extract(data,'$.tasks') FROM events "
      "WHERE run_id=? AND kind='step_started' AND json_valid(data) AND id > (SELECT COALESCE(MAX(id),0) "
      "FROM events WHERE run_id=? AND kind IN ('run_created','run_resumed')) ORDER BY id"));
  if (!q.ok()) return Error("read step counts");
  q.Bind(run_id).Bind(run_id);
  std::vector<std::pair<std::string, int64_t>> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    std::string step = q.Text(0);
    bool seen = false;
    for (auto& [s, n] : out) {
      if (s == step) {
        n = q.Int(1);  // a resume expanded it again: the latest count holds
        seen = true;
      }
    }
    if (!seen) out.emplace_back(step, q.Int(1));
  }
  if (rc != SQLITE_DONE) return Error("read step counts");
  return out;
}

Result<int64_t> Store::MeanSucceededMs(const std::string& pipeline, const std::string& step) {
  Stmt q(Prepare(
      "SELECT COUNT(*), COALESCE(AVG(a.finished_at - a.started_at), 0) FROM attempts a "
      "JOIN runs r ON r.run_id = a.run_id WHERE r.pipeline=? AND a.status='succeeded' AND "
      "a.finished_at > a.started_at AND (a.task_id=? OR substr(a.task_id,1,?)=?)"));
  if (!q.ok()) return Error("read durations");
  q.Bind(pipeline).Bind(step).Bind(static_cast<int64_t>(step.size() + 1)).Bind(step + "/");
  if (q.Step() != SQLITE_ROW) return Error("read durations");
  return q.Int(0) > 0 ? q.Int(1) : 0;
}

Result<double> Store::MsPerInputSecond(const std::string& pipeline, const std::string& step) {
  Stmt q(Prepare(
      "SELECT COALESCE(SUM(a.finished_at - a.started_at), 0), COALESCE(SUM(a.input_ms), 0) FROM attempts a "
      "JOIN runs r ON r.run_id = a.run_id WHERE r.pipeline=? AND a.status='succeeded' AND "
      "a.finished_at > a.started_at AND a.input_ms > 0 AND (a.task_id=? OR substr(a.task_id,1,?)=?)"));
  if (!q.ok()) return Error("read durations");
  q.Bind(pipeline).Bind(step).Bind(static_cast<int64_t>(step.size() + 1)).Bind(step + "/");
  if (q.Step() != SQLITE_ROW) return Error("read durations");
  int64_t ms = q.Int(0), input_ms = q.Int(1);
  return input_ms > 0 ? static_cast<double>(ms) * 1000.0 / static_cast<double>(input_ms) : 0.0;
}

Result<std::vector<EventRow>> Store::ListEvents(const std::string& run_id, const std::string& kind,
                                                 int64_t after_id) {
  Stmt q(Prepare("SELECT id,run_id,time,kind,task_id,attempt,data FROM events "
                 "WHERE run_id=? AND kind=? AND id>? ORDER BY id"));
  if (!q.ok()) return Error("read events");
  q.Bind(run_id).Bind(kind).Bind(after_id);
  std::vector<EventRow> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    EventRow e;
    e.id = q.Int(0);
    e.run_id = q.Text(1);
    e.time = q.Int(2);
    e.kind = q.Text(3);
    e.task_id = q.Text(4);
    e.attempt = static_cast<int>(q.Int(5));
    e.data = q.Text(6);
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return Error("read events");
  return out;
}

Result<std::vector<AttemptRow>> Store::ListAttempts(const std::string& run_id) {
  Stmt q(Prepare(
      "SELECT run_id,task_id,attempt,status,exit_code,signal,pid,started_at,finished_at,"
      "max_rss_kb,cpu_ms,message,capacity_class FROM attempts WHERE run_id=? ORDER BY task_id, attempt"));
  if (!q.ok()) return Error("list attempts");
  q.Bind(run_id);
  std::vector<AttemptRow> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    AttemptRow a;
    a.run_id = q.Text(0);
    a.task_id = q.Text(1);
    a.attempt = static_cast<int>(q.Int(2));
    a.status = q.Text(3);
    a.exit_code = static_cast<int>(q.Int(4));
    a.signal = static_cast<int>(q.Int(5));
    a.pid = q.Int(6);
    a.started_at = q.Int(7);
    a.finished_at = q.Int(8);
    a.max_rss_kb = q.Int(9);
    a.cpu_ms = q.Int(10);
    a.message = q.Text(11);
    a.capacity_class = q.Text(12);
    out.push_back(std::move(a));
  }
  if (rc != SQLITE_DONE) return Error("list attempts");
  return out;
}


namespace {

constexpr const char* kJobCols =
    "job_id,COALESCE(key,''),pipeline_file,params,priority,deadline,state,attempts,max_attempts,run_id,"
    "resume,lease_owner,lease_expires,created_at,updated_at,message";

JobRow ReadJob(Stmt& q) {
  JobRow j;
  j.job_id = q.Text(0);
  j.key = q.Text(1);
  j.pipeline_file = q.Text(2);
  j.params_json = q.Text(3);
  j.priority = static_cast<int>(q.Int(4));
  j.deadline = q.Int(5);
  j.state = q.Text(6);
  j.attempts = static_cast<int>(q.Int(7));
  j.max_attempts = static_cast<int>(q.Int(8));
  j.run_id = q.Text(9);
  j.resume = q.Text(10);
  j.lease_owner = q.Text(11);
  j.lease_expires = q.Int(12);
  j.created_at = q.Int(13);
  j.updated_at = q.Int(14);
  j.message = q.Text(15);
  return j;
}

// The job a bound statement finds, if any.
Result<std::optional<JobRow>> OneJob(Stmt& q) {
  int rc = q.Step();
  if (rc == SQLITE_ROW) return std::optional<JobRow>(ReadJob(q));
  if (rc != SQLITE_DONE) return Status::Internal("read job");
  return std::optional<JobRow>();
}

// Every job a bound statement finds.
Result<std::vector<JobRow>> Jobs(Stmt& q) {
  std::vector<JobRow> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) out.push_back(ReadJob(q));
  if (rc != SQLITE_DONE) return Status::Internal("list jobs");
  return out;
}

}  // namespace

Result<std::pair<JobRow, bool>> Store::SubmitJob(const JobRow& j) {
  std::pair<JobRow, bool> out{j, true};
  Status st = Transaction([&]() -> Status {
    if (!j.key.empty()) {
      auto known = JobWithKey(j.key);
      if (!known.ok()) return known.status();
      if (known.value()) {
        out = {*known.value(), false};
        return Status::Ok();
      }
    }
    Stmt q(Prepare(
        "INSERT INTO jobs(job_id,key,pipeline_file,params,priority,deadline,state,attempts,max_attempts,"
        "run_id,resume,lease_owner,lease_expires,created_at,updated_at,message) "
        "VALUES(?,NULLIF(?,''),?,?,?,?,?,?,?,?,?,?,?,?,?,?)"));
    q.Bind(j.job_id).Bind(j.key).Bind(j.pipeline_file).Bind(j.params_json).Bind(j.priority).Bind(j.deadline)
        .Bind(j.state).Bind(j.attempts).Bind(j.max_attempts).Bind(j.run_id).Bind(j.resume).Bind(j.lease_owner)
        .Bind(j.lease_expires).Bind(j.created_at).Bind(j.updated_at).Bind(j.message);
    NS_STEP_DONE(q, "insert job " + j.job_id);
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return out;
}

Status Store::UpdateJob(const JobRow& j) {
  Stmt q(Prepare(
      "UPDATE jobs SET state=?,attempts=?,max_attempts=?,run_id=?,resume=?,lease_owner=?,lease_expires=?,"
      "updated_at=?,message=?,priority=?,deadline=? WHERE job_id=?"));
  q.Bind(j.state).Bind(j.attempts).Bind(j.max_attempts).Bind(j.run_id).Bind(j.resume).Bind(j.lease_owner)
      .Bind(j.lease_expires).Bind(j.updated_at).Bind(j.message).Bind(j.priority).Bind(j.deadline).Bind(j.job_id);
  NS_STEP_DONE(q, "update job " + j.job_id);
  return Status::Ok();
}

Result<std::optional<JobRow>> Store::GetJob(const std::string& job_id) {
  static const std::string sql = std::string("SELECT ") + kJobCols + " FROM jobs WHERE job_id=?";
  Stmt q(Prepare(sql.c_str()));
  if (!q.ok()) return Error("read job");
  q.Bind(job_id);
  return OneJob(q);
}

Result<std::optional<JobRow>> Store::JobOfRun(const std::string& run_id) {
  static const std::string sql =
      std::string("SELECT ") + kJobCols + " FROM jobs WHERE run_id=?1 OR resume=?1 ORDER BY created_at DESC LIMIT 1";
  Stmt q(Prepare(sql.c_str()));
  if (!q.ok()) return Error("read job");
  q.Bind(run_id);
  return OneJob(q);
}

Result<std::optional<JobRow>> Store::JobWithKey(const std::string& key) {
  static const std::string sql = std::string("SELECT ") + kJobCols + " FROM jobs WHERE key=?";
  Stmt q(Prepare(sql.c_str()));
  if (!q.ok()) return Error("read job");
  q.Bind(key);
  return OneJob(q);
}

Result<std::vector<JobRow>> Store::ListJobs(const std::string& state, int limit) {
  static const std::string sql = std::string("SELECT ") + kJobCols +
                                 " FROM jobs WHERE (?='' OR state=?) ORDER BY created_at DESC, job_id DESC LIMIT ?";
  Stmt q(Prepare(sql.c_str()));
  if (!q.ok()) return Error("list jobs");
  q.Bind(state).Bind(state).Bind(limit);
  return Jobs(q);
}

Result<std::vector<JobRow>> Store::LeasableJobs(int64_t now, int limit) {
  static const std::string sql =
      std::string("SELECT ") + kJobCols +
      " FROM jobs WHERE state='pending' OR (state='leased' AND lease_expires < ?) "
      "ORDER BY priority DESC, created_at, job_id LIMIT ?";
  Stmt q(Prepare(sql.c_str()));
  if (!q.ok()) return Error("list jobs");
  q.Bind(now).Bind(limit);
  return Jobs(q);
}

Result<std::vector<JobRow>> Store::LeasedJobs() {
  static const std::string sql = std::string("SELECT ") + kJobCols + " FROM jobs WHERE state='leased'";
  Stmt q(Prepare(sql.c_str()));
  if (!q.ok()) return Error("list jobs");
  return Jobs(q);
}

Result<int64_t> Store::RenewLeases(const std::string& owner, int64_t expires) {
  Stmt q(Prepare("UPDATE jobs SET lease_expires=? WHERE state='leased' AND lease_owner=?"));
  q.Bind(expires).Bind(owner);
  NS_STEP_DONE(q, "renew leases");
  return static_cast<int64_t>(sqlite3_changes(db_));
}

namespace {

Result<std::vector<std::pair<std::string, int64_t>>> Counts(Stmt& q) {
  std::vector<std::pair<std::string, int64_t>> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) out.emplace_back(q.Text(0), q.Int(1));
  if (rc != SQLITE_DONE) return Status::Internal("count");
  return out;
}

}  // namespace

Result<std::vector<std::pair<std::string, int64_t>>> Store::JobCounts() {
  Stmt q(Prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state"));
  if (!q.ok()) return Error("count jobs");
  return Counts(q);
}

Result<std::vector<std::pair<std::string, int64_t>>> Store::RunCounts() {
  Stmt q(Prepare("SELECT status, COUNT(*) FROM runs GROUP BY status"));
  if (!q.ok()) return Error("count runs");
  return Counts(q);
}

Result<std::vector<std::pair<RunRow, std::string>>> Store::ListRunsFiltered(const RunFilter& f) {
  // One statement for every combination of filters: an empty filter matches all.
  static const std::string sql =
      std::string("SELECT ") + kRunCols +
      ", COALESCE((SELECT job_id FROM jobs WHERE jobs.run_id = runs.run_id LIMIT 1), '') FROM runs "
      "WHERE (?1='' OR status=?1) AND (?2='' OR pipeline=?2) AND (?3='' OR run_id < ?3) AND "
      "(?4='' OR instr(run_id, ?4) > 0 OR instr(pipeline, ?4) > 0 OR instr(params, ?4) > 0) "
      "ORDER BY run_id DESC LIMIT ?5";
  Stmt q(Prepare(sql.c_str()));
  if (!q.ok()) return Error("list runs");
  q.Bind(f.status).Bind(f.pipeline).Bind(f.before).Bind(f.text).Bind(f.limit);
  std::vector<std::pair<RunRow, std::string>> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    RunRow r = ReadRun(q);
    out.emplace_back(std::move(r), q.Text(12));
  }
  if (rc != SQLITE_DONE) return Error("list runs");
  return out;
}

Status Store::ForEachAttempt(const std::function<void(const std::string&, const std::string&,
                                                      const std::string&, int64_t)>& fn) {
  Stmt q(Prepare(
      "SELECT CASE WHEN instr(task_id,'/') > 0 THEN substr(task_id,1,instr(task_id,'/')-1) ELSE task_id END, "
      "status, capacity_class, finished_at - started_at FROM attempts WHERE finished_at > 0"));
  if (!q.ok()) return Error("read attempts");
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) fn(q.Text(0), q.Text(1), q.Text(2), q.Int(3));
  if (rc != SQLITE_DONE) return Error("read attempts");
  return Status::Ok();
}

// ---------------------------------------------------------------- models

namespace {

constexpr const char* kModelCols = "name,version,digest,size_bytes,files,meta,source,created_at,removed_at";

// Every model version a bound statement finds.
Result<std::vector<ModelRow>> Models(Stmt& q) {
  std::vector<ModelRow> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    ModelRow m;
    m.name = q.Text(0);
    m.version = q.Int(1);
    m.digest = q.Text(2);
    m.size_bytes = q.Int(3);
    m.files = q.Int(4);
    m.meta_json = q.Text(5);
    m.source = q.Text(6);
    m.created_at = q.Int(7);
    m.removed_at = q.Int(8);
    out.push_back(std::move(m));
  }
  if (rc != SQLITE_DONE) return Status::Internal("read models");
  return out;
}

}  // namespace

Status Store::InsertModel(const ModelRow& m) {
  Stmt q(Prepare("INSERT INTO models(name,version,digest,size_bytes,files,meta,source,created_at,removed_at) "
                 "VALUES(?,?,?,?,?,?,?,?,?)"));
  q.Bind(m.name).Bind(m.version).Bind(m.digest).Bind(m.size_bytes).Bind(m.files).Bind(m.meta_json)
      .Bind(m.source).Bind(m.created_at).Bind(m.removed_at);
  NS_STEP_DONE(q, "insert model " + m.name);
  return Status::Ok();
}

Status Store::RemoveModel(const std::string& name, int64_t version, int64_t now) {
  Stmt q(Prepare("UPDATE models SET removed_at=? WHERE name=? AND version=?"));
  q.Bind(now).Bind(name).Bind(version);
  NS_STEP_DONE(q, "remove model " + name);
  return Status::Ok();
}

Result<std::vector<ModelRow>> Store::ListModels(const std::string& name, bool removed) {
  static const std::string sql = std::string("SELECT ") + kModelCols +
                                 " FROM models WHERE (?='' OR name=?) AND (? OR removed_at=0) ORDER BY name, version";
  Stmt q(Prepare(sql.c_str()));
  if (!q.ok()) return Error("list models");
  q.Bind(name).Bind(name).Bind(removed ? 1 : 0);
  return Models(q);
}

Result<int64_t> Store::MaxModelVersion(const std::string& name) {
  Stmt q(Prepare("SELECT COALESCE(MAX(version),0) FROM models WHERE name=?"));
  if (!q.ok()) return Error("read models");
  q.Bind(name);
  if (q.Step() != SQLITE_ROW) return Error("read models");
  return q.Int(0);
}

Status Store::AddRunModel(const std::string& run_id, const std::string& name, int64_t version) {
  Stmt q(Prepare("INSERT OR IGNORE INTO run_models(run_id,name,version) VALUES(?,?,?)"));
  q.Bind(run_id).Bind(name).Bind(version);
  NS_STEP_DONE(q, "record the models of run " + run_id);
  return Status::Ok();
}

Result<std::vector<std::string>> Store::RunsUsingModel(const std::string& name, int64_t version, bool unfinished) {
  Stmt q(Prepare("SELECT r.run_id FROM run_models m JOIN runs r ON r.run_id=m.run_id "
                 "WHERE m.name=? AND m.version=? AND (? = 0 OR r.status NOT IN ('succeeded','failed','cancelled')) "
                 "ORDER BY r.run_id"));
  if (!q.ok()) return Error("read run models");
  q.Bind(name).Bind(version).Bind(unfinished ? 1 : 0);
  std::vector<std::string> out;
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) out.push_back(q.Text(0));
  if (rc != SQLITE_DONE) return Error("read run models");
  return out;
}

}  // namespace ns
