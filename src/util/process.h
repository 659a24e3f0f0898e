// Process identity: telling a process apart from a later one that got its pid.
//
// A pid alone names a process only while it lives: after it exits the kernel
// hands the number to someone else. A ProcessIdentity adds the host, the boot
// (/proc/sys/kernel/random/boot_id) and the start time in clock ticks since
// boot (field 22 of /proc/PID/stat), which together never repeat. Nothing in
// nightshift signals a process it cannot prove is its own: an engine by its
// identity, an attempt's processes by the NIGHTSHIFT_ATTEMPT_UID in their
// environment (see FindProcessesWithEnv).
//
// Thread-safe: every function only reads /proc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "util/status.h"

namespace ns {

struct ProcessIdentity {
  int64_t pid = 0;
  int64_t start_ticks = 0;  // 0: unknown
  std::string boot_id;
  std::string host;

  // "host:pid:start:boot" and back; Parse of a malformed string gives pid 0.
  std::string ToString() const;
  static ProcessIdentity Parse(const std::string& s);
};

std::string HostName();
std::string BootId();  // "" when /proc does not say
// The start time of `pid` in clock ticks since boot; 0 if it does not exist.
int64_t ProcessStartTicks(pid_t pid);
ProcessIdentity SelfIdentity();
// True only when `id` is on this host and boot and its pid still has the same
// start time. An identity from another host is never "alive" here: the caller
// must not judge it (see IsForeign).
bool IsAlive(const ProcessIdentity& id);
bool IsForeign(const ProcessIdentity& id);  // another host or another boot

// Sends `sig` to the process `id` names, through a pidfd opened and checked
// against the start time first, so a pid reused between the check and the
// signal is never hit. NotFound if it is gone or is someone else.
Status SignalIdentity(const ProcessIdentity& id, int sig);

// Pids of the processes whose environment holds an entry that starts with
// `prefix` ("NAME=value-prefix"). Reads /proc/PID/environ of every process
// this user may read.
std::vector<pid_t> FindProcessesWithEnvPrefix(const std::string& prefix);
// Signals `pid` only if, seen through a pidfd (so the pid cannot be reused in
// between), its environment still holds an entry starting with `prefix`.
Status SignalIfHasEnvPrefix(pid_t pid, const std::string& prefix, int sig);
// Same, among the direct children of this process only (cheap: reads
// /proc/self/task/<main>/children, or every thread's with all_threads), and
// the value after the prefix of each into `values`.
std::vector<pid_t> ChildrenWithEnvPrefix(const std::string& prefix, std::vector<std::string>* values,
                                         bool all_threads);
// Whether /proc/PID/environ of `pid` holds `entry` (exact), or an entry that
// starts with it when `prefix` is set.
bool ProcessHasEnv(pid_t pid, const std::string& entry, bool prefix = false);

}  // namespace ns
