#include "engine/engine.h"

#include <algorithm>
#include <numeric>

namespace ns {

size_t Engine::active() const {
  return static_cast<size_t>(std::count_if(runs_.begin(), runs_.end(), [](const Entry& e) { return !e.finished; }));
}

std::vector<Result<RunStatus>> Engine::Run() {
  Loop(nullptr);
  std::vector<Result<RunStatus>> out;
  for (auto& e : runs_) out.push_back(e.result);
  return out;
}

void Engine::Serve(Host* host) { Loop(host); }

void Engine::Loop(Host* host) {
  // Launch in order: escalated first, then priority, then earliest deadline.
  auto launch = [&] {
    std::vector<size_t> order(runs_.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      const Scheduler& x = *runs_[a].run;
      const Scheduler& y = *runs_[b].run;
      if (x.escalated() != y.escalated()) return x.escalated();
      if (x.priority() != y.priority()) return x.priority() > y.priority();
      TimeMs dx = x.deadline() ? x.deadline() : kForever, dy = y.deadline() ? y.deadline() : kForever;
      return dx < dy;
    });
    for (size_t i : order) {
      if (runs_[i].finished) continue;
      Status st = runs_[i].run->Launch();
      if (!st.ok()) runs_[i].run->Fail(st);
    }
  };
  while (true) {
    if (host) host->Refill(this);
    for (auto& e : runs_) {
      if (e.started) continue;
      e.started = true;
      Status st = e.run->Start();
      if (!st.ok()) e.run->Fail(st);
    }
    launch();
    // Runs that are done end now (they may free nothing: capacity is returned
    // as each result is absorbed).
    bool any = false;
    for (auto& e : runs_) {
      if (e.finished) continue;
      if (e.run->Done()) {
        e.result = e.run->Finish();
        e.finished = true;
        if (host) host->Finished(e.run, e.result);
      } else {
        any = true;
      }
    }
    if (host) {
      runs_.erase(std::remove_if(runs_.begin(), runs_.end(), [](const Entry& e) { return e.finished; }),
                  runs_.end());
    }
    if (!any && (!host || !host->Serving())) break;
    TimeMs wake = host ? host->NextWake() : kForever;
    for (auto& e : runs_) {
      if (!e.finished) wake = std::min(wake, e.run->NextWake());
    }
    std::deque<AttemptResult> results = events_->Wait(wake);
    bool cancel = events_->cancel_requested();
    bool poll = events_->TakePoll();
    std::vector<std::deque<AttemptResult>> mine(runs_.size());
    for (auto& r : results) {
      for (size_t i = 0; i < runs_.size(); ++i) {
        if (!runs_[i].finished && runs_[i].run->Owns(r.id)) {
          mine[i].push_back(std::move(r));
          break;
        }
      }
    }
    for (size_t i = 0; i < runs_.size(); ++i) {
      if (runs_[i].finished) continue;
      Status st = runs_[i].run->Absorb(mine[i], cancel, poll);
      if (!st.ok()) runs_[i].run->Fail(st);
    }
  }
}

}  // namespace ns
