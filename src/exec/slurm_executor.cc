#include "exec/slurm_executor.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <pwd.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <climits>

#include "util/fs.h"
#include "util/strings.h"
#include "util/subprocess.h"

namespace ns {

namespace {

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string SelfExe() {
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "nightshift";
  buf[n] = 0;
  return buf;
}

// 'text' for /bin/sh, whatever it holds.
std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

bool IsLive(const std::string& state) {
  static const std::set<std::string> kLive = {"PENDING",   "RUNNING",     "CONFIGURING", "COMPLETING",
                                              "SUSPENDED", "REQUEUED",    "REQUEUE_FED", "REQUEUE_HOLD",
                                              "RESIZING",  "SIGNALING",   "STAGE_OUT",   "STOPPED",
                                              "RESV_DEL_HOLD", "SPECIAL_EXIT"};
  return kLive.count(state) > 0;
}

std::string Tail(const std::string& text, size_t lines) {
  size_t pos = text.size();
  if (pos && text[pos - 1] == '\n') --pos;
  for (size_t n = 0; pos > 0; --pos) {
    if (text[pos - 1] == '\n' && ++n == lines) break;
  }
  return std::string(Trim(text.substr(pos)));
}

std::string OneLine(const std::string& s) {
  std::string out = std::string(Trim(s));
  std::replace(out.begin(), out.end(), '\n', ' ');
  return out;
}

}  // namespace

SlurmExecutor::SlurmExecutor(ExecutorListener* listener, SlurmConfig config)
    : listener_(listener), config_(std::move(config)) {}

Result<std::unique_ptr<SlurmExecutor>> SlurmExecutor::Create(ExecutorListener* listener, SlurmConfig config) {
  if (config.nightshift.empty()) config.nightshift = SelfExe();
  std::unique_ptr<SlurmExecutor> e(new SlurmExecutor(listener, std::move(config)));
  struct passwd* pw = ::getpwuid(::geteuid());
  e->user_ = pw ? pw->pw_name : std::to_string(::geteuid());
  // One line per node and partition: name|partition|cpus|memory MB|gres
  auto out = RunProgram({"sinfo", "-h", "-N", "-o", "%N|%P|%c|%m|%G"});
  if (!out.ok() || out.value().exit_code != 0) {
    std::string why = out.ok() ? OneLine(out.value().err) : out.status().message();
    return Status::Unavailable("cannot reach Slurm (sinfo: " + why +
                               "); is a cluster up and SLURM_CONF set? (scripts/slurm-up starts one and prints "
                               "what to export)");
  }
  e->counts_.sinfo++;
  std::map<std::string, SlurmPartition> parts;
  std::map<std::string, std::pair<double, int64_t>> nodes;
  int total_gpus = 0;
  for (const auto& line : Split(out.value().out, '\n')) {
    auto f = Split(line, '|');
    if (f.size() < 5) continue;
    std::string part = f[1];
    bool dflt = EndsWith(part, "*");
    if (dflt) part.pop_back();
    SlurmPartition& p = parts[part];
    p.name = part;
    p.is_default |= dflt;
    double cpus = std::atof(f[2].c_str());
    int64_t mem = std::atoll(f[3].c_str()) << 20;
    // Gres: "gpu:2", "gpu:a100:4(S:0-1)", "gpu:2,mps:100", "(null)".
    int gpus = 0;
    for (const auto& gres : Split(f[4], ',')) {
      if (!StartsWith(gres, "gpu:")) continue;
      std::string g = gres.substr(4);
      if (auto paren = g.find('('); paren != std::string::npos) g = g.substr(0, paren);
      auto colon = g.rfind(':');  // gpu:TYPE:N or gpu:N
      gpus += std::atoi((colon == std::string::npos ? g : g.substr(colon + 1)).c_str());
    }
    if (!p.nodes.count(f[0])) {
      p.nodes.insert(f[0]);
      p.cpus += cpus;
      p.memory_bytes = std::max(p.memory_bytes, mem);
      p.gpus = std::max(p.gpus, gpus);
    }
    if (!nodes.count(f[0])) total_gpus += gpus;
    nodes[f[0]] = {cpus, mem};
  }
  if (parts.empty()) return Status::Unavailable("Slurm reports no partitions (sinfo -N printed nothing)");
  for (const auto& [cls, name] : e->config_.partitions) {
    if (!parts.count(name)) {
      std::vector<std::string> known;
      for (const auto& [n, p] : parts) known.push_back(n);
      return Status::Invalid("partition '" + name + "' (for " + cls + ") is not in this cluster; it has " +
                             Join(known, ", "));
    }
  }
  for (auto& [n, p] : parts) e->partitions_.push_back(p);
  // By convention a partition named after a capacity class serves it.
  auto& pm = e->config_.partitions;
  if (!pm.count("spot") && parts.count("spot")) pm["spot"] = "spot";
  for (const char* name : {"on-demand", "ondemand"}) {
    if (!pm.count("on-demand") && parts.count(name)) pm["on-demand"] = name;
  }
  // The engine counts all cpus, memory and gpus of the cluster; a task too big
  // for every node is refused by sbatch with Slurm's reason.
  e->capacity_.cpus = 0;
  e->capacity_.memory_bytes = 0;
  for (const auto& [n, cm] : nodes) {
    e->capacity_.cpus += cm.first;
    e->capacity_.memory_bytes += cm.second;
  }
  e->capacity_.gpus = total_gpus;

  e->inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  e->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (e->wake_fd_ < 0) return Status::FromErrno("eventfd", errno);
  // The monitor never takes the process's signals (they are the engine's:
  // cancel, preempt requests), whatever the caller has blocked so far.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  e->monitor_ = std::thread([p = e.get()] { p->MonitorLoop(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return e;
}

SlurmExecutor::~SlurmExecutor() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  Wake();
  if (monitor_.joinable()) monitor_.join();
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

double SlurmExecutor::ClassCpus(const std::string& cls) const {
  auto it = config_.partitions.find(cls);
  for (const auto& p : partitions_) {
    if (it != config_.partitions.end() ? p.name == it->second : p.is_default) return p.cpus;
  }
  return 0;
}

std::vector<std::pair<std::string, int64_t>> SlurmExecutor::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  const Counts& c = counts_;
  return {{"sbatch", c.sbatch}, {"squeue", c.squeue}, {"scancel", c.scancel}, {"sinfo", c.sinfo}};
}

