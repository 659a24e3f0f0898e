// The HTTP API, the web UI's files and /metrics (docs/server.md).
#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <httplib.h>

#include <limits.h>

#include <algorithm>
#include <cmath>
#include <dirent.h>
#include <map>
#include <sstream>

#include "cli/cli.h"
#include "server/assets.h"
#include "server/files.h"
#include "server/server.h"
#include "spec/parser.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/strings.h"

namespace ns::server {

namespace {

using httplib::Request;
using httplib::Response;
using json = nlohmann::json;

void Error(Response& res, int status, const std::string& reason) {
  res.status = status;
  res.set_content(DumpJson({{"error", {{"status", status}, {"reason", reason}}}}), "application/json");
}

void Json(Response& res, const json& j, int status = 200) {
  res.status = status;
  res.set_content(DumpJson(j), "application/json");
}

int IntParam(const Request& req, const char* name, int def, int lo, int hi) {
  if (!req.has_param(name)) return def;
  std::string v = req.get_param_value(name);
  if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos) return -1;
  int n = std::stoi(v);
  return n < lo || n > hi ? -1 : n;
}

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

// Task key of log files: "step" or "step.item".
std::string TaskKey(const std::string& task_id) {
  std::string k = task_id;
  auto slash = k.find('/');
  if (slash != std::string::npos) k[slash] = '.';
  return k;
}

std::string Label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// An SSE "data:" field for one line of text (no newline in it).
std::string SseData(const std::string& line) {
  std::string out = "data: ";
  for (char c : line) {
    if (c == '\r' || c == '\n') continue;
    out += c;
  }
  return out + "\n";
}

constexpr size_t kMaxLineBytes = 64 << 10;
constexpr int64_t kMaxLogBytes = 16 << 20;  // a log read without follow: its last 16 MiB at most

// The last `lines` lines (0: all) of a regular file, from at most its last
// kMaxLogBytes; `*size` is the file's size. Never blocks on a FIFO.
Status ReadTail(const std::string& path, int lines, std::string* out, int64_t* size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return errno == ENOENT ? Status::NotFound(path) : Status::FromErrno(path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::Invalid("the log is not a regular file");
  }
  *size = st.st_size;
  int64_t from = std::max<int64_t>(0, st.st_size - kMaxLogBytes);
  std::string s(static_cast<size_t>(st.st_size - from), '\0');
  ssize_t n = ::pread(fd, s.data(), s.size(), from);
  ::close(fd);
  s.resize(n > 0 ? static_cast<size_t>(n) : 0);
  *size = from + static_cast<int64_t>(s.size());
  size_t pos = 0;
  if (lines > 0) {
    size_t end = s.size();
    if (end > 0 && s[end - 1] == '\n') --end;
    pos = end;
    int found = 0;
    while (pos > 0 && found < lines) {
      size_t nl = s.rfind('\n', pos - 1);
      if (nl == std::string::npos) {
        pos = 0;
        break;
      }
      pos = nl;
      if (++found == lines) ++pos;
    }
  }
  *out = s.substr(pos);
  return Status::Ok();
}

}  // namespace

Store* Server::ThreadStore() {
  // One Store per HTTP thread (a Store is not thread-safe); SQLite serialises writers.
  thread_local std::unique_ptr<Store> store;
  thread_local std::string root;
  if (!store || root != sh_.root) {
    auto s = Store::Open(sh_.layout.Db());
    if (!s.ok()) return nullptr;
    store = std::move(s.value());
    root = sh_.root;
  }
  return store.get();
}

bool Server::Authorized(const Request& req) {
  std::string h = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  return StartsWith(h, prefix) && ConstantTimeEquals(h.substr(prefix.size()), token_);
}

json Server::StatusJson() {
  json queue = {{"pending", 0}, {"leased", 0}, {"succeeded", 0}, {"cancelled", 0}, {"dead", 0}};
  if (Store* store = ThreadStore()) {
    auto counts = store->JobCounts();
    if (counts.ok()) {
      for (auto& [state, n] : counts.value()) queue[state] = n;
    }
  }
  size_t active;
  {
    std::lock_guard<std::mutex> g(runs_mu_);
    active = running_.size();
  }
  return {{"version", "0.1.0"},  {"root", sh_.root},          {"queue", queue},
          {"runs_active", active}, {"max_runs", o_.max_runs}, {"draining", draining_.load()}};
}

