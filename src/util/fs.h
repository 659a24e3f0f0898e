// File-system helpers with Status errors. Thread-safe (they only call the OS).
#pragma once

#include <string>
#include <vector>

#include "util/status.h"

namespace ns {

Status MakeDirs(const std::string& path);
// One mkdir(2): the parent must exist. Ok if the folder already exists.
Status MakeDir(const std::string& path);
Result<std::string> ReadFile(const std::string& path);
// Writes via a temporary file in the same folder and rename(2): readers see the
// old content or the new one, never a partial file.
Status WriteFileAtomic(const std::string& path, const std::string& content);
Status RemoveTree(const std::string& path);  // ok if absent
bool PathExists(const std::string& path);
bool IsDirectory(const std::string& path);
bool IsRegularFile(const std::string& path);
// Moves `from` to `to` atomically. If `to` exists it is swapped in one step
// (renameat2 RENAME_EXCHANGE) and the old content removed afterwards, so readers
// never see a missing or half-written `to`.
Status ReplaceDir(const std::string& from, const std::string& to);
std::string AbsolutePath(const std::string& path);  // lexically normal, no symlink resolution
std::string DirName(const std::string& path);
std::string BaseName(const std::string& path);
std::string StemOf(const std::string& path);  // base name without its last extension
// Names in a folder (not recursive), sorted.
Result<std::vector<std::string>> ListDir(const std::string& path);
// A step's output folder holds one task's files or one folder per foreach item:
// {dir} if dir/marker is a file, else dir's sub-folders that hold a file named
// marker, sorted by name (none: an empty list).
Result<std::vector<std::string>> FoldersHolding(const std::string& dir, const std::string& marker);
// Matches one path component against a glob (*, ?, [..]) like the shell.
bool GlobMatch(const std::string& pattern, const std::string& name);
// Searches PATH (the given value) for an executable; "" if not found.
std::string FindProgram(const std::string& name, const std::string& path_env);

}  // namespace ns
