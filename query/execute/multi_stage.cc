// Multi-stage search (a bound SearchRequest.stages): the stages' exact
// scoring of candidates, field by field. SearchHybrid (hybrid.cc) runs the
// stages over its fused candidates through RescoreOp.
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "index/kernels.h"
#include "index/maxsim.h"
#include "query/collection.h"
#include "query/execute/operator.h"
#include "query/execute/sparse_search.h"

namespace quiver {

absl::Status Collection::ScoreCandidates(const View& view, const BoundFieldQuery& q,
                                         const StopToken& stop, const std::vector<uint64_t>& ids,
                                         std::vector<float>* dist, std::vector<uint8_t>* present,
                                         OpStats* stats) const {
  // Each scorer returns false for a row lacking the field. Scores are
  // negated similarities or distances, as the searches' heaps hold them.
  auto for_each = [&](auto score_row) -> absl::Status {
    for (size_t i = 0; i < ids.size(); ++i) {
      if ((i & 1023) == 0 && i > 0) QUIVER_RETURN_IF_ERROR(stop.Check());
      const size_t part = static_cast<size_t>(ids[i] >> 32);
      const uint32_t off = static_cast<uint32_t>(ids[i]);
      const Segment& seg = *view.parts[part].segment;
      float d = 0;
      if (score_row(seg, off, &d)) {
        (*dist)[i] = d;
        (*present)[i] = 1;
        ++stats->distances;
      }
    }
    return absl::OkStatus();
  };
  if (q.text_attr >= 0) {
    const size_t a = static_cast<size_t>(q.text_attr);
    SparseScoring scoring;
    const std::vector<std::vector<SparseTerm>> terms =
        TextQueryTerms(q.text_attr, {q.text}, &scoring);
    const Bm25Term bm25(scoring);
    return for_each([&](const Segment& seg, uint32_t off, float* d) {
      const text::Analyzer::TermCounts* doc = TextAt(seg.text(off), a);
      if (doc == nullptr) return false;
      float total = 0;  // 0 when no term is shared: the point still has text
      ScoreTextRow(terms[0], *doc, bm25, &total);
      *d = -total;
      return true;
    });
  }
  if (q.sparse_field >= 0) {
    const size_t s = static_cast<size_t>(q.sparse_field);
    const SparseValue query = SparseQueriesFor(q.sparse_field, {q.sparse})[0];
    return for_each([&](const Segment& seg, uint32_t off, float* d) {
      const SparseVector* v = SparseAt(seg.sparse(off), s);
      if (v == nullptr) return false;
      bool overlap = false;
      *d = -SparseDot(*query, *v, &overlap);
      return true;
    });
  }
  const size_t f = static_cast<size_t>(q.field);
  const VectorFieldSpec& spec = schema().vectors()[f];
  if (spec.multi) {
    // Token vectors from memory or, for a DISK field, its mapped rerank
    // table (the view's pin keeps either alive).
    const index::MaxSimQuery query{
        q.sets[0].data, q.sets[0].count, spec.dim,
        spec.metric == Metric::kL2 ? index::Similarity::kL2 : index::Similarity::kInnerProduct};
    index::MaxSimScratch scratch;
    return for_each([&](const Segment& seg, uint32_t off, float* d) {
      if (seg.LacksField(f)) return false;
      const TokenSet t = seg.tokens(f, off);
      if (t.count == 0) return false;
      *d = index::MaxSimDistance(query, t.data, t.count, &scratch);
      return true;
    });
  }
  // Full-precision vectors (memory, or a DISK field's mapped rerank
  // table), whatever the field's index compresses; the kernels exact
  // scans of few rows use.
  const index::KernelTable& kernels = index::ActiveKernels();
  const float* qv = q.queries.data();
  const bool l2 = spec.metric == Metric::kL2;
  return for_each([&](const Segment& seg, uint32_t off, float* d) {
    if (seg.LacksField(f) || !seg.HasVector(f, off)) return false;
    const float* row = seg.vector(f, off);
    *d = l2 ? kernels.l2sqr(qv, row, spec.dim) : -kernels.dot(qv, row, spec.dim);
    return true;
  });
}

std::string Collection::StageScoring(const BoundFieldQuery& q) const {
  if (q.text_attr >= 0) {
    const AttributeSpec& spec = schema().attributes()[q.text_attr];
    return absl::StrCat("BM25(k1=", spec.text_spec.k1, ", b=", spec.text_spec.b, ")");
  }
  if (q.sparse_field >= 0) {
    return schema().sparse()[q.sparse_field].idf ? "dot product, IDF-weighted query"
                                                  : "dot product";
  }
  const VectorFieldSpec& spec = schema().vectors()[q.field];
  if (spec.multi) return absl::StrCat("exact MaxSim (", std::string(MetricName(spec.metric)), ")");
  return absl::StrCat("exact ", std::string(MetricName(spec.metric)), ", full-precision vectors");
}

}  // namespace quiver
