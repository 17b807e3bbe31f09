#include "query/bind/binder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/truncate.h"
#include "index/distance.h"
#include "query/bind/request_checks.h"
#include "query/filter/ast.h"
#include "query/bind/wire_schema.h"

namespace quiver {

namespace bind {
namespace {

// Checks nq query vectors of `field` and copies them (normalized for
// COSINE) with their squared norms; errors name them `what` (+ " <i>" if
// numbered).
absl::Status PrepareQueries(const VectorFieldSpec& field, const v1::Vector* const* vectors,
                            size_t nq, absl::string_view what, bool numbered,
                            std::vector<float>* queries, std::vector<float>* qnorms) {
  const size_t dim = field.dim;
  queries->resize(nq * dim);
  qnorms->resize(nq);
  for (size_t q = 0; q < nq; ++q) {
    const auto& v = vectors[q]->values();
    QUIVER_RETURN_IF_ERROR(CheckVector(
        v, field.dim, field.metric, numbered ? absl::StrCat(what, " ", q) : std::string(what)));
    float* dst = queries->data() + q * dim;
    if (field.metric == Metric::kCosine) Normalize(v.data(), dst, dim);
    else std::memcpy(dst, v.data(), dim * sizeof(float));
    (*qnorms)[q] = index::NormSqr(dst, dim);
  }
  return absl::OkStatus();
}

absl::Status CompileFilter(const BindTarget& t, const std::string& expr,
                           std::shared_ptr<const filter::Filter>* out, size_t* bytes) {
  if (bytes != nullptr) *bytes = expr.size();
  if (expr.empty()) return absl::OkStatus();
  QUIVER_ASSIGN_OR_RETURN(*out, filter::Filter::Compile(expr, t.schema));
  return absl::OkStatus();
}

FilterStrategy StrategyOf(v1::FilterStrategy s) {
  switch (s) {
    case v1::PRE_FILTER: return FilterStrategy::kPreFilter;
    case v1::FILTERED_INDEX: return FilterStrategy::kFilteredIndex;
    case v1::POST_FILTER: return FilterStrategy::kPostFilter;
    case v1::WINDOW_FILTER: return FilterStrategy::kWindow;
    default: return FilterStrategy::kAuto;  // AUTO, and values this version does not know
  }
}

// target_recall is calibrated for single-vector fields' indexes and for
// multi-vector fields searched through MUVERA encodings.
absl::Status RefuseTargetRecall(const BoundSearchParams& p, absl::string_view what,
                                absl::string_view kind) {
  if (p.target_recall == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, "target_recall applies to searches of vector fields and of multi-vector fields "
            "with MUVERA candidates; not available for ",
      kind, " yet"));
}

// A search of a multi-vector field (req.multi_vectors).
absl::Status BindMulti(const BindTarget& t, const v1::SearchRequest& req, BoundSearch* s) {
  const VectorFieldSpec& field = t.schema.vectors()[s->field];
  const size_t nq = req.multi_vectors_size();
  QUIVER_RETURN_IF_ERROR(CheckBatch(nq, req.k(), "query set", " (multi_vectors)"));
  QUIVER_ASSIGN_OR_RETURN(s->params, BindParams(req.params(), ""));
  if (field.token_candidates) {
    QUIVER_RETURN_IF_ERROR(RefuseTargetRecall(
        s->params, "params: ", "multi-vector fields with token candidates"));
  }
  s->sets.resize(nq);
  for (size_t q = 0; q < nq; ++q) {
    QUIVER_ASSIGN_OR_RETURN(s->sets[q], PrepareTokens(field, req.multi_vectors(static_cast<int>(q)),
                                                      absl::StrCat("query set ", q), &s->owned));
  }
  return absl::OkStatus();
}

// A search of a single-vector field (req.vectors).
absl::Status BindSingle(const BindTarget& t, const v1::SearchRequest& req, BoundSearch* s) {
  const VectorFieldSpec& field = t.schema.vectors()[s->field];
  const size_t nq = req.vectors_size();
  QUIVER_RETURN_IF_ERROR(CheckBatch(nq, req.k(), "query vector", ""));
  QUIVER_ASSIGN_OR_RETURN(s->params, BindParams(req.params(), ""));
  return PrepareQueries(field, req.vectors().data(), nq, "query vector", /*numbered=*/true,
                        &s->queries, &s->qnorms);
}

// min_results / exhaustive, score_threshold and group_by: only a search of
// a single-vector field (req.vectors) takes them. `kind` names the search
// the request is, for the message.
absl::Status RefuseResultOptions(const v1::SearchRequest& req, absl::string_view kind) {
  const char* what = req.min_results() != 0 || req.exhaustive() ? "min_results and exhaustive"
                     : req.has_score_threshold()               ? "score_threshold"
                     : !req.group_by().empty() || req.group_size() != 0 ? "group_by and group_size"
                     : req.has_diversity()                                ? "diversity"
                                                                        : nullptr;
  if (what == nullptr) return absl::OkStatus();
  const bool several = absl::StrContains(what, " and ");
  return absl::InvalidArgumentError(absl::StrCat(what, several ? " apply" : " applies",
                                                 " only to a search of a single-vector field "
                                                 "(vectors), not to ",
                                                 kind));
}

// The attribute to group by (INT64, STRING or BOOL).
absl::StatusOr<int> BindGroupBy(const BindTarget& t, const std::string& name) {
  const int a = t.schema.AttributeIndex(name);
  if (a < 0) {
    for (const VectorFieldSpec& f : t.schema.vectors()) {
      if (f.name == name) {
        return absl::InvalidArgumentError(absl::StrCat(
            "group_by: \"", TruncateForMessage(name), "\" is a vector field, not an attribute"));
      }
    }
    return absl::InvalidArgumentError(absl::StrCat("group_by: collection \"", t.name,
                                                   "\" has no attribute \"",
                                                   TruncateForMessage(name), "\""));
  }
  const AttrType type = t.schema.attributes()[a].type;
  if (type != AttrType::kInt64 && type != AttrType::kString && type != AttrType::kBool) {
    return absl::InvalidArgumentError(absl::StrCat(
        "group_by: attribute \"", name, "\" is ", std::string(AttrTypeName(type)),
        "; groups need an INT64, STRING or BOOL attribute"));
  }
  return a;
}

// SearchRequest.diversity: lambda in [0, 1] (default 0.5), fetch_k in
// k..kMaxK (default max(4k, 50), capped).
absl::Status BindDiversity(const v1::SearchRequest& req, BoundSearch* s) {
  if (!req.has_diversity()) return absl::OkStatus();
  if (req.min_results() != 0 || req.exhaustive() || req.has_score_threshold() ||
      !req.group_by().empty()) {
    return absl::InvalidArgumentError(
        "diversity does not combine with min_results, exhaustive, score_threshold or group_by");
  }
  const v1::Diversity& d = req.diversity();
  if (d.has_lambda()) {
    if (!(d.lambda() >= 0 && d.lambda() <= 1)) {  // NaN fails too
      return absl::InvalidArgumentError(
          absl::StrCat("diversity.lambda must be in [0, 1], got ", d.lambda()));
    }
    s->mmr_lambda = d.lambda();
  }
  if (d.fetch_k() == 0) {
    s->mmr_fetch_k = std::min<uint32_t>(std::max<uint32_t>(4 * req.k(), 50), kMaxK);
  } else if (d.fetch_k() < req.k() || d.fetch_k() > kMaxK) {
    return absl::InvalidArgumentError(absl::StrCat("diversity.fetch_k must be 0 or in k..", kMaxK,
                                                   " (k is ", req.k(), "), got ", d.fetch_k()));
  } else {
    s->mmr_fetch_k = d.fetch_k();
  }
  // The candidates are held per query like hits.
  if (static_cast<uint64_t>(req.vectors_size()) * s->mmr_fetch_k > kMaxHitsPerRequest) {
    return absl::InvalidArgumentError(
        absl::StrCat("queries x diversity.fetch_k must be at most ", kMaxHitsPerRequest, ", got ",
                     req.vectors_size(), " x ", s->mmr_fetch_k));
  }
  return absl::OkStatus();
}

absl::Status BindResultOptions(const BindTarget& t, const v1::SearchRequest& req,
                               BoundSearch* s) {
  if (req.min_results() > req.k()) {
    return absl::InvalidArgumentError(absl::StrCat("min_results must be at most k (", req.k(),
                                                   "), got ", req.min_results()));
  }
  s->min_results = req.exhaustive() ? req.k() : req.min_results();
  QUIVER_RETURN_IF_ERROR(BindDiversity(req, s));
  if (req.has_score_threshold()) {
    if (!std::isfinite(req.score_threshold())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "score_threshold must be a finite number, got ", req.score_threshold()));
    }
    s->has_threshold = true;
    s->score_threshold = req.score_threshold();
  }
  if (req.group_by().empty()) {
    if (req.group_size() != 0) {
      return absl::InvalidArgumentError("group_size needs group_by (an attribute to group by)");
    }
    return absl::OkStatus();
  }
  QUIVER_ASSIGN_OR_RETURN(s->group_by, BindGroupBy(t, req.group_by()));
  s->group_size = req.group_size() == 0 ? 1 : req.group_size();
  // Points without the attribute belong to no group: the search leaves
  // them out (unless the filter is nested too deep to wrap; grouping skips
  // them then).
  const std::string not_null =
      absl::StrCat(filter::QuoteIdentifier(req.group_by()), " IS NOT NULL");
  auto grouped = filter::Filter::Compile(
      req.filter().empty() ? not_null : absl::StrCat("(", req.filter(), ") AND ", not_null),
      t.schema);
  if (grouped.ok()) s->filter = *std::move(grouped);
  if (s->group_size > kMaxK ||
      static_cast<uint64_t>(s->group_size) * req.k() > kMaxHitsPerRequest) {
    return absl::InvalidArgumentError(absl::StrCat(
        "group_size must be in 1..", kMaxK, " and k x group_size at most ", kMaxHitsPerRequest,
        ", got group_size ", req.group_size(), " with k ", req.k()));
  }
  return CheckBatch(req.vectors_size(), req.k() * s->group_size, "query vector",
                    " (k x group_size hits each)");
}

