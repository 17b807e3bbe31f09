// VectorIndex: the one interface every ANN index kind implements (FLAT,
// HNSW, IVF_FLAT, and the compressed kinds IVF_SQ8, IVF_PQ, HNSW_SQ8),
// chosen by type name from a registry (CreateIndex / LoadIndex).
//
// An index is built once over an immutable set of vectors — one sealed
// segment of one vector field — whose rows are addressed by dense labels
// 0..n-1 (the segment's local offsets). There is no incremental add or
// remove: segments are immutable and deletions are filtered at search time
// through a LabelFilter, so no index is ever mutated while it is searched.
//
// Distances follow index/flat_search.h: lower is better; kL2 is squared
// Euclidean distance, kInnerProduct is -<q, x> (COSINE = kInnerProduct over
// normalized vectors). Every exact kind returns the same numbers for the same
// pair, so results of different segments and kinds merge directly.
//
// Compressed kinds (approximate() == true) hold codes, not the vectors: the
// distances they return are estimates from the codes (same convention, lower
// is better, but not the true numbers, and their order may differ from the
// true order). Callers must refine: ask for k * refine_factor candidates and
// rerank them with exact distances from the full-precision vectors (the
// DISK storage mode's rerank table) before merging with other segments.
//
// Ownership: an index copies what it needs during Build; the caller's
// vectors may be freed afterwards.
// Thread-safety: after Build/Load returns, Search, Save, MemoryBytes and
// Describe are safe to call concurrently. Build/Load are not.
// Errors: FAISS and hnswlib exceptions never escape; they become statuses.
#ifndef QUIVER_INDEX_VECTOR_INDEX_H_
#define QUIVER_INDEX_VECTOR_INDEX_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "index/flat_search.h"
#include "index/topk.h"
#include "storage/file_system.h"

namespace quiver::index {

// What to build. `params` are the index kind's build parameters by name
// (strings, as in the API's IndexSpec), validated by ValidateIndexSpec.
struct IndexSpec {
  std::string type;  // "FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW_SQ8"
  std::map<std::string, std::string> params;
  uint32_t dim = 0;
  Similarity similarity = Similarity::kL2;
};

// What a search did, for explain and for calibrating the planner's costs.
// Counters are added to, never reset, by Search.
struct SearchStats {
  uint64_t distances = 0;  // query-to-vector distance computations
  uint64_t checks = 0;     // LabelFilter::Accept calls
};

// Per-query knobs. Zero means the index's default (documented per kind).
struct SearchParams {
  uint32_t ef = 0;      // HNSW: candidate list size (raised to at least k)
  uint32_t nprobe = 0;  // IVF: inverted lists scanned
  // IVF with a filter: keep probing lists, nearest first, past nprobe until
  // this many accepted rows have been scanned (or every list has been). A
  // filter correlated with the query's region leaves few accepted rows in
  // the nearest lists; this keeps recall where a fixed nprobe loses it.
  uint32_t min_accepted = 0;
  SearchStats* stats = nullptr;  // if set, the search adds its counts here
  // Recall calibration only (query/recall_calibration.h): search as if this
  // label were not indexed, so that a row can stand in for a query that is
  // not in the index. Graph kinds leave its node out of the walk (its links
  // would lead straight to its neighbours, and recall would read high);
  // list kinds need nothing more than a filter rejecting it, which the
  // caller also passes. -1: none.
  int64_t skip_label = -1;
};

// How an index searches, for the filter planner's cost model
// (query/planner.h): the kind of work and its default knobs.
struct IndexShape {
  enum class Kind { kScan, kGraph, kLists };
  Kind kind = Kind::kScan;
  uint32_t default_ef = 0;      // kGraph
  uint32_t nlist = 0;           // kLists
  uint32_t default_nprobe = 0;  // kLists
};

// Says which labels a search may return. Implementations must be cheap and
// thread-safe (one instance may be consulted from one search at a time, but
// by any thread). An index may still traverse rejected labels (HNSW walks
// through them) but never returns them.
class LabelFilter {
 public:
  virtual ~LabelFilter() = default;
  virtual bool Accept(uint32_t label) const = 0;

  // A filter that is a plain bitset over labels sets these, and indexes test
  // the bit inline instead of calling Accept (a virtual call per visited
  // label costs as much as the test itself). Bits at or past bitmap_size
  // are rejected.
  const uint64_t* bitmap = nullptr;
  uint32_t bitmap_size = 0;

