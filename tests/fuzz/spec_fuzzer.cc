// libFuzzer target for the pipeline spec parser: any bytes must give either a
// Pipeline or diagnostics, never a crash, a hang or undefined behaviour.
#include <cstddef>
#include <cstdint>
#include <string>

#include "spec/parser.h"
#include "spec/template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  ns::spec::Diagnostics d("fuzz.yaml");
  auto p = ns::spec::ParsePipelineText(text, "/tmp/fuzz.yaml", &d);
  if (!p) {
    (void)d.Format();
  } else {
    for (const auto& s : p->steps) (void)s.id.size();
  }
  (void)ns::spec::SplitWords(text);
  (void)ns::spec::ParseTemplate(text);
  return 0;
}