void Server::Routes(httplib::Server& svr) {
  svr.set_default_headers({{"X-Content-Type-Options", "nosniff"}, {"Referrer-Policy", "no-referrer"}});
  svr.set_pre_routing_handler([this](const Request& req, Response& res) {
    if (StartsWith(req.path, "/api/") || req.path == "/metrics") {
      res.set_header("Cache-Control", "no-store");
      if (!Authorized(req)) {
        res.set_header("WWW-Authenticate", "Bearer");
        Error(res, 401, "missing or wrong token: send Authorization: Bearer TOKEN (the token is $NIGHTSHIFT_TOKEN "
                        "or the content of ROOT/server.token)");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  svr.set_error_handler([](const Request& req, Response& res) {
    if (!res.body.empty() || res.content_length_ > 0) return;
    if (res.status == 404) Error(res, 404, "no such endpoint: " + req.method + " " + req.path + " (see /api/v1/openapi.json)");
    else if (res.status == 413) Error(res, 413, "the request body is too large");
    else if (res.status == 400) Error(res, 400, "malformed request");
    else Error(res, res.status, "request failed");
  });
  svr.set_exception_handler([](const Request&, Response& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = std::string("internal error: ") + e.what();
    } catch (...) {
    }
    Error(res, 500, what);
  });

  // The web UI.
  auto asset = [](const char* path) {
    return [path](const Request&, Response& res) {
      const Asset* a = FindAsset(path);
      if (!a) return Error(res, 404, "not built into this nightshift");
      res.set_header("Content-Security-Policy",
                     "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; "
                     "style-src 'self' 'unsafe-inline'; frame-src blob: data:; frame-ancestors 'none'; base-uri 'none'");
      res.set_content(std::string(a->body), a->type);
    };
  };
  svr.Get("/", asset("/index.html"));
  svr.Get("/index.html", asset("/index.html"));
  svr.Get("/app.js", asset("/app.js"));
  svr.Get("/style.css", asset("/style.css"));
  svr.Get("/favicon.ico", [](const Request&, Response& res) { res.status = 204; });

  svr.Get("/api/v1/openapi.json", [](const Request&, Response& res) {
    const Asset* a = FindAsset("/openapi.json");
    if (!a) return Error(res, 404, "not built into this nightshift");
    res.set_content(std::string(a->body), "application/json");
  });
  svr.Get("/api/v1/status", [this](const Request&, Response& res) { Json(res, StatusJson()); });

  // Jobs.
  svr.Post("/api/v1/jobs", [this](const Request& req, Response& res) { Submit(req, res); });
  svr.Get("/api/v1/jobs", [this](const Request& req, Response& res) {
    std::string state = req.get_param_value("state");
    static const std::set<std::string> kStates = {"", "pending", "leased", "succeeded", "cancelled", "dead"};
    if (!kStates.count(state)) return Error(res, 400, "state: expected pending, leased, succeeded, cancelled or dead");
    int limit = IntParam(req, "limit", 100, 1, 10000);
    if (limit < 0) return Error(res, 400, "limit: expected an integer from 1 to 10000");
    Store* store = ThreadStore();
    if (!store) return Error(res, 500, "cannot open the store");
    auto jobs = store->ListJobs(state, limit);
    if (!jobs.ok()) return Error(res, 500, jobs.status().message());
    json out = json::array();
    for (const auto& j : jobs.value()) out.push_back(JobJson(j));
    Json(res, {{"jobs", out}});
  });
  svr.Get(R"(/api/v1/jobs/([^/]+))", [this](const Request& req, Response& res) {
    Store* store = ThreadStore();
    if (!store) return Error(res, 500, "cannot open the store");
    auto j = store->GetJob(req.matches[1]);
    if (!j.ok()) return Error(res, 500, j.status().message());
    if (!j.value()) return Error(res, 404, "no job " + std::string(req.matches[1]));
    Json(res, {{"job", JobJson(*j.value())}});
  });
  svr.Post(R"(/api/v1/jobs/([^/]+)/retry)", [this](const Request& req, Response& res) { RetryJob(req.matches[1], res); });
  svr.Post(R"(/api/v1/jobs/([^/]+)/cancel)", [this](const Request& req, Response& res) { CancelJob(req.matches[1], res); });

  // Runs.
  svr.Get("/api/v1/runs", [this](const Request& req, Response& res) {
    RunFilter f;
    f.status = req.get_param_value("state");
    f.pipeline = req.get_param_value("pipeline");
    f.text = req.get_param_value("q");
    f.before = req.get_param_value("before");
    f.limit = IntParam(req, "limit", 50, 1, 1000);
    if (f.limit < 0) return Error(res, 400, "limit: expected an integer from 1 to 1000");
    bool stopped = f.status == "stopped";
    if (stopped) f.status = "running";  // "stopped" is shown for running rows whose engine is gone
    Store* store = ThreadStore();
    if (!store) return Error(res, 500, "cannot open the store");
    auto runs = store->ListRunsFiltered(f);
    if (!runs.ok()) return Error(res, 500, runs.status().message());
    json out = json::array();
    for (const auto& [r, job] : runs.value()) {
      json j = RunJson(r, job);
      if (!f.status.empty() && j["status"] != (stopped ? "stopped" : f.status)) continue;
      out.push_back(j);
    }
    std::string next = static_cast<int>(runs.value().size()) == f.limit ? runs.value().back().first.run_id : "";
    Json(res, {{"runs", out}, {"next", next}});
  });
  svr.Get(R"(/api/v1/runs/([^/]+))", [this](const Request& req, Response& res) { RunDetail(req.matches[1], res); });
  svr.Get(R"(/api/v1/runs/([^/]+)/tasks)", [this](const Request& req, Response& res) {
    Store* store = ThreadStore();
    if (!store) return Error(res, 500, "cannot open the store");
    std::string run_id = req.matches[1];
    auto run = store->GetRun(run_id);
    if (!run.ok() || !run.value()) return Error(res, 404, "no run " + run_id);
    auto tasks = store->ListTasks(run_id);
    auto attempts = store->ListAttempts(run_id);
    if (!tasks.ok() || !attempts.ok()) return Error(res, 500, "cannot read the run's tasks");
    json out = json::array();
    std::set<std::string> seen;
    for (const auto& t : tasks.value()) {
      seen.insert(t.task_id);
      out.push_back({{"task_id", t.task_id}, {"step", t.step}, {"item", t.item}, {"status", t.status},
                     {"attempts", t.attempts}, {"started_at", t.started_at}, {"finished_at", t.finished_at},
                     {"message", t.message}});
    }
    for (const auto& a : attempts.value()) {
      if (a.status != "running" || seen.count(a.task_id)) continue;
      seen.insert(a.task_id);
      auto slash = a.task_id.find('/');
      out.push_back({{"task_id", a.task_id}, {"step", a.task_id.substr(0, slash)},
                     {"item", slash == std::string::npos ? "" : a.task_id.substr(slash + 1)}, {"status", "running"},
                     {"attempts", a.attempt}, {"started_at", a.started_at}, {"finished_at", 0}, {"message", ""}});
    }
    Json(res, {{"tasks", out}});
  });
  svr.Get(R"(/api/v1/runs/([^/]+)/attempts)", [this](const Request& req, Response& res) {
    Store* store = ThreadStore();
    if (!store) return Error(res, 500, "cannot open the store");
    std::string run_id = req.matches[1];
    auto run = store->GetRun(run_id);
    if (!run.ok() || !run.value()) return Error(res, 404, "no run " + run_id);
    auto attempts = store->ListAttempts(run_id);
    if (!attempts.ok()) return Error(res, 500, attempts.status().message());
    json out = json::array();
    for (const auto& a : attempts.value()) {
      out.push_back({{"task_id", a.task_id}, {"attempt", a.attempt}, {"status", a.status}, {"exit_code", a.exit_code},
                     {"signal", a.signal}, {"started_at", a.started_at}, {"finished_at", a.finished_at},
                     {"capacity_class", a.capacity_class}, {"message", a.message}, {"max_rss_kb", a.max_rss_kb},
                     {"cpu_ms", a.cpu_ms}});
    }
    Json(res, {{"attempts", out}});
  });
  svr.Get(R"(/api/v1/runs/([^/]+)/logs)", [this](const Request& req, Response& res) { Logs(req, res, req.matches[1]); });
  svr.Get(R"(/api/v1/runs/([^/]+)/artifacts(/.*)?)", [this](const Request& req, Response& res) {
    std::string path = req.matches.size() > 2 ? std::string(req.matches[2]) : "";
    if (!path.empty()) path = path.substr(1);
    Artifacts(req, res, req.matches[1], path);
  });
  svr.Post(R"(/api/v1/runs/([^/]+)/cancel)", [this](const Request& req, Response& res) { CancelRun(req.matches[1], res); });
  svr.Post(R"(/api/v1/runs/([^/]+)/retry)", [this](const Request& req, Response& res) { RetryRun(req.matches[1], res); });

  svr.Get("/api/v1/events", [this](const Request& req, Response& res) { Events(req, res); });
  svr.Get("/metrics", [this](const Request&, Response& res) { Metrics(res); });
}

void Server::Submit(const Request& req, Response& res) {
  std::string ct = req.get_header_value("Content-Type");
  if (!ct.empty() && !StartsWith(ct, "application/json")) {
    return Error(res, 415, "send the job as application/json");
  }
  Submission s;
  Status st = ParseSubmission(req.body, &s);
  if (!st.ok()) return Error(res, 400, st.message());
  Store* store = ThreadStore();
  if (!store) return Error(res, 500, "cannot open the store");
  std::string problems;
  auto r = SubmitJob(store, s, sh_.root, sh_.clock.Now(), &problems);
  if (!r.ok()) {
    if (!problems.empty()) return Error(res, 422, problems);
    return Error(res, 500, r.status().message());
  }
  auto& [job, created] = r.value();
  if (created) {
    PublishJob(job);
    sh_.events.RequestWake();
  }
  Json(res, {{"job", JobJson(job)}, {"created", created}}, created ? 201 : 200);
}

void Server::RunDetail(const std::string& run_id, Response& res) {
  Store* store = ThreadStore();
  if (!store) return Error(res, 500, "cannot open the store");
  auto run = store->GetRun(run_id);
  if (!run.ok()) return Error(res, 500, run.status().message());
  if (!run.value()) return Error(res, 404, "no run " + run_id);
  const RunRow& r = *run.value();
  auto job = store->JobOfRun(run_id);
  std::string job_id = job.ok() && job.value() ? job.value()->job_id : "";
  auto tasks = store->ListTasks(run_id);
  auto attempts = store->ListAttempts(run_id);
  auto counts = store->StepTaskCounts(run_id);
  if (!tasks.ok() || !attempts.ok() || !counts.ok()) return Error(res, 500, "cannot read the run");
  // Per step: its tasks' states; running ones from their attempts.
  std::map<std::string, std::map<std::string, int64_t>> by_step;
  std::set<std::string> final_tasks;
  for (const auto& t : tasks.value()) {
    by_step[t.step][t.status]++;
    final_tasks.insert(t.task_id);
  }
  for (const auto& a : attempts.value()) {
    if (a.status == "running" && !final_tasks.count(a.task_id)) {
      by_step[a.task_id.substr(0, a.task_id.find('/'))]["running"]++;
    }
  }
  std::map<std::string, int64_t> totals(counts.value().begin(), counts.value().end());
  json steps = json::array();
  spec::Diagnostics diags(sh_.layout.RunDir(run_id) + "/pipeline.yaml");
  auto pipeline = spec::ParsePipelineFile(sh_.layout.RunDir(run_id) + "/pipeline.yaml", &diags);
  std::string status = cli::DisplayStatus(r);
  bool run_over = status != "running";
  if (pipeline) {
    for (const auto& s : pipeline->steps) {
      auto& c = by_step[s.id];
      json cj = json::object();
      int64_t done = 0;
      for (const char* k : {"pending", "running", "retrying", "succeeded", "cached", "failed", "cancelled", "skipped"}) {
        cj[k] = c.count(k) ? c[k] : 0;
      }
      done = cj["succeeded"].get<int64_t>() + cj["cached"].get<int64_t>() + cj["failed"].get<int64_t>() +
             cj["cancelled"].get<int64_t>() + cj["skipped"].get<int64_t>();
      bool started = totals.count(s.id) > 0;
      int64_t total = started ? totals[s.id] : 0;
      std::string st;
      if (!started) {
        st = run_over ? (status == "cancelled" ? "cancelled" : "skipped") : "waiting";
      } else if (done >= total && total >= 0) {
        st = cj["failed"].get<int64_t>() > 0 ? "failed" : cj["cancelled"].get<int64_t>() > 0 ? "cancelled" : "succeeded";
      } else {
        st = run_over ? (cj["failed"].get<int64_t>() > 0 ? "failed" : "cancelled") : "running";
      }
      steps.push_back({{"id", s.id}, {"needs", s.needs}, {"foreach", s.foreach.kind != spec::ForeachKind::kNone},
                       {"status", st}, {"tasks_total", total}, {"counts", cj}});
    }
  }
  json record = nullptr;
  auto text = ReadFile(sh_.layout.RunDir(run_id) + "/run.json");
  if (text.ok()) {
    record = json::parse(text.value(), nullptr, false);
    if (record.is_discarded()) record = nullptr;
  }
  Json(res, {{"run", RunJson(r, job_id)}, {"steps", steps}, {"record", record}});
}

void Server::Logs(const Request& req, Response& res, const std::string& run_id) {
  Store* store = ThreadStore();
  if (!store) return Error(res, 500, "cannot open the store");
  auto run = store->GetRun(run_id);
  if (!run.ok() || !run.value()) return Error(res, 404, "no run " + run_id);
  std::string task = req.get_param_value("task");
  if (task.empty()) return Error(res, 400, "task: required (STEP or STEP/ITEM)");
  std::string stream = req.has_param("stream") ? req.get_param_value("stream") : "out";
  if (stream != "out" && stream != "err") return Error(res, 400, "stream: expected out or err");
  int attempt = IntParam(req, "attempt", 0, 1, 1000000);
  int tail = IntParam(req, "tail", 0, 0, 1000000);
  if (attempt < 0 || tail < 0) return Error(res, 400, "attempt and tail: expected positive integers");
  auto attempts = store->ListAttempts(run_id);
  if (!attempts.ok()) return Error(res, 500, attempts.status().message());
  int latest = 0;
  for (const auto& a : attempts.value()) {
    if (a.task_id == task) latest = std::max(latest, a.attempt);
  }
  if (latest == 0) return Error(res, 404, "run " + run_id + " has no attempt of task " + task);
  if (attempt == 0) attempt = latest;
  if (attempt > latest) return Error(res, 404, "task " + task + " has " + std::to_string(latest) + " attempts");
  std::string path = sh_.layout.LogPath(run_id, TaskKey(task), attempt, stream.c_str());
  bool follow = req.get_param_value("follow") == "1";
  if (!follow) {
    std::string text;
    int64_t size = 0;
    Status st = ReadTail(path, tail, &text, &size);
    if (st.code() == StatusCode::kNotFound) {
      // An attempt that wrote nothing leaves no file: its log is empty.
      for (const auto& a : attempts.value()) {
        if (a.task_id == task && a.attempt == attempt && a.status != "running") {
          res.set_content("", "text/plain; charset=utf-8");
          return;
        }
      }
      return Error(res, 404, "no log yet: " + task + " attempt " + std::to_string(attempt));
    }
    if (!st.ok()) return Error(res, 403, st.message());
    res.set_content(text, "text/plain; charset=utf-8");
    return;
  }
  if (streams_.fetch_add(1) >= o_.max_streams) {
    --streams_;
    return Error(res, 503, "too many open streams (" + std::to_string(o_.max_streams) + "); close one and retry");
  }
  struct Follow {
    std::string path;
    int64_t offset = 0;
    std::string partial;
    bool ended = false;
  };
  auto f = std::make_shared<Follow>();
  f->path = path;
  {
    std::string text;
    int64_t size = 0;
    if (ReadTail(path, tail, &text, &size).ok()) f->offset = size - static_cast<int64_t>(text.size());
  }
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, f, run_id, task, attempt](size_t, httplib::DataSink& sink) {
        if (hub_.stopped() || f->ended) {
          sink.done();
          return true;
        }
        // Is the attempt over? Read before the file, so the last bytes are sent.
        bool over = false;
        if (Store* store = ThreadStore()) {
          auto attempts = store->ListAttempts(run_id);
          if (attempts.ok()) {
            for (const auto& a : attempts.value()) {
              if (a.task_id == task && a.attempt == attempt) over = a.status != "running";
            }
          }
        }
        std::string out;
        bool eof = false;
        int fd = ::open(f->path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        struct stat st {};
        if (fd >= 0 && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
          if (st.st_size < f->offset) f->offset = 0;  // truncated
          char buf[65536];
          ssize_t n;
          while ((n = ::pread(fd, buf, sizeof buf, f->offset)) > 0) {
            f->offset += n;
            f->partial.append(buf, static_cast<size_t>(n));
            size_t nl;
            while ((nl = f->partial.find('\n')) != std::string::npos) {
              out += "event: log\n" + SseData(f->partial.substr(0, nl)) + "\n";
              f->partial.erase(0, nl + 1);
            }
            if (f->partial.size() > kMaxLineBytes) {  // a "line" without end (progress bars): sent in pieces
              out += "event: log\n" + SseData(f->partial) + "\n";
              f->partial.clear();
            }
            if (out.size() > (1 << 20)) break;
          }
          eof = n == 0;
        } else {
          eof = true;  // no file (yet): nothing more to read now
        }
        if (!eof) over = false;  // more to send first: the end comes in a later pass
        if (over && !f->partial.empty()) {
          out += "event: log\n" + SseData(f->partial) + "\n";
          f->partial.clear();
        }
        if (over) {
          out += "event: end\ndata: {\"attempt\": " + std::to_string(attempt) + "}\n\n";
          f->ended = true;
        }
        if (!out.empty() && !sink.write(out.data(), out.size())) {
          if (fd >= 0) ::close(fd);
          return false;
        }
        if (!over && eof) {
          // Wait for the file to change (inotify), at most a second: then look again.
          int in = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
          if (in >= 0 && ::inotify_add_watch(in, f->path.c_str(), IN_MODIFY | IN_CLOSE_WRITE) >= 0) {
            struct pollfd p = {in, POLLIN, 0};
            (void)::poll(&p, 1, 1000);
          } else {
            ::usleep(200 * 1000);
          }
          if (in >= 0) ::close(in);
          if (out.empty() && !sink.write(": .\n\n", 5)) {
            if (fd >= 0) ::close(fd);
            return false;
          }
        }
        if (fd >= 0) ::close(fd);
        return true;
      },
      [this](bool) { --streams_; });
}

void Server::Artifacts(const Request& req, Response& res, const std::string& run_id, const std::string& path) {
  Store* store = ThreadStore();
  if (!store) return Error(res, 500, "cannot open the store");
  auto run = store->GetRun(run_id);
  if (!run.ok() || !run.value()) return Error(res, 404, "no run " + run_id);
  auto real = ResolveInside(sh_.layout.RunDir(run_id), path);
  if (!real.ok()) {
    return Error(res, real.status().code() == StatusCode::kNotFound ? 404 : 403, real.status().message());
  }
  struct stat st {};
  if (::stat(real.value().c_str(), &st) != 0) return Error(res, 404, "no such file: " + path);
  if (S_ISDIR(st.st_mode)) {
    DIR* d = ::opendir(real.value().c_str());
    if (!d) return Error(res, 403, "cannot list " + path);
    json entries = json::array();
    std::vector<json> dirs, files;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == ".." || name == "_staging") continue;
      struct stat es {};
      if (::lstat((real.value() + "/" + name).c_str(), &es) != 0) continue;
      std::string type = S_ISDIR(es.st_mode) ? "dir" : S_ISREG(es.st_mode) ? "file" : S_ISLNK(es.st_mode) ? "link" : "other";
      json entry = {{"name", name}, {"type", type}, {"size", static_cast<int64_t>(es.st_size)},
                    {"mtime", static_cast<int64_t>(es.st_mtime) * 1000}};
      (type == "dir" ? dirs : files).push_back(entry);
    }
    ::closedir(d);
    auto by_name = [](const json& a, const json& b) { return a["name"].get<std::string>() < b["name"].get<std::string>(); };
    std::sort(dirs.begin(), dirs.end(), by_name);
    std::sort(files.begin(), files.end(), by_name);
    for (auto& e : dirs) entries.push_back(e);
    for (auto& e : files) entries.push_back(e);
    return Json(res, {{"path", path}, {"entries", entries}});
  }
  if (!S_ISREG(st.st_mode)) return Error(res, 403, path + " is not a regular file (a FIFO or device is never read)");
  int fd = ::open(real.value().c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
  if (fd < 0) return Error(res, 403, "cannot read " + path);
  {
    // What was opened is what was checked: a step swapping a folder for a
    // symlink in between is caught here.
    char buf[PATH_MAX];
    std::string self = "/proc/self/fd/" + std::to_string(fd);
    ssize_t n = ::readlink(self.c_str(), buf, sizeof buf - 1);
    struct stat fst {};
    auto base = ResolveInside(sh_.layout.RunDir(run_id), "");
    if (n <= 0 || ::fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode) || !base.ok() ||
        !StartsWith(std::string(buf, static_cast<size_t>(n)), base.value() + "/")) {
      ::close(fd);
      return Error(res, 403, "the path leads out of the run folder");
    }
    st = fst;
  }
  std::string name = BaseName(real.value());
  // Outputs are written by arbitrary steps: shown in a sandbox (an opaque
  // origin), so an HTML or SVG output cannot read the UI's token.
  res.set_header("Content-Security-Policy", "sandbox allow-scripts");
  if (req.get_param_value("download") == "1") {
    std::string safe;
    for (char c : name) safe += (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 32) ? '_' : c;
    res.set_header("Content-Disposition", "attachment; filename=\"" + safe + "\"");
  }
  auto size = static_cast<size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    res.set_content("", ContentType(name));
    return;
  }
  auto shared_fd = std::shared_ptr<int>(new int(fd), [](int* p) {
    ::close(*p);
    delete p;
  });
  res.set_content_provider(size, ContentType(name),
                           [shared_fd](size_t offset, size_t length, httplib::DataSink& sink) {
                             char buf[65536];
                             size_t want = std::min(length, sizeof buf);
                             ssize_t n = ::pread(*shared_fd, buf, want, static_cast<off_t>(offset));
                             if (n <= 0) return false;
                             return sink.write(buf, static_cast<size_t>(n));
                           });
}

