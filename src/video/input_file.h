// InputFile: how a step opens the files it reads, so that no input can hang a step
// or exhaust its memory. Every file a flag names, and every file a step reads from
// a folder a flag names, is opened here (videos too, through AvInput):
//  - open(2) with O_NONBLOCK: opening a FIFO that has no writer returns at once
//    instead of blocking until one appears (a blocked open ignores SIGTERM);
//  - the opened descriptor is checked with fstat(2), not the path with stat(2), so
//    a path swapped for a FIFO or a device after a check cannot slip through: only
//    regular files are read, never /dev/zero, a FIFO, a socket or a terminal;
//  - formats that are small (the JSON a step writes, a homography, a names file)
//    are read with a size limit, JSON Lines with a limit per line.
//
// Errors are one line naming the flag the file came from (directly, or as the
// folder it was found in), the path, and what to do, e.g.
//   --index /dev/zero: a character device, not a regular file; pass a regular file
// A missing file is kNotFound; a folder, FIFO, device or socket where a file is
// expected, a file over its limit or a line over the line limit is
// kInvalidArgument (both exit 2); a failing open or read is kIoError (exit 1).
// An InputFile is used by one thread at a time; the free functions are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "util/status.h"

namespace ns::video {

// The JSON files steps write (segments.json, probe.json, summary.json...), a
// homography, a class names file, an image to inline: far below this.
inline constexpr int64_t kSmallFileLimit = int64_t{256} << 20;
// A model file (protobuf itself cannot parse more than 2 GiB).
inline constexpr int64_t kModelFileLimit = int64_t{2} << 30;
// One line of detections.jsonl or tracks.jsonl is about 150 bytes.
inline constexpr size_t kJsonLineLimit = size_t{1} << 20;

class InputFile {
 public:
  // Opens `path` for reading and checks it is a regular file (see above). `flag`
  // names the input in messages ("--index"); empty: the path alone.
  static Result<InputFile> Open(const std::string& path, const std::string& flag);
  InputFile(InputFile&& other) noexcept;
  InputFile& operator=(InputFile&& other) noexcept;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile();

  int fd() const { return fd_; }
  int64_t size() const { return size_; }  // at Open
  const std::string& path() const { return path_; }
  // How messages name this file: "--index segments.json", or the path alone.
  const std::string& name() const { return name_; }

  // Reads from the current position to the end. kInvalidArgument, before reading
  // anything, for a file larger than `limit` bytes (and if it grows past it).
  Result<std::string> ReadAll(int64_t limit);
  // Calls `line` with each line (without its '\n') and its number from 1, and stops
  // at the first error it returns. kInvalidArgument naming the line for a line
  // longer than `max_line` bytes.
  Status ForEachLine(size_t max_line,
                     const std::function<Status(std::string_view line, int64_t number)>& line);

 private:
  InputFile() = default;

  int fd_ = -1;
  int64_t size_ = 0;
  std::string path_;
  std::string name_;
};

// Opens and reads a whole file of at most `limit` bytes.
Result<std::string> ReadSmallFile(const std::string& path, const std::string& flag,
                                  int64_t limit = kSmallFileLimit);

// Ok if `path` is a folder (checked with fstat on an O_PATH descriptor, which
// opens nothing). kNotFound if it does not exist, kInvalidArgument naming what it
// is otherwise; both say to pass `expected` ("the render step's folder").
Status CheckFolder(const std::string& path, const std::string& flag,
                   const std::string& expected = "a folder");

}  // namespace ns::video