std::string SlurmExecutor::JobName(const AttemptSpec& spec) { return "ns/" + spec.uid; }

std::string SlurmExecutor::JobScript(const SlurmConfig& config, const AttemptSpec& spec) {
  return "#!/bin/sh\n# nightshift attempt " + spec.uid + "\nexec " + ShellQuote(config.nightshift) +
         " task-exec " + ShellQuote(spec.record_prefix + ".json") + "\n";
}

std::vector<std::string> SlurmExecutor::SbatchArgv(const SlurmConfig& config, const AttemptSpec& spec) {
  std::vector<std::string> a = {"sbatch", "--parsable", "--no-requeue", "--job-name=" + JobName(spec)};
  std::string output = spec.record_prefix + ".slurm";
  for (size_t i = 0; (i = output.find('%', i)) != std::string::npos; i += 2) output.insert(i, "%");
  a.push_back("--output=" + output);  // sbatch expands %: a literal one is %%
  a.push_back("--chdir=" + DirName(spec.record_prefix));
  a.push_back("--cpus-per-task=" + std::to_string(std::max(1, static_cast<int>(std::ceil(spec.cpus - 1e-9)))));
  int64_t mem = spec.memory_bytes > 0 ? spec.memory_bytes : config.default_memory_bytes;
  a.push_back("--mem=" + std::to_string(std::max<int64_t>(1, (mem + (1 << 20) - 1) >> 20)) + "M");
  if (spec.gpus > 0) a.push_back("--gres=gpu:" + std::to_string(spec.gpus));
  if (spec.timeout_ms > 0) {
    // The wrapper enforces the step's timeout to the second; Slurm's limit (in
    // minutes) is the backstop after it, with the grace and a minute to spare.
    int64_t minutes = (spec.timeout_ms + spec.grace_ms + 59999) / 60000 + 1;
    a.push_back("--time=" + std::to_string(minutes));
  }
  // A step without a timeout may still meet the partition's time limit: a
  // notice before it (SIGTERM to the wrapper, passed on so the step can
  // checkpoint). With a timeout the wrapper ends the step first.
  if (spec.timeout_ms <= 0) a.push_back("--signal=B:TERM@" + std::to_string(config.notice_s));
  auto part = config.partitions.find(spec.capacity_class);
  if (part != config.partitions.end()) a.push_back("--partition=" + part->second);
  if (!config.account.empty()) a.push_back("--account=" + config.account);
  if (!config.qos.empty()) a.push_back("--qos=" + config.qos);
  for (const auto& extra : config.sbatch_args) a.push_back(extra);
  a.push_back(spec.record_prefix + ".sh");
  return a;
}