void Server::CancelRun(const std::string& run_id, Response& res) {
  Store* store = ThreadStore();
  if (!store) return Error(res, 500, "cannot open the store");
  auto run = store->GetRun(run_id);
  if (!run.ok() || !run.value()) return Error(res, 404, "no run " + run_id);
  bool ours;
  {
    std::lock_guard<std::mutex> g(runs_mu_);
    ours = running_.count(run_id) > 0;
  }
  auto job = store->JobOfRun(run_id);
  // Leased by this server, about to start: ours too.
  if (!ours && job.ok() && job.value() && job.value()->state == "leased" && job.value()->lease_owner == self_) ours = true;
  if (ours) {
    Status st = store->AppendEvent({0, run_id, sh_.clock.Now(), "cancel_requested", "", 0, ""});
    if (!st.ok()) return Error(res, 500, st.message());
    {
      std::lock_guard<std::mutex> g(runs_mu_);
      cancel_requests_.insert(run_id);
    }
    sh_.events.RequestWake();
    return Json(res, {{"run_id", run_id}, {"cancel_requested", true}}, 202);
  }
  // A job waiting to resume it: the job is cancelled instead.
  if (job.ok() && job.value() && job.value()->state == "pending") {
    return CancelJob(job.value()->job_id, res);
  }
  if (run.value()->status == "running" && cli::DisplayStatus(*run.value()) == "running") {
    return Error(res, 409, "run " + run_id + " is driven by another engine (pid " + std::to_string(run.value()->pid) +
                               " on " + run.value()->host + "); cancel it with `nightshift cancel " + run_id + "` there");
  }
  Error(res, 409, "run " + run_id + " is not running (it " + cli::DisplayStatus(*run.value()) + ")");
}

