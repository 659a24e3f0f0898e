// Content hashing for fingerprints (XXH3-128). Not cryptographic: it detects
// change, it does not resist an adversary. Hasher is not thread-safe; the free
// functions are.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "util/status.h"

namespace ns {

class Hasher {
 public:
  Hasher();
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  // Adds a length-prefixed field, so ("ab","c") and ("a","bc") differ.
  void Add(std::string_view field);
  void AddRaw(const void* data, size_t n);
  std::string HexDigest();  // 32 hex characters

 private:
  void* state_;  // XXH3_state_t*, owned
};

// Hash of a regular file's bytes, or of a folder's tree (relative names and
// contents of its regular files). Anything else (a device, a FIFO) is an
// Invalid error, never read. `cancelled`, when given, is asked between chunks
// of 1 MiB; when it says so the result is a Cancelled error.
Result<std::string> HashPath(const std::string& path, const std::function<bool()>& cancelled = {});

}  // namespace ns
