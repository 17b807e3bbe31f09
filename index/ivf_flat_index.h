// IvfFlatIndex: the IVF_FLAT kind of VectorIndex. A k-means coarse
// quantizer splits the vectors into `nlist` inverted lists; a query scans the
// `nprobe` lists whose centroids are nearest to it, exactly.
//
// FAISS 1.7.3 does the heavy, rare work: k-means training (faiss::Clustering
// through IndexIVFFlat::train, on the segment's own vectors: a seeded sample
// of 256 * nlist of them when there are more, as many as FAISS's k-means
// would keep), assigning vectors to lists, the
// list storage and the file format (write_index/read_index). Searching is
// ours: the list scan (index/ivf_search.h, shared with IVF_SQ8 and IVF_PQ)
// is a loop over contiguous rows with index/kernels.h's kernels (AVX2
// where the CPU has it) and the LabelFilter checked inline, with no OpenMP and no allocation per
// query. Debian's FAISS is built for baseline x86-64 and
// scans at a fraction of memory bandwidth; on the same
// lists (60k x 784, nlist 256, 1 thread) this scan is 4.1-4.6x faster than
// IndexIVFFlat::search with SearchParametersIVF at nprobe 4-32, with
// identical results.
//
// Build parameters: "nlist" (1..65536). Default 0 = automatic:
// round(sqrt(n)). The coarse step scans all nlist centroids exactly, so a
// query costs about nlist + nprobe * n / nlist row distances; sqrt(n)
// balances the two, and k-means time grows with nlist (60k x 784, 2 threads:
// nlist 256: 5.8 s, 512: 9.0 s, 1000: 17.7 s) while recall per row scanned
// barely improves (recall 0.99 needs ~2,000 rows scanned at all three).
// Either way nlist is capped at n / 39 (at least 1), FAISS's minimum of 39
// training points per centroid, so small segments build rather than fail;
// Describe() shows the nlist in force.
// Search parameter: nprobe (SearchParams::nprobe, capped at nlist); default
// DefaultNprobe(nlist) = max(8, nlist / 32). Measured recall@10 at the
// default: Fashion-MNIST 60k (nlist 245-256, nprobe 8) 0.989 L2, 0.991
// COSINE; 5k slice (nlist 71) 0.995 / 0.999. nlist / 32 keeps the scanned
// share of lists from shrinking on large segments (nlist 1000: nprobe 31).
// Distances: kL2 squared L2, kInnerProduct -<q, x> (FAISS's +ip is never
// exposed). The quantizer uses the same metric (IndexFlatL2 / IndexFlatIP,
// spherical k-means for IP as FAISS does).
//
// Ownership: Build copies the vectors into the lists (n * dim floats plus an
// 8-byte id per vector). The lists are the only copy a sealed segment keeps:
// shared_rows() hands out a pointer per label into them (8 more bytes per
// vector), and the FAISS index lives as long as the index or a holder of
// those rows, whichever is longer.
// Thread-safety: as VectorIndex. Build uses `threads` OpenMP threads in the
// calling thread only (omp_set_num_threads, restored afterwards).
#ifndef QUIVER_INDEX_IVF_FLAT_INDEX_H_
#define QUIVER_INDEX_IVF_FLAT_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "index/ivf_common.h"
#include "index/vector_index.h"

namespace faiss {
struct IndexIVFFlat;
}  // namespace faiss

namespace quiver::index {

struct IvfFlatOptions {
  // "nlist": number of inverted lists; 0 = automatic (see above).
  uint32_t nlist = 0;
  static constexpr uint32_t kMaxNlist = 65536;
};

// The nlist Build uses for n vectors and a requested nlist (0 = automatic).
uint32_t EffectiveNlist(size_t n, uint32_t requested);
// Default nprobe for an index of nlist lists: max(8, nlist / 32), at most
// nlist (see above).
uint32_t DefaultNprobe(uint32_t nlist);

class IvfFlatIndex final : public VectorIndex {
 public:
  // REQUIRES: spec passed ValidateIndexSpec and spec.type is "IVF_FLAT".
  IvfFlatIndex(IndexSpec spec, IvfFlatOptions options);
  ~IvfFlatIndex() override;

  // INVALID_ARGUMENT if n == 0; RESOURCE_EXHAUSTED on allocation failure;
  // INTERNAL if FAISS reports an error.
  absl::Status Build(const float* vectors, size_t n, int threads,
                     const LabelFilter* rows = nullptr) override;
  // Reads the rows in place: k-means trains on a sample of at most 256 rows
  // per list (what FAISS's k-means keeps of more), gathered, and the rows
  // go into the lists a batch at a time, so a build holds the input and the
  // lists, not a third copy of every row. `held_out` must be empty (the
  // kind does not hold rows out) or the rows are gathered as by default.
  absl::Status BuildFromRows(const RowReader& row, size_t n, int threads, const LabelFilter* rows,
                             const std::vector<uint32_t>& held_out,
                             const std::function<void()>& probe) override;
  // FAILED_PRECONDITION before Build/Load.
  absl::Status Search(const float* query, const SearchParams& params,
                      const LabelFilter* filter, TopK* out) const override;
  // FAISS's format (write_index). INTERNAL on a write error. Does not fsync.
  absl::Status SaveTo(storage::WritableFile& out) const override;
  // NOT_FOUND if the file cannot be opened; DATA_LOSS if FAISS cannot read
  // it (truncated) or it is not an IVF-Flat index of this spec (dim, metric)
  // with labels 0..n-1.
  absl::Status Load(const std::string& path) override;

  size_t size() const override;
  size_t MemoryBytes() const override;
  const IndexSpec& spec() const override { return spec_; }
  IndexShape shape() const override {
    const auto nlist = static_cast<uint32_t>(lists_.size());
    return {IndexShape::Kind::kLists, 0, nlist, DefaultNprobe(nlist)};
  }
  // "IVF_FLAT(nlist=245)": the nlist in force.
  std::string Describe() const override;
  std::optional<SharedRows> shared_rows() const override;
  bool shares_rows() const override { return true; }

 private:
  // The FAISS index and a pointer per label into its lists: what a segment
  // reading its rows here holds (SharedRows::owner).
  struct Rows;
  // Points lists_/centroids_ into index_ after Build/Load.
  absl::Status Attach(std::unique_ptr<faiss::IndexIVFFlat> index);

  const IndexSpec spec_;
  const IvfFlatOptions options_;
  std::shared_ptr<const Rows> rows_;  // null until Build/Load succeeds
  const faiss::IndexIVFFlat* index_ = nullptr;  // rows_->index
  const float* centroids_ = nullptr;            // nlist * dim, owned by index_
  std::vector<ivf::CodeList> lists_;            // nlist, views into index_ (rows)
};

}  // namespace quiver::index

#endif  // QUIVER_INDEX_IVF_FLAT_INDEX_H_