// In one transaction: reads the job and lets `change` edit it; `change`
// returns "" to save the edit, or why it refuses (the job is then left as it
// is). The job is returned either way; NotFound when there is none.
Result<JobRow> Server::ChangeJob(Store* store, const std::string& job_id,
                                 const std::function<std::string(JobRow&)>& change, std::string* refused) {
  JobRow out;
  Status st = store->Transaction([&]() -> Status {
    auto j = store->GetJob(job_id);
    if (!j.ok()) return j.status();
    if (!j.value()) return Status::NotFound("no job " + job_id);
    out = *j.value();
    JobRow job = out;
    *refused = change(job);
    if (!refused->empty()) return Status::Ok();
    job.updated_at = sh_.clock.Now();
    NS_RETURN_IF_ERROR(store->UpdateJob(job));
    out = job;
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return out;
}

void Server::CancelJob(const std::string& job_id, Response& res) {
  Store* store = ThreadStore();
  if (!store) return Error(res, 500, "cannot open the store");
  std::string refused;
  auto job = ChangeJob(store, job_id, [&](JobRow& j) -> std::string {
    if (j.state == "leased") return "leased";  // its run is cancelled instead
    if (j.state != "pending") return "job " + job_id + " is " + j.state + ": nothing to cancel";
    j.state = "cancelled";
    j.message = "cancelled before it ran";
    return "";
  }, &refused);
  if (!job.ok()) return Error(res, job.status().code() == StatusCode::kNotFound ? 404 : 500, job.status().message());
  if (refused == "leased") return CancelRun(job.value().run_id, res);
  if (!refused.empty()) return Error(res, 409, refused);
  PublishJob(job.value());
  Json(res, {{"job", JobJson(job.value())}}, 202);
}

void Server::RetryJob(const std::string& job_id, Response& res) {
  Store* store = ThreadStore();
  if (!store) return Error(res, 500, "cannot open the store");
  std::string refused;
  auto job = ChangeJob(store, job_id, [&](JobRow& j) -> std::string {
    if (j.state != "dead" && j.state != "cancelled") {
      return "job " + job_id + " is " + j.state + "; only dead or cancelled jobs are retried";
    }
    j.state = "pending";
    j.attempts = 0;
    j.message = "retried";
    return "";
  }, &refused);
  if (!job.ok()) return Error(res, job.status().code() == StatusCode::kNotFound ? 404 : 500, job.status().message());
  if (!refused.empty()) return Error(res, 409, refused);
  PublishJob(job.value());
  sh_.events.RequestWake();
  Json(res, {{"job", JobJson(job.value())}});
}

void Server::RetryRun(const std::string& run_id, Response& res) {
  Store* store = ThreadStore();
  if (!store) return Error(res, 500, "cannot open the store");
  auto run = store->GetRun(run_id);
  if (!run.ok() || !run.value()) return Error(res, 404, "no run " + run_id);
  std::string status = cli::DisplayStatus(*run.value());
  if (status == "running") return Error(res, 409, "run " + run_id + " is running");
  auto job = store->JobOfRun(run_id);
  if (job.ok() && job.value()) {
    const JobRow& j = *job.value();
    if (j.state == "pending" || j.state == "leased") return Json(res, {{"job", JobJson(j)}}, 200);
    if (j.state == "dead" || j.state == "cancelled") return RetryJob(j.job_id, res);
  }
  Submission s;
  s.pipeline = run.value()->pipeline_file;
  s.params = json::parse(run.value()->params_json, nullptr, false);
  if (!s.params.is_object()) s.params = json::object();
  s.resume = run_id;
  // Two retries of the same ended run make one job.
  s.key = "retry:" + run_id + ":" + std::to_string(run.value()->finished_at);
  std::string problems;
  auto r = SubmitJob(store, s, sh_.root, sh_.clock.Now(), &problems);
  if (!r.ok()) return Error(res, problems.empty() ? 500 : 422, problems.empty() ? r.status().message() : problems);
  if (r.value().second) {
    PublishJob(r.value().first);
    sh_.events.RequestWake();
  }
  Json(res, {{"job", JobJson(r.value().first)}}, r.value().second ? 201 : 200);
}

void Server::Events(const Request& req, Response& res) {
  if (streams_.fetch_add(1) >= o_.max_streams) {
    --streams_;
    return Error(res, 503, "too many open streams (" + std::to_string(o_.max_streams) + "); close one and retry");
  }
  int64_t after = hub_.last_id();
  std::string last = req.get_header_value("Last-Event-ID");
  if (!last.empty() && last.size() < 19 && last.find_first_not_of("0123456789") == std::string::npos) {
    after = std::stoll(last);
    if (after > hub_.last_id()) after = 0;  // ids of an earlier server: send all there is
  }
  auto pos = std::make_shared<int64_t>(after);
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, pos](size_t, httplib::DataSink& sink) {
        auto events = hub_.Since(*pos, 5000);  // a keep-alive every 5 s finds closed clients
        if (hub_.stopped()) {
          sink.done();
          return true;
        }
        std::string out;
        if (events.empty()) out = ": keep-alive\n\n";
        for (const auto& e : events) {
          out += "id: " + std::to_string(e.id) + "\nevent: " + e.kind + "\n" + SseData(e.data) + "\n";
          *pos = e.id;
        }
        return sink.write(out.data(), out.size());
      },
      [this](bool) { --streams_; });
}

