#include "query/execute/rerank.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "index/distance.h"
#include "quiver/v1/search.pb.h"

namespace quiver {
namespace {

// Exact distance (lower is better) between a query and a stored vector.
inline float ExactDistance(index::Similarity sim, const float* q, const float* v, size_t dim) {
  return sim == index::Similarity::kL2 ? index::L2Sqr(q, v, dim) : -index::Dot(q, v, dim);
}

// Pushes the best ctx.k of each query's candidates, by exact distance, into
// topk. `read->record(i)` is the vector of the i-th candidate over all
// queries in order (read in place in the read's buffer), or with no read the
// segment has it.
void PushExact(const SearchContext& ctx, const Segment& seg, size_t part,
               const std::vector<std::vector<index::Neighbor>>& cand,
               const storage::RerankRead* read, index::TopK* topk) {
  size_t i = 0;
  for (size_t q = 0; q < cand.size(); ++q) {
    const float* query = ctx.queries + q * ctx.dim;
    for (const index::Neighbor& nb : cand[q]) {
      const uint32_t off = static_cast<uint32_t>(nb.id & 0xffffffffu);
      const float* v = read != nullptr ? read->record(i) : seg.vector(ctx.field, off);
      topk[q].Push(ExactDistance(ctx.similarity, query, v, ctx.dim), HitId(part, off));
      ++i;
    }
  }
}

}  // namespace

size_t RerankQueue::Admit(size_t q, const std::vector<index::Neighbor>& cand, uint32_t keep) {
  if (best_.size() <= q) best_.resize(q + 1, index::TopK(keep));
  index::TopK& best = best_[q];
  size_t n = 0;
  for (const index::Neighbor& nb : cand) {
    if (best.size() >= best.k() && !(nb.distance < best.threshold())) break;
    best.Push(nb.distance, nb.id);
    ++n;
  }
  return n;
}

absl::Status RerankQueue::Finish() {
  absl::Status status;
  for (Pending& p : pending_) {
    const Stopwatch watch;
    absl::Status s = p.read->Wait();
    if (s.ok()) PushExact(p.ctx, *p.seg, p.part, p.cand, p.read.get(), p.topk);
    if (p.plan != nullptr) {
      p.plan->set_search_micros(p.plan->search_micros() + watch.Micros());
    }
    if (status.ok()) status = s;
  }
  pending_.clear();
  return status;
}

absl::Status RerankOp::Execute(SegmentRun& run, index::TopK* topk) {
  const SearchContext& wide = run.ctx;
  std::shared_ptr<const storage::RerankTable> table = run.seg.table(wide.field);
  // A multi-vector field's table holds its vector sets, not the encodings
  // this index ranks: those stay in memory.
  if (table != nullptr && table->multi()) table = nullptr;
  // Chunks only pay where reads can wait in the queue while later queries
  // are searched.
  const size_t chunk = table != nullptr && wide.rerank != nullptr
                           ? ChunkQueries(wide.nq, wide.k)
                           : wide.nq;
  if (chunk >= wide.nq) return RerankQueries(run, table, 0, topk);
  for (size_t q0 = 0; q0 < wide.nq;) {
    SearchContext part = wide;
    part.queries += q0 * wide.dim;
    if (part.qnorms != nullptr) part.qnorms += q0;
    // With the queue full, the rest of the batch goes in one chunk.
    part.nq = wide.rerank->pending() + 1 >= RerankQueue::kMaxPending
                  ? wide.nq - q0
                  : std::min(chunk, wide.nq - q0);
    SegmentRun sub(run, part);
    // The filter's row set, once a chunk made it, serves every chunk.
    std::swap(sub.set, run.set);
    sub.have_set = run.have_set;
    const absl::Status status = RerankQueries(sub, table, q0, topk + q0);
    std::swap(sub.set, run.set);
    run.have_set = sub.have_set;
    QUIVER_RETURN_IF_ERROR(status);
    q0 += part.nq;
  }
  return absl::OkStatus();
}

absl::Status RerankOp::RerankQueries(SegmentRun& run,
                                     const std::shared_ptr<const storage::RerankTable>& table,
                                     size_t first, index::TopK* topk) {
  const SearchContext& wide = run.ctx;
  std::vector<index::TopK> found(wide.nq, index::TopK(wide.k));
  QUIVER_RETURN_IF_ERROR(child(0)->Run(run, found.data()));
  std::vector<std::vector<index::Neighbor>> cand(wide.nq);
  for (size_t q = 0; q < wide.nq; ++q) cand[q] = found[q].Take();
  // Only candidates still among the best k x refine estimates over the
  // segments seen so far are reranked (in memory and on disk alike, so both
  // give the same answers).
  size_t total = 0;
  for (size_t q = 0; q < wide.nq; ++q) {
    if (wide.rerank != nullptr) {
      cand[q].resize(wide.rerank->Admit(first + q, cand[q], wide.k));
    }
    total += cand[q].size();
  }
  stats_.rows_in += total;
  if (table == nullptr) {
    PushExact(wide, run.seg, run.part, cand, nullptr, topk);
    return absl::OkStatus();
  }
  // DISK: read the candidates' full vectors from the rerank table, all of
  // these queries' at once. With a queue, the reads complete while the next
  // chunks and segments generate their candidates (ESPN-style prefetching).
  from_table_ = true;
  std::vector<uint64_t> rows_to_read;
  rows_to_read.reserve(total);
  for (const auto& c : cand) {
    for (const index::Neighbor& nb : c) rows_to_read.push_back(nb.id & 0xffffffffu);
  }
  uint64_t reads = 0;
  QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<storage::RerankRead> read,
                          table->Submit(rows_to_read, &reads));
  stats_.reads += reads;
  ++submits_;
  if (wide.rerank != nullptr) {
    wide.rerank->Add({table, std::move(read), wide, &run.seg, run.part, std::move(cand), topk,
                      run.explain});
    return absl::OkStatus();
  }
  QUIVER_RETURN_IF_ERROR(read->Wait());
  PushExact(wide, run.seg, run.part, cand, read.get(), topk);
  return absl::OkStatus();
}

std::string RerankOp::Describe(const SegmentRun& run) const {
  return absl::StrCat("Rerank(exact distances, k=", node().k, ", candidates=", stats_.rows_in,
                      " (k x ", node().fetch / std::max(1u, node().k), "), from ",
                      from_table_ ? "rerank table" : "memory",
                      stats_.reads ? absl::StrCat(", reads=", stats_.reads) : "",
                      submits_ > 1 ? absl::StrCat(" in ", submits_, " batches") : "", ")");
}

}  // namespace quiver
