// Exact (brute-force) k-NN over blocks of row-major float vectors: the FLAT
// index's kernel and the reference every ANN index is measured against.
//
// Large blocks go through BLAS (OpenBLAS sgemm/sgemv, as FAISS does), so a
// batch of queries costs one matrix product per block; blocks where a mask
// leaves few rows are scanned row by row instead.
//
// Thread-safety: the functions are reentrant; each call writes only the
// TopK objects and scratch space it is given. The functions do not fail;
// vectors, masks and queries are caller-owned and only read.
#ifndef QUIVER_INDEX_FLAT_SEARCH_H_
#define QUIVER_INDEX_FLAT_SEARCH_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "index/topk.h"

namespace quiver::index {

// L2 ranks by squared Euclidean distance; kInnerProduct by -dot (COSINE is
// kInnerProduct over normalized vectors).
enum class Similarity { kL2, kInnerProduct };

struct QueryBatch {
  const float* vectors = nullptr;      // nq * dim
  const float* norms_sqr = nullptr;    // nq, needed for kL2
  size_t nq = 0;
  size_t dim = 0;
  Similarity similarity = Similarity::kL2;
};

struct Block {
  const float* rows = nullptr;       // row i at rows + i * stride
  const float* norms_sqr = nullptr;  // n, needed for kL2
  size_t n = 0;
  uint64_t first_id = 0;             // id of rows[0]; rows are consecutive
  // Optional: mask[i] != 0 keeps row i. `passing` = number of set entries.
  const uint8_t* mask = nullptr;
  size_t passing = 0;
  // Floats from one row to the next (0: dim, rows packed). Wider when the
  // rows are records of a larger structure (an HNSW level-0 block).
  size_t stride = 0;
};

// Pushes every kept row of `block` into topk[q] for each query q (topk has
// nq entries). `scratch` is reused between calls to avoid allocation.
void ScanBlock(const QueryBatch& queries, const Block& block, TopK* topk,
               std::vector<float>* scratch);

// Sets the number of threads BLAS may use per call (OpenMP), for every
// thread that scans from now on (each applies it before its next scan).
// Returns the value in force.
int SetBlasThreads(int n);
// "OpenBLAS 0.3.21 ..." or a warning that reference BLAS is in use.
std::string BlasDescription();

}  // namespace quiver::index

#endif  // QUIVER_INDEX_FLAT_SEARCH_H_