void Server::Metrics(Response& res) {
  Store* store = ThreadStore();
  if (!store) return Error(res, 500, "cannot open the store");
  std::ostringstream m;
  std::map<std::string, int64_t> jobs = {{"pending", 0}, {"leased", 0}, {"succeeded", 0}, {"cancelled", 0}, {"dead", 0}};
  auto jc = store->JobCounts();
  if (jc.ok()) {
    for (auto& [k, v] : jc.value()) jobs[k] = v;
  }
  m << "# HELP nightshift_queue_jobs Jobs in the queue, by state.\n# TYPE nightshift_queue_jobs gauge\n";
  for (auto& [k, v] : jobs) m << "nightshift_queue_jobs{state=\"" << Label(k) << "\"} " << v << "\n";
  m << "# HELP nightshift_queue_depth Jobs waiting to start.\n# TYPE nightshift_queue_depth gauge\n"
    << "nightshift_queue_depth " << jobs["pending"] << "\n";
  std::map<std::string, int64_t> runs = {{"running", 0}, {"succeeded", 0}, {"failed", 0}, {"cancelled", 0}};
  auto rc = store->RunCounts();
  if (rc.ok()) {
    for (auto& [k, v] : rc.value()) runs[k] = v;
  }
  m << "# HELP nightshift_runs Runs in the store, by status.\n# TYPE nightshift_runs gauge\n";
  for (auto& [k, v] : runs) m << "nightshift_runs{status=\"" << Label(k) << "\"} " << v << "\n";
  {
    std::lock_guard<std::mutex> g(runs_mu_);
    m << "# HELP nightshift_runs_active Runs this server drives now.\n# TYPE nightshift_runs_active gauge\n"
      << "nightshift_runs_active " << running_.size() << "\n";
  }
  // Durations of succeeded attempts per step, and attempts by outcome.
  static const double kBuckets[] = {0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400};
  struct Hist {
    int64_t counts[std::size(kBuckets)] = {};
    int64_t n = 0;
    double sum = 0;
  };
  std::map<std::string, Hist> hist;
  std::map<std::string, int64_t> outcomes;
  std::map<std::string, int64_t> preempted_by_class;
  int64_t preemptions = 0;
  (void)store->ForEachAttempt([&](const std::string& step, const std::string& status, const std::string& cls, int64_t ms) {
    outcomes[status]++;
    if (status == "preempted") {
      ++preemptions;
      preempted_by_class[cls]++;
    }
    if (status != "succeeded") return;
    Hist& h = hist[step];
    double s = std::max<int64_t>(ms, 0) / 1000.0;
    for (size_t i = 0; i < std::size(kBuckets); ++i) {
      if (s <= kBuckets[i]) h.counts[i]++;
    }
    h.n++;
    h.sum += s;
  });
  m << "# HELP nightshift_task_duration_seconds Duration of succeeded attempts, by step.\n"
       "# TYPE nightshift_task_duration_seconds histogram\n";
  for (auto& [step, h] : hist) {
    for (size_t i = 0; i < std::size(kBuckets); ++i) {
      m << "nightshift_task_duration_seconds_bucket{step=\"" << Label(step) << "\",le=\"" << kBuckets[i] << "\"} "
        << h.counts[i] << "\n";
    }
    m << "nightshift_task_duration_seconds_bucket{step=\"" << Label(step) << "\",le=\"+Inf\"} " << h.n << "\n";
    m << "nightshift_task_duration_seconds_sum{step=\"" << Label(step) << "\"} " << h.sum << "\n";
    m << "nightshift_task_duration_seconds_count{step=\"" << Label(step) << "\"} " << h.n << "\n";
  }
  m << "# HELP nightshift_attempts_total Finished attempts, by outcome.\n# TYPE nightshift_attempts_total counter\n";
  for (auto& [k, v] : outcomes) m << "nightshift_attempts_total{outcome=\"" << Label(k) << "\"} " << v << "\n";
  m << "# HELP nightshift_preemptions_total Attempts ended by a preemption.\n"
       "# TYPE nightshift_preemptions_total counter\nnightshift_preemptions_total "
    << preemptions << "\n";
  // Cost of finished runs, from their run.json (read once per run).
  std::map<std::string, double> cost;
  {
    auto finished = store->ListRunsFiltered({"", "", "", "", 100000});
    std::lock_guard<std::mutex> g(cost_mu_);
    if (finished.ok()) {
      for (const auto& [r, job] : finished.value()) {
        if (r.status == "running") continue;
        auto it = cost_cache_.find(r.run_id);
        if (it == cost_cache_.end()) {
          std::pair<std::string, double> c{"", 0};
          auto text = ReadFile(sh_.layout.RunDir(r.run_id) + "/run.json");
          if (text.ok()) {
            auto j = json::parse(text.value(), nullptr, false);
            if (j.is_object() && j.contains("cost") && j["cost"].is_object() && j["cost"].contains("actual") &&
                j["cost"]["actual"].is_number()) {
              c = {j["cost"].value("currency", ""), j["cost"]["actual"].get<double>()};
            }
          }
          it = cost_cache_.emplace(r.run_id, c).first;
        }
        if (!it->second.first.empty()) cost[it->second.first] += it->second.second;
      }
    }
  }
  m << "# HELP nightshift_cost Cost of the finished runs on their instance catalogue, by currency.\n"
       "# TYPE nightshift_cost gauge\n";
  for (auto& [cur, v] : cost) m << "nightshift_cost{currency=\"" << Label(cur) << "\"} " << v << "\n";
  res.set_content(m.str(), "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace ns::server
