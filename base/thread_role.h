// ThreadRole: a capability for state that one thread owns, rather than a lock.
//
// Some state needs no mutex because only one thread ever touches it (the
// engine's commit thread owns each collection's growing segment, its
// pending-id map and its next row id). A comment saying so is checked by
// nothing; a ThreadRole lets clang's -Wthread-safety check it like a lock:
//
//   inline ThreadRole kCommitThread;  // one object per role
//   std::shared_ptr<Segment> growing_ ABSL_GUARDED_BY(kCommitThread);
//   void Apply(...) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
//
// and the thread's entry point (or a start-up step that runs before the
// thread exists) calls kCommitThread.Assume() once, which tells the analysis
// that the caller plays the role from there to the end of its scope. A
// function that is not annotated and touches the state fails to compile.
//
// The role is a compile-time contract only: Assume() does nothing at run
// time. Thread-safety: stateless.
#ifndef QUIVER_BASE_THREAD_ROLE_H_
#define QUIVER_BASE_THREAD_ROLE_H_

#include "absl/base/thread_annotations.h"

namespace quiver {

class ABSL_LOCKABLE ThreadRole {
 public:
  constexpr ThreadRole() = default;
  ThreadRole(const ThreadRole&) = delete;
  ThreadRole& operator=(const ThreadRole&) = delete;

  // The caller runs in this role until the end of the enclosing scope.
  void Assume() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}
};

}  // namespace quiver

#endif  // QUIVER_BASE_THREAD_ROLE_H_