Result<int64_t> SlurmExecutor::Submit(const AttemptSpec& spec) {
  if (spec.record_prefix.empty()) return Status::Invalid("the Slurm executor needs a record_prefix");
  (void)::unlink((spec.record_prefix + ".result").c_str());
  NS_RETURN_IF_ERROR(WriteFileAtomic(spec.record_prefix + ".json", AttemptSpecToJson(spec)));
  NS_RETURN_IF_ERROR(WriteFileAtomic(spec.record_prefix + ".sh", JobScript(config_, spec)));
  std::string dir = DirName(spec.record_prefix);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (inotify_fd_ >= 0 && !watches_.count(dir)) {
      int wd = ::inotify_add_watch(inotify_fd_, dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE);
      if (wd >= 0) {
        watches_[dir] = wd;
        watch_dirs_[wd] = dir;
      }
    }
    Job& job = jobs_[spec.id];
    job.spec = spec;
    job.name = JobName(spec);
    to_submit_.push_back(spec.id);
  }
  Wake();
  return 0;  // the job id follows when sbatch answers
}

void SlurmExecutor::Cancel(uint64_t id) {
  std::vector<AttemptResult> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    Job& job = it->second;
    job.intent = Intent::kCancel;
    auto queued = std::find(to_submit_.begin(), to_submit_.end(), id);
    if (queued != to_submit_.end()) {
      // Never given to sbatch: it ends here. (One being submitted right now is
      // cancelled once sbatch has answered.)
      to_submit_.erase(queued);
      AttemptResult r;
      r.id = id;
      r.outcome = AttemptOutcome::kCancelled;
      r.message = "cancelled before Slurm had it";
      done.push_back(r);
      jobs_.erase(it);
    } else {
      job.kill_at = SteadyMs();
    }
  }
  Deliver(&done);
  Wake();
}

void SlurmExecutor::Preempt(uint64_t id, int64_t notice_ms) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end() || it->second.intent != Intent::kNone) return;
    it->second.intent = Intent::kPreempt;
    it->second.kill_at = SteadyMs() + notice_ms;
  }
  Wake();
}

void SlurmExecutor::Wake() {
  uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!::write(wake_fd_, &one, sizeof one);
}

void SlurmExecutor::Deliver(std::vector<AttemptResult>* results) {
  for (const auto& r : *results) listener_->OnAttemptFinished(r);
  results->clear();
}

