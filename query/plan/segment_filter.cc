#include "query/plan/segment_filter.h"

#include <memory>

#include "base/status_macros.h"

namespace quiver {

void DropInvisible(const Segment& seg, uint64_t seq, RowSet* set) {
  if (seg.dead() == 0) return;
  set->ForEach([&](uint32_t off) {
    if (!seg.Visible(off, seq)) set->Clear(off);
  });
}

void DropAbsent(const Segment& seg, size_t f, RowSet* set) {
  if (seg.absent(f) == 0) return;
  set->ForEach([&](uint32_t off) {
    if (!seg.HasVector(f, off)) set->Clear(off);
  });
}

FilterEstimate SharedSegmentFilter::Estimate(const filter::Filter& flt, const Segment& seg,
                                             uint32_t rows, const SegmentAttrIndex* attrs) {
  MutexLock lock(&mu_);
  if (!have_estimate_) {
    estimate_ = EstimateFilter(flt, seg, rows, attrs);
    have_estimate_ = true;
  }
  return estimate_;
}

absl::Status SharedSegmentFilter::Rows(const filter::Filter& flt, const Segment& seg,
                                       uint32_t rows, uint64_t seq,
                                       const SegmentAttrIndex* attrs, const StopToken& stop,
                                       uint64_t* checks, RowSet* out) {
  MutexLock lock(&mu_);
  if (!have_set_) {
    QUIVER_RETURN_IF_ERROR(EvaluateFilter(flt, seg, rows, attrs, &set_, checks, stop));
    DropInvisible(seg, seq, &set_);
    have_set_ = true;
  }
  *out = set_;
  return absl::OkStatus();
}

RowSet MatchingRows(const Segment& seg, uint32_t rows, uint64_t seq, const filter::Filter* flt) {
  RowSet set;
  (void)MatchingRows(seg, rows, seq, flt, StopToken(), &set);  // never stops
  return set;
}

absl::Status MatchingRows(const Segment& seg, uint32_t rows, uint64_t seq,
                          const filter::Filter* flt, const StopToken& stop, RowSet* out) {
  *out = RowSet(rows);
  if (flt == nullptr) {
    out->SetAll();
  } else {
    uint64_t checks = 0;
    std::shared_ptr<const SegmentAttrIndex> attrs = seg.attr_index();
    QUIVER_RETURN_IF_ERROR(EvaluateFilter(*flt, seg, rows, attrs.get(), out, &checks, stop));
  }
  DropInvisible(seg, seq, out);
  return absl::OkStatus();
}

}  // namespace quiver
