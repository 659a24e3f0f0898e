#include "server/server.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <httplib.h>

#include <cstring>
#include <iostream>
#include <optional>
#include <random>
#include <thread>

#include "cli/cli.h"
#include "exec/local_executor.h"
#include "spec/params.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/process.h"
#include "util/strings.h"

namespace ns::server {

namespace {

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  bool ok = fd >= 0 && ::read(fd, raw.data(), bytes) == static_cast<ssize_t>(bytes);
  if (fd >= 0) ::close(fd);
  if (!ok) {
    std::random_device rd;
    for (auto& c : raw) c = static_cast<char>(rd());
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "::1" || StartsWith(host, "127.");
}

void Log(const std::string& line) {
  static std::mutex mu;
  std::lock_guard<std::mutex> g(mu);
  std::cerr << "nightshift: " << line << "\n";
}

}  // namespace

nlohmann::json JobJson(const JobRow& j) {
  nlohmann::json params = nlohmann::json::parse(j.params_json, nullptr, false);
  if (!params.is_object()) params = nlohmann::json::object();
  return {{"id", j.job_id},
          {"key", j.key},
          {"pipeline", j.pipeline_file},
          {"params", params},
          {"priority", j.priority},
          {"deadline", j.deadline},
          {"state", j.state},
          {"attempts", j.attempts},
          {"max_attempts", j.max_attempts},
          {"run_id", j.run_id},
          {"resume", j.resume},
          {"created_at", j.created_at},
          {"updated_at", j.updated_at},
          {"message", j.message}};
}

nlohmann::json RunJson(const RunRow& r, const std::string& job_id) {
  nlohmann::json params = nlohmann::json::parse(r.params_json, nullptr, false);
  if (!params.is_object()) params = nlohmann::json::object();
  return {{"run_id", r.run_id},
          {"pipeline", r.pipeline},
          {"pipeline_file", r.pipeline_file},
          {"status", cli::DisplayStatus(r)},
          {"created_at", r.created_at},
          {"finished_at", r.finished_at},
          {"message", r.message},
          {"params", params},
          {"job_id", job_id}};
}

Status ParseSubmission(const std::string& body, Submission* s) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) return Status::Invalid("the body is not JSON");
  if (!j.is_object()) return Status::Invalid("the body must be a JSON object");
  std::vector<std::string> problems;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const auto& v = it.value();
    if (k == "pipeline") {
      if (!v.is_string() || v.get<std::string>().empty()) problems.push_back("pipeline: expected a file path");
      else s->pipeline = v.get<std::string>();
    } else if (k == "params") {
      if (!v.is_object()) problems.push_back("params: expected an object of NAME: VALUE");
      else s->params = v;
    } else if (k == "priority") {
      if (!v.is_number_integer() || v.get<int64_t>() < -1000000 || v.get<int64_t>() > 1000000) {
        problems.push_back("priority: expected an integer");
      } else {
        s->priority = v.get<int>();
      }
    } else if (k == "deadline") {
      if (!v.is_null() && !v.is_string() && !v.is_number_integer()) {
        problems.push_back("deadline: expected \"HH:MM\", a duration such as \"6h\", or ms since the epoch");
      } else {
        s->deadline = v;
      }
    } else if (k == "key") {
      if (!v.is_string() || v.get<std::string>().size() > 512) problems.push_back("key: expected a string of at most 512 bytes");
      else s->key = v.get<std::string>();
    } else if (k == "max_attempts") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 100) {
        problems.push_back("max_attempts: expected an integer from 1 to 100");
      } else {
        s->max_attempts = v.get<int>();
      }
    } else {
      problems.push_back("unknown field '" + k + "' (known: pipeline, params, priority, deadline, key, max_attempts)");
    }
  }
  if (s->pipeline.empty() && !j.contains("pipeline")) problems.push_back("pipeline: required");
  if (!problems.empty()) return Status::Invalid(Join(problems, "\n"));
  return Status::Ok();
}

