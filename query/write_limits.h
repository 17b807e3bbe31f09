// Limits that keep quiverd's memory and background work bounded, checked
// before work starts (issue 12, item 6):
// - the memory one request may take to prepare or run (an upsert's copies
//   and multi-vector encodings, a search's candidate lists), refused past
//   --max-request-memory-mb with RESOURCE_EXHAUSTED;
// - the server's memory budget for vector data (--memory-budget-mb): an
//   upsert whose rows would take the vectors and indexes in memory past it
//   is refused with RESOURCE_EXHAUSTED (the Engine keeps the account on its
//   commit thread; deletes and drops are never refused);
// - write backpressure: while index builds or compactions are behind
//   (--max-unindexed-rows, --max-compaction-debt-rows), upserts are first
//   delayed (at most --max-write-delay-ms) and then refused with
//   UNAVAILABLE carrying a retry hint (RetryAfter), until the builder
//   catches up.
// The messages name the flag, so the client knows which limit it met.
//
// Free functions are pure and thread-safe. WriteDelayer is thread-safe;
// it owns its thread, and runs each job exactly once (at its time, or at
// once when destroyed). Errors: the Check* functions return the refusal
// status, or OK.
#ifndef QUIVER_QUERY_WRITE_LIMITS_H_
#define QUIVER_QUERY_WRITE_LIMITS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/mutex.h"
#include "query/bind/bound.h"
#include "quiver/v1/points.pb.h"
#include "storage/schema.h"

namespace quiver {

struct LimitOptions {
  // Vector data (vectors and indexes in memory, as `describe` reports them)
  // an upsert may take the server to. 0: no budget.
  uint64_t memory_budget_bytes = 0;
  // Memory one request may take to prepare or run. 0: no limit.
  uint64_t max_request_memory_bytes = 0;
  // Rows of sealed segments waiting for (or in) their first index build,
  // and deleted rows waiting for compaction, at which upserts are refused;
  // from half of each on they are delayed. 0: no limit.
  uint64_t max_unindexed_rows = 0;
  uint64_t max_compaction_debt_rows = 0;
  // The longest delay backpressure adds to one upsert.
  absl::Duration max_write_delay = absl::Milliseconds(250);
};

// The status payload (a decimal count of milliseconds) by which a refusal
// says when to try again; quiverd sends it to the client as the
// "retry-after-ms" trailer.
inline constexpr char kRetryAfterPayload[] = "quiver.retry_after_ms";
// UNAVAILABLE with `message` and the retry hint (also appended to the
// message, for people reading it).
absl::Status RetryLater(const std::string& message, absl::Duration after);
// The retry hint of a status, if it has one.
std::optional<absl::Duration> RetryAfter(const absl::Status& s);

// Bytes an upsert takes to bind (copies of normalized vectors and vector
// sets, multi-vector encodings, records), from the request alone: checked
// before any of it is allocated.
uint64_t UpsertPrepareBytes(const Schema& schema, const std::vector<uint32_t>& stored_dims,
                            const v1::UpsertPointsRequest& req);
// Bytes the rows of a bound upsert add to the segments' vectors in memory
// (Segment::VectorBytes counts the same: stored dims plus a norm per row,
// vector sets by their floats).
uint64_t UpsertRowBytes(const Schema& schema, const std::vector<uint32_t>& stored_dims,
                        const BoundUpsert& up);
// Bytes a bound search's candidate lists take while it runs (per query
// vector or set: k, or k x refine candidates, in a list per segment pass
// and one merged), besides the response (checked against
// --max-message-bytes on its own).
uint64_t SearchWorkBytes(const BoundSearchRequest& q, const Schema& schema);

// RESOURCE_EXHAUSTED naming --max-request-memory-mb if `bytes` is past
// the limit; `what` says what the request is made of.
absl::Status CheckRequestMemory(const LimitOptions& o, uint64_t bytes, const std::string& what);

// What backpressure does with an upsert now.
struct WritePressure {
  absl::Duration delay;  // zero: none
  absl::Status refused;  // UNAVAILABLE with a retry hint, or OK
};
// From the rows waiting for their index and for compaction, and the rate
// (rows per second) the builder has been getting through them (0: not
// known yet), which sets the retry hint.
WritePressure EvaluatePressure(const LimitOptions& o, uint64_t unindexed_rows,
                               uint64_t debt_rows, double rows_per_second);

// Runs jobs at given times on one thread of its own (delayed writes).
class WriteDelayer {
 public:
  WriteDelayer();
  // Runs the jobs still waiting, at once, then joins.
  ~WriteDelayer();
  WriteDelayer(const WriteDelayer&) = delete;
  WriteDelayer& operator=(const WriteDelayer&) = delete;

  void RunAt(absl::Time when, std::function<void()> job);

 private:
  void Loop();

  Mutex mu_;
  CondVar cv_;
  std::multimap<absl::Time, std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace quiver

#endif  // QUIVER_QUERY_WRITE_LIMITS_H_
