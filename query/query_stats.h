// QueryStats and CollectionCounters: counters the query layer keeps so an
// operator can see what it does (quiverd's /metrics, server/metrics*.h),
// without this layer knowing how they are exported. They are plain atomics,
// bumped where the work happens and read at scrape time; nothing here
// allocates or locks on a search's path except the recall-audit window,
// which only the audit thread writes.
//
// Ownership: the Engine owns one QueryStats (planner and executor counters
// over all its collections) and points every collection's options at it;
// each Collection owns its CollectionCounters, so a dropped collection's
// counters go with it. Thread-safety: every member is safe to use from any
// thread. Errors: none (counting cannot fail).
#ifndef QUIVER_QUERY_QUERY_STATS_H_
#define QUIVER_QUERY_QUERY_STATS_H_

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "base/mutex.h"
#include "query/plan/planner.h"

namespace quiver {

class Operator;
struct PhysicalPlan;

// Strategy values (query/plan/planner.h), kIndex..kEmpty.
inline constexpr size_t kNumStrategies = static_cast<size_t>(Strategy::kEmpty) + 1;

struct QueryStats {
  // Segment searches by the strategy the planner chose for them (one
  // search request over n segments counts n).
  std::array<std::atomic<uint64_t>, kNumStrategies> segment_searches{};
  // Queries a POST_FILTER search handed to its fallback strategy because
  // too few of the fetched neighbours passed the filter.
  std::atomic<uint64_t> post_filter_fallbacks{0};
  // Candidates reranked with exact distances (compressed indexes), and the
  // records those reranks read from rerank tables (DISK fields).
  std::atomic<uint64_t> rerank_candidates{0};
  std::atomic<uint64_t> rerank_table_reads{0};

  // Adds what one segment's search did: its plan's strategy and the counts
  // its operators recorded (query/execute/operator.h).
  void RecordSegment(const PhysicalPlan& plan, const Operator& root);
};

// A running mean over the last `window` values, and how many were added in
// all. Thread-safe.
class RunningMean {
 public:
  explicit RunningMean(size_t window) : window_(window) {}
  void Add(double v);
  // Mean of the values in the window; 0 when none was added.
  double Mean() const;
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  const size_t window_;
  std::atomic<uint64_t> count_{0};
  mutable Mutex mu_;
  std::deque<double> values_ ABSL_GUARDED_BY(mu_);
  double sum_ ABSL_GUARDED_BY(mu_) = 0;
};

// Audited searches per field that the recall mean is taken over.
inline constexpr size_t kRecallAuditWindow = 100;

// One collection's counters, per vector field where they are per field.
class CollectionCounters {
 public:
  struct Field {
    std::atomic<uint64_t> index_builds{0};
    std::atomic<uint64_t> index_build_micros{0};
    // Recall@k of audited searches against an exact re-run
    // (query/recall_audit.h).
    RunningMean recall{kRecallAuditWindow};
    // Of those, the searches that asked for a recall (target_recall): the
    // target, and the recall they achieved.
    RunningMean target_recall{kRecallAuditWindow};
    RunningMean target_achieved{kRecallAuditWindow};
  };
  explicit CollectionCounters(size_t num_fields);

  Field& field(size_t f) { return *fields_[f]; }
  const Field& field(size_t f) const { return *fields_[f]; }
  size_t num_fields() const { return fields_.size(); }

  // Compactions swapped in, and the deleted rows they reclaimed.
  std::atomic<uint64_t> compactions{0};
  std::atomic<uint64_t> compacted_deleted_rows{0};

 private:
  std::vector<std::unique_ptr<Field>> fields_;
};

}  // namespace quiver

#endif  // QUIVER_QUERY_QUERY_STATS_H_
