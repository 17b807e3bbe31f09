// StopToken: tells a read's long loops (filter evaluation over rows, exact
// scans, segment loops) that its request no longer wants an answer: its
// deadline passed, or its client cancelled (gRPC reports that through the
// RPC's reactor, which sets the flag this token watches).
//
// Loops poll Check() every few hundred rows (an atomic load and a clock
// read, ~25 ns), so a stopped request returns within milliseconds and
// frees its core. Results computed after a stop are discarded; the request
// fails with CANCELLED or DEADLINE_EXCEEDED.
//
// A token is a small value; copies watch the same flag. The flag must
// outlive every copy (the RPC's reactor, which is done only after the
// request finished). Thread-safe: Check may be called from any thread.
#ifndef QUIVER_QUERY_STOP_H_
#define QUIVER_QUERY_STOP_H_

#include <atomic>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace quiver {

class StopToken {
 public:
  // Never stops.
  StopToken() = default;
  // Stops at `deadline`, or once *cancelled is true (null: never). Implicit
  // from a deadline, so callers that have only a deadline pass it as is.
  StopToken(absl::Time deadline, const std::atomic<bool>* cancelled = nullptr)  // NOLINT
      : deadline_(deadline), cancelled_(cancelled) {}

  absl::Time deadline() const { return deadline_; }

  // OK while the request should go on; CANCELLED or DEADLINE_EXCEEDED once
  // it should stop.
  absl::Status Check() const {
    if (cancelled_ != nullptr && cancelled_->load(std::memory_order_relaxed)) {
      return absl::CancelledError("the request was cancelled by the client");
    }
    if (deadline_ != absl::InfiniteFuture() && absl::Now() > deadline_) {
      return absl::DeadlineExceededError("the request's deadline passed");
    }
    return absl::OkStatus();
  }
  bool stopped() const { return !Check().ok(); }

 private:
  absl::Time deadline_ = absl::InfiniteFuture();
  const std::atomic<bool>* cancelled_ = nullptr;
};

// Rows between two checks in row-by-row loops. A filter of 64 KiB costs
// ~40 us per row, so this stays well under the ~100 ms a stop may take.
inline constexpr uint32_t kStopCheckRows = 256;

}  // namespace quiver

#endif  // QUIVER_QUERY_STOP_H_
