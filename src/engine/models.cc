// The model registry: push (copy and hash), resolve, remove, verify.
#include "engine/models.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "util/fs.h"
#include "spec/diagnostics.h"
#include "util/strings.h"

namespace ns::models {

using json = nlohmann::json;

namespace {

constexpr size_t kChunk = 1 << 20;

std::string Hex(const unsigned char* p, unsigned n) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (unsigned i = 0; i < n; ++i) {
    out += kHex[p[i] >> 4];
    out += kHex[p[i] & 15];
  }
  return out;
}

struct Sha256 {
  Sha256() : ctx(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx); }
  void Add(const void* p, size_t n) { EVP_DigestUpdate(ctx, p, n); }
  std::string Hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(ctx, md, &n);
    return models::Hex(md, n);
  }
  EVP_MD_CTX* ctx;
};

struct Fd {
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  int fd;
};

// The stat a pushed file must keep: any write changes ctime (and a replaced
// file has another inode).
json StatJson(const struct stat& st) {
  return {{"ino", static_cast<int64_t>(st.st_ino)},
          {"mtime_ns", static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec},
          {"ctime_ns", static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec}};
}

Status WriteAll(int fd, const char* p, size_t n, const std::string& path) {
  for (size_t done = 0; done < n;) {
    ssize_t w = ::write(fd, p + done, n - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Status::FromErrno("cannot write " + path, errno);
    done += static_cast<size_t>(w);
  }
  return Status::Ok();
}

// sha256 of a regular file (never a FIFO or device: opened O_NONBLOCK, checked
// by fstat), handing each chunk also to `chunk` when given.
Result<std::string> HashFile(const std::string& path, const std::function<Status(const char*, size_t)>& chunk) {
  Fd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (in.fd < 0) return Status::FromErrno("cannot read " + path, errno);
  struct stat st;
  if (::fstat(in.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return Status::Invalid(path + " is not a regular file; a model holds files and folders only");
  }
  Sha256 h;
  std::unique_ptr<char[]> buf(new char[kChunk]);
  for (;;) {
    ssize_t n = ::read(in.fd, buf.get(), kChunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("cannot read " + path, errno);
    if (n == 0) break;
    h.Add(buf.get(), static_cast<size_t>(n));
    if (chunk) NS_RETURN_IF_ERROR(chunk(buf.get(), static_cast<size_t>(n)));
  }
  return h.Hex();
}

// Copies `from` to `to` (created 0444), hashing what it copies.
Result<std::string> CopyHashing(const std::string& from, const std::string& to, int64_t* size) {
  Fd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444));
  if (out.fd < 0) return Status::FromErrno("cannot create " + to, errno);
  *size = 0;
  auto h = HashFile(from, [&](const char* p, size_t n) {
    *size += static_cast<int64_t>(n);
    return WriteAll(out.fd, p, n, to);
  });
  if (!h.ok()) return h;
  if (::fsync(out.fd) != 0) return Status::FromErrno("cannot write " + to, errno);
  return h;
}

// UTF-8 without control characters: names end up in JSON and in the digest's lines.
bool SafeName(const std::string& n) {
  if (!IsValidUtf8(n)) return false;
  return std::none_of(n.begin(), n.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// Copies the tree at `from` into the folder `to` (which exists), appending
// each file to `files` as (relative path, size, sha256).
Status CopyTree(const std::string& from, const std::string& to, const std::string& rel,
                std::vector<Registry::File>* files) {
  auto names = ListDir(from);
  if (!names.ok()) return names.status();
  for (const auto& n : names.value()) {
    std::string src = from + "/" + n, dst = to + "/" + n, r = rel.empty() ? n : rel + "/" + n;
    if (!SafeName(n)) {
      return Status::Invalid(src + ": a model's file names must be UTF-8 without control characters; rename it");
    }
    struct stat st;
    if (::lstat(src.c_str(), &st) != 0) return Status::FromErrno("cannot read " + src, errno);
    if (S_ISDIR(st.st_mode)) {
      if (::mkdir(dst.c_str(), 0755) != 0) return Status::FromErrno("cannot create " + dst, errno);
      NS_RETURN_IF_ERROR(CopyTree(src, dst, r, files));
      if (::chmod(dst.c_str(), 0555) != 0) return Status::FromErrno("cannot make " + dst + " read-only", errno);
    } else if (S_ISREG(st.st_mode)) {
      Registry::File f;
      f.path = r;
      auto h = CopyHashing(src, dst, &f.size);
      if (!h.ok()) return h.status();
      f.sha256 = h.value();
      files->push_back(std::move(f));
    } else if (S_ISLNK(st.st_mode)) {
      return Status::Invalid(src + " is a symbolic link; push the file it points to (a model holds files only)");
    } else {
      return Status::Invalid(src + " is not a regular file (a device, FIFO or socket); a model holds files only");
    }
  }
  return Status::Ok();
}

// Makes a read-only tree removable (the registry's folders are 0555).
void MakeWritable(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return;
  ::chmod(path.c_str(), 0755);
  auto names = ListDir(path);
  if (!names.ok()) return;
  for (const auto& n : names.value()) MakeWritable(path + "/" + n);
}

Status RemoveReadOnlyTree(const std::string& path) {
  MakeWritable(path);
  return RemoveTree(path);
}

std::string ManifestPath(const std::string& dir) { return dir + ".json"; }

// The digest of a version: sha256 over "<sha256>  <size>  <path>\n" per file,
// sorted by path (names hold no control characters, so lines cannot be forged).
std::string DigestOf(const std::vector<Registry::File>& files) {
  Sha256 d;
  for (const auto& f : files) {
    std::string line = f.sha256 + "  " + std::to_string(f.size) + "  " + f.path + "\n";
    d.Add(line.data(), line.size());
  }
  return "sha256:" + d.Hex();
}

// The manifest of a version whose files are in `dir` (their stat as they are now).
Result<std::string> ManifestText(const std::string& name, int64_t version, const std::string& digest,
                                 const std::string& dir, const std::vector<Registry::File>& files) {
  json jf = json::array();
  for (const auto& f : files) {
    struct stat fs;
    std::string p = dir + "/" + f.path;
    if (::lstat(p.c_str(), &fs) != 0) return Status::FromErrno("cannot read " + p, errno);
    json e = {{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}};
    e["stat"] = StatJson(fs);
    jf.push_back(std::move(e));
  }
  json manifest = {{"name", name}, {"version", version}, {"digest", digest}, {"files", jf}};
  return manifest.dump(1) + "\n";
}

// Writes and syncs a file and its folder: a manifest must survive a crash.
Status WriteDurably(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  Fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444));
  if (out.fd < 0) return Status::FromErrno("cannot create " + tmp, errno);
  NS_RETURN_IF_ERROR(WriteAll(out.fd, text.data(), text.size(), tmp));
  if (::fsync(out.fd) != 0) return Status::FromErrno("cannot write " + tmp, errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Status::FromErrno("cannot write " + path, errno);
  Fd parent(::open(DirName(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (parent.fd >= 0) ::fsync(parent.fd);
  return Status::Ok();
}

}  // namespace

Result<std::string> Sha256File(const std::string& path) { return HashFile(path, nullptr); }

Registry::Registry(Store* store, std::string root) : store_(store), root_(std::move(root)) {}

std::string Registry::VersionDir(const std::string& name, int64_t version) const {
  return Dir() + "/" + name + "/" + std::to_string(version);
}

Result<Registry::Pushed> Registry::Push(const std::string& name, const std::string& path, int64_t version,
                                        const std::string& meta_json, int64_t now_ms) {
  if (!IsModelName(name)) {
    return Status::Invalid("model name '" + spec::Excerpt(name) + "' must match [A-Za-z0-9][A-Za-z0-9._-]* (at most 128)");
  }
  if (version < 0) return Status::Invalid("--version must be a number from 1");
  if (!IsValidUtf8(meta_json)) return Status::Invalid("--meta values must be UTF-8");
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    return Status::Invalid(path + " is a symbolic link; push the file or folder it points to");
  }
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno("cannot read " + path, errno);
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    return Status::Invalid(path + " is not a file or a folder (a device, FIFO or socket); push a model's files");
  }
  std::string abs = AbsolutePath(path);
  if (S_ISDIR(st.st_mode) && (root_ == abs || StartsWith(root_ + "/", abs + "/"))) {
    return Status::Invalid(path + " holds the nightshift root " + root_ + "; push the model's own folder");
  }
  // Copy, hash and describe outside any transaction: a push of gigabytes does
  // not hold the store's write lock. Renaming the folder later leaves its
  // files' inode and ctime as they are, so the manifest's stats stay true.
  std::mt19937_64 rng(std::random_device{}());
  std::string incoming = Dir() + "/.incoming/" + std::to_string(::getpid()) + "-" + std::to_string(rng() % 1000000007);
  NS_RETURN_IF_ERROR(MakeDirs(incoming));
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      if (!dir.empty()) {
        (void)RemoveReadOnlyTree(dir);
        ::unlink(ManifestPath(dir).c_str());
      }
    }
  } cleanup{incoming};
  std::vector<File> files;
  if (S_ISDIR(st.st_mode)) {
    NS_RETURN_IF_ERROR(CopyTree(path, incoming, "", &files));
  } else {
    File f;
    f.path = BaseName(path);
    if (!SafeName(f.path)) return Status::Invalid(path + ": a model's file names must be UTF-8 without control characters");
    auto h = CopyHashing(path, incoming + "/" + f.path, &f.size);
    if (!h.ok()) return h.status();
    f.sha256 = h.value();
    files.push_back(std::move(f));
  }
  if (files.empty()) return Status::Invalid(path + " holds no files; a model needs at least one");
  std::sort(files.begin(), files.end(), [](const File& a, const File& b) { return a.path < b.path; });
  int64_t total = 0;
  for (const auto& f : files) total += f.size;
  std::string digest = DigestOf(files);
  if (::chmod(incoming.c_str(), 0555) != 0) return Status::FromErrno("cannot make " + incoming + " read-only", errno);

  Pushed out;
  Status done = store_->Transaction([&]() -> Status {
    auto rows = store_->ListModels(name);
    if (!rows.ok()) return rows.status();
    for (const auto& r : rows.value()) {
      if (r.digest != digest) continue;
      out.row = r;
      out.created = false;
      // The same content again: a no-op, unless that version was damaged;
      // then this push repairs it (same number, same digest).
      if (Verify(name, r.version, true).ok()) return Status::Ok();
      std::string dir = VersionDir(name, r.version);
      auto text = ManifestText(name, r.version, digest, incoming, files);
      if (!text.ok()) return text.status();
      NS_RETURN_IF_ERROR(WriteDurably(ManifestPath(incoming), text.value()));
      NS_RETURN_IF_ERROR(ReplaceDir(incoming, dir));
      if (::rename(ManifestPath(incoming).c_str(), ManifestPath(dir).c_str()) != 0) {
        return Status::FromErrno("cannot write " + ManifestPath(dir), errno);
      }
      cleanup.dir.clear();
      out.repaired = true;
      return Status::Ok();
    }
    auto max = store_->MaxModelVersion(name);
    if (!max.ok()) return max.status();
    int64_t v = version ? version : max.value() + 1;
    if (version) {
      auto all = store_->ListModels(name, true);
      if (!all.ok()) return all.status();
      for (const auto& r : all.value()) {
        if (r.version == version) {
          return Status::Invalid(name + "@" + std::to_string(version) + (r.removed_at ? " was removed" : " exists") +
                                 "; a version number is never given twice (the next free one is " +
                                 std::to_string(max.value() + 1) + ")");
        }
      }
    }
    std::string dir = VersionDir(name, v);
    auto text = ManifestText(name, v, digest, incoming, files);
    if (!text.ok()) return text.status();
    NS_RETURN_IF_ERROR(WriteDurably(ManifestPath(incoming), text.value()));
    NS_RETURN_IF_ERROR(MakeDirs(DirName(dir)));
    // A folder without a row is what a push that crashed before its commit left.
    if (PathExists(dir)) NS_RETURN_IF_ERROR(RemoveReadOnlyTree(dir));
    if (::rename(incoming.c_str(), dir.c_str()) != 0) return Status::FromErrno("cannot move into " + dir, errno);
    if (::rename(ManifestPath(incoming).c_str(), ManifestPath(dir).c_str()) != 0) {
      return Status::FromErrno("cannot write " + ManifestPath(dir), errno);
    }
    cleanup.dir = dir;  // until the commit
    ModelRow row;
    row.name = name;
    row.version = v;
    row.digest = digest;
    row.size_bytes = total;
    row.files = static_cast<int64_t>(files.size());
    row.meta_json = meta_json.empty() ? "{}" : meta_json;
    row.source = abs;
    row.created_at = now_ms;
    NS_RETURN_IF_ERROR(store_->InsertModel(row));
    out.row = row;
    out.created = true;
    return Status::Ok();
  });
  if (!done.ok()) return done;
  if (out.created) cleanup.dir.clear();
  return out;
}

