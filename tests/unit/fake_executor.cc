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
  if (hold) held.push_back(r);
  else q_->OnAttemptFinished(r);
  return static_cast<int64_t>(1000 + submitted.size());
}

std::string EnvOf(const AttemptSpec& spec, const std::string& name) {
  for (const auto& e : spec.env)
    if (StartsWith(e, name + "=")) return e.substr(name.size() + 1);
  return "";
}

}  // namespace ns::testing
