// Exact MaxSim (late-interaction) scoring of a query's vector set against
// documents' vector sets: the reference MUVERA candidates are measured
// against, and the kernel that reranks them.
//
// Scores are returned as distances in the convention of
// index/flat_search.h, lower is better:
//   kInnerProduct (IP; COSINE over normalized vectors):
//       distance = -sum_q max_d <q, d>   (the negated Chamfer similarity)
//   kL2:
//       distance =  sum_q min_d |q - d|^2
// A document with no vectors is at +infinity; a query with no vectors is at
// 0 from every non-empty document.
//
// Many documents are scored in blocks of about kMaxSimBlockVectors token
// vectors: one BLAS sgemm per block gives every query-token inner product
// (L2 adds the norms: |q|^2 + |d|^2 - 2<q,d>, clamped at 0), then a max (min)
// per document and query vector. Each call runs on the calling thread only
// (BLAS set to one thread for its duration): a block's product is ~2 MFLOP,
// too small to split, and on a busy machine OpenBLAS waiting for its second
// thread made scoring over 10x slower. Use more cores by scoring different
// documents (or queries) on different threads.
//
// Measured (bench/muvera_tune, Fashion patch sets: 16 x 65 query, documents
// of 16 x 65, 1 thread, OpenBLAS Haswell kernels, shared 2-core machine):
// ~550 us per 1,000 contiguous documents (~60 GFLOP/s, close to one core's
// sgemm peak), so brute force over 60,000 documents ~33 ms = ~30 QPS;
// reranking 1,000 scattered candidates (MaxSimDistancesOf) ~550 us.
//
// Thread-safety: the functions are reentrant; each call writes only its
// output and the scratch it is given (one MaxSimScratch per thread).
// The functions do not fail (their preconditions are the REQUIRES below);
// inputs are caller-owned and only read.
#ifndef QUIVER_INDEX_MAXSIM_H_
#define QUIVER_INDEX_MAXSIM_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "index/flat_search.h"
#include "index/topk.h"

namespace quiver::index {

// A query's vector set. Not owned.
struct MaxSimQuery {
  const float* vectors = nullptr;  // n * dim, row-major
  size_t n = 0;
  size_t dim = 0;
  Similarity similarity = Similarity::kInnerProduct;
};

// Documents' vector sets back to back, in the layout of a multi-vector
// rerank table (storage/rerank_table.h): document i's vectors are rows
// offsets[i] .. offsets[i+1]-1 of `vectors`. Not owned.
struct MultiVectorDocs {
  const float* vectors = nullptr;     // offsets[n] * dim floats
  const uint64_t* offsets = nullptr;  // n + 1 entries, non-decreasing
  size_t n = 0;
  size_t dim = 0;
};

// Token vectors per sgemm block: the product matrix (query vectors x block
// vectors floats) stays in L2 cache for queries of up to ~32 vectors.
inline constexpr size_t kMaxSimBlockVectors = 1024;

// Reused between calls so that scoring allocates nothing once warm. Every
// function below also takes nullptr (and then allocates its own).
struct MaxSimScratch {
  std::vector<float> products;     // query vectors x block vectors
  std::vector<float> gathered;     // MaxSimDistancesOf: candidates' vectors
  std::vector<uint64_t> bounds;    // MaxSimDistancesOf: their offsets
  std::vector<float> norms;        // kL2: squared norms of block vectors
  std::vector<float> query_norms;  // kL2
};

// Distance of one document of `nd` vectors (nd * query.dim floats).
float MaxSimDistance(const MaxSimQuery& query, const float* doc, size_t nd,
                     MaxSimScratch* scratch = nullptr);

// out[i] = distance of document first + i, for i < count.
// REQUIRES: first + count <= docs.n, docs.dim == query.dim.
void MaxSimDistances(const MaxSimQuery& query, const MultiVectorDocs& docs, size_t first,
                     size_t count, float* out, MaxSimScratch* scratch = nullptr);

// out[i] = distance of document ids[i], for i < count (the rerank of a
// candidate list; ids in any order, repeats allowed).
// REQUIRES: ids[i] < docs.n, docs.dim == query.dim.
void MaxSimDistancesOf(const MaxSimQuery& query, const MultiVectorDocs& docs,
                       const uint64_t* ids, size_t count, float* out,
                       MaxSimScratch* scratch = nullptr);

// Exact brute force: pushes every document i as (distance, first_id + i)
// into `topk`, so several segments can share one TopK.
void MaxSimScan(const MaxSimQuery& query, const MultiVectorDocs& docs, uint64_t first_id,
                TopK* topk, MaxSimScratch* scratch = nullptr);

// The k nearest documents (ids are document indexes), best first.
std::vector<Neighbor> MaxSimTopK(const MaxSimQuery& query, const MultiVectorDocs& docs,
                                 size_t k, MaxSimScratch* scratch = nullptr);

}  // namespace quiver::index

#endif  // QUIVER_INDEX_MAXSIM_H_
