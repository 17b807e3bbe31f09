// HnswSq8Index: the HNSW_SQ8 kind of VectorIndex, a compressed (approximate)
// graph index: an HNSW graph whose nodes hold 8-bit scalar-quantized codes
// (FAISS ScalarQuantizer::QT_8bit, per-dimension ranges over all the
// segment's vectors) instead of floats. Search's distances are estimates
// (index/sq8.h: the query's 16-bit weights against each uint8 code, plus
// for L2 the code's norm, kept per node and computed at build or load), so
// approximate() is true and callers rerank the candidates exactly
// (vector_index.h).
//
// Build: the graph is built by hnswlib over the float vectors with exact
// distances, exactly as HNSW's (BuildHnswGraph in hnsw_index.h: M,
// ef_construction, `threads` inserting threads), then the floats are
// dropped and the graph is kept in a FAISS IndexHNSWSQ (its HNSW arrays and
// an IndexScalarQuantizer holding the codes), which gives the file format
// (write_index / read_index). Why this mix:
//   - FAISS 1.7.3's IndexHNSW::search ignores SearchParametersHNSW (no
//     per-query efSearch, no IDSelector), so the LabelFilter
//     cannot go through it; and its HNSW build runs Debian's baseline
//     x86-64 code, 5.6x slower than hnswlib's for the float graph (192 s vs
//     34 s).
//   - hnswlib builds fast with our flags, and a graph built on exact
//     distances is at least as good as one built on code distances; but its
//     file format has no room for the SQ ranges (loadIndex rejects trailing
//     bytes).
// Search is ours, HNSW's walk itself (index/hnsw_walk.h) over FAISS's
// graph arrays and the code distances: greedy
// descent through the upper levels, best-first on level 0 with a per-query
// ef = max(k, SearchParams::ef or kHnswDefaultEf); rejected labels are
// walked through but never returned, the bitmap tested inline.
//
// Measured with bench/compressed_bench.cc (Fashion-MNIST 60k x 784, M 16,
// ef_construction 200, 1,000 t10k queries, 1 thread, median of 3 rounds
// interleaved with IndexHNSWSQ::search (hnsw.efSearch = ef) on the same
// saved graph and codes, 2026-12-07, with the integer kernel; recall@10 raw
// and after an exact rerank of 4k candidates, which makes the effective ef
// at least 40):
//   L2      ef         16     32     64     128
//           QPS ours   21.0k  13.2k  7.4k   4.6k
//           ratio      6.65x  6.48x  5.83x  5.76x
//           raw        0.954  0.974  0.979  0.980  (FAISS 0.947 .. 0.980)
//           refined 4x 0.995  0.995  0.997  0.999
//   COSINE  QPS ours   21.3k  14.0k  7.8k   5.0k
//           QPS FAISS  3.69k  2.39k  1.52k  963
//           raw        0.931  0.957  0.965  0.969
//           refined 4x 0.985  0.985  0.991  0.994
// (The float kernel before it, measured on another day: 4.3x FAISS at ef
// 16, the same recall.)
// Float HNSW, measured earlier in the same program, not interleaved,
// cosine: 11.1k, 7.7k, 5.0k, 3.0k QPS at recall 0.949 .. 0.994, at 1.05 of
// the floats' memory against HNSW_SQ8's 0.30. Build: 15-21 s on 2 threads,
// as HNSW (the same hnswlib graph; encoding is negligible).
//
// Build parameters as HNSW: "M" (2..100, default 16), "ef_construction"
// (8..4096, default 200).
// Distances: kL2 squared L2, kInnerProduct -<q, x>, between the query and
// the decoded code (estimates).
//
// Memory (MemoryBytes): dim bytes of code per node, the neighbour slots
// (2M 4-byte ids on level 0, M per upper level), an 8-byte offset and a
// 4-byte level per node (and for L2 a 4-byte code norm), and the 2 * dim
// float ranges. The graph costs 8M + 12 bytes a node (140 at M=16; 144 with
// the norm) on top of the codes, so this kind
// saves less than IVF_SQ8 (784-d: ~0.30 of the floats; IVF_SQ8 0.26). Each
// searching thread keeps a 2-byte visited mark per node, as HNSW.
//
// Thread-safety: as VectorIndex.
// Errors: Build over 0 or too many vectors is INVALID_ARGUMENT; Search/SaveTo
// before Build FAILED_PRECONDITION; Load reports a file whose FAISS layout or
// graph does not check out as DATA_LOSS.
#ifndef QUIVER_INDEX_HNSW_SQ8_INDEX_H_
#define QUIVER_INDEX_HNSW_SQ8_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "index/hnsw_index.h"
#include "index/sq8.h"
#include "index/vector_index.h"

namespace faiss {
struct IndexHNSWSQ;
}  // namespace faiss

namespace quiver::index {

class HnswSq8Index final : public VectorIndex {
 public:
  // REQUIRES: spec passed ValidateIndexSpec and spec.type is "HNSW_SQ8".
  HnswSq8Index(IndexSpec spec, HnswOptions options);
  ~HnswSq8Index() override;

  // INVALID_ARGUMENT if n == 0 or n >= 2^31; RESOURCE_EXHAUSTED on
  // allocation failure; INTERNAL if hnswlib or FAISS reports an error.
  absl::Status Build(const float* vectors, size_t n, int threads,
                     const LabelFilter* rows = nullptr) override;
  // FAILED_PRECONDITION before Build/Load.
  absl::Status Search(const float* query, const SearchParams& params,
                      const LabelFilter* filter, TopK* out) const override;
  // FAISS's format (write_index of an IndexHNSWSQ). INTERNAL on a write
  // error. Does not fsync.
  absl::Status SaveTo(storage::WritableFile& out) const override;
  // NOT_FOUND if the file cannot be opened; DATA_LOSS if FAISS cannot read
  // it (truncated), it is not an HNSW-SQ8 index of this spec (dim, metric,
  // M), or its graph is inconsistent (a link or level out of range).
  absl::Status Load(const std::string& path) override;

  size_t size() const override;
  size_t MemoryBytes() const override;
  bool approximate() const override { return true; }
  const IndexSpec& spec() const override { return spec_; }
  IndexShape shape() const override {
    return {IndexShape::Kind::kGraph, kHnswDefaultEf, 0, 0};
  }
  // "HNSW_SQ8(M=16, ef_construction=200)".
  std::string Describe() const override;

 private:
  absl::Status Attach(std::unique_ptr<faiss::IndexHNSWSQ> index);

  const IndexSpec spec_;
  const HnswOptions options_;
  std::unique_ptr<faiss::IndexHNSWSQ> index_;  // null until Build/Load
  // Views into index_, set by Attach.
  const uint8_t* codes_ = nullptr;     // n * dim
  const int32_t* neighbors_ = nullptr;
  const size_t* offsets_ = nullptr;    // n + 1
  size_t n_ = 0;
  Sq8Params sq_;
  std::vector<float> norms_;  // L2: each code's Sq8Params::CodeNorms
};

}  // namespace quiver::index

#endif  // QUIVER_INDEX_HNSW_SQ8_INDEX_H_
