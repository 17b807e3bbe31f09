// WorkQueue: a fixed number of worker threads that run submitted jobs in
// order of submission. quiverd runs its expensive reads here (filtered
// searches and counts whose estimated work is large), off gRPC's own
// threads: gRPC 1.51 runs callback handlers on a small pool (measured: two
// on a 2-core machine), so a few long handlers running inline left no thread
// to even read a cheap request. With them here, at most `threads` expensive
// requests run at once, the rest wait in the queue, and cheap requests
// (gets, plain counts, describes, small searches) still run inline at once.
//
// Thread-safety: Submit may be called from any thread. The destructor runs
// the jobs still queued, then joins the workers; no Submit may race with it.
// Does not fail: the queue is unbounded and owns each job until it has run,
// so jobs report their own outcome (they finish their RPC); jobs must not throw.
#ifndef QUIVER_SERVER_WORK_QUEUE_H_
#define QUIVER_SERVER_WORK_QUEUE_H_

#include <algorithm>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "base/mutex.h"

namespace quiver::server {

class WorkQueue {
 public:
  explicit WorkQueue(int threads) {
    for (int i = 0; i < std::max(1, threads); ++i) workers_.emplace_back([this] { Loop(); });
  }
  ~WorkQueue() {
    {
      MutexLock lock(&mu_);
      stop_ = true;
    }
    wake_.NotifyAll();
    for (std::thread& t : workers_) t.join();
  }
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void Submit(std::function<void()> job) {
    {
      MutexLock lock(&mu_);
      jobs_.push_back(std::move(job));
    }
    wake_.NotifyOne();
  }

  // Jobs waiting for a worker (for logs and tests).
  size_t queued() {
    MutexLock lock(&mu_);
    return jobs_.size();
  }

 private:
  void Loop() {
    for (;;) {
      std::function<void()> job;
      {
        MutexLock lock(&mu_);
        wake_.Wait(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stop_ || !jobs_.empty();
        });
        // Queued jobs finish RPCs: they run even during shutdown.
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  Mutex mu_;
  CondVar wake_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace quiver::server

#endif  // QUIVER_SERVER_WORK_QUEUE_H_
