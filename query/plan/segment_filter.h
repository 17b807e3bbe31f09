// A filter's work in one segment: its estimate, and the set of rows that are
// visible and pass it.
//
// SharedSegmentFilter lets the fields of a hybrid search share that work:
// the selectivity estimate and the row set are computed once per segment, by
// whichever field's search needs them first, so one filter plan serves every
// field. MatchingRows is the same evaluation for delete by filter and count.
//
// Ownership: SharedSegmentFilter owns its cached set; the segment and filter
// are the caller's. Thread-safety: SharedSegmentFilter is thread-safe; the
// free functions are reentrant. Errors: CANCELLED or DEADLINE_EXCEEDED when
// the StopToken ends an evaluation (nothing is cached then).
#ifndef QUIVER_QUERY_PLAN_SEGMENT_FILTER_H_
#define QUIVER_QUERY_PLAN_SEGMENT_FILTER_H_

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "base/mutex.h"
#include "query/attr_index.h"
#include "query/filter/filter.h"
#include "query/segment.h"
#include "query/stop.h"

namespace quiver {

class SharedSegmentFilter {
 public:
  FilterEstimate Estimate(const filter::Filter& flt, const Segment& seg, uint32_t rows,
                          const SegmentAttrIndex* attrs);
  // A copy of the set (8 KiB at most) into *out; adds to *checks the rows
  // read one by one if this call evaluated it. CANCELLED or
  // DEADLINE_EXCEEDED if `stop` ended the evaluation (nothing is cached).
  absl::Status Rows(const filter::Filter& flt, const Segment& seg, uint32_t rows, uint64_t seq,
                    const SegmentAttrIndex* attrs, const StopToken& stop, uint64_t* checks,
                    RowSet* out);

 private:
  Mutex mu_;
  bool have_estimate_ ABSL_GUARDED_BY(mu_) = false;
  FilterEstimate estimate_ ABSL_GUARDED_BY(mu_);
  bool have_set_ ABSL_GUARDED_BY(mu_) = false;
  RowSet set_ ABSL_GUARDED_BY(mu_);
};

// Clears the rows of `set` not visible at `seq`.
void DropInvisible(const Segment& seg, uint64_t seq, RowSet* set);
// Clears the rows of `set` whose point lacks field f's vector.
void DropAbsent(const Segment& seg, size_t f, RowSet* set);

// The rows of [0, rows) visible at `seq` that pass `flt` (null: all
// visible), through the attribute indexes where they help. For delete by
// filter and count.
RowSet MatchingRows(const Segment& seg, uint32_t rows, uint64_t seq, const filter::Filter* flt);
// The same into *out, ending early with CANCELLED or DEADLINE_EXCEEDED
// (and *out unusable) once `stop` says so.
absl::Status MatchingRows(const Segment& seg, uint32_t rows, uint64_t seq,
                          const filter::Filter* flt, const StopToken& stop, RowSet* out);

}  // namespace quiver

#endif  // QUIVER_QUERY_PLAN_SEGMENT_FILTER_H_
