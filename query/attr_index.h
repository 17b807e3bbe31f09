// Attribute indexes of a sealed segment, and the filter estimation and
// evaluation built on them.
//
// For every attribute the schema marks `indexed`, a SegmentAttrIndex keeps
//   - a sorted column (INT64, DOUBLE, BOOL, STRING): the non-null values in
//     order with the row offset of each, so an equality, range or IN list
//     is one or a few binary searches, counted exactly in O(log n) and
//     materialized in O(matching rows);
//   - postings (STRING_LIST): for each distinct element, the sorted offsets
//     of the rows whose list contains it.
// A sealed segment's rows never change (deletes are tombstones checked
// separately), so the index is built once, after sealing, by the index
// builder (or at start-up), and never updated.
//
// RowSet is a dense bitset over a segment's rows: a segment holds at most a
// few tens of thousands of rows, so a set is a few KiB, and AND / OR / NOT
// are word operations that beat sparse containers at these sizes.
//
// FilterEstimate and EvaluateFilter accept a null index (the growing
// segment, or a sealed one whose index is not built yet): they then sample
// or scan the rows.
//
// Thread-safety: a SegmentAttrIndex is immutable after Build and may be
// shared by any number of readers. RowSet is a plain value.
// Errors: EstimateFilter does not fail; EvaluateFilter fails only when its
// StopToken says stop (CANCELLED or DEADLINE_EXCEEDED).
#ifndef QUIVER_QUERY_ATTR_INDEX_H_
#define QUIVER_QUERY_ATTR_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "query/filter/filter.h"
#include "query/stop.h"
#include "storage/schema.h"

namespace quiver {

class Segment;

class RowSet {
 public:
  RowSet() = default;
  explicit RowSet(uint32_t n) : n_(n), words_((n + 63) / 64, 0) {}

  uint32_t size() const { return n_; }
  void Set(uint32_t i) { words_[i >> 6] |= uint64_t{1} << (i & 63); }
  void Clear(uint32_t i) { words_[i >> 6] &= ~(uint64_t{1} << (i & 63)); }
  bool Test(uint32_t i) const { return (words_[i >> 6] >> (i & 63)) & 1; }
  void SetAll();
  void And(const RowSet& o);
  void Or(const RowSet& o);
  void Invert();
  uint32_t Count() const;
  // Calls f(offset) for each member, ascending.
  template <typename F>
  void ForEach(F&& f) const {
    for (size_t w = 0; w < words_.size(); ++w) {
      for (uint64_t bits = words_[w]; bits != 0; bits &= bits - 1) {
        f(static_cast<uint32_t>(w * 64 + __builtin_ctzll(bits)));
      }
    }
  }
  const uint64_t* words() const { return words_.data(); }

 private:
  uint32_t n_ = 0;
  std::vector<uint64_t> words_;
};

class SegmentAttrIndex {
 public:
  // Indexes rows [0, rows) of `seg` (sealed; rows at most its row count)
  // on the attributes `attrs` (the collection's current schema, which
  // UpdateCollection may have changed since the segment was made) marks
  // indexed. Null when it marks none.
  static std::shared_ptr<const SegmentAttrIndex> Build(const Segment& seg, uint32_t rows,
                                                       const std::vector<AttributeSpec>& attrs);
  // Whether `idx` (null: none) indexes exactly the attributes `attrs` marks
  // indexed: false means a rebuild is due.
  static bool Matches(const SegmentAttrIndex* idx, const std::vector<AttributeSpec>& attrs);
  ~SegmentAttrIndex();
  SegmentAttrIndex(const SegmentAttrIndex&) = delete;
  SegmentAttrIndex& operator=(const SegmentAttrIndex&) = delete;

  uint32_t rows() const { return rows_; }
  bool indexed(int attr) const {
    return attr >= 0 && static_cast<size_t>(attr) < columns_.size() && columns_[attr] != nullptr;
  }
  // Resident bytes of all columns and postings.
  size_t MemoryBytes() const;

  // For a predicate node on an indexed attribute: rows matching it, exactly.
  uint32_t CountPredicate(const filter::BoundNode& node) const;
  // Sets the rows matching a predicate node on an indexed attribute.
  void MaterializePredicate(const filter::BoundNode& node, RowSet* out) const;

  // Sorted columns (INT64, DOUBLE, BOOL, STRING): the rows with a value, in
  // value order. Window indexes partition a segment by these positions.
  const std::vector<uint32_t>& SortedRows(int attr) const;
  // For a non-negated kIntRange / kDoubleRange node on an indexed attribute:
  // the positions [*first, *last) of SortedRows whose values are in range.
  void RangePositions(const filter::BoundNode& node, uint32_t* first, uint32_t* last) const;

 private:
  struct Column;
  SegmentAttrIndex() = default;
  uint32_t rows_ = 0;
  std::vector<std::unique_ptr<const Column>> columns_;  // by attribute; null if not indexed
};

// The filter's estimated selectivity over rows [0, rows) of `seg`, before
// deletions: exact for a single predicate on an indexed attribute; AND / OR /
// NOT combine their children as independent (a conjunction of ranges on one
// numeric attribute is intersected first, so a window written as two
// comparisons is still exact); predicates on unindexed attributes are
// estimated from an evenly spaced sample of rows. `index` may be null.
struct FilterEstimate {
  double selectivity = 1;
  bool exact = false;      // a single indexed predicate (or a constant): counted
  bool indexable = false;  // EvaluateFilter needs no row reads
  // Share of rows EvaluateFilter would read one by one: 0 if indexable, the
  // indexed part's selectivity for an AND that mixes both, else 1.
  double checked_share = 1;
};
FilterEstimate EstimateFilter(const filter::Filter& flt, const Segment& seg, uint32_t rows,
                              const SegmentAttrIndex* index);

// Evaluates the filter over rows [0, rows) into `out` (resized to rows):
// predicates on indexed attributes through `index`, others by reading the
// rows still in play (an AND checks its unindexed parts only on the rows its
// indexed parts left). `checks` counts rows evaluated one by one. Deleted
// rows are not removed here. `index` may be null. Row-by-row passes look at
// `stop` every kStopCheckRows rows: once it says stop, evaluation ends with
// its status (CANCELLED or DEADLINE_EXCEEDED) and *out is incomplete.
absl::Status EvaluateFilter(const filter::Filter& flt, const Segment& seg, uint32_t rows,
                            const SegmentAttrIndex* index, RowSet* out, uint64_t* checks,
                            const StopToken& stop = StopToken());

}  // namespace quiver

#endif  // QUIVER_QUERY_ATTR_INDEX_H_
