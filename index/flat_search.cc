#include "index/flat_search.h"

#include <algorithm>
#include <atomic>
#include <string>

#include <cblas.h>
#include <omp.h>

#include "index/kernels.h"

// Declared weak so a binary linked against reference BLAS still starts and
// can say so (OpenBLAS defines these; reference BLAS does not).
extern "C" {
char* openblas_get_config(void) __attribute__((weak));
void openblas_set_num_threads(int) __attribute__((weak));
}

namespace quiver::index {
namespace {

// Below this share of kept rows, per-row kernels beat a full matrix product:
// for one query both are bound by memory, so reading only the kept rows wins
// until most are kept; a batch reuses each row across queries in the matrix
// product, so per-row kernels win only on sparse blocks.
bool SparseWins(size_t kept, size_t n, size_t nq) {
  return nq < 4 ? kept * 5 < n * 4 : kept * 4 < n;
}
// Queries per BLAS call: bounds the scratch matrix (256 x block rows).
constexpr size_t kQueryTile = 256;

// OpenMP's thread count is per thread and OpenBLAS follows the caller's, so
// the configured count must be applied on every thread that scans (gRPC's
// threads are not the one that read the configuration).
std::atomic<int> g_blas_threads{1};

void ApplyBlasThreadsHere() {
  thread_local int applied = 0;
  const int want = g_blas_threads.load(std::memory_order_relaxed);
  if (applied != want) {
    omp_set_num_threads(want);
    applied = want;
  }
}

}  // namespace

void ScanBlock(const QueryBatch& q, const Block& b, TopK* topk,
               std::vector<float>* scratch) {
  if (b.n == 0 || (b.mask != nullptr && b.passing == 0)) return;
  ApplyBlasThreadsHere();
  const bool l2 = q.similarity == Similarity::kL2;
  const size_t dim = q.dim;
  const size_t ld = b.stride != 0 ? b.stride : dim;

  if (b.mask != nullptr && SparseWins(b.passing, b.n, q.nq)) {
    // Kept rows are scattered, so the hardware prefetcher starts on each
    // one late; the next kept row is fetched while this one is computed.
    auto next_kept = [&](size_t from) {
      while (from < b.n && !b.mask[from]) ++from;
      return from;
    };
    const size_t row_bytes = dim * sizeof(float);
    const KernelTable& k = ActiveKernels();  // once per block, not per row
    for (size_t i = next_kept(0); i < b.n;) {
      const size_t next = next_kept(i + 1);
      if (next < b.n) {
        const char* p = reinterpret_cast<const char*>(b.rows + next * ld);
        for (size_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(p + off);
      }
      const float* row = b.rows + i * ld;
      for (size_t j = 0; j < q.nq; ++j) {
        const float* v = q.vectors + j * dim;
        const float d = l2 ? k.l2sqr(v, row, dim) : -k.dot(v, row, dim);
        topk[j].Push(d, b.first_id + i);
      }
      i = next;
    }
    return;
  }

  for (size_t q0 = 0; q0 < q.nq; q0 += kQueryTile) {
    const size_t m = std::min(kQueryTile, q.nq - q0);
    scratch->resize(m * b.n);
    float* ip = scratch->data();
    if (m == 1) {
      cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(b.n), static_cast<int>(dim),
                  1.0f, b.rows, static_cast<int>(ld), q.vectors + q0 * dim, 1, 0.0f, ip, 1);
    } else {
      // ip (m x n) = Q (m x dim) * R^T (dim x n)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m),
                  static_cast<int>(b.n), static_cast<int>(dim), 1.0f, q.vectors + q0 * dim,
                  static_cast<int>(dim), b.rows, static_cast<int>(ld), 0.0f, ip,
                  static_cast<int>(b.n));
    }
    for (size_t j = 0; j < m; ++j) {
      const float* row_ip = ip + j * b.n;
      TopK& heap = topk[q0 + j];
      const float qn = l2 ? q.norms_sqr[q0 + j] : 0.0f;
      for (size_t i = 0; i < b.n; ++i) {
        if (b.mask != nullptr && !b.mask[i]) continue;
        // Same expansion as FAISS: |q|^2 + |r|^2 - 2<q,r>, clamped at 0
        // because rounding can take it slightly negative.
        const float d = l2 ? std::max(0.0f, qn + b.norms_sqr[i] - 2.0f * row_ip[i]) : -row_ip[i];
        if (d <= heap.threshold()) heap.Push(d, b.first_id + i);
      }
    }
  }
}

int SetBlasThreads(int n) {
  if (n < 1) n = 1;
  g_blas_threads.store(n, std::memory_order_relaxed);
  omp_set_num_threads(n);
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(n);
  return n;
}

std::string BlasDescription() {
  if (openblas_get_config != nullptr) return std::string("OpenBLAS ") + openblas_get_config();
  return "reference BLAS (slow: install libopenblas0-openmp)";
}

}  // namespace quiver::index
