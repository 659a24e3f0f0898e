#include "spec/manifest.h"

#include <sys/stat.h>

#include <map>

#include "spec/diagnostics.h"
#include "util/fs.h"
#include "util/strings.h"

namespace ns::spec {

using json = nlohmann::json;

namespace {

// "s3://bucket/x": a URL the engine cannot read.
bool HasScheme(const std::string& s) {
  auto p = s.find("://");
  if (p == std::string::npos || p == 0) return false;
  for (size_t i = 0; i < p; ++i) {
    char c = s[i];
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.')) return false;
  }
  return true;
}

struct Problems {
  std::string file;
  std::vector<std::string> lines;
  int count = 0;
  bool array = false;  // places are elements of a JSON array, not lines
  void Add(int line, const std::string& what) {
    ++count;
    if (count <= kMaxManifestProblems) {
      lines.push_back(file + (array ? ": element " : ":") + std::to_string(line) + ": " + what);
    }
  }
  Status ToStatus() const {
    std::string msg = Join(lines, "\n");
    if (count > kMaxManifestProblems) {
      msg += "\n" + file + ": ... and " + std::to_string(count - kMaxManifestProblems) + " more problems";
    }
    return Status::Invalid(msg);
  }
};

// Line and column of byte `offset` in `text` (1-based).
std::pair<int, int> LineCol(const std::string& text, size_t offset) {
  int line = 1, col = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {line, col};
}

}  // namespace

std::string ManifestItemName(const ManifestEntry& e) {
  std::string k = e.name;
  while (!k.empty() && k.back() == '/') k.pop_back();
  auto slash = k.rfind('/');
  auto dot = k.rfind('.');
  if (dot != std::string::npos && dot > 0 && (slash == std::string::npos || dot > slash + 1)) k = k.substr(0, dot);
  return k;
}

Result<Manifest> LoadManifest(const std::string& file) {
  Manifest m;
  m.file = file;
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) return Status::FromErrno("manifest " + file, errno);
  if (!S_ISREG(st.st_mode)) {
    return Status::Invalid("manifest " + file + " is not a regular file (a folder, FIFO or device); give a JSON or JSON Lines file");
  }
  auto text = ReadFile(file);
  if (!text.ok()) return text.status();
  const std::string& t = text.value();
  std::string base = DirName(AbsolutePath(file));
  Problems pr{file};
  std::map<std::string, int> seen;  // path -> line

  auto add = [&](int line, const std::string& key, json fields) {
    if (key.empty()) {
      pr.Add(line, "empty path; give a file name");
      return;
    }
    if (HasScheme(key)) {
      pr.Add(line, "'" + Excerpt(key) + "' is a URL; only local paths are read (copy the file to this machine)");
      return;
    }
    if (key.find('\0') != std::string::npos) {
      pr.Add(line, "the path holds a NUL byte");
      return;
    }
    std::string path = AbsolutePath(key[0] == '/' ? key : base + "/" + key);
    struct stat es;
    if (::stat(path.c_str(), &es) != 0) {
      pr.Add(line, path + ": " + std::string(std::strerror(errno)) + "; fix the entry or remove it");
      return;
    }
    if (!S_ISREG(es.st_mode) && !S_ISDIR(es.st_mode)) {
      pr.Add(line, path + " is not a regular file or folder (a FIFO, socket or device); remove the entry");
      return;
    }
    auto [it, fresh] = seen.emplace(path, line);
    if (!fresh) {
      pr.Add(line, "duplicate of entry " + std::to_string(it->second) + " (" + path + "); remove one");
      return;
    }
    std::string name = StartsWith(path, base + "/") ? path.substr(base.size() + 1) : BaseName(path);
    m.entries.push_back({line, key, path, std::move(fields), name});
  };

  size_t first = t.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return Status::Invalid(file + ": the manifest holds no entries");
  if (t[first] == '[') {
    json doc;
    try {
      doc = json::parse(t);
    } catch (const json::parse_error& e) {
      auto [line, col] = LineCol(t, e.byte > 0 ? e.byte - 1 : 0);
      std::string what = e.what();
      auto colon = what.find("syntax error");
      return Status::Invalid(file + ":" + std::to_string(line) + ":" + std::to_string(col) + ": bad JSON (" +
                             (colon != std::string::npos ? what.substr(colon) : what) +
                             "); a manifest is a JSON array or one JSON object per line");
    }
    pr.array = true;
    std::string prefix;
    size_t i = 0;
    if (!doc.empty() && doc[0].is_object()) {
      if (!doc[0].contains("prefix") || !doc[0]["prefix"].is_string() || doc[0].size() != 1) {
        pr.Add(1, "the first element, an object, must be {\"prefix\": \"FOLDER/\"}");
      } else {
        prefix = doc[0]["prefix"].get<std::string>();
      }
      i = 1;
    }
    for (; i < doc.size(); ++i) {
      int n = static_cast<int>(i) + 1;
      if (!doc[i].is_string()) {
        pr.Add(n, std::string(doc[i].is_array() || doc[i].is_object() ? "an " : "a ") + doc[i].type_name() +
                      ", not a path string; after the optional prefix object, list file names");
        continue;
      }
      add(n, prefix + doc[i].get<std::string>(), json::object());
    }
  } else {
    m.lines = true;
    int line = 0;
    for (const auto& raw : Split(t, '\n')) {
      ++line;
      std::string l(Trim(raw));
      if (l.empty()) continue;
      json j = json::parse(l, nullptr, false);
      if (j.is_discarded()) {
        pr.Add(line, "bad JSON; each line is one object such as {\"source-ref\": \"video.mp4\"}");
        continue;
      }
      if (!j.is_object()) {
        pr.Add(line, std::string(j.is_array() ? "an " : "a ") + j.type_name() + ", not an object with \"source-ref\"");
        continue;
      }
      if (!j.contains("source-ref") || !j["source-ref"].is_string()) {
        pr.Add(line, "no \"source-ref\" string; each line names its file in \"source-ref\"");
        continue;
      }
      std::string key = j["source-ref"].get<std::string>();
      add(line, key, std::move(j));
    }
  }
  if (pr.count > 0) {
    Status st = pr.ToStatus();
    return Status::Invalid(st.message() + "\n" + file + ": " + std::to_string(pr.count) + " problem" +
                           (pr.count == 1 ? "" : "s") + " in the manifest; nothing was run or queued");
  }
  if (m.entries.empty()) return Status::Invalid(file + ": the manifest holds no entries");
  return m;
}

}  // namespace ns::spec
