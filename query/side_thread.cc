#include "query/side_thread.h"

#include <utility>

namespace quiver {

SideThread::SideThread() : worker_([this] { Loop(); }) {}

SideThread::~SideThread() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  cv_.NotifyAll();
  worker_.join();
}

void SideThread::Start(std::function<absl::Status()> call) {
  {
    MutexLock lock(&mu_);
    call_ = std::move(call);
    result_.reset();
  }
  cv_.NotifyAll();
}

absl::Status SideThread::Wait() {
  MutexLock lock(&mu_);
  cv_.Wait(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return result_.has_value(); });
  absl::Status s = std::move(*result_);
  result_.reset();
  return s;
}

void SideThread::Loop() {
  for (;;) {
    std::function<absl::Status()> call;
    {
      MutexLock lock(&mu_);
      cv_.Wait(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || call_ != nullptr;
      });
      if (call_ == nullptr) return;  // stopping, and no call waits
      call = std::move(call_);
      call_ = nullptr;
    }
    absl::Status s = call();
    {
      MutexLock lock(&mu_);
      result_ = std::move(s);
    }
    cv_.NotifyAll();
  }
}

}  // namespace quiver