Result<std::pair<JobRow, bool>> SubmitJob(Store* store, const Submission& s, const std::string& base,
                                          TimeMs now, std::string* problems) {
  std::vector<std::string> out;
  // A known key answers with its job whatever happened to the file since.
  if (!s.key.empty()) {
    auto known = store->JobWithKey(s.key);
    if (!known.ok()) return known.status();
    if (known.value()) return std::make_pair(*known.value(), false);
  }
  std::string path = s.pipeline;
  if (!path.empty() && path[0] != '/') path = base + "/" + path;
  path = AbsolutePath(path);
  // Only a regular file is read (a FIFO would block the reader for ever).
  struct stat st {};
  std::optional<spec::Pipeline> pipeline;
  spec::Diagnostics diags(path);
  if (::stat(path.c_str(), &st) != 0) {
    out.push_back(path + ": " + std::strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    out.push_back(path + ": not a regular file");
  } else {
    pipeline = spec::ParsePipelineFile(path, &diags);
  }
  if (!out.empty()) {
  } else if (!pipeline) {
    for (const auto& line : Split(diags.Format(), '\n')) {
      if (!line.empty()) out.push_back(line);
    }
  } else {
    std::vector<std::pair<std::string, std::string>> overrides;
    for (auto it = s.params.begin(); it != s.params.end(); ++it) {
      const auto& v = it.value();
      if (v.is_string()) {
        overrides.emplace_back(it.key(), v.get<std::string>());
      } else if (v.is_number() || v.is_boolean() || v.is_array()) {
        overrides.emplace_back(it.key(), v.dump());
      } else {
        out.push_back("params." + it.key() + ": expected a string, number, boolean or list");
      }
    }
    auto resolved = spec::ResolveParams(*pipeline, overrides);
    if (!resolved.ok()) {
      for (const auto& line : Split(resolved.status().message(), '\n')) out.push_back(path + ": " + line);
    }
  }
  int64_t deadline = 0;
  if (s.deadline.is_number_integer()) {
    deadline = s.deadline.get<int64_t>();
    if (deadline < 0) out.push_back("deadline: must not be negative");
  } else if (s.deadline.is_string() && !s.deadline.get<std::string>().empty()) {
    auto at = cli::ParseDeadline(s.deadline.get<std::string>(), now);
    if (!at) out.push_back("deadline " + s.deadline.get<std::string>() + ": expected HH:MM or a duration such as 6h");
    else deadline = *at;
  }
  if (!out.empty()) {
    *problems = Join(out, "\n");
    return Status::Invalid(*problems);
  }
  JobRow j;
  j.job_id = "j" + NewRunId(now);
  j.key = s.key;
  j.pipeline_file = path;
  j.params_json = DumpJson(s.params);
  j.priority = s.priority;
  j.deadline = deadline;
  j.state = "pending";
  j.max_attempts = s.max_attempts;
  j.resume = s.resume;
  j.created_at = j.updated_at = now;
  return store->SubmitJob(j);
}

// What the engine thread keeps of a run it drives for a job.
struct Server::Active {
  JobRow job;
  TimeMs started_at = 0;
  bool cancelled_by_user = false;
  cli::Prepared prep;
  std::unique_ptr<Observer> observer;
  std::unique_ptr<Scheduler> sched;
};

// Tells the hub (and, per step, the server's log) how a run moves.
class Server::Observer : public RunObserver {
 public:
  Observer(Server* s, std::string run_id, std::string job_id)
      : s_(s), run_id_(std::move(run_id)), job_id_(std::move(job_id)) {}
  void OnEvent(const RunEvent& e) override {
    switch (e.kind) {
      case RunEvent::Kind::kStepStarted:
      case RunEvent::Kind::kStepFinished:
        s_->hub_.Publish("step", DumpJson({{"run_id", run_id_},
                                           {"step", e.step},
                                           {"status", e.kind == RunEvent::Kind::kStepStarted ? "running" : e.status},
                                           {"total", e.total}}));
        if (e.kind == RunEvent::Kind::kStepFinished && e.status != "succeeded") {
          Log("run " + run_id_ + " (job " + job_id_ + "): step " + e.step + " " + e.status +
              (e.message.empty() ? "" : ": " + e.message));
        }
        break;
      case RunEvent::Kind::kTaskStarted:
      case RunEvent::Kind::kTaskFinished:
        s_->hub_.Publish("task", DumpJson({{"run_id", run_id_},
                                           {"task_id", e.task_id},
                                           {"step", e.step},
                                           {"item", e.item},
                                           {"status", e.kind == RunEvent::Kind::kTaskStarted ? "running" : e.status},
                                           {"attempt", e.attempt},
                                           {"message", e.message}}));
        break;
      case RunEvent::Kind::kRunFinished:
        break;  // Server::Finished says it, with the job
    }
  }

 private:
  Server* s_;
  std::string run_id_;
  std::string job_id_;
};

Server::Server(ServeOptions o) : o_(std::move(o)) {}
Server::~Server() = default;

void Server::PublishJob(const JobRow& j) { hub_.Publish("job", DumpJson(JobJson(j))); }

Status Server::Recover() {
  // Jobs leased by a server that is gone (same host, its process is no more)
  // go back to pending now; their runs resume. A lease held on another host
  // is taken only once it expires.
  Store* store = sh_.store.get();
  auto leased = store->LeasedJobs();
  if (!leased.ok()) return leased.status();
  for (JobRow j : leased.value()) {
    ProcessIdentity owner = ProcessIdentity::Parse(j.lease_owner);
    if (owner.host != HostName() || IsAlive(owner)) continue;
    j.state = "pending";
    j.lease_owner.clear();
    j.lease_expires = 0;
    j.updated_at = sh_.clock.Now();
    j.message = "its server stopped while the run ran; the run resumes";
    NS_RETURN_IF_ERROR(store->UpdateJob(j));
    Log("job " + j.job_id + ": its server stopped; run " + j.run_id + " resumes");
  }
  return Status::Ok();
}

void Server::Refill(Engine* engine) {
  Store* store = sh_.store.get();
  TimeMs now = sh_.clock.Now();
  if (now >= next_renew_) {
    auto renewed = store->RenewLeases(self_, now + o_.lease_ms);
    if (!renewed.ok()) Log("cannot renew leases: " + renewed.status().message());
    next_renew_ = now + o_.lease_ms / 3;
  }
  {
    std::set<std::string> cancels;
    {
      std::lock_guard<std::mutex> g(runs_mu_);
      cancels.swap(cancel_requests_);
    }
    for (auto& [sched, a] : active_) {
      if (cancels.count(a->prep.cfg.run_id)) {
        a->cancelled_by_user = true;
        sched->Cancel();
      }
    }
  }
  if (draining_) return;
  skipped_.clear();
  while (static_cast<int>(active_.size()) < o_.max_runs) {
    int want = o_.max_runs - static_cast<int>(active_.size()) + static_cast<int>(skipped_.size());
    auto jobs = store->LeasableJobs(now, want);
    if (!jobs.ok()) {
      Log("cannot read the queue: " + jobs.status().message());
      return;
    }
    size_t fresh = 0;
    for (auto& j : jobs.value()) {
      if (skipped_.count(j.job_id)) continue;
      ++fresh;
      if (!StartJob(engine, j)) return;  // an engine error: try again at the next round
    }
    if (fresh == 0) return;
  }
}

bool Server::StartJob(Engine* engine, JobRow job) {
  Store* store = sh_.store.get();
  TimeMs now = sh_.clock.Now();
  auto a = std::make_unique<Active>();
  std::string resume = !job.run_id.empty() ? job.run_id : job.resume;
  // Its run is driven already (here, or by an engine that may be alive: a
  // `nightshift run --resume`, a server elsewhere): not now.
  if (!resume.empty()) {
    {
      std::lock_guard<std::mutex> g(runs_mu_);
      if (running_.count(resume)) {
        skipped_.insert(job.job_id);
        return true;
      }
    }
    auto run = store->GetRun(resume);
    std::string who;
    if (run.ok() && run.value() && cli::OwnerMayBeAlive(*run.value(), &who)) {
      skipped_.insert(job.job_id);
      return true;
    }
  }
  std::vector<std::string> params;
  auto pj = nlohmann::json::parse(job.params_json, nullptr, false);
  if (pj.is_object()) {
    for (auto it = pj.begin(); it != pj.end(); ++it) {
      params.push_back(it.key() + "=" + (it->is_string() ? it->get<std::string>() : it->dump()));
    }
  }
  std::vector<std::string> problems;
  bool taken = false;
  cli::Report report = [&](const std::string& line) { problems.push_back(line); };
  cli::RunOptions o = o_.run;
  o.deadline.clear();
  int rc = cli::Check(o, job.pipeline_file, params, resume, &sh_, &a->prep, report);
  if (rc == cli::kExitOk) {
    if (job.deadline > 0) a->prep.cfg.deadline = job.deadline;
    a->prep.cfg.priority = job.priority;
    JobRow leased = job;
    rc = cli::Create(
        &sh_, &a->prep,
        [&]() -> Status {
          // Still leasable? A user may have cancelled it meanwhile.
          auto fresh = store->GetJob(job.job_id);
          if (!fresh.ok()) return fresh.status();
          if (!fresh.value() || !(fresh.value()->state == "pending" ||
                                  (fresh.value()->state == "leased" && fresh.value()->lease_expires < now))) {
            taken = true;
            return Status::Cancelled("the job changed");
          }
          leased = *fresh.value();
          leased.state = "leased";
          leased.lease_owner = self_;
          leased.lease_expires = now + o_.lease_ms;
          leased.run_id = a->prep.cfg.run_id;
          leased.updated_at = now;
          leased.message.clear();
          return store->UpdateJob(leased);
        },
        report);
    if (rc == cli::kExitOk) job = leased;
  }
  if (taken) {
    // Someone changed the job first: nothing was leased; a new run's empty folder goes.
    if (!a->prep.cfg.resume && !a->prep.cfg.run_id.empty()) (void)RemoveTree(sh_.layout.RunDir(a->prep.cfg.run_id));
    return true;
  }
  if (rc != cli::kExitOk) {
    auto fresh = store->GetJob(job.job_id);
    if (fresh.ok() && fresh.value() && fresh.value()->state == "leased" && fresh.value()->lease_owner == self_) {
      // The lease committed, then the run's folder failed: the run ends
      // failed and the job waits for the next round.
      job = *fresh.value();
      job.state = "pending";
      job.lease_owner.clear();
      job.lease_expires = 0;
      (void)store->UpdateRun(job.run_id, "failed", now, Join(problems, "; "));
      rc = cli::kExitEngine;
    }
    // Bad input does not get better by retrying: the job is dead until a user
    // fixes the file and retries it. An engine error leaves it pending.
    job.updated_at = now;
    job.message = Join(problems, "\n");
    if (rc == cli::kExitBadInput) job.state = "dead";
    Status st = store->UpdateJob(job);
    Log("job " + job.job_id + (rc == cli::kExitBadInput ? " is dead: " : " could not start: ") +
        (problems.empty() ? "" : problems[0]));
    if (!st.ok()) Log("cannot record job " + job.job_id + ": " + st.message());
    PublishJob(job);
    return rc == cli::kExitBadInput && st.ok();
  }
  const std::string run_id = a->prep.cfg.run_id;
  a->job = job;
  a->started_at = now;
  a->observer = std::make_unique<Observer>(this, run_id, job.job_id);
  a->sched = std::make_unique<Scheduler>(*a->prep.pipeline, a->prep.cfg, store, executor_, &sh_.clock,
                                         &sh_.events, a->observer.get(), pool_.get());
  engine->Add(a->sched.get());
  {
    std::lock_guard<std::mutex> g(runs_mu_);
    running_.insert(run_id);
  }
  PublishJob(job);
  hub_.Publish("run", DumpJson({{"run_id", run_id}, {"status", "running"}, {"job_id", job.job_id}}));
  Log("job " + job.job_id + ": " + (a->prep.cfg.resume ? "resuming run " : "run ") + run_id + " of " +
      a->prep.pipeline->name);
  active_[a->sched.get()] = std::move(a);
  return true;
}

void Server::Finished(Scheduler* run, const Result<RunStatus>& result) {
  auto it = active_.find(run);
  if (it == active_.end()) return;
  Active& a = *it->second;
  Store* store = sh_.store.get();
  const std::string run_id = a.prep.cfg.run_id;
  TimeMs now = sh_.clock.Now();
  if (a.prep.catalogue && result.ok()) {
    (void)cli::RecordCost(store, sh_.layout, run_id, *a.prep.catalogue, a.prep.catalogue_path, now);
  }
  JobRow j = a.job;
  auto fresh = store->GetJob(j.job_id);
  if (fresh.ok() && fresh.value()) j = *fresh.value();
  std::string status = result.ok() ? RunStatusName(result.value()) : "failed";
  if (result.ok() && result.value() == RunStatus::kSucceeded) {
    j.state = "succeeded";
    j.message.clear();
  } else if (result.ok() && result.value() == RunStatus::kCancelled) {
    bool by_user = a.cancelled_by_user;
    auto asked = store->ListEvents(run_id, "cancel_requested", 0);
    if (asked.ok()) {
      for (const auto& e : asked.value()) by_user = by_user || e.time >= a.started_at;
    }
    bool drained = draining_ && !by_user;
    j.state = drained ? "pending" : "cancelled";
    j.message = drained ? "the server stopped (drained) while it ran; the run resumes at its next start"
                        : "its run was cancelled";
  } else {
    j.attempts += 1;
    std::string why = result.ok() ? "run " + run_id + " failed (see its failed steps)" : result.status().message();
    j.state = j.attempts >= j.max_attempts ? "dead" : "pending";
    j.message = why + "; " + std::to_string(j.attempts) + " of " + std::to_string(j.max_attempts) + " attempts used";
  }
  j.lease_owner.clear();
  j.lease_expires = 0;
  j.updated_at = now;
  Status st = store->UpdateJob(j);
  if (!st.ok()) Log("cannot record job " + j.job_id + ": " + st.message());
  {
    std::lock_guard<std::mutex> g(runs_mu_);
    running_.erase(run_id);
  }
  PublishJob(j);
  hub_.Publish("run", DumpJson({{"run_id", run_id}, {"status", status}, {"job_id", j.job_id}}));
  Log("job " + j.job_id + ": run " + run_id + " " + status + " -> job " + j.state);
  active_.erase(it);
}

void Server::Drain() {
  if (draining_.exchange(true)) return;
  Log("draining: no new job starts; running attempts get their notice (SIGTERM, then SIGKILL after "
      "their grace) and their jobs go back to the queue");
  sh_.events.RequestCancel();
}

int Server::Start() {
  // One server per root: a second one would lease the same jobs.
  std::string lock_path = sh_.root + "/server.lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0 || ::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    auto info = ReadFile(sh_.root + "/server.json");
    cli::PrintError("another nightshift serve serves " + sh_.root +
                    (info.ok() ? " (" + std::string(Trim(info.value())) + ")" : "") +
                    "; stop it first, or serve another --root");
    return cli::kExitBadInput;
  }
  // The lock is held until the process exits (the fd is never closed).
  // The token: $NIGHTSHIFT_TOKEN, else ROOT/server.token (created 0600).
  const char* env = ::getenv("NIGHTSHIFT_TOKEN");
  if (env && *env) {
    token_ = env;
  } else {
    std::string path = sh_.root + "/server.token";
    auto text = ReadFile(path);
    if (text.ok() && !Trim(text.value()).empty()) {
      token_ = std::string(Trim(text.value()));
      struct stat st {};
      if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
        Log("warning: " + path + " is readable by others (mode " + std::to_string(st.st_mode & 0777) +
            "); chmod 600 it");
      }
    } else {
      token_ = RandomHex(24);
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0 || ::write(fd, (token_ + "\n").data(), token_.size() + 1) != static_cast<ssize_t>(token_.size() + 1)) {
        if (fd >= 0) ::close(fd);
        cli::PrintError("cannot create " + path + ": " + std::strerror(errno));
        return cli::kExitBadInput;
      }
      ::close(fd);
    }
  }
  if (token_.size() < 16) {
    cli::PrintError("the token is too short (" + std::to_string(token_.size()) +
                    " characters); use at least 16 in NIGHTSHIFT_TOKEN or " + sh_.root + "/server.token");
    return cli::kExitBadInput;
  }
  return cli::kExitOk;
}