absl::StatusOr<BoundSearch> BindVectorSearch(const BindTarget& t, const v1::SearchRequest& req) {
  if (req.fusion() != v1::FUSION_METHOD_UNSPECIFIED || req.rrf_k() != 0 ||
      req.with_field_results()) {
    return absl::InvalidArgumentError(
        "fusion, rrf_k and with_field_results apply only to hybrid search (field_queries)");
  }
  BoundSearch s;
  s.k = req.k();
  QUIVER_ASSIGN_OR_RETURN(s.field, ResolveField(t, req.field()));
  const VectorFieldSpec& field = t.schema.vectors()[s.field];
  s.multi = field.multi;
  if (field.multi) {
    if (!req.vectors().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "field \"", field.name,
          "\" is a multi-vector field: give the query sets in multi_vectors"));
    }
    QUIVER_RETURN_IF_ERROR(BindMulti(t, req, &s));
    QUIVER_RETURN_IF_ERROR(RefuseResultOptions(req, "late-interaction search (multi_vectors)"));
  } else {
    if (!req.multi_vectors().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "multi_vectors: field \"", field.name, "\" is not a multi-vector field"));
    }
    QUIVER_RETURN_IF_ERROR(BindSingle(t, req, &s));
  }
  QUIVER_RETURN_IF_ERROR(CompileFilter(t, req.filter(), &s.filter, &s.filter_bytes));
  if (!s.multi) QUIVER_RETURN_IF_ERROR(BindResultOptions(t, req, &s));
  QUIVER_ASSIGN_OR_RETURN(s.output.attributes, OutputAttributes(t, req.output_attributes()));
  s.output.with_vectors = req.with_vectors();
  s.explain = req.explain();
  return s;
}

