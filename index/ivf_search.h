// The one IVF search, shared by IVF_FLAT, IVF_SQ8 and IVF_PQ: nprobe from
// the request, the coarse ranking of the lists, the list scan with the
// LabelFilter tested inline and min_accepted probing (ivf_flat_index.h
// states the rules), the top-k and the stats. What differs between the
// kinds is only how a list's codes are scored, and that is a scanner type
// each kind passes in (below); the search is a template over it, so the
// score of one code is an inlined call, never a virtual one.
//
// Internal to index/. Thread-safety: reentrant; the probe ranking's scratch
// is thread-local (RankLists), a scanner is made per query. Nothing here
// fails: the caller checks that its index is built.
#ifndef QUIVER_INDEX_IVF_SEARCH_H_
#define QUIVER_INDEX_IVF_SEARCH_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "index/ivf_common.h"
#include "index/ivf_flat_index.h"
#include "index/topk.h"
#include "index/vector_index.h"

namespace quiver::index::ivf {

// The lists of one built index as its search reads them.
struct ListsView {
  const std::vector<CodeList>* lists;  // nlist
  size_t code_size;                    // bytes per code (per row of a list)
  const float* centroids;              // nlist * dim, row-major
  size_t dim;
  Similarity similarity;
};

// The list scan: probes lists nearest first, `nprobe` of them, and past
// nprobe while a filter has let fewer than `min_accepted` rows through
// (SearchParams::min_accepted). `scanner.BeginList(probe)` prepares a list;
// `scanner.Score(code, i)` is the distance (or estimate) of the list's i-th
// code. Rejected
// rows are skipped before they are scored.
template <bool kFiltered, class Scanner>
void ScanLists(const std::vector<CodeList>& lists, size_t code_size,
               const std::vector<Probe>& probes, size_t nprobe, size_t min_accepted,
               const LabelFilter* filter, Scanner& scanner, TopK* out, SearchStats* stats) {
  const size_t want = kFiltered ? min_accepted : 0;
  uint64_t scanned = 0;
  uint64_t distances = lists.size();  // the coarse step's
  size_t accepted = 0;
  for (size_t p = 0; p < probes.size() && (p < nprobe || accepted < want); ++p) {
    const CodeList& list = lists[probes[p].list];
    if (list.size == 0) continue;
    scanner.BeginList(probes[p]);
    scanned += list.size;
    for (size_t i = 0; i < list.size; ++i) {
      const auto label = static_cast<uint64_t>(list.ids[i]);
      if (kFiltered && !filter->Test(static_cast<uint32_t>(label))) continue;
      ++accepted;
      ++distances;
      out->Push(scanner.Score(list.codes + i * code_size, i), label);
    }
  }
  if (stats != nullptr) {
    stats->distances += distances;
    if (kFiltered) stats->checks += scanned;
  }
}

// How many probes ScanLists may need sorted: all of them when it may probe
// past nprobe.
inline size_t ProbesToSort(size_t nlist, size_t nprobe, const LabelFilter* filter,
                           uint32_t min_accepted) {
  return filter != nullptr && min_accepted > 0 ? nlist : std::min(nlist, nprobe);
}

template <bool kL2, bool kFiltered, class MakeScanner>
void SearchWith(const ListsView& view, const float* query, size_t nprobe, size_t min_accepted,
                const LabelFilter* filter, TopK* out, SearchStats* stats,
                MakeScanner& make_scanner) {
  const size_t nlist = view.lists->size();
  const std::vector<Probe>& probes =
      RankLists(query, view.centroids, nlist, view.dim, view.similarity,
                ProbesToSort(nlist, nprobe, filter, static_cast<uint32_t>(min_accepted)));
  auto scanner = make_scanner(std::bool_constant<kL2>{});
  ScanLists<kFiltered>(*view.lists, view.code_size, probes, nprobe, min_accepted, filter,
                       scanner, out, stats);
}

// One query against the lists of `view`. `make_scanner(std::bool_constant<
// kL2>{})` returns the scanner for this query (kL2: squared L2, otherwise
// -<q, x>), with whatever per-query preparation its kind needs; it is
// called once, after the lists are ranked. nprobe is params.nprobe, or
// DefaultNprobe, capped at nlist.
template <class MakeScanner>
void Search(const ListsView& view, const float* query, const SearchParams& params,
            const LabelFilter* filter, TopK* out, MakeScanner make_scanner) {
  const auto nlist = static_cast<uint32_t>(view.lists->size());
  const size_t nprobe = std::min(nlist, params.nprobe != 0 ? params.nprobe : DefaultNprobe(nlist));
  const bool l2 = view.similarity == Similarity::kL2;
  SearchStats* stats = params.stats;
  if (filter == nullptr) {
    l2 ? SearchWith<true, false>(view, query, nprobe, 0, nullptr, out, stats, make_scanner)
       : SearchWith<false, false>(view, query, nprobe, 0, nullptr, out, stats, make_scanner);
  } else {
    const size_t min = params.min_accepted;
    l2 ? SearchWith<true, true>(view, query, nprobe, min, filter, out, stats, make_scanner)
       : SearchWith<false, true>(view, query, nprobe, min, filter, out, stats, make_scanner);
  }
}

}  // namespace quiver::index::ivf

#endif  // QUIVER_INDEX_IVF_SEARCH_H_
