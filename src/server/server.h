// Server: `nightshift serve`, a durable job queue in the root's store run by
// one Engine (the same as `nightshift run`), an HTTP API, the web UI, metrics
// and an inbox folder (docs/server.md).
//
// Threads: the engine thread (Serve: leases jobs, builds and ends runs; the
// only one that touches schedulers), cpp-httplib's pool (each request opens or
// reuses its thread's own Store), the inbox thread (inotify), and the signal
// thread. They meet at the store (SQLite serialises writers), the EventQueue
// (RequestWake: a job arrived; RequestPoll: look at the store for a cancel;
// RequestCancel: drain) and the EventHub (state changes out to streams).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/run_setup.h"
#include "engine/engine.h"
#include "server/hub.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace ns::server {

struct ServeOptions {
  cli::RunOptions run;  // root, executor, capacity, catalogue, Slurm flags: as for `nightshift run`
  std::string listen = "127.0.0.1:8470";
  bool allow_remote = false;
  int max_runs = 4;  // runs driven at once; more jobs wait in the queue
  std::string inbox;           // a folder: each video that finishes arriving becomes a job
  std::string inbox_pipeline;  // the pipeline inbox jobs run
  std::string inbox_param = "video";
  int64_t lease_ms = 60000;
  int max_streams = 32;
  size_t max_body_bytes = 1 << 20;
};

// A job as the API shows it (docs/server.md, "Job").
nlohmann::json JobJson(const JobRow& j);
nlohmann::json RunJson(const RunRow& r, const std::string& job_id);

// What a submission asks for; checked by SubmitJob.
struct Submission {
  std::string pipeline;  // absolute, or relative to `base`
  nlohmann::json params = nlohmann::json::object();
  int priority = 0;
  nlohmann::json deadline;  // null, ms since the epoch, "HH:MM" or a duration
  std::string key;
  int max_attempts = 3;
  std::string resume;  // a run to resume (retry of a run)
};
// Checks the pipeline file and params (every problem, one per line, in
// `*problems`, with status kInvalidArgument) and records the job. The bool is
// false when the key named a job already (that job is returned).
Result<std::pair<JobRow, bool>> SubmitJob(Store* store, const Submission& s, const std::string& base,
                                          TimeMs now, std::string* problems);
// Parses a JSON submission body (the API's and `--server`'s).
Status ParseSubmission(const std::string& body, Submission* s);

class Server : public Engine::Host {
 public:
  explicit Server(ServeOptions o);
  ~Server() override;
  // Runs until SIGTERM/SIGINT has drained it; returns the exit code.
  int Run();

  // Engine::Host (the engine thread).
  void Refill(Engine* engine) override;
  void Finished(Scheduler* run, const Result<RunStatus>& result) override;
  bool Serving() override { return !draining_; }
  TimeMs NextWake() override { return next_renew_; }

 private:
  struct Active;
  class Observer;

  int Start();
  Status Recover();
  bool StartJob(Engine* engine, JobRow job);
  void PublishJob(const JobRow& j);
  void Drain();

  // HTTP (api.cc).
  void Routes(httplib::Server& svr);
  Store* ThreadStore();
  bool Authorized(const httplib::Request& req);
  void Submit(const httplib::Request& req, httplib::Response& res);
  void RunDetail(const std::string& run_id, httplib::Response& res);
  void Logs(const httplib::Request& req, httplib::Response& res, const std::string& run_id);
  void Artifacts(const httplib::Request& req, httplib::Response& res, const std::string& run_id,
                 const std::string& path);
  void CancelRun(const std::string& run_id, httplib::Response& res);
  void RetryRun(const std::string& run_id, httplib::Response& res);
  void RetryJob(const std::string& job_id, httplib::Response& res);
  void CancelJob(const std::string& job_id, httplib::Response& res);
  Result<JobRow> ChangeJob(Store* store, const std::string& job_id,
                           const std::function<std::string(JobRow&)>& change, std::string* refused);
  void Events(const httplib::Request& req, httplib::Response& res);
  void Metrics(httplib::Response& res);
  nlohmann::json StatusJson();

  // Inbox (inbox.cc).
  void InboxLoop(int inotify_fd, int stop_fd);
  void InboxFile(Store* store, const std::string& path);

  ServeOptions o_;
  cli::Shared sh_;
  EventHub hub_;
  std::string token_;
  std::string self_;  // ProcessIdentity of this server: the lease owner
  std::atomic<bool> draining_{false};
  std::atomic<int> streams_{0};
  std::string base_url_;

  // Engine thread only.
  Executor* executor_ = nullptr;
  std::unique_ptr<CapacityPool> pool_;
  std::map<Scheduler*, std::unique_ptr<Active>> active_;
  std::set<std::string> skipped_;  // jobs whose run another engine drives (this round)
  TimeMs next_renew_ = 0;

  // Runs this server drives, for HTTP threads (cancel, status).
  std::mutex runs_mu_;
  std::set<std::string> running_;          // GUARDED_BY(runs_mu_)
  std::set<std::string> cancel_requests_;  // GUARDED_BY(runs_mu_): run ids, for the engine thread

  // Cost of finished runs read from run.json (immutable once written).
  std::mutex cost_mu_;
  std::map<std::string, std::pair<std::string, double>> cost_cache_;  // GUARDED_BY(cost_mu_)
};

}  // namespace ns::server