int Server::Run() {
  // Signals go to one thread: every thread started after this inherits them blocked.
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2}) sigaddset(&set, s);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  auto colon = o_.listen.rfind(':');
  std::string host = colon == std::string::npos ? "" : o_.listen.substr(0, colon);
  if (!host.empty() && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  int port = -1;
  if (colon != std::string::npos) {
    std::string p = o_.listen.substr(colon + 1);
    if (!p.empty() && p.size() <= 5 && p.find_first_not_of("0123456789") == std::string::npos) port = std::stoi(p);
  }
  if (host.empty() || port < 0 || port > 65535) {
    cli::PrintError("--listen " + o_.listen + ": expected HOST:PORT, e.g. 127.0.0.1:8470 (port 0: any free port)");
    return cli::kExitBadInput;
  }
  if (!IsLoopback(host) && !o_.allow_remote) {
    cli::PrintError("--listen " + o_.listen + " is reachable from other machines; add --allow-remote to mean it "
                    "(requests still need the token), or listen on 127.0.0.1");
    return cli::kExitBadInput;
  }
  if (o_.max_runs < 1) {
    cli::PrintError("--max-runs must be at least 1");
    return cli::kExitBadInput;
  }
  if (!o_.inbox.empty() && o_.inbox_pipeline.empty()) {
    cli::PrintError("--inbox needs --inbox-pipeline FILE: the pipeline each arriving video runs");
    return cli::kExitBadInput;
  }
  int rc = cli::SetUp(o_.run, &sh_);
  if (rc != cli::kExitOk) return rc;
  rc = Start();
  if (rc != cli::kExitOk) return rc;
  if (!o_.inbox.empty()) {
    o_.inbox = AbsolutePath(o_.inbox);
    o_.inbox_pipeline = AbsolutePath(o_.inbox_pipeline);
    spec::Diagnostics diags(o_.inbox_pipeline);
    auto p = spec::ParsePipelineFile(o_.inbox_pipeline, &diags);
    if (!p) {
      std::cerr << diags.Format();
      cli::PrintError("--inbox-pipeline " + o_.inbox_pipeline + " is not valid; nothing was started");
      return cli::kExitBadInput;
    }
    if (!p->FindParam(o_.inbox_param)) {
      cli::PrintError("--inbox-pipeline " + o_.inbox_pipeline + " has no param '" + o_.inbox_param +
                      "' to take the arriving file; name it with --inbox-param NAME");
      return cli::kExitBadInput;
    }
    if (!IsDirectory(o_.inbox)) {
      cli::PrintError("--inbox " + o_.inbox + ": not a folder");
      return cli::kExitBadInput;
    }
  }
  self_ = SelfIdentity().ToString();

  std::unique_ptr<LocalExecutor> local;
  executor_ = sh_.slurm.get();
  if (!executor_) {
    auto created = LocalExecutor::Create(&sh_.events, sh_.cap);
    if (!created.ok()) {
      cli::PrintError("cannot start the local executor: " + created.status().message());
      return cli::kExitEngine;
    }
    local = std::move(created.value());
    executor_ = local.get();
  }
  pool_ = std::make_unique<CapacityPool>(sh_.cap, o_.run.spot_cpus, o_.run.on_demand_cpus);
  Status st = Recover();
  if (!st.ok()) {
    cli::PrintError("cannot recover the queue: " + st.message());
    return cli::kExitEngine;
  }

  httplib::Server svr;
  svr.new_task_queue = [n = o_.max_streams + 16] { return new httplib::ThreadPool(static_cast<size_t>(n)); };
  svr.set_payload_max_length(o_.max_body_bytes);
  svr.set_keep_alive_max_count(1000);
  svr.set_tcp_nodelay(true);  // else a response split in two writes waits ~40 ms for a delayed ACK
  Routes(svr);
  int bound = port == 0 ? svr.bind_to_any_port(host) : (svr.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    cli::PrintError("cannot listen on " + o_.listen + ": " + std::strerror(errno) +
                    " (another program may use the port; pick another with --listen)");
    return cli::kExitBadInput;
  }
  std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  base_url_ = "http://" + shown + ":" + std::to_string(bound);
  int inotify_fd = -1, stop_pipe[2] = {-1, -1};
  if (!o_.inbox.empty()) {
    inotify_fd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (inotify_fd < 0 || ::pipe2(stop_pipe, O_CLOEXEC) != 0 ||
        ::inotify_add_watch(inotify_fd, o_.inbox.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR) < 0) {
      cli::PrintError("--inbox " + o_.inbox + ": cannot watch it: " + std::strerror(errno));
      return cli::kExitBadInput;
    }
  }
  std::thread http([&] { svr.listen_after_bind(); });
  (void)WriteFileAtomic(sh_.root + "/server.json",
                        DumpJson({{"url", base_url_}, {"pid", ::getpid()}, {"owner", self_}}) + "\n");
  std::thread inbox;
  if (inotify_fd >= 0) inbox = std::thread([this, inotify_fd, fd = stop_pipe[0]] { InboxLoop(inotify_fd, fd); });

  std::thread signals([this, set] {
    while (true) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == SIGUSR1) return;
      if (sig == SIGUSR2) {  // `nightshift cancel` or `preempt` left a request in the store
        sh_.events.RequestPoll();
        continue;
      }
      Drain();
    }
  });

  Log("serving " + sh_.root + " on " + base_url_ + "/ (" + std::to_string(o_.max_runs) + " runs at once" +
      (o_.inbox.empty() ? "" : ", inbox " + o_.inbox) + ")");
  Log("web UI: " + base_url_ + "/#token=" + token_);
  std::cerr << std::flush;

  Engine engine(&sh_.events);
  engine.Serve(this);

  hub_.Stop();  // ends every event and log stream, so the HTTP pool can be joined
  svr.stop();
  http.join();
  if (inbox.joinable()) {
    char c = 0;
    (void)!::write(stop_pipe[1], &c, 1);
    inbox.join();
    ::close(inotify_fd);
    ::close(stop_pipe[0]);
    ::close(stop_pipe[1]);
  }
  pthread_kill(signals.native_handle(), SIGUSR1);
  signals.join();
  (void)::unlink((sh_.root + "/server.json").c_str());
  Log("stopped");
  return cli::kExitOk;
}

}  // namespace ns::server
