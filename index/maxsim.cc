#include "index/maxsim.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include <cblas.h>

#include "index/distance.h"
#include "index/kernels.h"
#include "index/omp_threads.h"

namespace quiver::index {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Scores `ndocs` documents whose vectors are the `rows` x dim floats at
// `tokens`; document i is rows bounds[i] - bounds[0] .. bounds[i+1] -
// bounds[0] - 1. One sgemm for the whole block.
void ScoreBlock(const MaxSimQuery& q, const float* query_norms, const float* tokens,
                const uint64_t* bounds, size_t ndocs, float* out, MaxSimScratch* s) {
  const size_t dim = q.dim;
  const size_t rows = bounds[ndocs] - bounds[0];
  if (q.n == 0 || rows == 0) {
    for (size_t i = 0; i < ndocs; ++i) out[i] = bounds[i + 1] > bounds[i] ? 0.0f : kInf;
    return;
  }
  s->products.resize(q.n * rows);
  float* ip = s->products.data();
  // ip (query vectors x rows) = Q (nq x dim) * T^T (dim x rows)
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(q.n),
              static_cast<int>(rows), static_cast<int>(dim), 1.0f, q.vectors,
              static_cast<int>(dim), tokens, static_cast<int>(dim), 0.0f, ip,
              static_cast<int>(rows));
  const bool l2 = q.similarity == Similarity::kL2;
  const float* norms = nullptr;
  if (l2) {
    s->norms.resize(rows);
    const auto dot = ActiveKernels().dot;
    for (size_t j = 0; j < rows; ++j) s->norms[j] = dot(tokens + j * dim, tokens + j * dim, dim);
    norms = s->norms.data();
  }
  for (size_t i = 0; i < ndocs; ++i) {
    const size_t a = bounds[i] - bounds[0];
    const size_t b = bounds[i + 1] - bounds[0];
    if (a == b) {
      out[i] = kInf;
      continue;
    }
    float total = 0.0f;
    if (l2) {
      for (size_t k = 0; k < q.n; ++k) {
        const float* row = ip + k * rows;
        float best = kInf;
        for (size_t j = a; j < b; ++j) best = std::min(best, norms[j] - 2.0f * row[j]);
        total += std::max(0.0f, query_norms[k] + best);
      }
    } else {
      for (size_t k = 0; k < q.n; ++k) {
        const float* row = ip + k * rows;
        float best = -kInf;
        for (size_t j = a; j < b; ++j) best = std::max(best, row[j]);
        total += best;
      }
      total = -total;
    }
    out[i] = total;
  }
}

const float* QueryNorms(const MaxSimQuery& q, MaxSimScratch* s) {
  if (q.similarity != Similarity::kL2) return nullptr;
  s->query_norms.resize(q.n);
  for (size_t k = 0; k < q.n; ++k) s->query_norms[k] = NormSqr(q.vectors + k * q.dim, q.dim);
  return s->query_norms.data();
}

// One past the last document of the block starting at `first`: as many
// documents as fit in kMaxSimBlockVectors vectors, at least one.
size_t BlockEnd(const uint64_t* offsets, size_t first, size_t end) {
  size_t last = first + 1;
  while (last < end && offsets[last + 1] - offsets[first] <= kMaxSimBlockVectors) ++last;
  return last;
}

}  // namespace

float MaxSimDistance(const MaxSimQuery& query, const float* doc, size_t nd,
                     MaxSimScratch* scratch) {
  ScopedOmpThreads one_thread(1);  // see the header
  MaxSimScratch local;
  MaxSimScratch* s = scratch != nullptr ? scratch : &local;
  const uint64_t bounds[2] = {0, nd};
  float out;
  ScoreBlock(query, QueryNorms(query, s), doc, bounds, 1, &out, s);
  return out;
}

void MaxSimDistances(const MaxSimQuery& query, const MultiVectorDocs& docs, size_t first,
                     size_t count, float* out, MaxSimScratch* scratch) {
  ScopedOmpThreads one_thread(1);  // see the header
  MaxSimScratch local;
  if (scratch == nullptr) scratch = &local;
  const float* qn = QueryNorms(query, scratch);
  const size_t end = first + count;
  for (size_t i = first; i < end;) {
    const size_t stop = BlockEnd(docs.offsets, i, end);
    ScoreBlock(query, qn, docs.vectors + docs.offsets[i] * docs.dim, docs.offsets + i, stop - i,
               out + (i - first), scratch);
    i = stop;
  }
}

void MaxSimDistancesOf(const MaxSimQuery& query, const MultiVectorDocs& docs,
                       const uint64_t* ids, size_t count, float* out, MaxSimScratch* scratch) {
  ScopedOmpThreads one_thread(1);  // see the header
  MaxSimScratch local;
  if (scratch == nullptr) scratch = &local;
  const float* qn = QueryNorms(query, scratch);
  const size_t dim = docs.dim;
  std::vector<float>& gathered = scratch->gathered;
  std::vector<uint64_t>& bounds = scratch->bounds;
  for (size_t i = 0; i < count;) {
    // Copy candidates' vectors into one contiguous block, so the block is
    // one sgemm as in MaxSimDistances.
    bounds.assign(1, 0);
    size_t stop = i;
    do {
      const uint64_t id = ids[stop];
      const size_t nv = docs.offsets[id + 1] - docs.offsets[id];
      const size_t at = bounds.back();
      gathered.resize((at + nv) * dim);
      std::memcpy(gathered.data() + at * dim, docs.vectors + docs.offsets[id] * dim,
                  nv * dim * sizeof(float));
      bounds.push_back(at + nv);
      ++stop;
    } while (stop < count &&
             bounds.back() + (docs.offsets[ids[stop] + 1] - docs.offsets[ids[stop]]) <=
                 kMaxSimBlockVectors);
    ScoreBlock(query, qn, gathered.data(), bounds.data(), stop - i, out + i, scratch);
    i = stop;
  }
}

void MaxSimScan(const MaxSimQuery& query, const MultiVectorDocs& docs, uint64_t first_id,
                TopK* topk, MaxSimScratch* scratch) {
  ScopedOmpThreads one_thread(1);  // see the header
  MaxSimScratch local;
  if (scratch == nullptr) scratch = &local;
  constexpr size_t kChunk = 4096;  // documents per MaxSimDistances call
  float distances[kChunk];
  for (size_t i = 0; i < docs.n; i += kChunk) {
    const size_t m = std::min(kChunk, docs.n - i);
    MaxSimDistances(query, docs, i, m, distances, scratch);
    for (size_t j = 0; j < m; ++j) {
      if (distances[j] <= topk->threshold()) topk->Push(distances[j], first_id + i + j);
    }
  }
}

std::vector<Neighbor> MaxSimTopK(const MaxSimQuery& query, const MultiVectorDocs& docs,
                                 size_t k, MaxSimScratch* scratch) {
  TopK topk(k);
  MaxSimScan(query, docs, 0, &topk, scratch);
  return topk.Take();
}

}  // namespace quiver::index
