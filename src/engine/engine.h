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
// Run() ends when every added run has ended. Serve(host) keeps going for a
// host (the server): each round the host may Add runs (jobs it leased), is told
// of each run that ends, and says when to stop; the EventQueue's RequestWake is
// how an arrival wakes it.
//
// Not thread-safe: Add, Run and Serve from one thread (Add also from the
// host's Refill); the borrowed EventQueue is the cross-thread entry.
#pragma once

#include <memory>
#include <vector>

#include "engine/scheduler.h"

namespace ns {

class Engine {
 public:
  // What drives a long-lived engine. Called on the engine's thread.
  class Host {
   public:
    virtual ~Host() = default;
    // Each round, before launching: may Add runs.
    virtual void Refill(Engine* engine) = 0;
    // `run` ended (Finish returned `result`); the engine forgets it after this.
    virtual void Finished(Scheduler* run, const Result<RunStatus>& result) = 0;
    // False: end once no run is left.
    virtual bool Serving() = 0;
    // When the host wants a round even if nothing happens (kForever: never).
    virtual TimeMs NextWake() = 0;
  };

  explicit Engine(EventQueue* events) : events_(events) {}

  // `run` must have been built with the same pool as the others and outlive
  // its end. Added during Serve, it starts in the round it was added.
  void Add(Scheduler* run) { runs_.push_back({run}); }
  // Runs every added run to its end; the results are in the order of Add.
  std::vector<Result<RunStatus>> Run();
  // Serves `host` until it stops serving and every run has ended.
  void Serve(Host* host);
  // Runs added and not yet ended.
  size_t active() const;

 private:
  struct Entry {
    Scheduler* run;
    bool started = false;
    bool finished = false;
    Result<RunStatus> result = Result<RunStatus>(RunStatus::kFailed);
  };
  void Loop(Host* host);

  EventQueue* events_;
  std::vector<Entry> runs_;
};

}  // namespace ns
