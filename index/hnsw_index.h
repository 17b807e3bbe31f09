// HnswIndex: the HNSW kind of VectorIndex, a hierarchical navigable
// small-world graph (Malkov & Yashunin). The graph is built and stored by
// hnswlib 0.6.2 (header-only; its distances are ours, index/kernels.h's
// variant chosen at run time); searching it is ours (see below), because hnswlib's searchKnn reads
// a shared mutable `ef_` and has no filter hook in 0.6.2.
//
// Build: hnswlib addPoint from `threads` threads (the first row that holds
// data first, alone: it becomes the entry point). Labels 0..n-1 are
// hnswlib's external labels; rows the build's `rows` filter rejects are not
// inserted. Then the graph is renumbered so that label i is node i
// (hnswlib numbers nodes in insertion order), a rejected row becoming a
// node without links that no node links to: hnswlib's level-0 block holds
// every label's vector at a fixed stride, which a sealed segment reads as
// its rows instead of keeping a copy (shared_rows). The file records n (the
// label space, size()) in hnswlib's max_elements field; files written
// before renumbering (fewer nodes than labels, any order) are renumbered
// when loaded, and the renumbered layout is still a plain hnswlib file.
//
// Search (per query, no shared mutable state; index/hnsw_walk.h, the walk
// HNSW_SQ8 runs too):
//   1. greedy descent from the entry point through the upper layers;
//   2. best-first search on layer 0 with a per-query `ef`. Labels the
//      LabelFilter rejects are still expanded (walked through) but never
//      enter the result set; the result set holds up to ef accepted labels,
//      and the candidate queue is bounded by the worst accepted distance once
//      ef are held. So a filter costs more hops, not recall; a very selective
//      filter (a few % of labels) should be served by an exact scan instead.
//   ef = max(k, SearchParams::ef or kHnswDefaultEf).
// Distances are computed with index/kernels.h's kernels (the same numbers
// as FLAT's per-row path), the variant picked once per search:
// kL2 squared L2, kInnerProduct -<q, x>.
//
// Memory: the layer-0 block (n x (links + vector + label)), the upper-layer
// link lists, and a 4-byte label per node. The block outlives the index
// while a holder of shared_rows() keeps it. Each searching thread keeps a
// 2-byte visited mark per node of the largest graph it has searched.
//
// Thread-safety: as VectorIndex.
// Errors: Build over 0 vectors, too many, or none holding data is
// INVALID_ARGUMENT; out of memory RESOURCE_EXHAUSTED; any other hnswlib
// exception INTERNAL. Search/SaveTo before Build are FAILED_PRECONDITION;
// Load reports a missing file as NOT_FOUND and a damaged one as DATA_LOSS.
#ifndef QUIVER_INDEX_HNSW_INDEX_H_
#define QUIVER_INDEX_HNSW_INDEX_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index/vector_index.h"

namespace quiver::index {

// Build parameters, from IndexSpec.params (names case-insensitive).
struct HnswOptions {
  // "M": links per node on the upper layers (2*M on layer 0). More links:
  // better recall at a given ef, larger index, slower build. Default 16.
  uint32_t m = 16;
  static constexpr uint32_t kMinM = 2, kMaxM = 100;
  // "ef_construction": candidate list size while inserting. Larger: better
  // graph, slower build. Default 200.
  uint32_t ef_construction = 200;
  static constexpr uint32_t kMinEfConstruction = 8, kMaxEfConstruction = 4096;
};

// Default per-query ef (SearchParams::ef == 0). Measured on Fashion-MNIST
// 60k x 784, 2,000 test queries, M=16, ef_construction=200, 1 thread:
//   ef          16     32     64     128
//   L2 recall   0.969  0.992  0.998  0.999   (QPS 13.8k, 8.4k, 5.0k, 3.1k)
//   COSINE      0.951  0.980  0.991  0.996
// 64 keeps recall@10 >= 0.99 for both metrics, a margin for data harder than
// Fashion-MNIST; ef=32 is ~1.65x faster where 0.98 is enough.
inline constexpr uint32_t kHnswDefaultEf = 64;

// An HNSW graph as plain data, nodes numbered by label, in FAISS's HNSW
// layout (faiss::HNSW's levels / offsets / neighbors): node i is on levels
// 0..levels[i]-1; its neighbour slots are
// neighbors[offsets[i] + Slot(level) .. offsets[i] + Slot(level + 1)), with
// 2m slots on level 0 and m on each level above, unused slots -1.
struct HnswGraph {
  uint32_t m = 0;
  uint32_t entry_point = 0;  // a node on max_level
  int max_level = 0;
  std::vector<int> levels;       // n
  std::vector<size_t> offsets;   // n + 1
  std::vector<int32_t> neighbors;
  size_t Slot(int level) const { return level == 0 ? 0 : 2 * m + (level - 1) * size_t{m}; }
};

// Builds the graph HnswIndex::Build builds over `vectors` (hnswlib, exact
// distances, the same options and threads) and returns it without the
// vectors: for kinds that keep the graph over compressed codes (HNSW_SQ8).
// REQUIRES: `spec` (type "HNSW") and `options` passed ValidateIndexSpec.
// Errors as HnswIndex::Build (CANCELLED once *stop is true, as
// VectorIndex::set_build_stop).
// Rows `rows` rejects (VectorIndex::Build) are nodes on level 0 with no
// links, which no node links to.
absl::StatusOr<HnswGraph> BuildHnswGraph(const IndexSpec& spec, const HnswOptions& options,
                                         const float* vectors, size_t n, int threads,
                                         const LabelFilter* rows = nullptr,
                                         const std::atomic<bool>* stop = nullptr);

class HnswIndex final : public VectorIndex {
 public:
  // REQUIRES: spec passed ValidateIndexSpec and spec.type is "HNSW".
  HnswIndex(IndexSpec spec, HnswOptions options);
  ~HnswIndex() override;