// A sparse search's query, checked and sorted.
absl::StatusOr<SparseValue> BindSparseQuery(const v1::SparseVector& v, const std::string& what) {
  QUIVER_ASSIGN_OR_RETURN(SparseValue q, SparseFromProto(v, what));
  if (q->size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": the sparse query vector is empty"));
  }
  return q;
}

// The text attribute named `name` for a full-text query, or
// INVALID_ARGUMENT saying what it is instead.
absl::StatusOr<int> ResolveTextAttr(const BindTarget& t, const std::string& name,
                                    const std::string& what) {
  const int a = t.schema.AttributeIndex(name);
  if (a < 0 || !t.schema.attributes()[a].text) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": collection \"", t.name, "\" has no text attribute \"",
        TruncateForMessage(name), "\"", a >= 0 ? " (it is not declared with text)" : ""));
  }
  if (t.analyzers == nullptr || static_cast<size_t>(a) >= t.analyzers->size() ||
      (*t.analyzers)[a] == nullptr) {
    return absl::InternalError(absl::StrCat("text attribute \"", name, "\" has no analyzer"));
  }
  return a;
}

// One field's query `fq` (named `what` in errors), k defaulting to
// default_k. `used`, if set, marks the fields queried so far (sparse fields
// after the vector fields, then attributes), so none is queried twice.
absl::Status BindFieldQuery(const BindTarget& t, const v1::FieldQuery& fq, const std::string& what,
                            uint32_t default_k, std::vector<bool>* used, BoundFieldQuery* part,
                            std::vector<std::unique_ptr<float[]>>* owned) {
  if (fq.field().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": field is empty"));
  }
  // Which field, and its place in `used`: vector fields, sparse fields,
  // then attributes (text).
  const bool text = fq.query_case() == v1::FieldQuery::kText;
  const int sf = t.schema.SparseFieldIndex(fq.field());
  size_t slot = 0;
  if (text) {
    QUIVER_ASSIGN_OR_RETURN(part->text_attr, ResolveTextAttr(t, fq.field(), what));
    slot = t.schema.vectors().size() + t.schema.sparse().size() + part->text_attr;
  } else if (t.schema.AttributeIndex(fq.field()) >= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": \"", fq.field(), "\" is an attribute: give a text query for a text attribute"));
  } else if (sf >= 0) {
    if (fq.query_case() != v1::FieldQuery::kSparseVector) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": \"", fq.field(), "\" is a sparse vector field: give a sparse_vector"));
    }
    part->sparse_field = sf;
    slot = t.schema.vectors().size() + sf;
  } else {
    QUIVER_ASSIGN_OR_RETURN(part->field, ResolveField(t, fq.field()));
    slot = static_cast<size_t>(part->field);
  }
  if (used != nullptr) {
    if ((*used)[slot]) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": field \"", fq.field(), "\" is queried twice"));
    }
    (*used)[slot] = true;
  }
  part->k = fq.k() == 0 ? default_k : fq.k();
  if (part->k > kMaxK) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": k must be in 1..", kMaxK, ", got ", fq.k()));
  }
  if (!std::isfinite(fq.weight()) || fq.weight() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": weight must be a finite number >= 0, got ", fq.weight()));
  }
  part->weight = fq.weight() == 0 ? 1.0 : fq.weight();
  QUIVER_ASSIGN_OR_RETURN(part->params, BindParams(fq.params(), absl::StrCat(what, ": ")));
  const bool tokens = !text && sf < 0 && t.schema.vectors()[part->field].multi &&
                      t.schema.vectors()[part->field].token_candidates;
  if (text || sf >= 0 || tokens) {
    QUIVER_RETURN_IF_ERROR(RefuseTargetRecall(
        part->params, absl::StrCat(what, " params: "),
        text ? "text attributes"
             : sf >= 0 ? "sparse vector fields" : "multi-vector fields with token candidates"));
  }
  if (text) {
    part->text = std::make_shared<const text::Analyzer::TermCounts>(
        (*t.analyzers)[part->text_attr]->TermFrequencies(fq.text()));
    return absl::OkStatus();
  }
  if (sf >= 0) {
    QUIVER_ASSIGN_OR_RETURN(
        part->sparse, BindSparseQuery(fq.sparse_vector(), absl::StrCat(what, " sparse_vector")));
    return absl::OkStatus();
  }
  const VectorFieldSpec& spec = t.schema.vectors()[part->field];
  switch (fq.query_case()) {
    case v1::FieldQuery::kVector: {
      if (spec.multi) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": \"", spec.name, "\" is a multi-vector field: give a multi_vector"));
      }
      const v1::Vector* v = &fq.vector();
      return PrepareQueries(spec, &v, 1, absl::StrCat(what, " vector"),
                            /*numbered=*/false, &part->queries, &part->qnorms);
    }
    case v1::FieldQuery::kMultiVector: {
      if (!spec.multi) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": \"", spec.name, "\" is not a multi-vector field: give a vector"));
      }
      QUIVER_ASSIGN_OR_RETURN(TokenSet set, PrepareTokens(spec, fq.multi_vector(),
                                                          absl::StrCat(what, " query set"), owned));
      part->sets.push_back(set);
      return absl::OkStatus();
    }
    case v1::FieldQuery::kSparseVector:
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": \"", spec.name, "\" is not a sparse vector field: give a vector"));
    case v1::FieldQuery::kText:
    case v1::FieldQuery::QUERY_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(what, ": no query vector"));
}