Result<std::vector<SlurmExecutor::SlurmJobInfo>> SlurmExecutor::ListJobs() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    counts_.squeue++;
  }
  // Every job of ours Slurm still knows (finished ones for MinJobAge); the name
  // last, as it may hold any character.
  auto out = RunProgram({"squeue", "-h", "--states=all", "-u", user_, "-o", "%i|%T|%N|%r|%j"});
  if (!out.ok()) return out.status();
  if (out.value().exit_code != 0) return Status::Unavailable("squeue: " + OneLine(out.value().err));
  std::vector<SlurmJobInfo> jobs;
  for (const auto& line : Split(out.value().out, '\n')) {
    auto f = Split(line, '|');
    if (f.size() < 5) continue;
    SlurmJobInfo j;
    j.job_id = std::atoll(f[0].c_str());
    if (j.job_id <= 0) continue;  // array or het job members are not ours
    j.state = f[1];
    j.node = f[2];
    j.reason = f[3];
    std::vector<std::string> name(f.begin() + 4, f.end());
    j.name = Join(name, "|");
    jobs.push_back(std::move(j));
  }
  return jobs;
}

bool SlurmExecutor::Adopt(const AttemptSpec& spec) {
  auto text = ReadFile(spec.record_prefix + ".json");
  if (!text.ok()) return false;
  auto recorded = AttemptSpecFromJson(text.value());
  if (!recorded.ok() || recorded.value().uid != spec.uid || recorded.value().fingerprint != spec.fingerprint) {
    return false;
  }
  std::string name = JobName(spec);
  if (!snapshot_) {
    // A failed squeue is never taken for "no jobs": that would submit again
    // what still runs. Without an answer the attempt is adopted and found by
    // name at the monitor's next poll (or called lost after a while).
    auto jobs = ListJobs();
    if (jobs.ok()) snapshot_ = jobs.value();
  }
  const SlurmJobInfo* found = nullptr;
  if (snapshot_) {
    for (const auto& j : *snapshot_) {
      if (j.name == name && (!found || j.job_id > found->job_id)) found = &j;
    }
  }
  bool has_record = IsRegularFile(spec.record_prefix + ".result");
  if (snapshot_ && !found && !has_record) return false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Job& job = jobs_[spec.id];
    job.spec = recorded.value();
    job.spec.id = spec.id;
    job.name = name;
    job.adopted = true;
    job.submitted_at = SteadyMs();
    if (found) {
      job.job_id = found->job_id;
      job.state = found->state;
      if (!IsLive(job.state)) job.terminal_at = job.submitted_at;
    } else if (snapshot_) {
      job.terminal_at = job.submitted_at;  // Slurm has forgotten it: its record says how it ended
    }
    std::string dir = DirName(spec.record_prefix);
    if (inotify_fd_ >= 0 && !watches_.count(dir)) {
      int wd = ::inotify_add_watch(inotify_fd_, dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE);
      if (wd >= 0) {
        watches_[dir] = wd;
        watch_dirs_[wd] = dir;
      }
    }
  }
  Wake();
  return true;
}

void SlurmExecutor::Abandon(const AttemptSpec& spec) {
  std::string name = JobName(spec);
  if (!snapshot_) {
    if (auto jobs = ListJobs(); jobs.ok()) snapshot_ = jobs.value();
  }
  if (!snapshot_) return;
  for (const auto& j : *snapshot_) {
    if (j.name != name || !IsLive(j.state)) continue;
    {
      std::lock_guard<std::mutex> lock(mu_);
      counts_.scancel++;
    }
    (void)RunProgram({"scancel", std::to_string(j.job_id)});
  }
}

