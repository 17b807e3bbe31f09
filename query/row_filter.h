// A filter evaluated on one row of a segment: the row's attributes, and its
// point id when the filter tests the id (`id IN (...)`). Every row-by-row
// filter check in query/ goes through these, so none can forget the id.
//
// Inline and reentrant; the segment and filter are the caller's (the row
// must be below a row count published to the caller). Nothing fails.
#ifndef QUIVER_QUERY_ROW_FILTER_H_
#define QUIVER_QUERY_ROW_FILTER_H_

#include <cstdint>
#include <string_view>

#include "query/filter/filter.h"
#include "query/segment.h"

namespace quiver {

// The id the filter needs of row `off`: empty unless it tests ids (reading
// it would otherwise cost a cache miss per checked row).
inline std::string_view FilterRowId(const filter::Filter& f, const Segment& seg, uint32_t off) {
  return f.uses_id() ? std::string_view(seg.external_id(off)) : std::string_view();
}

inline bool RowMatches(const filter::Filter& f, const Segment& seg, uint32_t off) {
  return f.Matches(seg.attrs(off), FilterRowId(f, seg, off));
}

// RowMatches restricted to the filter's node `node`.
inline bool RowMatchesNode(const filter::Filter& f, uint32_t node, const Segment& seg,
                           uint32_t off) {
  return f.EvalNode(node, seg.attrs(off), FilterRowId(f, seg, off));
}

}  // namespace quiver

#endif  // QUIVER_QUERY_ROW_FILTER_H_
