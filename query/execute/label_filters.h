// Label filters the index operators hand to an index search: which labels
// (segment row offsets) a walk or list scan may return.
//
// RowSetFilter tests a materialized RowSet; RowFilter checks visibility and
// the filter row by row (and notices a stopped request). Called once per
// visited row from inside the index, so they stay small and final.
//
// Ownership: they point at the segment, set and filter, which outlive the
// search. Thread-safety: one search uses one filter from one thread at a
// time (RowFilter counts its checks in mutable fields). Errors: none; a
// RowFilter that saw its request stopped says so through stopped().
#ifndef QUIVER_QUERY_EXECUTE_LABEL_FILTERS_H_
#define QUIVER_QUERY_EXECUTE_LABEL_FILTERS_H_

#include <cstdint>

#include "index/vector_index.h"
#include "query/attr_index.h"
#include "query/filter/filter.h"
#include "query/row_filter.h"
#include "query/segment.h"
#include "query/stop.h"

namespace quiver {

// Lets through labels set in a RowSet (which already excludes deleted rows).
class RowSetFilter final : public index::LabelFilter {
 public:
  // `set` may still be empty and filled later: the bitmap is read at search.
  explicit RowSetFilter(const RowSet& set) : set_(set) {}
  void Bind() {
    bitmap = set_.words();
    bitmap_size = set_.size();
  }
  bool Accept(uint32_t label) const override { return label < set_.size() && set_.Test(label); }

 private:
  const RowSet& set_;
};

// Lets through labels below the reader's row count, not deleted at its
// sequence number, holding a vector of `field` (when given: an optional
// field's points may lack one) and (when given) passing the filter. With
// `stop`, every
// few hundred filter checks look whether the request was stopped; from then
// on every label passes without a check, which ends an index walk soonest
// (its results are discarded).
class RowFilter final : public index::LabelFilter {
 public:
  RowFilter(const Segment& seg, uint32_t rows, uint64_t seq, const filter::Filter* flt,
            const StopToken* stop = nullptr, int field = -1)
      : seg_(seg), rows_(rows), seq_(seq), flt_(flt), stop_(stop), field_(field) {}
  // The walk saw its request stopped and let labels through unchecked.
  bool stopped() const { return stopped_; }
  bool Accept(uint32_t label) const override {
    if (flt_ != nullptr && stop_ != nullptr) {
      if (stopped_) return true;
      if (++checks_ % kStopCheckRows == 0 && stop_->stopped()) {
        stopped_ = true;
        return true;
      }
    }
    return label < rows_ && seg_.Visible(label, seq_) &&
           (field_ < 0 || seg_.HasVector(static_cast<size_t>(field_), label)) &&
           (flt_ == nullptr || RowMatches(*flt_, seg_, label));
  }

 private:
  const Segment& seg_;
  const uint32_t rows_;
  const uint64_t seq_;
  const filter::Filter* flt_;
  const StopToken* stop_;
  const int field_;
  // One search consults a filter from one thread at a time.
  mutable uint32_t checks_ = 0;
  mutable bool stopped_ = false;
};

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_LABEL_FILTERS_H_
