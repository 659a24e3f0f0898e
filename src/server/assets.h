// Files built into the binary: the web UI (web/ui) and the OpenAPI document.
#pragma once

#include <string_view>

namespace ns::server {

struct Asset {
  const char* path;  // "/index.html", "/app.js", "/style.css", "/openapi.json"
  const char* type;  // Content-Type
  std::string_view body;
};
// Null when not built in.
const Asset* FindAsset(const char* path);

}  // namespace ns::server
