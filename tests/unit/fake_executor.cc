#include "fake_executor.h"

#include "util/strings.h"

namespace ns::testing {

Result<int64_t> FakeExecutor::Submit(const AttemptSpec& spec) {
  {
    std::lock_guard<std::mutex> g(mu_);
    submitted.push_back(spec);
  }
  AttemptResult r = b_(spec);
  r.id = spec.id;
  std::lock_guard<std::mutex> g(mu_);
  if (hold || (hold_if && hold_if(spec))) held.push_back(r);
  else q_->OnAttemptFinished(r);
  return static_cast<int64_t>(1000 + submitted.size());
}

void FakeExecutor::Preempt(uint64_t id, int64_t notice_ms) {
  std::lock_guard<std::mutex> g(mu_);
  preempted.push_back({id, notice_ms});
  // A held attempt ends preempted; one already reported is unknown by now.
  for (auto it = held.begin(); it != held.end(); ++it) {
    if (it->id != id) continue;
    AttemptResult r = *it;
    r.outcome = AttemptOutcome::kPreempted;
    r.message = "preempted";
    held.erase(it);
    q_->OnAttemptFinished(r);
    return;
  }
}

void FakeExecutor::ReleaseHeld() {
  std::lock_guard<std::mutex> g(mu_);
  for (const auto& r : held) q_->OnAttemptFinished(r);
  held.clear();
}

std::string EnvOf(const AttemptSpec& spec, const std::string& name) {
  for (const auto& e : spec.env)
    if (StartsWith(e, name + "=")) return e.substr(name.size() + 1);
  return "";
}

}  // namespace ns::testing
