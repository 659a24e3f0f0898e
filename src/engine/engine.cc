#include "engine/engine.h"

#include <algorithm>
#include <numeric>

namespace ns {

std::vector<Result<RunStatus>> Engine::Run() {
  size_t n = runs_.size();
  std::vector<Result<RunStatus>> out(n, Result<RunStatus>(RunStatus::kFailed));
  std::vector<bool> finished(n, false);
  for (Scheduler* r : runs_) {
    Status st = r->Start();
    if (!st.ok()) r->Fail(st);
  }
  // Launch in order: escalated first, then priority, then earliest deadline.
  auto launch = [&] {
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      const Scheduler& x = *runs_[a];
      const Scheduler& y = *runs_[b];
      if (x.escalated() != y.escalated()) return x.escalated();
      if (x.priority() != y.priority()) return x.priority() > y.priority();
      TimeMs dx = x.deadline() ? x.deadline() : kForever, dy = y.deadline() ? y.deadline() : kForever;
      return dx < dy;
    });
    for (size_t i : order) {
      if (finished[i]) continue;
      Status st = runs_[i]->Launch();
      if (!st.ok()) runs_[i]->Fail(st);
    }
  };
  launch();
  while (true) {
    // Runs that are done end now (they may free nothing: capacity is returned
    // as each result is absorbed).
    bool any = false;
    for (size_t i = 0; i < n; ++i) {
      if (finished[i]) continue;
      if (runs_[i]->Done()) {
        out[i] = runs_[i]->Finish();
        finished[i] = true;
      } else {
        any = true;
      }
    }
    if (!any) break;
    TimeMs wake = kForever;
    for (size_t i = 0; i < n; ++i) {
      if (!finished[i]) wake = std::min(wake, runs_[i]->NextWake());
    }
    std::deque<AttemptResult> results = events_->Wait(wake);
    bool cancel = events_->cancel_requested();
    bool poll = events_->TakePoll();
    std::vector<std::deque<AttemptResult>> mine(n);
    for (auto& r : results) {
      for (size_t i = 0; i < n; ++i) {
        if (!finished[i] && runs_[i]->Owns(r.id)) {
          mine[i].push_back(std::move(r));
          break;
        }
      }
    }
    for (size_t i = 0; i < n; ++i) {
      if (finished[i]) continue;
      Status st = runs_[i]->Absorb(mine[i], cancel, poll);
      if (!st.ok()) runs_[i]->Fail(st);
    }
    launch();
  }
  return out;
}

}  // namespace ns
