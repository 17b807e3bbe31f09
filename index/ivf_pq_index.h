// IvfPqIndex: the IVF_PQ kind of VectorIndex, a compressed (approximate)
// index. A k-means coarse quantizer splits the vectors into `nlist` inverted
// lists; each vector's residual from its list centroid is encoded with a
// product quantizer: the dim dimensions are cut into `m` sub-vectors of
// dim / m dimensions, and each sub-vector is replaced by the index of the
// nearest of 256 centroids (k-means per sub-space; nbits fixed at 8), so a
// vector costs m bytes. Search's distances are estimates (asymmetric distance
// computation, ADC): approximate() is true and callers rerank the candidates
// with exact distances (vector_index.h).
//
// FAISS 1.7.3 (IndexIVFPQ) trains the coarse quantizer (k-means), stores
// the lists and reads/writes the file. Searching is ours:
//   - per query and probed list, an m x 256 lookup table of sub-distances
//     (L2: ||(q - c)_j - C_j[k]||^2, from a dimension-major copy of the
//     codebook, 8 centroids per AVX2 instruction; IP: <q_j, C_j[k]> once per
//     query, plus <q, c> per list);
//   - the list scan sums m table entries per code, with the LabelFilter
//     checked inline and min_accepted as IVF_FLAT.
// FAISS's per-(list, sub-quantizer, code) precomputed table for L2
// (use_precomputed_table) would cost nlist * m * 256 floats: on Fashion-MNIST
// 60k (nlist 245, m 98) 24.6 MB, three times the codes; it is not built.
// Segments with fewer than 256 vectors cannot train 256 centroids: their
// codebooks are the residual sub-vectors themselves (exact codes).
//
// Codebook training and encoding are ours too: Lloyd's k-means per
// sub-space (256 centroids, 25 rounds, at most 16,384 residuals) and
// nearest-centroid encoding, both over AVX2 distance tables, in parallel
// over sub-spaces / vectors. Debian's FAISS runs its k-means through BLAS
// on 8-d products and baseline-x86-64 code: IndexIVFPQ train + add of the
// 5k Fashion-MNIST slice (5,000 residuals either way) took 5.0 s on 1
// thread against our 1.2 s; at 60k (FAISS: all 60,000 residuals) 95.6 s
// against 7.1 s on 2 threads.
//
// Measured with bench/compressed_bench.cc (Fashion-MNIST 60k x 784,
// nlist 245, m 98, 1,000 t10k queries, 1 thread, median of 3 interleaved
// rounds): this search against IndexIVFPQ::search with SearchParametersIVF
// on the same saved lists (with its precomputed L2 table), and recall@10 raw
// and after an exact rerank of 10k candidates:
//   L2      nprobe     4      8      16     32
//           QPS ours   15.0k  8.4k   2.7k   2.4k
//           QPS FAISS  3.44k  3.03k  1.30k  1.16k  (batched: 6.6k .. 1.2k)
//           ratio      4.35x  2.78x  2.08x  2.05x
//           raw        0.792  0.811  0.814  0.814  (FAISS: the same)
//           refined 10x 0.948 0.992  0.999  1.000
//   COSINE  ratio      4.30x  3.34x  2.67x  2.29x
//           raw        0.566  0.569  0.570  0.570
//           refined 10x 0.949 0.976  0.982  0.983 (20x: 0.988, 0.996 at 8, 16)
// (nprobe 16 from a separate run.) An AVX2 gather of 8 table entries per
// instruction instead of the scalar sums: 25-30% fewer QPS on this AMD EPYC.
// Cosine needs the larger refine: normalized neighbours sit closer together
// than PQ's quantization error.
//
// Build parameters: "nlist" (1..65536), default 0 = automatic as IVF_FLAT;
// "m" (number of sub-quantizers, must divide dim), default DefaultPqM(dim).
// Search parameter nprobe, default DefaultNprobe(nlist).
// Distances: kL2 squared L2, kInnerProduct -<q, x>, between the query and
// the vector the code decodes to (estimates).
//
// Memory (MemoryBytes): m bytes of code and an 8-byte label per vector, the
// nlist float centroids, the codebook (256 * dim floats) and its
// dimension-major copy; no float copy of the vectors.
//
// Ownership: Build encodes the vectors; it keeps no pointer to them.
// Thread-safety: as VectorIndex. Build uses `threads` OpenMP threads in the
// calling thread only.
#ifndef QUIVER_INDEX_IVF_PQ_INDEX_H_
#define QUIVER_INDEX_IVF_PQ_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index/ivf_common.h"
#include "index/ivf_flat_index.h"
#include "index/vector_index.h"

namespace faiss {
struct IndexIVFPQ;
}  // namespace faiss

namespace quiver::index {

struct IvfPqOptions {
  // "nlist": number of inverted lists; 0 = automatic (as IVF_FLAT).
  uint32_t nlist = 0;
  // "m": sub-quantizers, a divisor of dim; 0 = DefaultPqM(dim).
  uint32_t m = 0;
  static constexpr uint32_t kMaxM = 65536;
};

// The default number of sub-quantizers for dim: the largest divisor of dim
// that gives sub-vectors of 8 to 16 dimensions (784 -> 98, 768 -> 96,
// 128 -> 16, 40 -> 5). Smaller sub-vectors code more accurately and cost
// more bytes: at 8 dimensions a code is dim / 8 bytes, 1/32 of the floats.
// A dim with no such divisor gets the divisor whose sub-vectors are nearest
// that band, the smaller on a tie (97 -> 97, 4 -> 1).
uint32_t DefaultPqM(uint32_t dim);

class IvfPqIndex final : public VectorIndex {
 public:
  // REQUIRES: spec passed ValidateIndexSpec and spec.type is "IVF_PQ"
  // (options.m, if set, divides spec.dim).
  IvfPqIndex(IndexSpec spec, IvfPqOptions options);
  ~IvfPqIndex() override;

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
  // it (truncated) or it is not an IVF-PQ index of this spec (dim, metric,
  // m, 8 bits, residual codes) with labels 0..n-1.
  absl::Status Load(const std::string& path) override;

  size_t size() const override;
  size_t MemoryBytes() const override;
  bool approximate() const override { return true; }
  const IndexSpec& spec() const override { return spec_; }
  IndexShape shape() const override {
    const auto nlist = static_cast<uint32_t>(lists_.size());
    return {IndexShape::Kind::kLists, 0, nlist, DefaultNprobe(nlist)};
  }
  // "IVF_PQ(nlist=245, m=98)": the nlist in force.
  std::string Describe() const override;

 private:
  absl::Status Attach(std::unique_ptr<faiss::IndexIVFPQ> index);

  const IndexSpec spec_;
  const IvfPqOptions options_;  // m resolved (never 0)
  std::unique_ptr<faiss::IndexIVFPQ> index_;  // null until Build/Load
  const float* centroids_ = nullptr;          // nlist * dim, owned by index_
  std::vector<ivf::CodeList> lists_;          // nlist, views into index_
  // The codebook dimension-major: codebook_t_[d * 256 + k] is dimension d
  // of centroid k of sub-quantizer d / dsub.
  std::vector<float> codebook_t_;
};

}  // namespace quiver::index

#endif  // QUIVER_INDEX_IVF_PQ_INDEX_H_
