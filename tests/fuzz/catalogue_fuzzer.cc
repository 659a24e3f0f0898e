// libFuzzer target for the instance catalogue parser (engine/cost.h): any bytes
// must give either a catalogue or diagnostics, never a crash, a hang or
// undefined behaviour; a catalogue it accepts must bill without trouble.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/cost.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto c = ns::cost::ParseCatalogue(text, "fuzz.yaml");
  if (!c.ok()) return 0;
  for (const auto& i : c->instances()) {
    ns::cost::Resources r{i.cpus, i.memory_bytes, i.gpus};
    (void)ns::cost::ComputeRunCost(
        *c, {{"s", r, ns::cost::CapacityClass::kSpot, 1000, "preempted"}}, 2000);
  }
  return 0;
}
