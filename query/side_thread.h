// SideThread: one worker thread that runs a call handed to it while the
// thread that handed it over goes on with other work, then waits for the
// result. The engine's commit thread runs a large group's storage write
// here while it copies the group's rows into memory (Engine::CommitGroup).
//
// Ownership: the SideThread owns its worker; the destructor joins it.
// Thread-safety: Start and Wait are called by one thread (the owner), in
// turn: Start, then Wait, then the next Start. The call runs on the worker.
// Errors: the call's status is Wait's; the call must not throw.
#ifndef QUIVER_QUERY_SIDE_THREAD_H_
#define QUIVER_QUERY_SIDE_THREAD_H_

#include <functional>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "base/mutex.h"

namespace quiver {

class SideThread {
 public:
  SideThread();
  ~SideThread();
  SideThread(const SideThread&) = delete;
  SideThread& operator=(const SideThread&) = delete;

  // Hands `call` to the worker. REQUIRES: no call started and not waited for.
  void Start(std::function<absl::Status()> call);
  // The started call's status, once it has returned.
  absl::Status Wait();

 private:
  void Loop();

  Mutex mu_;
  CondVar cv_;
  std::function<absl::Status()> call_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> result_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_;
};

}  // namespace quiver

#endif  // QUIVER_QUERY_SIDE_THREAD_H_
