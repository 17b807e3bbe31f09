// Machinery shared by the IVF kinds over FAISS inverted lists (IVF_FLAT,
// IVF_SQ8, IVF_PQ): building the coarse quantizer, viewing the lists,
// ranking lists for a query (the search itself is ivf_search.h), reading
// and writing FAISS files with statuses instead of exceptions, and checking
// a loaded index's labels. HNSW_SQ8 uses its FAISS I/O and exception
// helpers too (Read, Write, FromException). Internal to index/: FAISS types
// appear only as forward declarations here, and only the kinds' .cc files
// include FAISS headers.
//
// Thread-safety: the functions are reentrant; RankLists's per-query scratch
// is thread-local.
#ifndef QUIVER_INDEX_IVF_COMMON_H_
#define QUIVER_INDEX_IVF_COMMON_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/sanitizers.h"
#include "storage/file_system.h"
#include "index/flat_search.h"
#include "index/topk.h"
#include "index/vector_index.h"

namespace faiss {
struct Index;
struct IndexIVF;
}  // namespace faiss

namespace quiver::index::ivf {

// Under ThreadSanitizer (kThreadSanitizer) the IVF kinds train and add on
// one thread: libgomp is not instrumented, so the joins of FAISS's OpenMP
// teams are invisible to it and every later read of the lists would be
// reported as a race.

// FAISS or allocation failure as a status: RESOURCE_EXHAUSTED for
// bad_alloc, INTERNAL otherwise. `kind` prefixes the message.
absl::Status FromException(const std::exception& e, absl::string_view kind,
                           absl::string_view what);

// A new coarse quantizer for `dim` and `sim`, trained when nlist == 1 (its
// one centroid is the mean, normalized for IP as FAISS's spherical k-means
// would make it; no k-means and no FAISS warning for tiny segments).
// Otherwise untrained: IndexIVF::train runs k-means. The caller owns it.
// Throws what FAISS throws.
faiss::Index* NewQuantizer(size_t dim, Similarity sim, size_t nlist, const float* vectors,
                           size_t n);

// The rows of `vectors` (n x dim) that `rows` accepts (VectorIndex::Build),
// contiguous, for training: `vectors` itself when `rows` is null or accepts
// every row, otherwise a copy kept in *storage. *count gets their number.
const float* DataRows(const float* vectors, size_t n, size_t dim, const LabelFilter* rows,
                      std::vector<float>* storage, size_t* count);

// The labels below n that `rows` accepts (every one when null), in
// increasing order; when more than `max` are, a fixed-seed sample of `max`
// of them (the same rows on every build over the same input), for training
// that never uses more (k-means keeps so many points per centroid).
std::vector<uint32_t> SampleDataRows(size_t n, const LabelFilter* rows, size_t max);

// One inverted list: `size` codes of code_size bytes (IVF_FLAT: the rows
// themselves, dim floats), and their labels.
struct CodeList {
  const uint8_t* codes;
  const int64_t* ids;
  size_t size;
};

// After Build or Load of `index` (ArrayInvertedLists): trims the lists'
// spare capacity (vectors grow by doubling while FAISS adds) and returns
// views of them, or DATA_LOSS if the layout is not the expected one.
absl::StatusOr<std::vector<CodeList>> AttachLists(faiss::IndexIVF* index,
                                                  absl::string_view kind);
// Bytes held by the lists of `index` (codes and ids, by capacity).
size_t ListBytes(const faiss::IndexIVF& index);
// DATA_LOSS unless the labels of `index` are 0..ntotal-1, each once.
absl::Status CheckLabels(const faiss::IndexIVF& index, absl::string_view kind,
                         const std::string& path);

// faiss::write_index into `out` (through a faiss::IOWriter that appends to
// it, so the bytes are those of FAISS's own file writer). The file's error
// (INTERNAL, or RESOURCE_EXHAUSTED for a full disk) on a failed write.
absl::Status Write(const faiss::Index& index, absl::string_view kind, storage::WritableFile& out);
// faiss::read_index without IndexIVFPQ's precomputed table (our scan does
// not use it; see ivf_pq_index.h). NOT_FOUND if the file does not exist,
// DATA_LOSS if FAISS cannot read it (truncated), RESOURCE_EXHAUSTED.
absl::StatusOr<std::unique_ptr<faiss::Index>> Read(absl::string_view kind,
                                                   const std::string& path);

// A list and its coarse distance (the ranking convention: squared L2, or
// -<q, centroid>).
struct Probe {
  float distance;
  uint32_t list;
  bool operator<(const Probe& o) const { return distance < o.distance; }
};

// Ranks the nlist centroids (row-major, nlist * dim) for `query`: the first
// `sorted` probes of the result are the nearest lists, nearest first.
// Returns a thread-local vector, valid until the next call on this thread.
std::vector<Probe>& RankLists(const float* query, const float* centroids, size_t nlist,
                              size_t dim, Similarity sim, size_t sorted);

}  // namespace quiver::index::ivf

#endif  // QUIVER_INDEX_IVF_COMMON_H_
