// Mutex, MutexLock, ReaderMutexLock, CondVar: Quiver's lock types.
//
// Thin wrappers over std::shared_mutex and std::condition_variable_any with
// abseil's thread-safety annotations, so clang's -Wthread-safety checks
// ABSL_GUARDED_BY fields, and ThreadSanitizer sees every lock (the standard
// types go through pthreads, which TSan intercepts; Debian's abseil is not
// built for TSan, so absl::Mutex would hide our synchronization from it).
//
// Thread-safety: these are the synchronization primitives.
// Errors: none are reported; misuse (unlocking a mutex not held, waiting
// without holding it) is ruled out by the REQUIRES annotations, not checked.
#ifndef QUIVER_BASE_MUTEX_H_
#define QUIVER_BASE_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <shared_mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace quiver {

class ABSL_LOCKABLE Mutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  void ReaderLock() ABSL_SHARED_LOCK_FUNCTION() { mu_.lock_shared(); }
  void ReaderUnlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock_shared(); }
  // BasicLockable, for std::condition_variable_any.
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  std::shared_mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* mu_;
};

class ABSL_SCOPED_LOCKABLE ReaderMutexLock {
 public:
  explicit ReaderMutexLock(Mutex* mu) ABSL_SHARED_LOCK_FUNCTION(mu) : mu_(mu) { mu_->ReaderLock(); }
  ~ReaderMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->ReaderUnlock(); }
  ReaderMutexLock(const ReaderMutexLock&) = delete;
  ReaderMutexLock& operator=(const ReaderMutexLock&) = delete;

 private:
  Mutex* mu_;
};

// Waits on a Mutex held exclusively by the caller.
class CondVar {
 public:
  // Waits until pred() holds. REQUIRES: *mu held exclusively.
  template <typename Pred>
  void Wait(Mutex* mu, Pred pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    cv_.wait(*mu, pred);
  }
  // Waits until pred() holds or `deadline`; returns pred().
  template <typename Pred>
  bool WaitUntil(Mutex* mu, absl::Time deadline, Pred pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (deadline == absl::InfiniteFuture()) {
      cv_.wait(*mu, pred);
      return true;
    }
    return cv_.wait_until(*mu, absl::ToChronoTime(deadline), pred);
  }
  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable_any cv_;
};

}  // namespace quiver

#endif  // QUIVER_BASE_MUTEX_H_
