#include "query/execute/exact_scan.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "index/flat_search.h"
#include "query/execute/row_set.h"

namespace quiver {
namespace {

// Exact distances from every query to the rows of `set` (or to every
// visible row when set is null), pushed into topk. Chunks with no member
// are skipped; sparse chunks go row by row inside ScanBlock.
absl::Status ExactOverRows(const SearchContext& ctx, const Segment& seg, uint32_t rows,
                           uint64_t seq, size_t part, const RowSet* set, index::TopK* topk,
                           uint64_t* distances) {
  index::QueryBatch qb;
  qb.vectors = ctx.queries;
  qb.norms_sqr = ctx.qnorms;
  qb.nq = ctx.nq;
  qb.dim = ctx.dim;
  qb.similarity = ctx.similarity;
  thread_local std::vector<float> scratch;
  // Rows with a pointer each (read in IVF_FLAT's lists) are copied into
  // one block per chunk for the scan, which takes strided blocks.
  thread_local std::vector<float> gathered;
  uint8_t mask[Segment::kMaxChunkRows];
  const uint32_t chunk_rows = seg.chunk_rows();
  const bool any_dead = !seg.AllSearchable(ctx.field);
  for (uint32_t first = 0; first < rows; first += chunk_rows) {
    QUIVER_RETURN_IF_ERROR(ctx.stop.Check());
    const uint32_t n = std::min(chunk_rows, rows - first);
    size_t passing = 0;
    if (set != nullptr) {
      // Chunks are whole 64-row words (chunk_rows is a power of two >= 16;
      // below 64 a word spans chunks, so test bit by bit).
      bool any = chunk_rows < 64;
      for (uint32_t w = first / 64; !any && w < (first + n + 63) / 64; ++w) any = set->words()[w] != 0;
      if (!any) continue;
      for (uint32_t i = 0; i < n; ++i) {
        const bool keep = set->Test(first + i);
        mask[i] = keep;
        passing += keep;
      }
    } else {
      for (uint32_t i = 0; i < n; ++i) {
        const bool keep = !any_dead || seg.VisibleWith(ctx.field, first + i, seq);
        mask[i] = keep;
        passing += keep;
      }
    }
    if (passing == 0) continue;
    index::Block block;
    const Segment::RowBlock rows = seg.chunk_vectors(ctx.field, first);
    block.rows = rows.rows;
    block.stride = rows.stride;
    if (rows.rows == nullptr) {
      gathered.resize(static_cast<size_t>(n) * ctx.dim);
      for (uint32_t i = 0; i < n; ++i) {
        // Rows the mask drops are left as they are: the scan skips them.
        if (passing < n && mask[i] == 0) continue;
        std::memcpy(gathered.data() + static_cast<size_t>(i) * ctx.dim,
                    seg.vector(ctx.field, first + i), ctx.dim * sizeof(float));
      }
      block.rows = gathered.data();
      block.stride = ctx.dim;
    }
    block.norms_sqr = seg.chunk_norms(ctx.field, first);
    block.n = n;
    block.first_id = HitId(part, first);
    block.mask = passing == n ? nullptr : mask;
    block.passing = passing;
    *distances += passing * ctx.nq;
    index::ScanBlock(qb, block, topk, &scratch);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ExactScanOp::Execute(SegmentRun& run, index::TopK* topk) {
  QUIVER_RETURN_IF_ERROR(EnsureRowSet(run, rowset()));
  const RowSet* set = rowset() != nullptr ? &run.set : nullptr;
  const uint64_t before = stats_.distances;
  QUIVER_RETURN_IF_ERROR(
      ExactOverRows(run.ctx, run.seg, run.rows, run.seq, run.part, set, topk, &stats_.distances));
  stats_.rows_in += (stats_.distances - before) / std::max<size_t>(run.ctx.nq, 1);
  return absl::OkStatus();
}

absl::Status ExactScanOp::ExecuteOne(SegmentRun& run, size_t q, index::TopK* out) {
  QUIVER_RETURN_IF_ERROR(EnsureRowSet(run, rowset()));
  SearchContext one = run.ctx;
  one.queries = run.ctx.queries + q * run.ctx.dim;
  one.qnorms = run.ctx.qnorms + q;
  one.nq = 1;
  const uint64_t before = stats_.distances;
  QUIVER_RETURN_IF_ERROR(ExactOverRows(one, run.seg, run.rows, run.seq, run.part,
                                       rowset() != nullptr ? &run.set : nullptr, out,
                                       &stats_.distances));
  stats_.rows_in += stats_.distances - before;
  return absl::OkStatus();
}

std::string ExactScanOp::Describe(const SegmentRun& run) const {
  if (rowset() == nullptr) {
    return absl::StrCat("ExactScan(", BatchText(run), ", rows=", run.rows, ")");
  }
  return absl::StrCat("ExactScan(", BatchText(run), ", rows=", rowset()->stats().rows_out,
                      " of ", run.rows, ")");
}

}  // namespace quiver