void SlurmExecutor::SubmitQueued() {
  while (true) {
    AttemptSpec spec;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (to_submit_.empty() || stopping_) return;
      uint64_t id = to_submit_.front();
      to_submit_.pop_front();
      auto it = jobs_.find(id);
      if (it == jobs_.end()) continue;
      spec = it->second.spec;
      counts_.sbatch++;
    }
    auto out = RunProgram(SbatchArgv(config_, spec));
    std::vector<AttemptResult> failed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(spec.id);
      if (it == jobs_.end()) continue;
      Job& job = it->second;
      int64_t job_id = 0;
      if (out.ok() && out.value().exit_code == 0) {
        // --parsable: "JOBID" or "JOBID;CLUSTER"
        job_id = std::atoll(out.value().out.c_str());
      }
      if (job_id <= 0) {
        AttemptResult r;
        r.id = spec.id;
        if (out.ok() && out.value().exit_code > 0 && !out.value().err.empty() &&
            out.value().err.find("timed out") == std::string::npos &&
            out.value().err.find("Unable to contact") == std::string::npos) {
          // Refused for good (too big, unknown partition or account): say why.
          r.outcome = AttemptOutcome::kFailed;
          r.message = "sbatch refused the job: " + OneLine(out.value().err);
        } else {
          // The controller did not answer: retried like a lost attempt.
          r.outcome = AttemptOutcome::kLost;
          r.message = "sbatch failed: " + (out.ok() ? OneLine(out.value().err + " " + out.value().out)
                                                    : out.status().message());
        }
        failed.push_back(r);
        jobs_.erase(it);
      } else {
        job.job_id = job_id;
        job.submitted_at = SteadyMs();
        if (job.intent == Intent::kCancel) job.kill_at = job.submitted_at;
      }
    }
    Deliver(&failed);
  }
}

bool SlurmExecutor::LoadRecord(Job& job) {
  if (job.record) return true;
  auto text = ReadFile(job.spec.record_prefix + ".result");
  if (!text.ok()) return false;
  auto rec = AttemptRecordFromJson(text.value());
  if (!rec.ok()) {
    AttemptRecord bad;
    bad.uid = job.spec.uid;
    bad.result.outcome = AttemptOutcome::kFailed;
    bad.result.message = "unreadable result record " + job.spec.record_prefix + ".result: " + rec.status().message();
    job.record = bad;
    return true;
  }
  // A record of the spec's own attempt only (task-exec writes the uid it ran;
  // an empty uid is a wrapper that could not read its spec).
  if (!rec.value().uid.empty() && rec.value().uid != job.spec.uid) return false;
  job.record = rec.value();
  return true;
}

void SlurmExecutor::ReadNotifications() {
  if (inotify_fd_ < 0) return;
  alignas(inotify_event) char buf[16384];
  std::set<std::string> names;
  while (true) {
    ssize_t n = ::read(inotify_fd_, buf, sizeof buf);
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<inotify_event*>(p);
      if (ev->len > 0) {
        std::string name = ev->name;
        if (EndsWith(name, ".result")) {
          std::lock_guard<std::mutex> lock(mu_);
          auto d = watch_dirs_.find(ev->wd);
          if (d != watch_dirs_.end()) names.insert(d->second + "/" + name.substr(0, name.size() - 7));
        }
      }
      p += sizeof(inotify_event) + ev->len;
    }
  }
  if (names.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, job] : jobs_) {
    if (names.count(job.spec.record_prefix)) (void)LoadRecord(job);
  }
}

void SlurmExecutor::CheckRecords(bool all) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, job] : jobs_) {
    if (job.record || (job.job_id == 0 && !job.adopted)) continue;
    if (all || job.terminal_at) (void)LoadRecord(job);
  }
}

std::string SlurmExecutor::SlurmOutputTail(const Job& job) const {
  auto text = ReadFile(job.spec.record_prefix + ".slurm");
  if (!text.ok() || Trim(text.value()).empty()) return "";
  return "; the job printed: " + OneLine(Tail(text.value(), 3));
}

// Without cgroups Slurm's accounting kills a job over its --mem and the state
// is FAILED; slurmstepd says why in the job's output.
bool SlurmExecutor::OverMemory(const Job& job) const {
  auto text = ReadFile(job.spec.record_prefix + ".slurm");
  return text.ok() && (text.value().find("exceeded memory limit") != std::string::npos ||
                       text.value().find("Exceeded job memory limit") != std::string::npos ||
                       text.value().find("oom-kill") != std::string::npos);
}

