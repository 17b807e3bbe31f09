// ExactScanOp: exact distances from every query to every visible row of the
// segment, or, with a RowSet child, to the rows of the filter's set
// (PRE_FILTER, and POST_FILTER's fallback one query at a time).
//
// Scans the segment's vector chunks with the blocked kernel
// (index/flat_search.h), skipping chunks with no row in the set. Records
// the rows scanned and the distances computed.
//
// Ownership, thread-safety: as Operator (query/execute/operator.h). Errors:
// CANCELLED or DEADLINE_EXCEEDED, checked between chunks.
#ifndef QUIVER_QUERY_EXECUTE_EXACT_SCAN_H_
#define QUIVER_QUERY_EXECUTE_EXACT_SCAN_H_

#include <string>

#include "query/execute/operator.h"

namespace quiver {

class ExactScanOp final : public Operator {
 public:
  using Operator::Operator;

 protected:
  absl::Status Execute(SegmentRun& run, index::TopK* topk) override;
  absl::Status ExecuteOne(SegmentRun& run, size_t q, index::TopK* out) override;
  std::string Describe(const SegmentRun& run) const override;

 private:
  // The RowSet child, if the scan is over the filter's rows.
  Operator* rowset() const { return num_children() > 0 ? child(0) : nullptr; }
};

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_EXACT_SCAN_H_
