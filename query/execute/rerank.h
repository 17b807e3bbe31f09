// RerankOp: exact distances for the candidates of a compressed index
// (SQ8, PQ, DISK), which ranks by estimated distances. Its child searches
// with k widened to k x refine (query/plan/segment_planner.h); this keeps
// the best k by exact distance, reading the candidates' full vectors from
// memory, or for DISK fields from the segment's rerank table.
//
// RerankQueue lets a search over many DISK segments overlap the reads with
// the next segments' candidate searches: a segment submits its reads and
// moves on; Finish waits for them and pushes the exact results. Within a
// segment, a batch of queries is searched in chunks of about kChunkReads
// records, each chunk's reads submitted before the next chunk is searched,
// so one batched request overlaps its reads with its own searches. It also
// admits only candidates still among the best k x refine estimates over the
// segments seen so far, so a search reads about k x refine records in all.
//
// Records the candidates reranked and the records read (explain's
// rerank_candidates and rerank_reads), and the plan line says in how many
// batches the reads were submitted.
//
// Ownership: RerankQueue owns its pending reads and the rerank tables they
// read; the TopKs and explain messages they fill are the caller's and must
// outlive Finish. Thread-safety: none; one queue per search. Errors: read
// errors from the rerank table (Finish returns the first).
#ifndef QUIVER_QUERY_EXECUTE_RERANK_H_
#define QUIVER_QUERY_EXECUTE_RERANK_H_

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "index/topk.h"
#include "query/execute/operator.h"
#include "query/plan/search_context.h"
#include "storage/rerank_table.h"

namespace quiver {

class RerankQueue {
 public:
  struct Pending {
    // Declared first, destroyed last: the read uses the table's file.
    std::shared_ptr<const storage::RerankTable> table;
    std::unique_ptr<storage::RerankRead> read;
    SearchContext ctx;  // the queries it reranks for (pointers the caller owns)
    const Segment* seg;
    size_t part;
    std::vector<std::vector<index::Neighbor>> cand;  // per query, read order
    index::TopK* topk;
    v1::SegmentPlan* plan;  // explain: the wait is added to its search time
  };
  void Add(Pending p) { pending_.push_back(std::move(p)); }
  // Batches of reads waiting for Finish. Each holds an io_uring ring (the
  // table's pool keeps 64), so a search stops splitting its reads into
  // chunks once this many wait.
  size_t pending() const { return pending_.size(); }
  static constexpr size_t kMaxPending = 32;
  // Which of query q's candidates from the next segment (best first, by
  // estimated distance) are worth reranking: those that would still be among
  // the best `keep` estimates over every segment seen so far. Returns how
  // many of the leading candidates to read.
  size_t Admit(size_t q, const std::vector<index::Neighbor>& cand, uint32_t keep);
  // Waits for every read and reranks; the first error, if any.
  absl::Status Finish();

 private:
  std::vector<Pending> pending_;
  std::vector<index::TopK> best_;  // per query: the best estimates so far
};

class RerankOp final : public Operator {
 public:
  using Operator::Operator;

  // How many records a chunk of a batch reads before the next chunk is
  // searched: enough to keep the device busy meanwhile, few enough that the
  // first reads start early. A segment splits a batch into at most
  // kMaxChunks chunks (larger ones for a large batch), and none once the
  // queue holds RerankQueue::kMaxPending batches of reads.
  static constexpr size_t kChunkReads = 64;
  static constexpr size_t kMaxChunks = 8;
  // Queries per chunk for a batch of nq queries of k candidates each.
  static size_t ChunkQueries(size_t nq, uint32_t k) {
    return std::max<size_t>({1, kChunkReads / std::max<uint32_t>(k, 1),
                             (nq + kMaxChunks - 1) / kMaxChunks});
  }

 protected:
  absl::Status Execute(SegmentRun& run, index::TopK* topk) override;
  std::string Describe(const SegmentRun& run) const override;

 private:
  // Candidates of run's queries (the batch's from `first` on) from the
  // child, reranked from memory or from `table`.
  absl::Status RerankQueries(SegmentRun& run,
                             const std::shared_ptr<const storage::RerankTable>& table,
                             size_t first, index::TopK* topk);

  bool from_table_ = false;
  uint64_t submits_ = 0;  // batches of reads submitted to the table
};

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_RERANK_H_