bool SlurmExecutor::Decide(uint64_t id, Job& job, int64_t now, std::vector<AttemptResult>* out) {
  AttemptResult r;
  if (job.record) r = job.record->result;
  r.id = id;
  r.pid = job.job_id;
  std::string where = "Slurm job " + std::to_string(job.job_id) + (job.node.empty() ? "" : " on " + job.node);
  bool ended = job.terminal_at != 0;
  const std::string& s = job.state;
  if (job.intent == Intent::kCancel) {
    if (!job.record && !ended) return false;
    r.outcome = AttemptOutcome::kCancelled;
    r.message = StartsWith(s, "UNKNOWN") ? "cancelled; Slurm did not confirm (" + where + " " + s + ")" : "cancelled";
  } else if (job.intent == Intent::kPreempt) {
    if (!job.record && !ended) return false;
    r.outcome = AttemptOutcome::kPreempted;
    r.message = "preempted (" + where + ")";
  } else if (job.record && (r.outcome == AttemptOutcome::kTimedOut ||
                            (job.record->interrupted_by == 0 &&
                             !(r.outcome == AttemptOutcome::kSignal && (r.signal == SIGTERM || r.signal == SIGKILL))))) {
    // The attempt ended on its own: the record says how. (Killed by TERM or
    // KILL it may have been Slurm's doing: Slurm says, below.)
  } else {
    // Interrupted from outside, or ended with no record: Slurm says why.
    if (!ended) return false;  // a record that says "interrupted": wait for Slurm's word
    if (s == "NODE_FAIL" || s == "PREEMPTED" || s == "BOOT_FAIL") {
      r.outcome = AttemptOutcome::kPreempted;
      r.message = "its node was lost (" + where + " ended " + s + ")";
    } else if (s == "TIMEOUT" || s == "DEADLINE") {
      r.outcome = AttemptOutcome::kTimedOut;
      r.message = "Slurm ended it at its time limit (" + where + " " + s + ")";
    } else if (s == "OUT_OF_MEMORY" || OverMemory(job)) {
      r.outcome = AttemptOutcome::kFailed;
      int64_t mem = job.spec.memory_bytes > 0 ? job.spec.memory_bytes : config_.default_memory_bytes;
      r.message = "out of memory: it used more than its " + FormatBytes(mem) + " (" + where + " " + s +
                  "); raise resources.memory";
    } else if (s == "CANCELLED") {
      r.outcome = AttemptOutcome::kSignal;
      r.message = "cancelled in Slurm from outside nightshift (" + where + " CANCELLED, e.g. scancel)";
    } else if (job.record) {
      r.outcome = AttemptOutcome::kSignal;
      int sig = job.record->interrupted_by ? job.record->interrupted_by : r.signal;
      r.message = "interrupted by signal " + std::to_string(sig) + " from outside (" + where + " " + s + ")";
    } else if (now - job.terminal_at < config_.record_grace_ms) {
      return false;  // the record may still be on its way (shared file systems lag)
    } else {
      r.outcome = AttemptOutcome::kLost;
      r.message = where + " ended " + (s.empty() ? "and Slurm forgot it" : s) + " without a result record in " +
                  job.spec.record_prefix +
                  ".result: is the root folder shared by every node at the same path? (docs/slurm.md)" +
                  SlurmOutputTail(job);
    }
  }
  if (r.message.empty() && r.outcome != AttemptOutcome::kSucceeded) r.message = where;
  out->push_back(r);
  return true;
}

