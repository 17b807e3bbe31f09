// Collection::Scroll: one page of ScrollPoints, keyset pagination over the
// external ids. Every page is read from one View (one sequence number), so
// it shows each point at most once and in one version; the cursor is the
// last id returned, so the next page, read from a later view, starts
// strictly after it: no point comes twice, and a point that is in every
// view from the first page to the last is in exactly one page.
//
// Ids are in no index sorted by id, so a page walks the rows of every
// segment that pass the filter and keeps the page_size smallest ids past
// the cursor in a heap: O(rows x log page) per page, no copy of the id map.
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "query/bind/wire_schema.h"
#include "query/collection.h"

namespace quiver {
namespace {

struct ScrollEntry {
  absl::string_view id;
  const Segment* segment;
  uint32_t offset;
};

bool IdLess(const ScrollEntry& a, const ScrollEntry& b) { return a.id < b.id; }

}  // namespace

absl::Status Collection::Scroll(const BoundScroll& q, const StopToken& stop,
                                v1::ScrollPointsResponse* resp) const {
  const View view = TakeView();
  // A max-heap of the smallest ids seen, one more than a page: whether that
  // one exists says if another page follows.
  const size_t keep = static_cast<size_t>(q.page_size) + 1;
  std::vector<ScrollEntry> heap;
  heap.reserve(keep);
  for (const View::Part& part : view.parts) {
    const Segment& seg = *part.segment;
    RowSet rows;
    QUIVER_RETURN_IF_ERROR(MatchingRows(seg, part.rows, view.seq, q.filter.get(), stop, &rows));
    uint32_t seen = 0;
    absl::Status stopped;
    rows.ForEach([&](uint32_t off) {
      if (++seen % (16 * kStopCheckRows) == 0 && stopped.ok()) stopped = stop.Check();
      const absl::string_view id = seg.external_id(off);
      if (q.after.has_value() && id <= *q.after) return;
      if (heap.size() < keep) {
        heap.push_back({id, &seg, off});
        std::push_heap(heap.begin(), heap.end(), IdLess);
      } else if (id < heap.front().id) {
        std::pop_heap(heap.begin(), heap.end(), IdLess);
        heap.back() = {id, &seg, off};
        std::push_heap(heap.begin(), heap.end(), IdLess);
      }
    });
    QUIVER_RETURN_IF_ERROR(stopped);
  }
  std::sort_heap(heap.begin(), heap.end(), IdLess);
  bool more = heap.size() > q.page_size;
  if (more) heap.resize(q.page_size);

  // A page stops early at the response limit; the cursor goes on from the
  // last point that fitted.
  ResponseBudget budget(options_.max_response_bytes);
  size_t filled = 0;
  for (const ScrollEntry& e : heap) {
    v1::Point* p = resp->add_points();
    p->set_id(std::string(e.id));
    for (int ai : q.output.attributes) {
      v1::Value value;
      if (bind::AttrToValue(AttrAt(e.segment->attrs(e.offset), ai), &value)) {
        (*p->mutable_attributes())[schema().attributes()[ai].name] = std::move(value);
      }
    }
    if (q.output.with_vectors) {
      AddVectors(*e.segment, e.offset, p->mutable_vectors(), p->mutable_multi_vectors(),
                 p->mutable_sparse_vectors());
    }
    if (absl::Status s = budget.Add(p->ByteSizeLong() + 4); !s.ok()) {
      if (filled == 0) return s;  // not even one point fits
      resp->mutable_points()->RemoveLast();
      more = true;
      break;
    }
    ++filled;
  }
  if (more && filled > 0) {
    resp->set_next_cursor(
        bind::EncodeScrollCursor(id_, resp->points(static_cast<int>(filled) - 1).id()));
  }
  return absl::OkStatus();
}

}  // namespace quiver