absl::StatusOr<BoundSparseSearch> BindSparseSearch(const BindTarget& t,
                                                   const v1::SearchRequest& req) {
  if (req.field().empty()) {
    return absl::InvalidArgumentError("a search of sparse_vectors needs field: the sparse "
                                      "vector field to search");
  }
  BoundSparseSearch s;
  s.field = t.schema.SparseFieldIndex(req.field());
  if (s.field < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sparse_vectors: collection \"", t.name, "\" has no sparse vector field \"",
        TruncateForMessage(req.field()), "\""));
  }
  if (!req.vectors().empty() || !req.multi_vectors().empty()) {
    return absl::InvalidArgumentError(
        "a search takes vectors, multi_vectors or sparse_vectors, not several");
  }
  if (req.fusion() != v1::FUSION_METHOD_UNSPECIFIED || req.rrf_k() != 0 ||
      req.with_field_results()) {
    return absl::InvalidArgumentError(
        "fusion, rrf_k and with_field_results apply only to hybrid search (field_queries)");
  }
  QUIVER_RETURN_IF_ERROR(RefuseResultOptions(req, "sparse search (sparse_vectors)"));
  s.k = req.k();
  QUIVER_RETURN_IF_ERROR(CheckBatch(req.sparse_vectors_size(), req.k(), "sparse query vector", ""));
  QUIVER_ASSIGN_OR_RETURN(const BoundSearchParams params, BindParams(req.params(), ""));
  QUIVER_RETURN_IF_ERROR(RefuseTargetRecall(params, "params: ", "sparse vector fields"));
  s.exact = params.exact;
  for (int i = 0; i < req.sparse_vectors_size(); ++i) {
    QUIVER_ASSIGN_OR_RETURN(SparseValue q, BindSparseQuery(req.sparse_vectors(i),
                                                           absl::StrCat("sparse_vectors[", i, "]")));
    s.queries.push_back(std::move(q));
  }
  QUIVER_RETURN_IF_ERROR(CompileFilter(t, req.filter(), &s.filter, &s.filter_bytes));
  QUIVER_ASSIGN_OR_RETURN(s.output.attributes, OutputAttributes(t, req.output_attributes()));
  s.output.with_vectors = req.with_vectors();
  s.explain = req.explain();
  return s;
}

