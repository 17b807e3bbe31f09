#include "query/task_pool.h"

namespace quiver {

TaskPool::TaskPool(int threads) {
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

TaskPool::~TaskPool() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  wake_.NotifyAll();
  for (std::thread& t : workers_) t.join();
}

void TaskPool::Batch::Work() {
  for (size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
    (*tasks)[i]();
    if (done.fetch_add(1) + 1 == n) {
      MutexLock lock(&mu);
      finished.NotifyAll();
    }
  }
}

void TaskPool::RunAll(const std::vector<std::function<void()>>& tasks) {
  if (tasks.empty()) return;
  if (tasks.size() == 1 || workers_.empty()) {
    for (const auto& t : tasks) t();
    return;
  }
  auto batch = std::make_shared<Batch>();
  batch->tasks = &tasks;
  batch->n = tasks.size();
  {
    MutexLock lock(&mu_);
    queue_.push_back(batch);
  }
  // One worker per task beyond the caller's own.
  for (size_t i = 1; i < tasks.size() && i <= workers_.size(); ++i) wake_.NotifyOne();
  batch->Work();
  MutexLock lock(&batch->mu);
  batch->finished.Wait(&batch->mu, [&] { return batch->done.load() == tasks.size(); });
}

void TaskPool::WorkerLoop() {
  for (;;) {
    std::shared_ptr<Batch> batch;
    {
      MutexLock lock(&mu_);
      wake_.Wait(&mu_, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || !queue_.empty();
      });
      if (stop_) return;
      batch = queue_.front();
      // A batch stays queued while it has tasks to claim, so several
      // workers can join it; the last claimer drops it.
      if (batch->next.load() >= batch->n) {
        queue_.pop_front();
        continue;
      }
    }
    batch->Work();
    MutexLock lock(&mu_);
    if (!queue_.empty() && queue_.front() == batch) queue_.pop_front();
  }
}

}  // namespace quiver
