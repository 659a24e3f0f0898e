// Prefetcher: runs a Decoder on a thread of its own, up to `depth` frames ahead of
// the caller, so decoding and colour conversion overlap with detection, drawing or
// encoding instead of adding to them. Frames come out exactly as Decoder::Next
// would give them, in the same order, with the same errors.
//
// `want(index)` says whether frame `index` will be used (converted to BGR) or only
// decoded; it is called on the decode thread and must be a pure function of the
// index. Buffers are recycled: the Mat in the frame handed back to Next() is reused
// for a later frame, so steady state allocates nothing. The Decoder is borrowed and
// must not be touched by anyone else until the Prefetcher is destroyed or Next()
// has returned false or an error (its counters are final then).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "video/decoder.h"

namespace ns::video {

// CPU seconds of the calling thread (CLOCK_THREAD_CPUTIME_ID).
double ThreadCpuSeconds();
// CPU seconds of the whole process (CLOCK_PROCESS_CPUTIME_ID).
double ProcessCpuSeconds();

class Prefetcher {
 public:
  using WantFn = std::function<bool(int64_t index)>;
  Prefetcher(Decoder* decoder, WantFn want, int depth);
  ~Prefetcher();  // stops the decode thread and waits for it
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // As Decoder::Next: true with the next frame, false at the end, or an error.
  // The buffer `frame` held before the call is recycled.
  Result<bool> Next(VideoFrame* frame);
  // CPU seconds the decode thread spent in Decoder::Next so far (decoding and
  // colour conversion): a per-stage timer for benchmarks.
  double decode_seconds() const;

 private:
  struct Item {
    Status status;
    bool more = false;
    VideoFrame frame;
  };
  void Run();

  Decoder* decoder_;
  WantFn want_;
  size_t depth_;
  mutable std::mutex mu_;
  double decode_seconds_ = 0;  // guarded by mu_
  std::condition_variable cv_;
  std::deque<Item> ready_;     // decoded, waiting for Next()
  std::vector<cv::Mat> spare_; // buffers handed back, for the decode thread to reuse
  bool stop_ = false;          // the consumer is gone
  std::thread thread_;
};

}  // namespace ns::video