absl::StatusOr<BoundTextSearch> BindTextSearch(const BindTarget& t,
                                               const v1::SearchRequest& req) {
  if (req.field().empty()) {
    return absl::InvalidArgumentError(
        "a search of texts needs field: the text attribute to search");
  }
  BoundTextSearch s;
  QUIVER_ASSIGN_OR_RETURN(s.attr, ResolveTextAttr(t, req.field(), "texts"));
  if (!req.vectors().empty() || !req.multi_vectors().empty() || !req.sparse_vectors().empty()) {
    return absl::InvalidArgumentError(
        "a search takes vectors, multi_vectors, sparse_vectors or texts, not several");
  }
  if (req.fusion() != v1::FUSION_METHOD_UNSPECIFIED || req.rrf_k() != 0 ||
      req.with_field_results()) {
    return absl::InvalidArgumentError(
        "fusion, rrf_k and with_field_results apply only to hybrid search (field_queries)");
  }
  QUIVER_RETURN_IF_ERROR(RefuseResultOptions(req, "text search (texts)"));
  s.k = req.k();
  QUIVER_RETURN_IF_ERROR(CheckBatch(req.texts_size(), req.k(), "text query", ""));
  QUIVER_ASSIGN_OR_RETURN(const BoundSearchParams params, BindParams(req.params(), ""));
  QUIVER_RETURN_IF_ERROR(RefuseTargetRecall(params, "params: ", "text search (BM25)"));
  s.exact = params.exact;
  const text::Analyzer& analyzer = *(*t.analyzers)[s.attr];
  for (const std::string& q : req.texts()) {
    s.queries.push_back(
        std::make_shared<const text::Analyzer::TermCounts>(analyzer.TermFrequencies(q)));
  }
  QUIVER_RETURN_IF_ERROR(CompileFilter(t, req.filter(), &s.filter, &s.filter_bytes));
  QUIVER_ASSIGN_OR_RETURN(s.output.attributes, OutputAttributes(t, req.output_attributes()));
  s.output.with_vectors = req.with_vectors();
  s.explain = req.explain();
  return s;
}

// A limit of a multi-stage search: 0 means k; otherwise k..kMaxK.
absl::StatusOr<uint32_t> BindStageLimit(uint32_t limit, uint32_t k, const std::string& what) {
  if (limit == 0) return k;
  if (limit < k || limit > kMaxK) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " must be 0 (k) or in k..", kMaxK, " (k is ", k, "), got ", limit));
  }
  return limit;
}

// SearchRequest.stages and candidates.
absl::Status BindStages(const BindTarget& t, const v1::SearchRequest& req, BoundHybridSearch* h) {
  if (req.stages().empty()) {
    if (req.candidates() != 0) {
      return absl::InvalidArgumentError("candidates applies only to a multi-stage search (stages)");
    }
    return absl::OkStatus();
  }
  if (req.stages_size() > kMaxStages) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxStages, " stages, got ", req.stages_size()));
  }
  if (req.candidates() != 0) {
    QUIVER_ASSIGN_OR_RETURN(h->candidates, BindStageLimit(req.candidates(), req.k(), "candidates"));
  }
  h->stages.resize(req.stages_size());
  for (int i = 0; i < req.stages_size(); ++i) {
    const v1::SearchStage& stage = req.stages(i);
    const std::string what = absl::StrCat("stages[", i, "]");
    // A stage names a field and a query as a FieldQuery does; bind it as
    // one, so both accept and refuse the same queries.
    v1::FieldQuery fq;
    fq.set_field(stage.field());
    switch (stage.query_case()) {
      case v1::SearchStage::kVector: *fq.mutable_vector() = stage.vector(); break;
      case v1::SearchStage::kMultiVector: *fq.mutable_multi_vector() = stage.multi_vector(); break;
      case v1::SearchStage::kSparseVector:
        *fq.mutable_sparse_vector() = stage.sparse_vector();
        break;
      case v1::SearchStage::kText: fq.set_text(stage.text()); break;
      case v1::SearchStage::QUERY_NOT_SET: break;
    }
    BoundStage& bs = h->stages[i];
    QUIVER_RETURN_IF_ERROR(BindFieldQuery(t, fq, what, req.k(), nullptr, &bs.query, &h->owned));
    QUIVER_ASSIGN_OR_RETURN(bs.limit,
                            BindStageLimit(stage.limit(), req.k(), absl::StrCat(what, ": limit")));
  }
  return absl::OkStatus();
}

absl::StatusOr<BoundHybridSearch> BindHybrid(const BindTarget& t, const v1::SearchRequest& req) {
  if (!req.field().empty() || !req.vectors().empty() || !req.multi_vectors().empty()) {
    return absl::InvalidArgumentError(
        "hybrid search takes its queries in field_queries: leave field and vectors (and "
        "multi_vectors) empty");
  }
  QUIVER_RETURN_IF_ERROR(RefuseResultOptions(req, "hybrid search (field_queries)"));
  BoundHybridSearch h;
  h.k = req.k();
  if (req.rrf_k() != 0) {
    if (!std::isfinite(req.rrf_k()) || req.rrf_k() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("rrf_k must be a positive number, got ", req.rrf_k()));
    }
    h.rrf_k = req.rrf_k();
  }
  switch (req.fusion()) {
    case v1::FUSION_METHOD_UNSPECIFIED:
    case v1::RRF: h.fusion = FusionKind::kRrf; break;
    case v1::WEIGHTED: h.fusion = FusionKind::kWeighted; break;
    case v1::DBSF: h.fusion = FusionKind::kDbsf; break;
    default: return absl::InvalidArgumentError(absl::StrCat("unknown fusion method ", req.fusion()));
  }
  if (!req.sparse_vectors().empty() || !req.texts().empty()) {
    return absl::InvalidArgumentError(
        "hybrid search takes a sparse field's or text attribute's query in its field_queries "
        "entry (sparse_vector, text): leave sparse_vectors and texts empty");
  }
  h.fields.resize(req.field_queries_size());
  std::vector<bool> used(
      t.schema.vectors().size() + t.schema.sparse().size() + t.schema.attributes().size(), false);
  for (size_t i = 0; i < h.fields.size(); ++i) {
    QUIVER_RETURN_IF_ERROR(BindFieldQuery(t, req.field_queries(static_cast<int>(i)),
                                          absl::StrCat("field_queries[", i, "]"), req.k(), &used,
                                          &h.fields[i], &h.owned));
  }
  QUIVER_RETURN_IF_ERROR(BindStages(t, req, &h));
  QUIVER_RETURN_IF_ERROR(CompileFilter(t, req.filter(), &h.filter, &h.filter_bytes));
  QUIVER_ASSIGN_OR_RETURN(h.output.attributes, OutputAttributes(t, req.output_attributes()));
  h.output.with_vectors = req.with_vectors();
  h.with_field_results = req.with_field_results();
  h.explain = req.explain();
  return h;
}

