// TaskPool: a fixed set of worker threads that run the parts of one request
// in parallel — the fields of a hybrid search.
//
// RunAll(tasks) runs every task and returns when all have finished. The
// calling thread works too: it takes tasks from its own batch like the
// workers do, so a batch completes even when every worker is busy with
// other requests' batches, and a pool of any size (even 0 threads) cannot
// deadlock. Tasks must not throw.
//
// Thread-safety: RunAll may be called from any number of threads at once.
// The destructor joins the workers; no RunAll may be running then.
// Does not fail: RunAll reports nothing, so tasks carry their own results.
#ifndef QUIVER_QUERY_TASK_POOL_H_
#define QUIVER_QUERY_TASK_POOL_H_

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "base/mutex.h"

namespace quiver {

class TaskPool {
 public:
  explicit TaskPool(int threads);
  ~TaskPool();
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  void RunAll(const std::vector<std::function<void()>>& tasks);

 private:
  struct Batch {
    // Valid while a task is unclaimed or running: RunAll returns only once
    // all are done. Anything else reads n.
    const std::vector<std::function<void()>>* tasks;
    size_t n = 0;
    std::atomic<size_t> next{0};  // next task to claim
    std::atomic<size_t> done{0};
    Mutex mu;
    CondVar finished;
    // Runs claimed tasks until none is left to claim.
    void Work();
  };
  void WorkerLoop();

  Mutex mu_;
  CondVar wake_;
  std::deque<std::shared_ptr<Batch>> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace quiver

#endif  // QUIVER_QUERY_TASK_POOL_H_