  // Accept, through the bitmap when there is one.
  bool Test(uint32_t label) const {
    if (bitmap != nullptr) {
      return label < bitmap_size && ((bitmap[label >> 6] >> (label & 63)) & 1);
    }
    return Accept(label);
  }
};

// The float rows an index holds, addressed by label, for a caller that
// wants to read them instead of keeping its own copy (a sealed segment,
// query/segment.h): label i's dim floats start at base + i * stride (one
// block, HNSW), or at row_ptr[i] when row_ptr is set (rows scattered over
// lists, IVF_FLAT), for i < rows. `owner` keeps them and row_ptr alive, so
// the rows outlive the index if the caller holds it. Read-only: the index
// searches the same memory.
struct SharedRows {
  const float* base = nullptr;
  size_t stride = 0;  // floats, >= dim
  size_t rows = 0;
  const float* const* row_ptr = nullptr;
  std::shared_ptr<const void> owner;
  const float* row(size_t i) const { return row_ptr != nullptr ? row_ptr[i] : base + i * stride; }
};

class VectorIndex {
 public:
  virtual ~VectorIndex() = default;

  // Builds over `n` vectors (row-major, n * dim floats) with labels 0..n-1,
  // using up to `threads` threads. INVALID_ARGUMENT if n is too small for the
  // kind (e.g. fewer points than IVF lists, or `rows` accepts none);
  // RESOURCE_EXHAUSTED on allocation failure.
  //
  // `rows` (null: all) says which rows hold data. A rejected row is a
  // placeholder (a segment slot whose point was deleted before a restart:
  // its vector is gone, the slot holds zeros) and must not shape the index:
  // graph kinds leave it out of the graph entirely, list kinds train without
  // it (they may still store it in a list). Callers never accept such a row
  // in a search. Hundreds of identical placeholder vectors inserted into an
  // HNSW graph link mostly to each other and cut the graph apart (every
  // candidate ties with an already chosen neighbour, so the heuristic prunes
  // the rest), which is why this exists. size() stays n.
  virtual absl::Status Build(const float* vectors, size_t n, int threads,
                             const LabelFilter* rows = nullptr) = 0;

  // Build, for recall calibration (query/recall_calibration.h): the rows
  // `held_out` names go in last, and `probe` runs just before them, while
  // the index can be searched as if they were not in it, so that they can
  // stand in for queries the index has never seen. The index ends as Build
  // would have made it (the held-out rows inserted last). Kinds whose search
  // does not depend on which rows they hold beyond returning them (lists:
  // a filter rejecting a row is as good as its absence) build, then probe.
  virtual absl::Status BuildHoldingOut(const float* vectors, size_t n, int threads,
                                       const LabelFilter* rows,
                                       const std::vector<uint32_t>& held_out,
                                       const std::function<void()>& probe) {
    absl::Status s = Build(vectors, n, threads, rows);
    if (s.ok() && probe != nullptr) probe();
    return s;
  }
  // BuildHoldingOut (Build when `held_out` is empty and `probe` null) over
  // rows read one at a time: `row(i)` is row i's dim floats, valid for the
  // whole build. Kinds that copy each row into their own storage as they
  // insert it (HNSW) override this and need no contiguous copy of the input
  // (a sealed segment's rows live in chunks; gathering them cost a third
  // copy of every vector while a segment was built). Default: gathers the
  // rows, then builds from the array.
  using RowReader = std::function<const float*(size_t row)>;
  virtual absl::Status BuildFromRows(const RowReader& row, size_t n, int threads,
                                     const LabelFilter* rows,
                                     const std::vector<uint32_t>& held_out,
                                     const std::function<void()>& probe) {
    const size_t dim = spec().dim;
    std::vector<float> data;
    try {
      data.resize(n * dim);
    } catch (const std::bad_alloc&) {
      return absl::ResourceExhaustedError("out of memory gathering the rows to index");
    }
    for (size_t i = 0; i < n; ++i) std::memcpy(data.data() + i * dim, row(i), dim * sizeof(float));
    if (held_out.empty() && probe == nullptr) return Build(data.data(), n, threads, rows);
    return BuildHoldingOut(data.data(), n, threads, rows, held_out, probe);
  }
  // BuildHoldingOut really leaves the held-out rows out while it probes
  // (graph kinds whose links a row shapes; HNSW).
  virtual bool holds_out() const { return false; }