// The id and the names of the point's vector fields.
absl::Status CheckPointNames(const BindTarget& t, const v1::Point& p, int i,
                             absl::flat_hash_set<absl::string_view>* seen) {
  // Built only on the error paths: most batches have none.
  auto label = [&] { return PointLabel(p.id(), i); };
  if (p.id().empty()) return absl::InvalidArgumentError(absl::StrCat(label(), ": id is empty"));
  if (p.id().size() > kMaxIdBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(label(), ": id is longer than ", kMaxIdBytes, " bytes"));
  }
  if (!seen->insert(p.id()).second) {
    return absl::InvalidArgumentError(
        absl::StrCat(label(), ": id appears more than once in this request"));
  }
  for (const auto& [fname, mv] : p.multi_vectors()) {
    const int f = t.schema.VectorFieldIndex(fname);
    if (f < 0 || !t.schema.vectors()[f].multi) {
      return absl::InvalidArgumentError(
          absl::StrCat(label(), ": field \"", TruncateForMessage(fname),
                       "\" is not a multi-vector field of collection \"", t.name, "\""));
    }
  }
  for (const auto& [fname, vec] : p.vectors()) {
    const int f = t.schema.VectorFieldIndex(fname);
    if (f < 0 && t.schema.SparseFieldIndex(fname) >= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(label(), ": field \"", fname,
                       "\" is a sparse vector field: give its vector in sparse_vectors"));
    }
    if (f < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(label(), ": collection \"", t.name, "\" has no vector field \"",
                       TruncateForMessage(fname), "\""));
    }
    if (t.schema.vectors()[f].multi) {
      return absl::InvalidArgumentError(
          absl::StrCat(label(), ": field \"", fname,
                       "\" is a multi-vector field: give its vectors in multi_vectors"));
    }
  }
  return absl::OkStatus();
}

// The point's vectors, checked, into *out: COSINE fields normalized into
// up->owned from *owned_pos on, multi-vector fields' sets and encodings
// into up->owned_blocks.
absl::Status BindPointVectors(const BindTarget& t, const v1::Point& p, int i,
                              BoundUpsert* up, size_t* owned_pos,
                              BoundUpsert::Point* out) {
  auto label = [&] { return PointLabel(p.id(), i); };
  const size_t nf = t.schema.vectors().size();
  out->vectors.resize(nf);
  out->tokens.resize(nf);
  for (size_t f = 0; f < nf; ++f) {
    const VectorFieldSpec& spec = t.schema.vectors()[f];
    if (spec.dropped) continue;  // vectors[f] stays null
    if (spec.multi) {
      auto mit = p.multi_vectors().find(spec.name);
      if (mit == p.multi_vectors().end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(label(), ": multi-vector field \"", spec.name, "\" is missing"));
      }
      QUIVER_ASSIGN_OR_RETURN(
          TokenSet set,
          PrepareTokens(spec, mit->second,
                              absl::StrCat(label(), ": field \"", spec.name, "\""),
                              &up->owned_blocks));
      out->tokens[f] = set;
      float* fde = new float[(*t.stored_dims)[f]];
      up->owned_blocks.emplace_back(fde);
      if ((*t.encoders)[f] != nullptr && !spec.token_candidates) {
        (*t.encoders)[f]->EncodeDocument(set.data, set.count, fde);
      } else {
        std::fill(fde, fde + (*t.stored_dims)[f], 0.0f);  // unused: TOKENS index the vectors
      }
      out->vectors[f] = fde;
      continue;
    }
    auto it = p.vectors().find(spec.name);
    if (it == p.vectors().end()) {
      if (spec.optional) continue;  // vectors[f] stays null: the point has none
      return absl::InvalidArgumentError(
          absl::StrCat(label(), ": vector field \"", spec.name, "\" is missing"));
    }
    if (absl::Status st = CheckVector(it->second.values(), spec.dim, spec.metric, "");
        !st.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(label(), ": field \"", spec.name, "\"", st.message()));
    }
    if (spec.metric == Metric::kCosine) {
      float* dst = up->owned.data() + *owned_pos;
      *owned_pos += spec.dim;
      Normalize(it->second.values().data(), dst, spec.dim);
      out->vectors[f] = dst;
    } else {
      out->vectors[f] = it->second.values().data();
    }
  }
  return absl::OkStatus();
}

