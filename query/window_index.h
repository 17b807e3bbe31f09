// WindowIndex: one sealed segment's rows cut into partitions by the value
// of a numeric attribute declared `window`, each partition with its own ANN
// index over one vector field (the window-filter design: a structure
// partitioned by label range turns any ANN index into one for range
// filters). A query whose filter holds a range on the attribute (a time
// window) searches only the partitions the range overlaps: those it covers
// whole need no filter at all, the two at its ends check it (or, when few
// of their rows are inside, are scanned exactly).
//
// Partitions are consecutive runs of the attribute's sorted column
// (SegmentAttrIndex::SortedRows), of equal size; in partition p, index label
// i is the row at sorted position first + i, so "inside the window" is a
// position test. Rows with no value for the attribute are in no partition
// (no range matches them).
//
// Built by the index builder after the segment's attribute index, kept in
// memory only (rebuilt after a restart). Immutable once built; any number of
// threads may search it. Build returns the first error from creating or
// building a partition's index, unchanged; nothing else here fails.
#ifndef QUIVER_QUERY_WINDOW_INDEX_H_
#define QUIVER_QUERY_WINDOW_INDEX_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "index/vector_index.h"
#include "query/attr_index.h"

namespace quiver {

class Segment;

class WindowIndex {
 public:
  // Target rows per partition: small enough that a narrow window touches
  // little, large enough that an ANN index per partition beats a scan.
  static constexpr uint32_t kPartitionRows = 4096;

  struct Partition {
    uint32_t first = 0;  // sorted positions [first, last)
    uint32_t last = 0;
    std::unique_ptr<index::VectorIndex> index;  // labels 0..last-first-1
  };

  // Partitions the rows of `seg` that have a value of attribute `attr`
  // (indexed in `attrs`) and builds an index of `spec` over vector field
  // `field` in each, with up to `threads` threads. Null (and OK) when no row
  // has a value. CANCELLED soon after *stop becomes true (null: never; see
  // VectorIndex::set_build_stop).
  static absl::StatusOr<std::shared_ptr<const WindowIndex>> Build(
      const Segment& seg, std::shared_ptr<const SegmentAttrIndex> attrs, int attr, size_t field,
      const index::IndexSpec& spec, int threads, const std::atomic<bool>* stop = nullptr);

  int attr() const { return attr_; }
  size_t field() const { return field_; }
  const index::IndexSpec& spec() const { return spec_; }
  const std::vector<Partition>& partitions() const { return partitions_; }
  // Segment row of partition p's label i.
  uint32_t row(const Partition& p, uint32_t label) const { return (*sorted_rows_)[p.first + label]; }
  size_t MemoryBytes() const;
  std::string Describe() const;

 private:
  WindowIndex() = default;
  int attr_ = -1;
  size_t field_ = 0;
  index::IndexSpec spec_;
  std::shared_ptr<const SegmentAttrIndex> attrs_;   // keeps sorted_rows_ alive
  const std::vector<uint32_t>* sorted_rows_ = nullptr;
  std::vector<Partition> partitions_;
};

// The window a filter puts on `attr`: the sorted positions [first, last) of
// values satisfying every range the filter's top-level AND (or the filter
// itself) holds on it, and whether anything else remains to check.
struct WindowRange {
  bool found = false;
  uint32_t first = 0, last = 0;
  bool rest = false;  // other conditions than the range
};
WindowRange FindWindow(const filter::Filter& flt, const SegmentAttrIndex& attrs, int attr);

}  // namespace quiver

#endif  // QUIVER_QUERY_WINDOW_INDEX_H_
