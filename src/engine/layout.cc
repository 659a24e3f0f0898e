#include "engine/layout.h"

#include <cctype>
#include <ctime>
#include <random>

namespace ns {

std::string NewRunId(TimeMs now) {
  time_t secs = static_cast<time_t>(now / 1000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  std::random_device rd;
  std::uniform_int_distribution<unsigned> dist(0, 0xffffff);
  char suffix[8];
  snprintf(suffix, sizeof suffix, "%06x", dist(rd));
  return std::string(buf) + "-" + suffix;
}

std::string ItemFolderName(const std::string& raw, std::set<std::string>* taken) {
  std::string s;
  for (char c : raw) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    s += ok ? c : '_';
  }
  while (!s.empty() && (s[0] == '.' || s[0] == '_')) s.erase(0, 1);
  if (s.size() > 80) s.resize(80);
  if (s.empty()) s = "item";
  std::string name = s;
  for (int n = 2; taken->count(name); ++n) name = s + "-" + std::to_string(n);
  taken->insert(name);
  return name;
}

}  // namespace ns