Result<ModelRow> Registry::Resolve(const ModelRef& ref) {
  auto rows = store_->ListModels(ref.name, true);
  if (!rows.ok()) return rows.status();
  const ModelRow* found = nullptr;
  for (const auto& r : rows.value()) {
    if (ref.version ? r.version == ref.version : r.removed_at == 0) found = &r;
  }
  if (!found) {
    std::string have;
    for (const auto& r : rows.value()) {
      if (!r.removed_at) have += (have.empty() ? "" : ", ") + std::to_string(r.version);
    }
    return Status::NotFound("model " + ref.Text() + " is not in the registry " + Dir() +
                            (have.empty() ? "; push it first: nightshift model push " + ref.name + " PATH"
                                          : " (versions: " + have + ")"));
  }
  if (found->removed_at) {
    return Status::NotFound("model " + ref.Text() + " was removed from the registry; push it again or use another version");
  }
  return *found;
}

Status Registry::Remove(const std::string& name, int64_t version, int64_t now_ms) {
  ModelRef ref{name, version};
  std::string dir = VersionDir(name, version);
  std::mt19937_64 rng(std::random_device{}());
  std::string trash = Dir() + "/.trash/" + name + "-" + std::to_string(version) + "-" + std::to_string(rng() % 1000000007);
  NS_RETURN_IF_ERROR(MakeDirs(Dir() + "/.trash"));
  Status st = store_->Transaction([&]() -> Status {
    auto row = Resolve(ref);
    if (!row.ok()) return row.status();
    auto users = store_->RunsUsingModel(name, version, true);
    if (!users.ok()) return users.status();
    if (!users.value().empty()) {
      return Status::Invalid("model " + name + "@" + std::to_string(version) + " is used by run" +
                             (users.value().size() == 1 ? " " : "s ") + Join(users.value(), ", ") +
                             ", which has not finished; cancel it or wait for it");
    }
    return store_->RemoveModel(name, version, now_ms);
  });
  if (!st.ok()) return st;
  // Removed in the store: its files go after the commit, out of the lock (a
  // failure leaves them in .trash, which the next removal sweeps).
  if (::rename(dir.c_str(), trash.c_str()) != 0 && errno != ENOENT) {
    return Status::FromErrno("model " + name + "@" + std::to_string(version) + " is removed, but its folder " + dir +
                                 " could not be moved away",
                             errno);
  }
  ::unlink(ManifestPath(dir).c_str());
  auto left = ListDir(Dir() + "/.trash");
  if (left.ok()) {
    for (const auto& n : left.value()) (void)RemoveReadOnlyTree(Dir() + "/.trash/" + n);
  }
  return Status::Ok();
}