void SlurmExecutor::PollSlurm() {
  auto jobs = ListJobs();
  if (!jobs.ok()) {
    // The controller is busy or restarting: ask again next time. Jobs being
    // cancelled do not wait for it for ever (a Ctrl-C must end): after a
    // minute without an answer they are taken as ended.
    if (++squeue_failures_ * config_.poll_ms < 60000) return;
    int64_t now = SteadyMs();
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, job] : jobs_) {
      if (job.intent == Intent::kCancel && !job.terminal_at) {
        job.terminal_at = now;
        job.state = "UNKNOWN (squeue failed for a minute: " + OneLine(jobs.status().message()) + ")";
      }
    }
    return;
  }
  squeue_failures_ = 0;
  std::map<int64_t, const SlurmJobInfo*> by_id;
  for (const auto& j : jobs.value()) by_id[j.job_id] = &j;
  int64_t now = SteadyMs();
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, int64_t> by_name;
  for (const auto& j : jobs.value()) by_name[j.name] = std::max(by_name[j.name], j.job_id);
  for (auto& [id, job] : jobs_) {
    if (job.job_id == 0 && job.adopted) {
      // Adopted while Slurm did not answer: find it by name now.
      auto named = by_name.find(job.name);
      if (named != by_name.end()) {
        job.job_id = named->second;
      } else if (!job.terminal_at && now - job.submitted_at > 5000) {
        job.terminal_at = now;
      }
    }
    if (job.job_id == 0) continue;
    auto it = by_id.find(job.job_id);
    if (it == by_id.end()) {
      // Purged (MinJobAge) or never known: it has ended.
      if (now - job.submitted_at > 5000 && !job.terminal_at) job.terminal_at = now;
      continue;
    }
    job.state = it->second->state;
    job.reason = it->second->reason;
    if (!it->second->node.empty() && it->second->node != "(null)") job.node = it->second->node;
    if (!IsLive(job.state) && !job.terminal_at) job.terminal_at = now;
  }
}

void SlurmExecutor::SendSignals() {
  std::vector<std::vector<std::string>> commands;
  int64_t now = SteadyMs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, job] : jobs_) {
      if (job.job_id == 0 || job.terminal_at) continue;
      std::string jid = std::to_string(job.job_id);
      if (job.intent == Intent::kPreempt && !job.scancel_sent && job.kill_at > now && job.state != "PENDING") {
        // The notice: SIGTERM to the wrapper and the attempt; the end follows at kill_at.
        commands.push_back({"scancel", "--full", "--signal=TERM", jid});
        job.scancel_sent = true;
      } else if (job.intent != Intent::kNone && job.kill_at <= now && job.kill_at >= 0) {
        commands.push_back({"scancel", jid});
        job.kill_at = -1;  // sent
        job.scancel_sent = true;
      }
    }
    counts_.scancel += static_cast<int64_t>(commands.size());
  }
  for (const auto& c : commands) (void)RunProgram(c);
}

void SlurmExecutor::MonitorLoop() {
  int64_t next_poll = 0;
  while (true) {
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping = stopping_;
    }
    if (stopping) {
      SendSignals();  // cancels asked for just before the end still reach Slurm
      return;
    }
    SubmitQueued();
    ReadNotifications();
    SendSignals();
    int64_t now = SteadyMs();
    bool live = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [id, job] : jobs_) live |= job.job_id != 0 || job.adopted;
    }
    if (live && now >= next_poll) {
      PollSlurm();
      CheckRecords(true);
      next_poll = now + config_.poll_ms;
    }
    std::vector<AttemptResult> done;
    int64_t wait = config_.poll_ms;
    {
      std::lock_guard<std::mutex> lock(mu_);
      now = SteadyMs();
      for (auto it = jobs_.begin(); it != jobs_.end();) {
        Job& job = it->second;
        bool decidable = job.record || job.terminal_at;
        if (decidable && Decide(it->first, job, now, &done)) {
          it = jobs_.erase(it);
          continue;
        }
        if (job.intent == Intent::kPreempt && job.kill_at > now) wait = std::min(wait, job.kill_at - now);
        if (job.terminal_at && !job.record) wait = std::min<int64_t>(wait, 200);
        ++it;
      }
      if (!to_submit_.empty()) wait = 0;
    }
    Deliver(&done);
    if (live) wait = std::min(wait, std::max<int64_t>(0, next_poll - SteadyMs()));
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
    int n = ::poll(fds, inotify_fd_ >= 0 ? 2 : 1, static_cast<int>(std::max<int64_t>(wait, 0)));
    if (n > 0 && (fds[0].revents & POLLIN)) {
      uint64_t v;
      (void)!::read(wake_fd_, &v, sizeof v);
    }
  }
}

}  // namespace ns