  // Pushes the nearest accepted labels of `query` (dim floats) into `out`
  // (whose capacity is k). `filter` may be null (accept all).
  virtual absl::Status Search(const float* query, const SearchParams& params,
                              const LabelFilter* filter, TopK* out) const = 0;

  // Writes the built index to `path` (a new file) through `fs`, synced
  // before it returns (the POSIX file system if none is given), or reads it
  // back. A failed Save may leave part of the file behind: the caller
  // removes it. Load expects a file this kind's Save wrote for the same
  // spec; callers verify a checksum first, so Load need not defend against
  // arbitrary bytes, but it must return an error rather than crash on a
  // truncated file.
  absl::Status Save(storage::FileSystem& fs, const std::string& path) const;
  absl::Status Save(const std::string& path) const;
  virtual absl::Status Load(const std::string& path) = 0;
  // Load, but the index may read the file in place through a read-only
  // mapping instead of copying it into memory: its pages are then the page
  // cache's, shared with the file, dropped under memory pressure and read
  // again on use, and a restart copies nothing. Kinds whose file layout
  // cannot be used in place (and files that need rewriting on load) are
  // loaded as Load does; mapped() says which happened. The file must not
  // change while the index lives: quiverd replaces a segment's files by
  // rename and never writes them in place (a file altered from outside
  // while mapped is what search reads until verify reports it and a
  // restart rebuilds it; one truncated from outside faults the process).
  virtual absl::Status LoadMapped(const std::string& path) { return Load(path); }
  // True once LoadMapped has mapped the file (false after Build and Load).
  virtual bool mapped() const { return false; }
  // The bytes of the file Save writes, appended to `out` (Save creates,
  // syncs and closes it).
  virtual absl::Status SaveTo(storage::WritableFile& out) const = 0;

  virtual size_t size() const = 0;          // labels indexed
  virtual size_t MemoryBytes() const = 0;   // resident bytes of the index
  // True if Search's distances are estimates from compressed codes and the
  // candidates must be reranked with exact distances (see above; the query
  // layer asks for k * refine_factor of them, query/planner.h). The kind
  // keeps no copy of the float vectors.
  virtual bool approximate() const { return false; }
  // The index's float rows by label (see SharedRows), where it keeps every
  // label's row as floats (HNSW's block, IVF_FLAT's lists); nullopt
  // otherwise (compressed kinds, FLAT, before Build/Load).
  virtual std::optional<SharedRows> shared_rows() const { return std::nullopt; }
  // Whether this kind, once built, hands out its rows through shared_rows():
  // a segment about to build one may lend it rows it does not own, since it
  // will read them in the index's block afterwards (query/segment.h).
  virtual bool shares_rows() const { return false; }
  virtual const IndexSpec& spec() const = 0;
  virtual IndexShape shape() const = 0;
  // One line for logs and `describe`, e.g. "HNSW(M=16, ef_construction=200)".
  virtual std::string Describe() const = 0;

  // Lets the owner of a build end it early (a server shutting down): once
  // *stop is true, Build returns CANCELLED soon and the index stays unbuilt.
  // Graph kinds check between inserts (milliseconds); IVF kinds between
  // training and adding. Null (the default): never. *stop must outlive
  // Build.
  void set_build_stop(const std::atomic<bool>* stop) { build_stop_ = stop; }

 protected:
  const std::atomic<bool>* build_stop() const { return build_stop_; }
  bool build_stopped() const {
    return build_stop_ != nullptr && build_stop_->load(std::memory_order_relaxed);
  }

 private:
  const std::atomic<bool>* build_stop_ = nullptr;
};

// What Build returns when its stop flag was set.
inline absl::Status BuildStoppedError(const char* kind) {
  return absl::CancelledError(std::string(kind) + " build stopped before it finished");
}

// Checks type and params: INVALID_ARGUMENT names the bad parameter (unknown
// type, unknown parameter, value out of range).
absl::Status ValidateIndexSpec(const IndexSpec& spec);

// A new, empty index of spec.type (validated first).
absl::StatusOr<std::unique_ptr<VectorIndex>> CreateIndex(const IndexSpec& spec);

}  // namespace quiver::index

#endif  // QUIVER_INDEX_VECTOR_INDEX_H_
