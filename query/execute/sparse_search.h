// Search of a sparse vector field: the per-segment pieces Collection's
// sparse search (query/execute/sparse_search.cc) is made of.
//
// A sealed segment is searched through its inverted index
// (query/sparse_index.h, block-max WAND), a growing one (or a sealed one
// whose index is not built yet, or any with params.exact) by scoring each
// visible row that has the field. Both are exact: the same points and
// scores, the index only skips what cannot reach the top k. A filter is
// evaluated to a row set first (through the attribute indexes, as for
// vector searches) and the index checks candidates against it.
//
// Thread-safety: the functions are reentrant; segments are read under the
// caller's view. Errors: CANCELLED or DEADLINE_EXCEEDED from the StopToken.
#ifndef QUIVER_QUERY_EXECUTE_SPARSE_SEARCH_H_
#define QUIVER_QUERY_EXECUTE_SPARSE_SEARCH_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "query/execute/result_info.h"
#include "query/segment.h"
#include "query/sparse_index.h"

namespace quiver {

// The inverted index of sparse field s over rows [0, rows) of `seg`.
std::shared_ptr<const SparseIndex> BuildSparseIndex(const Segment& seg, size_t s, uint32_t rows);

// A sparse query as the index takes it.
std::vector<SparseTerm> SparseQueryTerms(const SparseVector& q);

// Dot product of two sparse vectors (indices ascending), and whether they
// share an index at all (a point sharing none is not a hit).
float SparseDot(const SparseVector& a, const SparseVector& b, bool* overlap);

// What a sparse search's list of `count` hits asked for `k` says about
// itself: exhaustive (the search is exact), and when short, every point
// that shares an index with the query and passes the filter is in it.
ListInfo SparseListInfo(size_t count, uint32_t k);

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_SPARSE_SEARCH_H_