Result<std::vector<Registry::File>> Registry::Files(const std::string& name, int64_t version) const {
  std::string dir = VersionDir(name, version);
  auto text = ReadFile(ManifestPath(dir));
  if (!text.ok()) return text.status();
  json m = json::parse(text.value(), nullptr, false);
  if (!m.is_object() || !m.contains("files") || !m["files"].is_array()) {
    return Status::Invalid(ManifestPath(dir) + " is not a model manifest; the registry is damaged: push the model again");
  }
  std::vector<File> out;
  for (const auto& f : m["files"]) {
    if (!f.is_object()) return Status::Invalid(ManifestPath(dir) + " is damaged; push the model again");
    out.push_back({f.value("path", ""), f.value("size", int64_t{0}), f.value("sha256", "")});
  }
  return out;
}

Status Registry::Verify(const std::string& name, int64_t version, bool full, const std::string& digest) const {
  try {
    return VerifyManifest(name, version, full, digest);
  } catch (const json::exception& e) {
    return Status::Invalid("model " + name + "@" + std::to_string(version) + ": its manifest is damaged (" + e.what() +
                           "); push the model again");
  }
}

Status Registry::VerifyManifest(const std::string& name, int64_t version, bool full, const std::string& digest) const {
  std::string ref = name + "@" + std::to_string(version);
  std::string dir = VersionDir(name, version);
  auto text = ReadFile(ManifestPath(dir));
  if (!text.ok()) {
    return Status::Invalid("model " + ref + ": its manifest " + ManifestPath(dir) + " cannot be read (" +
                           text.status().message() + "); push the model again");
  }
  json m = json::parse(text.value(), nullptr, false);
  if (!m.is_object() || !m["files"].is_array()) {
    return Status::Invalid("model " + ref + ": " + ManifestPath(dir) + " is damaged; push the model again");
  }
  // The manifest lies outside the read-only folder: it must still describe the
  // content that was pinned.
  std::vector<File> entries;
  for (const auto& f : m["files"]) entries.push_back({f.at("path").get<std::string>(), f.at("size").get<int64_t>(),
                                                      f.at("sha256").get<std::string>()});
  if (DigestOf(entries) != (digest.empty() ? m.value("digest", "") : digest)) {
    return Status::Invalid("model " + ref + " is corrupted: its manifest " + ManifestPath(dir) +
                           " no longer matches its digest; push the model again");
  }
  std::set<std::string> listed;
  for (const auto& f : m["files"]) {
    std::string rel = f.value("path", "");
    listed.insert(rel);
    std::string p = dir + "/" + rel;
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) {
      return Status::Invalid("model " + ref + " is corrupted: " + p + " is missing; push the model again");
    }
    if (!S_ISREG(st.st_mode)) {
      return Status::Invalid("model " + ref + " is corrupted: " + p + " is no longer a regular file; push the model again");
    }
    bool same = !full && f.contains("stat") && f["stat"] == StatJson(st) &&
                static_cast<int64_t>(st.st_size) == f.value("size", int64_t{-1});
    if (same) continue;
    auto h = Sha256File(p);
    if (!h.ok()) return Status::Invalid("model " + ref + ": " + h.status().message());
    if (h.value() != f.value("sha256", "")) {
      return Status::Invalid("model " + ref + " is corrupted: " + p + " has sha256 " + h.value().substr(0, 16) +
                             "..., not the " + f.value("sha256", "").substr(0, 16) +
                             "... it was pushed with; push the model again");
    }
  }
  // A file added to the version is a change too.
  std::vector<std::string> stack{""};
  while (!stack.empty()) {
    std::string rel = stack.back();
    stack.pop_back();
    auto names = ListDir(rel.empty() ? dir : dir + "/" + rel);
    if (!names.ok()) return Status::Invalid("model " + ref + ": " + names.status().message());
    for (const auto& n : names.value()) {
      std::string r = rel.empty() ? n : rel + "/" + n;
      struct stat st;
      if (::lstat((dir + "/" + r).c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        stack.push_back(r);
      } else if (!listed.count(r)) {
        return Status::Invalid("model " + ref + " is corrupted: " + dir + "/" + r +
                               " was added after it was pushed; push the model again");
      }
    }
  }
  return Status::Ok();
}

}  // namespace ns::models
