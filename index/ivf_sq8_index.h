// IvfSq8Index: the IVF_SQ8 kind of VectorIndex, a compressed (approximate)
// index. Like IVF_FLAT a k-means coarse quantizer splits the vectors into
// `nlist` inverted lists and a query scans its `nprobe` nearest lists, but
// the lists hold 8-bit scalar-quantized codes (one byte per dimension,
// per-dimension min/max ranges: FAISS ScalarQuantizer::QT_8bit) instead of
// floats, so Search's distances are estimates and approximate() is true:
// callers rerank the candidates with exact distances (vector_index.h).
//
// FAISS 1.7.3 (IndexIVFScalarQuantizer) trains the coarse quantizer, assigns
// vectors to lists, encodes them, stores the lists and reads/writes the file.
// The codes are of the vectors themselves, not of their residuals from the
// list centroid: one range per dimension serves every list, so a query is
// prepared once (index/sq8.h folds the ranges into 16-bit weights) and
// every list is scanned with the same kernel, an exact integer dot product
// of the weights with each code (no decode step), with the LabelFilter
// checked inline and min_accepted as IVF_FLAT. For L2 each code's own norm
// term is kept beside the lists, computed when the index is built or
// loaded.
// The ranges are trained on all the segment's vectors (FAISS samples 100k),
// so no code of the segment clips.
//
// Measured with bench/compressed_bench.cc (Fashion-MNIST 60k x 784,
// nlist 245, 1,000 t10k queries, 1 thread, median of 3 interleaved rounds,
// 2026-12-07, with the integer kernel): this scan against
// IndexIVFScalarQuantizer::search with SearchParametersIVF on the same saved
// lists (Debian's FAISS is built for baseline x86-64; its SQ scanner
// decodes component by component), and recall@10 raw and after an exact
// rerank of 4k candidates:
//   L2      nprobe     4      8      16     32
//           QPS ours   15.8k  10.1k  5.9k   3.2k
//           QPS FAISS  813    445    237    125   (batched: 952 .. 128)
//           ratio      19.4x  22.7x  24.7x  25.8x
//           raw        0.934  0.974  0.981  0.981  (FAISS: the same)
//           refined 4x 0.948  0.992  0.999  1.000
//   COSINE  ratio      17.4x  19.2x  21.5x  20.1x
//           raw        0.937  0.965  0.972  0.973  (FAISS: the same)
//           refined 4x 0.959  0.990  0.998  1.000
// The float kernel it replaced ran 7.5k QPS at nprobe 8 (11.6x FAISS, on
// another day) with the same recall; in quiverd, warm DISK IVF_SQ8 at
// nprobe 8 went from 2,327-2,525 QPS (two runs) to 2,865, quiverd's CPU
// from 0.34-0.36 to 0.28 ms a query (bench/disk_bench, one client thread,
// runs the same day).
// Build (2 threads): 2-6 s, as FAISS's own train + add (coarse k-means).
// Fashion-MNIST's pixels are 8-bit already, which flatters SQ8 there; the
// conformance suite's Gaussian data (40-d) gives raw 0.98 / 0.93.
//
// Build parameters: "nlist" (1..65536), default 0 = automatic, exactly as
// IVF_FLAT (EffectiveNlist: round(sqrt(n)), capped at n / 39). Search
// parameter nprobe, default DefaultNprobe(nlist) (max(8, nlist / 32)).
// Distances: kL2 squared L2, kInnerProduct -<q, x>, both between the query
// and the decoded code (estimates).
//
// Memory (MemoryBytes): dim bytes of code, an 8-byte label (FAISS's idx_t)
// and, for L2, a 4-byte code norm per vector, the nlist float centroids and
// the 2 * dim float ranges; no float copy of the vectors. The codes alone are 1/4 of the floats; on
// 784-d the labels and centroids add about 1.5 points (0.26-0.27 of the
// float bytes).
//
// Ownership: Build encodes the vectors; it keeps no pointer to them.
// Thread-safety: as VectorIndex. Build uses `threads` OpenMP threads in the
// calling thread only.
// Errors: Build over 0 vectors (or none holding data) is INVALID_ARGUMENT;
// Search/SaveTo before Build FAILED_PRECONDITION; Load reports a file of
// another layout or dimension as DATA_LOSS.
#ifndef QUIVER_INDEX_IVF_SQ8_INDEX_H_
#define QUIVER_INDEX_IVF_SQ8_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index/ivf_common.h"
#include "index/ivf_flat_index.h"
#include "index/sq8.h"
#include "index/vector_index.h"

namespace faiss {
struct IndexIVFScalarQuantizer;
}  // namespace faiss

namespace quiver::index {

struct IvfSq8Options {
  // "nlist": number of inverted lists; 0 = automatic (as IVF_FLAT).
  uint32_t nlist = 0;
};

class IvfSq8Index final : public VectorIndex {
 public:
  // REQUIRES: spec passed ValidateIndexSpec and spec.type is "IVF_SQ8".
  IvfSq8Index(IndexSpec spec, IvfSq8Options options);
  ~IvfSq8Index() override;

  // INVALID_ARGUMENT if n == 0; RESOURCE_EXHAUSTED on allocation failure;
  // INTERNAL if FAISS reports an error.
  absl::Status Build(const float* vectors, size_t n, int threads,
                     const LabelFilter* rows = nullptr) override;
  // FAILED_PRECONDITION before Build/Load.
  absl::Status Search(const float* query, const SearchParams& params,
                      const LabelFilter* filter, TopK* out) const override;
  // FAISS's format (write_index). INTERNAL on a write error. Does not fsync.
  absl::Status SaveTo(storage::WritableFile& out) const override;
  // NOT_FOUND if the file cannot be opened; DATA_LOSS if FAISS cannot read
  // it (truncated) or it is not an IVF-SQ8 index of this spec (dim, metric,
  // 8-bit non-uniform codes of the vectors) with labels 0..n-1.
  absl::Status Load(const std::string& path) override;

  size_t size() const override;
  size_t MemoryBytes() const override;
  bool approximate() const override { return true; }
  const IndexSpec& spec() const override { return spec_; }
  IndexShape shape() const override {
    const auto nlist = static_cast<uint32_t>(lists_.size());
    return {IndexShape::Kind::kLists, 0, nlist, DefaultNprobe(nlist)};
  }
  // "IVF_SQ8(nlist=245)": the nlist in force.
  std::string Describe() const override;

 private:
  absl::Status Attach(std::unique_ptr<faiss::IndexIVFScalarQuantizer> index);

  const IndexSpec spec_;
  const IvfSq8Options options_;
  std::unique_ptr<faiss::IndexIVFScalarQuantizer> index_;  // null until Build/Load
  const float* centroids_ = nullptr;                       // nlist * dim, owned by index_
  std::vector<ivf::CodeList> lists_;                       // nlist, views into index_
  Sq8Params sq_;                                           // from index_->sq
  // L2: each list's codes' Sq8Params::CodeNorms, the lists one after
  // another, and where each list's start (empty for inner product).
  std::vector<float> norms_;
  std::vector<size_t> norm_first_;
};

}  // namespace quiver::index

#endif  // QUIVER_INDEX_IVF_SQ8_INDEX_H_
