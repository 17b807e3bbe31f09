// FlatIndex: the FLAT kind of VectorIndex. Exact k-NN by brute force over
// its own copy of the vectors, block by block through ScanBlock
// (index/flat_search.h). It is the reference every ANN kind is measured
// against and the index of small segments.
//
// Build parameters: none. Search parameters: none (ef, nprobe are ignored).
// A LabelFilter turns into a per-block mask; without one no mask is built.
//
// Ownership: Build copies the vectors (n * dim floats) and keeps their
// squared norms (n floats).
// Thread-safety: as VectorIndex. Search runs BLAS on the calling thread only:
// it sets OpenMP's thread count of the calling thread to 1 for the duration
// of the call, so a single-query search never starts an OpenMP team.
// Errors: Build over 0 vectors is INVALID_ARGUMENT and an allocation failure
// RESOURCE_EXHAUSTED; Search/SaveTo before Build FAILED_PRECONDITION; Load
// reports a missing file as NOT_FOUND and a foreign, mismatched or truncated
// one as DATA_LOSS.
#ifndef QUIVER_INDEX_FLAT_INDEX_H_
#define QUIVER_INDEX_FLAT_INDEX_H_

#include <cstddef>
#include <string>
#include <vector>

#include "index/vector_index.h"

namespace quiver::index {

class FlatIndex final : public VectorIndex {
 public:
  // REQUIRES: spec passed ValidateIndexSpec and spec.type is "FLAT".
  explicit FlatIndex(IndexSpec spec);

  // INVALID_ARGUMENT if n == 0; RESOURCE_EXHAUSTED if the copy cannot be
  // allocated. `threads` is unused (copying is memory-bound).
  absl::Status Build(const float* vectors, size_t n, int threads,
                     const LabelFilter* rows = nullptr) override;
  // FAILED_PRECONDITION before Build/Load.
  absl::Status Search(const float* query, const SearchParams& params,
                      const LabelFilter* filter, TopK* out) const override;
  // File: a 32-byte header (magic "QVFLAT01", dim, similarity, n) and the
  // n * dim floats. INTERNAL on a write error. Does not fsync.
  absl::Status SaveTo(storage::WritableFile& out) const override;
  // NOT_FOUND if the file cannot be opened; DATA_LOSS if it is not a FLAT
  // file of this spec or its size does not match its header (truncated).
  absl::Status Load(const std::string& path) override;

  size_t size() const override { return n_; }
  size_t MemoryBytes() const override;
  const IndexSpec& spec() const override { return spec_; }
  IndexShape shape() const override { return {}; }
  std::string Describe() const override { return "FLAT"; }

 private:
  const IndexSpec spec_;
  size_t n_ = 0;
  std::vector<float> rows_;   // n_ * dim
  std::vector<float> norms_;  // n_: squared norms, used by kL2
};

}  // namespace quiver::index

#endif  // QUIVER_INDEX_FLAT_INDEX_H_
