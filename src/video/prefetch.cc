#include "video/prefetch.h"

#include <ctime>

namespace ns::video {

double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

Prefetcher::Prefetcher(Decoder* decoder, WantFn want, int depth)
    : decoder_(decoder), want_(std::move(want)), depth_(depth < 1 ? 1 : static_cast<size_t>(depth)) {
  thread_ = std::thread([this] { Run(); });
}

Prefetcher::~Prefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Prefetcher::Run() {
  for (;;) {
    Item item;
    // The decoder is this thread's alone while it runs.
    const bool want = want_(decoder_->next_index());
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || ready_.size() < depth_; });
      if (stop_) return;
      if (want && !spare_.empty()) {  // a skipped frame would drop the buffer
        item.frame.bgr = std::move(spare_.back());
        spare_.pop_back();
      }
    }
    double t0 = ThreadCpuSeconds();
    Result<bool> more = decoder_->Next(&item.frame, want);
    double spent = ThreadCpuSeconds() - t0;
    bool last = !more.ok() || !*more;
    if (more.ok()) {
      item.more = *more;
    } else {
      item.status = more.status();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      decode_seconds_ += spent;
      ready_.push_back(std::move(item));
    }
    cv_.notify_all();
    if (last) return;
  }
}

double Prefetcher::decode_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return decode_seconds_;
}

Result<bool> Prefetcher::Next(VideoFrame* frame) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!frame->bgr.empty()) spare_.push_back(std::move(frame->bgr));
  frame->bgr = cv::Mat();
  cv_.wait(lock, [this] { return !ready_.empty(); });
  Item item = std::move(ready_.front());
  // The end (or an error) stays at the front, so calling again repeats it.
  if (!item.status.ok()) {
    ready_.front() = Item{item.status, false, {}};
  } else if (!item.more) {
    ready_.front() = Item{};
  } else {
    ready_.pop_front();
  }
  lock.unlock();
  cv_.notify_all();
  if (!item.status.ok()) return item.status;
  if (!item.more) return false;
  *frame = std::move(item.frame);
  return true;
}

}  // namespace ns::video