  // INVALID_ARGUMENT if n == 0 or n >= 2^32; RESOURCE_EXHAUSTED on allocation
  // failure; INTERNAL if hnswlib reports an error.
  absl::Status Build(const float* vectors, size_t n, int threads,
                     const LabelFilter* rows = nullptr) override;
  absl::Status BuildHoldingOut(const float* vectors, size_t n, int threads,
                               const LabelFilter* rows, const std::vector<uint32_t>& held_out,
                               const std::function<void()>& probe) override;
  // Inserts each row straight from `row` (hnswlib copies it into its
  // level-0 block): no gathered copy of the input.
  absl::Status BuildFromRows(const RowReader& row, size_t n, int threads, const LabelFilter* rows,
                             const std::vector<uint32_t>& held_out,
                             const std::function<void()>& probe) override;
  bool holds_out() const override { return true; }
  // FAILED_PRECONDITION before Build/Load.
  absl::Status Search(const float* query, const SearchParams& params,
                      const LabelFilter* filter, TopK* out) const override;
  // hnswlib's file format (saveIndex). INTERNAL if the file is not written
  // whole. Does not fsync.
  absl::Status SaveTo(storage::WritableFile& out) const override;
  // NOT_FOUND if the file cannot be opened. DATA_LOSS if its header does not
  // match this spec (dim, M), its size does not match its header (truncated),
  // or its graph has a link out of range; the file is checked before hnswlib
  // reads it (hnswlib trusts the header) and the graph after.
  absl::Status Load(const std::string& path) override;
  // The same checks as Load. A file whose records are in label order (every
  // file this version writes) is used in place: the level-0 block, vectors
  // and links, is the mapping, and the segment's rows are read there
  // (shared_rows); only the upper layers' links (about 1/M of the nodes)
  // are copied. Other files are loaded as Load does.
  absl::Status LoadMapped(const std::string& path) override;
  bool mapped() const override;

  size_t size() const override;
  size_t MemoryBytes() const override;
  // The level-0 block: every label's vector, stride = one record.
  std::optional<SharedRows> shared_rows() const override;
  bool shares_rows() const override { return true; }
  const IndexSpec& spec() const override { return spec_; }
  IndexShape shape() const override {
    return {IndexShape::Kind::kGraph, kHnswDefaultEf, 0, 0};
  }
  std::string Describe() const override;

 private:
  struct Graph;  // hnswlib's objects; hnswlib headers stay in the .cc
  friend absl::StatusOr<HnswGraph> BuildHnswGraph(const IndexSpec&, const HnswOptions&,
                                                  const float*, size_t, int, const LabelFilter*,
                                                  const std::atomic<bool>*);

  absl::Status LoadFile(const std::string& path, bool map);

  // Inserts order[from, to) into `graph` with up to `threads` threads.
  absl::Status Insert(const RowReader& row, const std::vector<uint32_t>& order, size_t from,
                      size_t to, int threads, Graph* graph);

  const IndexSpec spec_;
  const HnswOptions options_;
  std::unique_ptr<Graph> graph_;  // null until Build/Load succeeds
};

}  // namespace quiver::index

#endif  // QUIVER_INDEX_HNSW_INDEX_H_
