// Engine: drives many runs in one process over one executor and one capacity
// pool, so a batch of videos shares the machine (or the cluster).
//
// One loop thread: it waits on the shared EventQueue, hands each attempt
// result to the run that owns its handle, lets every run absorb what happened
// (results, cancel, preempt requests, due retries, its deadline), then lets
// the runs launch in order: a run whose deadline is in danger first (its
// priority is raised when it escalates), then by priority, then by the
// earliest deadline, then in the order they were added. Each run commits its
// own decisions in its own transaction before it spawns (the order of effects
// of a single run is unchanged). A run that fails (its store or folder became
// unusable) has its attempts cancelled and ends alone; the others go on.
//
// Not thread-safe: Add and Run from one thread; the borrowed EventQueue's
// RequestCancel is the cross-thread entry.
#pragma once

#include <memory>
#include <vector>

#include "engine/scheduler.h"

namespace ns {

class Engine {
 public:
  explicit Engine(EventQueue* events) : events_(events) {}

  // `run` must have been built with this engine's pool() and outlive Run.
  void Add(Scheduler* run) { runs_.push_back(run); }
  // Runs every added run to its end; the results are in the order of Add.
  std::vector<Result<RunStatus>> Run();

 private:
  EventQueue* events_;
  std::vector<Scheduler*> runs_;
};

}  // namespace ns
