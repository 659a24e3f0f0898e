#include "cli/remote.h"

#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "util/clock.h"
#include "util/fs.h"
#include "util/json.h"
#include "util/process.h"
#include "util/strings.h"

namespace ns::cli {

namespace {

using json = nlohmann::json;

std::string QueryEnc(const std::string& s) {
  std::string out;
  static const char* hex = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string Enc(const std::string& s) { return QueryEnc(s); }


struct Remote {
  std::string url;
  std::unique_ptr<httplib::Client> client;
};

// Connects to `o.server` with the token; prints why not and returns null.
std::unique_ptr<Remote> Connect(const std::string& server, const std::string& root_flag) {
  auto r = std::make_unique<Remote>();
  r->url = server;
  while (!r->url.empty() && r->url.back() == '/') r->url.pop_back();
  if (!StartsWith(r->url, "http://") && !StartsWith(r->url, "https://")) {
    PrintError("--server " + server + ": expected http://HOST:PORT");
    return nullptr;
  }
  std::string token = ServerToken(ResolveRoot(root_flag));
  if (token.empty()) {
    PrintError("no token for " + r->url + ": set NIGHTSHIFT_TOKEN to the content of the server's ROOT/server.token");
    return nullptr;
  }
  r->client = std::make_unique<httplib::Client>(r->url);
  r->client->set_bearer_token_auth(token);
  r->client->set_connection_timeout(5);
  r->client->set_tcp_nodelay(true);
  r->client->set_read_timeout(60);
  return r;
}

// GET/POST and parse JSON; prints the error (the server's reason) and returns
// the exit code in *rc when it fails.
std::optional<json> Call(Remote& r, const std::string& method, const std::string& path, int* rc,
                         const std::string& body = "") {
  httplib::Result res = method == "POST" ? r.client->Post(path, body, "application/json") : r.client->Get(path);
  if (!res) {
    PrintError("cannot reach " + r.url + ": " + httplib::to_string(res.error()) + " (is `nightshift serve` running?)");
    *rc = kExitEngine;
    return std::nullopt;
  }
  auto j = json::parse(res->body, nullptr, false);
  if (res->status >= 400) {
    std::string reason = j.is_object() && j.contains("error") ? j["error"].value("reason", res->body) : res->body;
    for (const auto& line : Split(reason, '\n')) PrintError(line);
    *rc = res->status == 401 ? kExitBadInput : res->status >= 500 ? kExitEngine : kExitBadInput;
    return std::nullopt;
  }
  if (j.is_discarded()) {
    PrintError(r.url + path + ": the answer is not JSON");
    *rc = kExitEngine;
    return std::nullopt;
  }
  return j;
}

std::string DurationOf(const json& run) {
  int64_t a = run.value("created_at", int64_t{0}), b = run.value("finished_at", int64_t{0});
  if (b <= 0) b = RealClock().Now();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", std::max<int64_t>(0, b - a) / 1000.0);
  return buf;
}

}  // namespace

std::string ServerToken(const std::string& root) {
  const char* env = ::getenv("NIGHTSHIFT_TOKEN");
  if (env && *env) return env;
  auto text = ReadFile(root + "/server.token");
  return text.ok() ? std::string(Trim(text.value())) : "";
}

std::string LocalServerUrl(const std::string& root) {
  auto text = ReadFile(root + "/server.json");
  if (!text.ok()) return "";
  auto j = json::parse(text.value(), nullptr, false);
  if (!j.is_object() || !j.contains("url") || !j.contains("owner")) return "";
  if (!IsAlive(ProcessIdentity::Parse(j.value("owner", "")))) return "";
  return j.value("url", "");
}

std::optional<json> PostToServer(const std::string& server, const std::string& root_flag, const std::string& path,
                                 const json& body, int* rc) {
  auto r = Connect(server, root_flag);
  if (!r) {
    *rc = kExitBadInput;
    return std::nullopt;
  }
  return Call(*r, "POST", path, rc, DumpJson(body));
}

int RemoteRuns(const InspectOptions& o) {
  auto r = Connect(o.server, o.root);
  if (!r) return kExitBadInput;
  int rc = kExitOk;
  auto j = Call(*r, "GET", "/api/v1/runs?limit=" + std::to_string(o.limit), &rc);
  if (!j) return rc;
  if (o.json) {
    std::cout << DumpJson((*j)["runs"], 2) << "\n";
    return kExitOk;
  }
  std::printf("%-24s  %-20s  %-10s  %-19s  %9s  %s\n", "RUN", "PIPELINE", "STATUS", "STARTED", "DURATION", "JOB");
  for (const auto& run : (*j)["runs"]) {
    std::printf("%-24s  %-20s  %-10s  %-19s  %9s  %s\n", run.value("run_id", "").c_str(),
                run.value("pipeline", "").c_str(), run.value("status", "").c_str(),
                FormatTime(run.value("created_at", int64_t{0})).c_str(), DurationOf(run).c_str(),
                run.value("job_id", "").c_str());
  }
  return kExitOk;
}

int RemoteShow(const InspectOptions& o) {
  auto r = Connect(o.server, o.root);
  if (!r) return kExitBadInput;
  int rc = kExitOk;
  auto d = Call(*r, "GET", "/api/v1/runs/" + Enc(o.run_id), &rc);
  if (!d) return rc;
  auto a = Call(*r, "GET", "/api/v1/runs/" + Enc(o.run_id) + "/attempts", &rc);
  if (!a) return rc;
  if (o.json) {
    json out = *d;
    out["attempts"] = (*a)["attempts"];
    std::cout << DumpJson(out, 2) << "\n";
    return kExitOk;
  }
  const json& run = (*d)["run"];
  std::cout << "run " << run.value("run_id", "") << " of " << run.value("pipeline", "") << ": "
            << run.value("status", "") << " (" << DurationOf(run) << ")"
            << (run.value("job_id", "").empty() ? "" : ", job " + run.value("job_id", "")) << "\n";
  if (!run.value("message", "").empty()) std::cout << "  " << run.value("message", "") << "\n";
  std::map<std::string, std::vector<json>> by_task;
  for (const auto& at : (*a)["attempts"]) by_task[at.value("task_id", "")].push_back(at);
  for (const auto& s : (*d)["steps"]) {
    const json& c = s["counts"];
    std::printf("  %-20s %-10s %lld/%lld done (%lld cached, %lld failed)\n", s.value("id", "").c_str(),
                s.value("status", "").c_str(),
                static_cast<long long>(c.value("succeeded", int64_t{0}) + c.value("cached", int64_t{0})),
                static_cast<long long>(s.value("tasks_total", int64_t{0})),
                static_cast<long long>(c.value("cached", int64_t{0})),
                static_cast<long long>(c.value("failed", int64_t{0})));
    for (const auto& [task, attempts] : by_task) {
      if (task != s.value("id", "") && !StartsWith(task, s.value("id", "") + "/")) continue;
      for (const auto& at : attempts) {
        int64_t st = at.value("started_at", int64_t{0}), fin = at.value("finished_at", int64_t{0});
        std::printf("    %-28s #%d %-10s %-9s %6.1fs %s\n", task.c_str(), at.value("attempt", 0),
                    at.value("status", "").c_str(), at.value("capacity_class", "").c_str(),
                    fin > 0 ? (fin - st) / 1000.0 : 0.0, at.value("message", "").c_str());
      }
    }
  }
  return kExitOk;
}

int RemoteLogs(const InspectOptions& o) {
  auto r = Connect(o.server, o.root);
  if (!r) return kExitBadInput;
  std::string task = o.item.empty() ? o.step : o.step + "/" + o.item;
  std::string base = "/api/v1/runs/" + Enc(o.run_id) + "/logs?task=" + QueryEnc(task) +
                     (o.attempt > 0 ? "&attempt=" + std::to_string(o.attempt) : "") +
                     (o.tail >= 0 ? "&tail=" + std::to_string(o.tail) : "");
  std::vector<std::string> streams = o.stream == "both" ? std::vector<std::string>{"out", "err"}
                                                        : std::vector<std::string>{o.stream};
  if (o.follow) {
    // One stream followed: stdout unless --stream err.
    std::string s = o.stream == "err" ? "err" : "out";
    std::string buf;
    int status = 0;
    r->client->set_read_timeout(24 * 3600);
    auto res = r->client->Get(
        base + "&stream=" + s + "&follow=1",
        [&](const httplib::Response& resp) {
          status = resp.status;
          return true;
        },
        [&](const char* data, size_t n) {
          if (status >= 400) {
            buf.append(data, n);
            return true;
          }
          buf.append(data, n);
          size_t end;
          while ((end = buf.find("\n\n")) != std::string::npos) {
            std::string ev = buf.substr(0, end);
            buf.erase(0, end + 2);
            std::string kind, payload;
            for (const auto& line : Split(ev, '\n')) {
              if (StartsWith(line, "event: ")) kind = line.substr(7);
              if (StartsWith(line, "data: ")) payload = line.substr(6);
            }
            if (kind == "log") std::cout << payload << "\n" << std::flush;
            if (kind == "end") return false;
          }
          return true;
        });
    if (status >= 400) {
      auto j = json::parse(buf, nullptr, false);
      PrintError(j.is_object() && j.contains("error") ? j["error"].value("reason", buf) : buf);
      return kExitBadInput;
    }
    if (!res && res.error() != httplib::Error::Canceled) {
      PrintError("cannot reach " + r->url + ": " + httplib::to_string(res.error()));
      return kExitEngine;
    }
    return kExitOk;
  }
  for (const auto& s : streams) {
    auto res = r->client->Get(base + "&stream=" + s);
    if (!res) {
      PrintError("cannot reach " + r->url + ": " + httplib::to_string(res.error()));
      return kExitEngine;
    }
    if (res->status == 404 && o.stream == "both") continue;  // no such stream yet
    if (res->status >= 400) {
      auto j = json::parse(res->body, nullptr, false);
      PrintError(j.is_object() && j.contains("error") ? j["error"].value("reason", res->body) : res->body);
      return kExitBadInput;
    }
    (s == "err" ? std::cerr : std::cout) << res->body << std::flush;
  }
  return kExitOk;
}

int RemoteCancel(const InspectOptions& o) {
  auto r = Connect(o.server, o.root);
  if (!r) return kExitBadInput;
  int rc = kExitOk;
  auto j = Call(*r, "POST", "/api/v1/runs/" + Enc(o.run_id) + "/cancel", &rc);
  if (!j) return rc;
  std::cout << "cancelling run " << o.run_id << "..." << std::flush;
  for (int i = 0; i < 600; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto d = Call(*r, "GET", "/api/v1/runs/" + Enc(o.run_id), &rc);
    if (!d) return rc;
    std::string status = (*d)["run"].value("status", "");
    if (status != "running") {
      std::cout << " " << status << "\n";
      return kExitOk;
    }
  }
  std::cout << " still running after 60 s\n";
  return kExitEngine;
}

}  // namespace ns::cli
