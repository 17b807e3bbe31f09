#include "query/window_index.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "query/segment.h"

namespace quiver {
namespace {

// The labels of a partition whose row holds a vector of an optional field:
// the others are left out of its index, as placeholders are.
class PartitionRowsWithVector final : public index::LabelFilter {
 public:
  PartitionRowsWithVector(const Segment& seg, size_t field, const std::vector<uint32_t>& rows,
                          uint32_t first)
      : seg_(seg), field_(field), rows_(rows), first_(first) {}
  bool Accept(uint32_t label) const override {
    return seg_.HasVector(field_, rows_[first_ + label]);
  }

 private:
  const Segment& seg_;
  const size_t field_;
  const std::vector<uint32_t>& rows_;
  const uint32_t first_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const WindowIndex>> WindowIndex::Build(
    const Segment& seg, std::shared_ptr<const SegmentAttrIndex> attrs, int attr, size_t field,
    const index::IndexSpec& spec, int threads, const std::atomic<bool>* stop) {
  std::shared_ptr<WindowIndex> w(new WindowIndex());
  w->attr_ = attr;
  w->field_ = field;
  w->spec_ = spec;
  w->sorted_rows_ = &attrs->SortedRows(attr);
  w->attrs_ = std::move(attrs);
  const auto n = static_cast<uint32_t>(w->sorted_rows_->size());
  const uint32_t parts = std::max<uint32_t>(1, (n + kPartitionRows / 2) / kPartitionRows);
  const size_t dim = spec.dim;
  std::vector<float> data;
  for (uint32_t p = 0; p < parts; ++p) {
    Partition part;
    part.first = static_cast<uint32_t>(uint64_t{n} * p / parts);
    part.last = static_cast<uint32_t>(uint64_t{n} * (p + 1) / parts);
    if (part.last == part.first) continue;
    const PartitionRowsWithVector with_vector(seg, field, *w->sorted_rows_, part.first);
    const bool some_absent = seg.absent(field) > 0;
    bool any = !some_absent;
    for (uint32_t i = 0; !any && i < part.last - part.first; ++i) any = with_vector.Accept(i);
    if (!any) continue;  // no row here has a vector to search
    data.resize(size_t{part.last - part.first} * dim);
    for (uint32_t i = part.first; i < part.last; ++i) {
      std::copy_n(seg.vector(field, (*w->sorted_rows_)[i]), dim,
                  data.data() + size_t{i - part.first} * dim);
    }
    auto idx = index::CreateIndex(spec);
    if (!idx.ok()) return idx.status();
    (*idx)->set_build_stop(stop);
    absl::Status s = (*idx)->Build(data.data(), part.last - part.first, threads,
                                   some_absent ? &with_vector : nullptr);
    if (!s.ok()) return s;
    part.index = std::move(*idx);
    w->partitions_.push_back(std::move(part));
  }
  // No row has a value: no range can match here, and there is nothing to
  // search.
  if (w->partitions_.empty()) return std::shared_ptr<const WindowIndex>();
  return std::shared_ptr<const WindowIndex>(std::move(w));
}

size_t WindowIndex::MemoryBytes() const {
  size_t b = 0;
  for (const Partition& p : partitions_) b += p.index->MemoryBytes();
  return b;
}

std::string WindowIndex::Describe() const {
  return absl::StrCat("WINDOW(", partitions_.size(), " x ",
                      partitions_.empty() ? "none" : partitions_[0].index->Describe(), ")");
}

WindowRange FindWindow(const filter::Filter& flt, const SegmentAttrIndex& attrs, int attr) {
  WindowRange w;
  const auto& nodes = flt.nodes();
  auto is_range = [&](const filter::BoundNode& n) {
    return n.attr == attr && !n.negate &&
           (n.op == filter::Op::kIntRange || n.op == filter::Op::kDoubleRange);
  };
  std::vector<uint32_t> ranges;
  const filter::BoundNode& root = nodes[flt.root()];
  if (is_range(root)) {
    ranges.push_back(flt.root());
  } else if (root.op == filter::Op::kAnd) {
    for (uint32_t k : root.kids) {
      if (is_range(nodes[k])) {
        ranges.push_back(k);
      } else {
        w.rest = true;
      }
    }
  }
  if (ranges.empty()) return w;
  w.found = true;
  w.first = 0;
  w.last = static_cast<uint32_t>(attrs.SortedRows(attr).size());
  for (uint32_t k : ranges) {
    uint32_t a = 0, b = 0;
    attrs.RangePositions(nodes[k], &a, &b);
    w.first = std::max(w.first, a);
    w.last = std::min(w.last, b);
  }
  w.last = std::max(w.first, w.last);
  return w;
}

}  // namespace quiver