// The point's id and attributes, checked, into out->record and out->attrs.
absl::Status BindPointAttributes(const BindTarget& t, const v1::Point& p, int i,
                                 BoundUpsert::Point* out) {
  auto label = [&] { return PointLabel(p.id(), i); };
  const auto& attrs = t.schema.attributes();
  out->attrs.resize(attrs.size());
  out->record.set_id(p.id());
  for (size_t a = 0; a < attrs.size(); ++a) out->record.add_attributes();
  for (const auto& [aname, value] : p.attributes()) {
    const int ai = t.schema.AttributeIndex(aname);
    if (ai < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(label(), ": collection \"", t.name, "\" has no attribute \"",
                       TruncateForMessage(aname), "\""));
    }
    absl::StatusOr<AttrValue> av = ValueToAttr(value, attrs[ai].type, "");
    if (!av.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(label(), ": attribute \"", aname, "\"", av.status().message()));
    }
    out->attrs[ai] = *std::move(av);
    AttrToMessage(out->attrs[ai], out->record.mutable_attributes(ai));
    if (attrs[ai].text) {
      if (out->text.size() <= static_cast<size_t>(ai)) out->text.resize(ai + 1);
      out->text[ai] = AnalyzeText(t, ai, out->attrs[ai]);
    }
  }
  return absl::OkStatus();
}

// The point's sparse vectors, checked and sorted, into out->sparse and
// out->record.
absl::Status BindPointSparse(const BindTarget& t, const v1::Point& p, int i,
                             BoundUpsert::Point* out) {
  if (p.sparse_vectors().empty()) return absl::OkStatus();
  out->sparse.resize(t.schema.sparse().size());
  for (const auto& [name, v] : p.sparse_vectors()) {
    const int s = t.schema.SparseFieldIndex(name);
    if (s < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(PointLabel(p.id(), i), ": collection \"", t.name,
                       "\" has no sparse vector field \"", TruncateForMessage(name), "\""));
    }
    QUIVER_ASSIGN_OR_RETURN(
        out->sparse[s],
        SparseFromProto(v, absl::StrCat(PointLabel(p.id(), i), ": sparse vector \"", name, "\"")));
    SparseToMessage(*out->sparse[s],
                    &(*out->record.mutable_sparse_vectors())[static_cast<uint32_t>(s)]);
  }
  return absl::OkStatus();
}

}  // namespace

TextTerms AnalyzeText(const BindTarget& t, int a, const AttrValue& v) {
  const auto* s = std::get_if<std::string>(&v);
  if (s == nullptr || t.analyzers == nullptr || static_cast<size_t>(a) >= t.analyzers->size() ||
      (*t.analyzers)[a] == nullptr) {
    return nullptr;
  }
  return std::make_shared<const text::Analyzer::TermCounts>((*t.analyzers)[a]->TermFrequencies(*s));
}

absl::StatusOr<int> ResolveField(const BindTarget& t, const std::string& field) {
  if (field.empty()) {
    if (t.schema.live_vector_count() == 1) {
      for (size_t f = 0; f < t.schema.vectors().size(); ++f) {
        if (!t.schema.vectors()[f].dropped) return static_cast<int>(f);
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "collection \"", t.name, "\" has ", t.schema.live_vector_count(),
        " vector fields: name the one to search in `field`"));
  }
  const int f = t.schema.VectorFieldIndex(field);
  if (f < 0 && t.schema.SparseFieldIndex(field) >= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "field \"", field, "\" is a sparse vector field: give the queries in sparse_vectors"));
  }
  if (f < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("collection \"", t.name, "\" has no vector field \"",
                     TruncateForMessage(field), "\""));
  }
  return f;
}

absl::StatusOr<std::vector<int>> OutputAttributes(
    const BindTarget& t, const google::protobuf::RepeatedPtrField<std::string>& names) {
  std::vector<int> out;
  for (const std::string& a : names) {
    if (a == "*") {
      out.clear();
      for (size_t i = 0; i < t.schema.attributes().size(); ++i) out.push_back(static_cast<int>(i));
      for (const std::string& b : names) {
        if (b != "*" && t.schema.AttributeIndex(b) < 0) {
          return absl::InvalidArgumentError(absl::StrCat(
              "output_attributes: collection \"", t.name, "\" has no attribute \"",
              TruncateForMessage(b), "\""));
        }
      }
      return out;
    }
    const int ai = t.schema.AttributeIndex(a);
    if (ai < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "output_attributes: collection \"", t.name, "\" has no attribute \"",
          TruncateForMessage(a), "\""));
    }
    out.push_back(ai);
  }
  return out;
}

absl::StatusOr<BoundSearchParams> BindParams(const v1::SearchParams& p, absl::string_view what) {
  QUIVER_RETURN_IF_ERROR(CheckSearchParams(p, what));
  BoundSearchParams b;
  b.ef = p.ef();
  b.nprobe = p.nprobe();
  b.exact = p.exact();
  b.refine_factor = p.refine_factor();
  b.strategy = StrategyOf(p.filter_strategy());
  b.target_recall = p.target_recall();
  return b;
}


absl::StatusOr<BoundSearchRequest> BindSearch(const BindTarget& t, const v1::SearchRequest& req) {
  if (req.k() == 0 || req.k() > kMaxK) {
    return absl::InvalidArgumentError(absl::StrCat("k must be in 1..", kMaxK, ", got ", req.k()));
  }
  if (req.field_queries().empty() && (!req.stages().empty() || req.candidates() != 0)) {
    return absl::InvalidArgumentError(
        "stages and candidates re-score a hybrid search's candidates: give the searches that "
        "find them in field_queries (one entry is enough)");
  }
  if (!req.field_queries().empty()) {
    QUIVER_ASSIGN_OR_RETURN(BoundHybridSearch h, BindHybrid(t, req));
    return BoundSearchRequest(std::move(h));
  }
  if (!req.texts().empty()) {
    QUIVER_ASSIGN_OR_RETURN(BoundTextSearch s, BindTextSearch(t, req));
    return BoundSearchRequest(std::move(s));
  }
  if (!req.sparse_vectors().empty()) {
    QUIVER_ASSIGN_OR_RETURN(BoundSparseSearch s, BindSparseSearch(t, req));
    return BoundSearchRequest(std::move(s));
  }
  QUIVER_ASSIGN_OR_RETURN(BoundSearch s, BindVectorSearch(t, req));
  return BoundSearchRequest(std::move(s));
}

absl::StatusOr<BoundGet> BindGet(const BindTarget& t, const v1::GetPointsRequest& req) {
  BoundGet g;
  for (const std::string& a : req.attributes()) {
    const int ai = t.schema.AttributeIndex(a);
    if (ai < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "attributes: collection \"", t.name, "\" has no attribute \"", TruncateForMessage(a),
          "\""));
    }
    g.output.attributes.push_back(ai);
  }
  if (req.attributes().empty()) {
    for (size_t i = 0; i < t.schema.attributes().size(); ++i) {
      g.output.attributes.push_back(static_cast<int>(i));
    }
  }
  g.output.with_vectors = req.with_vectors();
  g.ids.assign(req.ids().begin(), req.ids().end());
  return g;
}

absl::StatusOr<BoundCount> BindCount(const BindTarget& t, const v1::CountPointsRequest& req) {
  BoundCount c;
  QUIVER_RETURN_IF_ERROR(CompileFilter(t, req.filter(), &c.filter, nullptr));
  return c;
}

absl::StatusOr<BoundUpsert> BindUpsert(const BindTarget& t, const v1::UpsertPointsRequest& req) {
  if (req.points().empty()) return absl::InvalidArgumentError("upsert needs at least one point");
  BoundUpsert up;
  up.request_bytes = req.ByteSizeLong();
  up.points.resize(req.points_size());
  absl::flat_hash_set<absl::string_view> seen;
  size_t owned_floats = 0;
  for (const VectorFieldSpec& f : t.schema.vectors()) {
    if (f.metric == Metric::kCosine && !f.multi) {
      owned_floats += static_cast<size_t>(f.dim) * req.points_size();
    }
  }
  up.owned.resize(owned_floats);
  size_t owned_pos = 0;
  for (int i = 0; i < req.points_size(); ++i) {
    const v1::Point& p = req.points(i);
    QUIVER_RETURN_IF_ERROR(CheckPointNames(t, p, i, &seen));
    QUIVER_RETURN_IF_ERROR(BindPointVectors(t, p, i, &up, &owned_pos, &up.points[i]));
    QUIVER_RETURN_IF_ERROR(BindPointAttributes(t, p, i, &up.points[i]));
    QUIVER_RETURN_IF_ERROR(BindPointSparse(t, p, i, &up.points[i]));
  }
  return up;
}

absl::StatusOr<BoundDelete> BindDelete(const BindTarget& t, const v1::DeletePointsRequest& req) {
  BoundDelete del;
  del.request_bytes = req.ByteSizeLong();
  if (!req.ids().empty() && !req.filter().empty()) {
    return absl::InvalidArgumentError("delete takes ids or a filter, not both");
  }
  if (req.ids().empty() && req.filter().empty()) {
    return absl::InvalidArgumentError("delete needs ids or a filter");
  }
  for (const std::string& id : req.ids()) {
    if (id.empty()) return absl::InvalidArgumentError("delete: an id is empty");
    del.ids.push_back(id);
  }
  if (!req.filter().empty()) {
    QUIVER_ASSIGN_OR_RETURN(del.filter, filter::Filter::Compile(req.filter(), t.schema));
  }
  return del;
}

absl::StatusOr<BoundVerify> BindVerify(const v1::VerifyCollectionRequest& req) {
  if (req.index_samples() > kMaxVerifyIndexSamples) {
    return absl::InvalidArgumentError(absl::StrCat("index_samples is ", req.index_samples(),
                                                   "; at most ", kMaxVerifyIndexSamples));
  }
  BoundVerify v;
  if (req.skip_index_check()) {
    v.index_samples = 0;
  } else if (req.index_samples() != 0) {
    v.index_samples = req.index_samples();
  }
  v.vector_sample_rows = req.vector_sample_rows();
  v.seed = req.seed();
  return v;
}

}  // namespace bind
}  // namespace quiver
