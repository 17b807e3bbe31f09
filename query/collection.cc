#include "query/collection.h"

#include <malloc.h>

#include <algorithm>
#include <future>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "index/distance.h"
#include "index/flat_search.h"
#include "index/maxsim.h"
#include "index/topk.h"
#include "query/attr_index.h"
#include "query/fusion.h"
#include "query/index_check.h"
#include "query/task_pool.h"
#include "query/planner.h"
#include "spdlog/spdlog.h"
#include "base/status_macros.h"
#include "base/truncate.h"

namespace quiver {
namespace {

std::string PointLabel(const std::string& id, int index) {
  return absl::StrCat("point ", index, " (id \"", TruncateForMessage(id, 64), "\")");
}

absl::Status CheckVector(const google::protobuf::RepeatedField<float>& v, uint32_t dim,
                         Metric metric, absl::string_view what) {
  if (static_cast<uint32_t>(v.size()) != dim) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected ", dim, " values, got ", v.size()));
  }
  // Fast path: one AVX2 pass; NaN and Inf propagate into the sum, and a
  // finite, non-zero float sum means every value is fine.
  const float fast = index::NormSqr(v.data(), dim);
  if (std::isfinite(fast) && (fast > 0 || metric != Metric::kCosine)) return absl::OkStatus();
  double norm = 0;
  for (int i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": value ", i, " is not finite (NaN or Inf)"));
    }
    norm += static_cast<double>(v[i]) * v[i];
  }
  // Distances are computed in float: a squared norm past its range would
  // turn them into inf or NaN.
  if (!std::isfinite(static_cast<float>(norm))) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": values are too large (squared norm overflows float32)"));
  }
  if (metric == Metric::kCosine && norm == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": a COSINE vector must not be all zeros"));
  }
  return absl::OkStatus();
}

// In double, so that tiny vectors normalize without overflowing 1/norm.
void Normalize(const float* in, float* out, size_t dim) {
  double norm = 0;
  for (size_t i = 0; i < dim; ++i) norm += static_cast<double>(in[i]) * in[i];
  const double inv = 1.0 / std::sqrt(norm);
  for (size_t i = 0; i < dim; ++i) out[i] = static_cast<float>(in[i] * inv);
}

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

// Checks a multi-vector field's set (1..max vectors of dim finite floats;
// COSINE: none all zeros) and returns it contiguous, normalized for COSINE,
// in a block appended to *owned.
absl::StatusOr<TokenSet> PrepareTokens(const VectorFieldSpec& spec, const v1::MultiVector& mv,
                                       const std::string& what,
                                       std::vector<std::unique_ptr<float[]>>* owned) {
  const int n = mv.vectors_size();
  if (n == 0) return absl::InvalidArgumentError(absl::StrCat(what, ": the set of vectors is empty"));
  if (static_cast<uint32_t>(n) > spec.max_vectors) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", n, " vectors, at most ",
                                                   spec.max_vectors, " allowed"));
  }
  float* dst = new float[static_cast<size_t>(n) * spec.dim];
  owned->emplace_back(dst);
  for (int j = 0; j < n; ++j) {
    const auto& v = mv.vectors(j).values();
    QUIVER_RETURN_IF_ERROR(
        CheckVector(v, spec.dim, spec.metric, absl::StrCat(what, " vector ", j)));
    float* row = dst + static_cast<size_t>(j) * spec.dim;
    if (spec.metric == Metric::kCosine) Normalize(v.data(), row, spec.dim);
    else std::memcpy(row, v.data(), spec.dim * sizeof(float));
  }
  return TokenSet{dst, static_cast<uint32_t>(n)};
}

// The limits on a batch of nq queries of k results each; `unit` names
// a query ("query vector", "query set").
absl::Status CheckBatch(size_t nq, uint32_t k, absl::string_view unit, absl::string_view field) {
  if (nq == 0) return absl::InvalidArgumentError(absl::StrCat("search needs at least one ", unit, field));
  if (nq > kMaxQueriesPerRequest) {
    return absl::InvalidArgumentError(absl::StrCat(
        "at most ", kMaxQueriesPerRequest, " ", unit, "s per request, got ", nq));
  }
  if (nq * k > kMaxHitsPerRequest) {
    return absl::InvalidArgumentError(absl::StrCat(
        "queries x k must be at most ", kMaxHitsPerRequest, ", got ", nq, " x ", k));
  }
  return absl::OkStatus();
}

absl::Status CheckSearchParams(const v1::SearchParams& p, absl::string_view what) {
  const float rf = p.refine_factor();
  if (!std::isfinite(rf) || rf < 0 || (rf > 0 && rf < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, "refine_factor must be 0 (the index's default) or a number >= 1, got ", rf));
  }
  return absl::OkStatus();
}


}  // namespace

Collection::Collection(const storage::CollectionRecord& record, Schema schema, uint64_t next_iid,
                       CollectionOptions options, SealedCallback on_sealed)
    : id_(record.id()),
      name_(record.name()),
      schema_(std::make_shared<const Schema>(std::move(schema))),
      created_at_unix_ms_(record.created_at_unix_ms()),
      options_(options),
      on_sealed_(std::move(on_sealed)),
      next_iid_(next_iid) {
  {
    MutexLock lock(&mu_);
    epoch_ = std::make_shared<Epoch>();
  }
  for (const VectorFieldSpec& f : schema_->vectors()) {
    std::shared_ptr<const index::MuveraEncoder> enc;
    if (f.multi) {
      // Validated at create; a stored schema that no longer parses serves
      // exact MaxSim only (encoders_ null) rather than failing the start.
      absl::StatusOr<index::MuveraParams> p = index::ParseMuveraParams(f.encoding_params, f.dim);
      absl::StatusOr<index::MuveraEncoder> e =
          p.ok() ? index::MuveraEncoder::Create(f.dim, *p) : p.status();
      if (e.ok()) {
        enc = std::make_shared<const index::MuveraEncoder>(*std::move(e));
      } else {
        spdlog::error("collection \"{}\" field \"{}\": {}", record.name(), f.name,
                      e.status().ToString());
      }
    }
    encoders_.push_back(std::move(enc));
    stored_dims_.push_back(StoredDim(f));
  }
  MutexLock lock(&spec_mu_);
  for (const VectorFieldSpec& f : schema_->vectors()) index_specs_.push_back(IndexSpecOf(f));
}

index::IndexSpec Collection::IndexSpecFor(size_t f) const {
  MutexLock lock(&spec_mu_);
  return index_specs_[f];
}

storage::CollectionRecord Collection::Record() const {
  storage::CollectionRecord r;
  r.set_id(id_);
  r.set_name(name_);
  r.set_created_at_unix_ms(created_at_unix_ms_);
  *r.mutable_schema() = schema_->proto();
  MutexLock lock(&spec_mu_);
  for (size_t f = 0; f < index_specs_.size(); ++f) {
    auto* idx = r.mutable_schema()->mutable_vectors(static_cast<int>(f))->mutable_index();
    idx->set_type(index_specs_[f].type);
    idx->mutable_params()->clear();
    idx->mutable_params()->insert(index_specs_[f].params.begin(), index_specs_[f].params.end());
  }
  return r;
}

void Collection::ApplyIndexSpec(uint64_t seq, size_t f, const index::IndexSpec& spec) {
  {
    MutexLock lock(&spec_mu_);
    index_specs_[f] = spec;
  }
  for (const auto& seg : writer_segments_) {
    if (!seg->sealed()) continue;
    if (spec.type == "FLAT") {
      seg->SetIndex(f, nullptr);
    } else {
      just_sealed_.push_back(seg);  // the builder rebuilds what is stale
    }
  }
  ApplyNoop(seq);
  NotifySealed();
}

View Collection::TakeView() const {
  View v;
  ReaderMutexLock lock(&mu_);
  v.parts.reserve(segments_.size());
  for (const auto& s : segments_) v.parts.push_back({s, s->published()});
  v.seq = seq_;
  v.pin = epoch_;
  return v;
}

Collection::Epoch::~Epoch() {
  if (retired.empty()) return;
  retired.clear();
  malloc_trim(0);
}

std::shared_ptr<const void> Collection::Pin() const {
  ReaderMutexLock lock(&mu_);
  return epoch_;
}

void Collection::Retire(std::vector<std::unique_ptr<float[]>> memory) const {
  std::shared_ptr<Epoch> old;
  {
    // Exclusive: Get reads vectors under the reader lock without a pin, so
    // taking the lock also waits out any Get that saw the old pointers.
    MutexLock lock(&mu_);
    old = epoch_;
    old->retired = std::move(memory);
    old->next = std::make_shared<Epoch>();
    epoch_ = old->next;
  }
  // `old` is released here: if no pin holds it, the memory goes now.
}

absl::Status Collection::AttachTable(Segment& seg, size_t f, const std::string& path,
                                     const storage::RerankTableExpect& expect,
                                     bool compute_norms) const {
  // An attached table is never replaced: readers may hold pointers into
  // its mapping, which only the segment's end unmaps.
  if (seg.table(f) != nullptr) return absl::OkStatus();
  storage::RerankTableOptions options;
  options.direct_io = options_.rerank_direct_io;
  options.map = true;
  QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<storage::RerankTable> table,
                          storage::RerankTable::Open(path, expect, options));
  std::vector<std::unique_ptr<float[]>> retired;
  if (schema_->vectors()[f].multi) {
    seg.AttachTokenTable(f, std::move(table), &retired);
  } else {
    seg.AttachTable(f, std::move(table), compute_norms, &retired);
  }
  Retire(std::move(retired));
  return absl::OkStatus();
}

absl::StatusOr<int> Collection::ResolveField(const std::string& field) const {
  if (field.empty()) {
    if (schema_->vectors().size() == 1) return 0;
    return absl::InvalidArgumentError(absl::StrCat(
        "collection \"", name_, "\" has ", schema_->vectors().size(),
        " vector fields: name the one to search in `field`"));
  }
  const int f = schema_->VectorFieldIndex(field);
  if (f < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("collection \"", name_, "\" has no vector field \"",
                     TruncateForMessage(field), "\""));
  }
  return f;
}

// ---------------------------------------------------------------- reads

absl::Status Collection::PrepareQueries(const VectorFieldSpec& field,
                                        const v1::Vector* const* vectors, size_t nq,
                                        absl::string_view what, bool numbered,
                                        std::vector<float>* queries,
                                        std::vector<float>* qnorms) const {
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

absl::StatusOr<std::vector<int>> Collection::OutputAttributes(
    const google::protobuf::RepeatedPtrField<std::string>& names) const {
  std::vector<int> out;
  for (const std::string& a : names) {
    if (a == "*") {
      out.clear();
      for (size_t i = 0; i < schema_->attributes().size(); ++i) out.push_back(static_cast<int>(i));
      for (const std::string& b : names) {
        if (b != "*" && schema_->AttributeIndex(b) < 0) {
          return absl::InvalidArgumentError(absl::StrCat(
              "output_attributes: collection \"", name_, "\" has no attribute \"",
              TruncateForMessage(b), "\""));
        }
      }
      return out;
    }
    const int ai = schema_->AttributeIndex(a);
    if (ai < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "output_attributes: collection \"", name_, "\" has no attribute \"",
          TruncateForMessage(a), "\""));
    }
    out.push_back(ai);
  }
  return out;
}

SearchContext Collection::MakeContext(size_t f, uint32_t k, const std::vector<float>& queries,
                                      const std::vector<float>& qnorms,
                                      const v1::SearchParams& params,
                                      const filter::Filter* flt, const StopToken& stop) const {
  const VectorFieldSpec& field = schema_->vectors()[f];
  SearchContext ctx;
  ctx.field = f;
  ctx.dim = stored_dims_[f];
  ctx.k = k;
  ctx.queries = queries.data();
  ctx.qnorms = qnorms.data();
  ctx.nq = qnorms.size();
  // Multi-vector fields search their encodings, by inner product.
  ctx.similarity = field.metric == Metric::kL2 && !field.multi ? index::Similarity::kL2
                                                               : index::Similarity::kInnerProduct;
  ctx.params.ef = params.ef();
  ctx.params.nprobe = params.nprobe();
  ctx.exact = params.exact();
  ctx.refine_factor = params.refine_factor();
  ctx.filter = flt;
  // ForcedStrategy mirrors the wire enum's values.
  ctx.forced = static_cast<ForcedStrategy>(params.filter_strategy());
  ctx.stop = stop;
  ctx.feedback = &plan_feedback_;
  return ctx;
}

absl::Status Collection::SearchView(const SearchContext& ctx, const View& view,
                                    v1::Explain* explain, std::vector<index::TopK>* topk) const {
  // DISK segments submit their rerank reads and the loop goes on to the
  // next segment's candidates while the device works; Finish collects.
  RerankQueue rerank;
  SearchContext c = ctx;
  c.rerank = &rerank;
  absl::Status status;
  for (size_t p = 0; p < view.parts.size() && status.ok(); ++p) {
    const Segment& seg = *view.parts[p].segment;
    const uint32_t rows = view.parts[p].rows;
    if (rows == 0) continue;
    status = ctx.stop.Check();
    if (!status.ok()) break;
    status = SearchSegment(c, seg, rows, view.seq, p, topk->data(),
                           explain ? explain->add_segments() : nullptr);
  }
  // Always: pending reads own buffers the kernel writes into.
  const absl::Status finished = rerank.Finish();
  return status.ok() ? finished : status;
}

namespace {

// Appends the segments of one field's search to explain text.
void AppendSegmentsText(const v1::Explain& explain, int first, const std::string& indent,
                        std::string* text) {
  for (int i = first; i < explain.segments_size(); ++i) {
    const v1::SegmentPlan& sp = explain.segments(i);
    absl::StrAppend(text, indent, "Segment(id=", sp.segment_id(), ", ", sp.state(), ", rows=",
                    sp.rows(), ", live=", sp.live_rows(), ") -> ", sp.strategy(), "\n");
    for (absl::string_view line : absl::StrSplit(sp.plan(), '\n', absl::SkipEmpty())) {
      absl::StrAppend(text, indent, "  ", line, "\n");
    }
    absl::StrAppend(text, indent, "  why: ", sp.reason(), "\n",
                    absl::StrFormat("%s  measured: distances=%d filter_checks=%d "
                                    "plan=%.1fus filter=%.1fus search=%.1fus\n",
                                    indent, sp.distances(), sp.filter_checks(), sp.plan_micros(),
                                    sp.filter_micros(), sp.search_micros()));
  }
}

}  // namespace

absl::Status ResponseBudget::Add(size_t bytes) {
  used_ += bytes;
  if (limit_ == 0 || used_ <= limit_) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "the response grew past the limit of --max-message-bytes=", limit_,
      " bytes while it was being filled (vector sets or attribute values larger than "
      "estimated); ask for fewer results, fewer output attributes, or no vectors"));
}

uint64_t Collection::LiveCount() const {
  ReaderMutexLock lock(&mu_);
  return live_;
}

size_t Collection::HitBytesEstimate(const std::vector<int>& out_attrs, bool with_vectors) const {
  // Protobuf framing: a tag and a length varint per message and map entry.
  constexpr size_t kIdBytes = 16;  // nominal; actual ids are counted when filled
  size_t b = 4 + (2 + kIdBytes) + 5;  // the hit, its id, its score
  for (int ai : out_attrs) {
    const AttributeSpec& a = schema_->attributes()[ai];
    size_t value = 0;
    switch (a.type) {
      case AttrType::kInt64: value = 11; break;
      case AttrType::kDouble: value = 9; break;
      case AttrType::kBool: value = 2; break;
      case AttrType::kString: value = 18; break;
      case AttrType::kStringList: value = 36; break;
    }
    b += 4 + (2 + a.name.size()) + (2 + value);
  }
  if (with_vectors) {
    for (const VectorFieldSpec& f : schema_->vectors()) {
      // One vector of a set at the least; sets are counted when filled.
      b += 6 + (2 + f.name.size()) + (6 + 4 * static_cast<size_t>(f.dim)) + (f.multi ? 6 : 0);
    }
  }
  return b;
}

absl::Status Collection::CheckResponseEstimate(double estimate, const std::string& how) const {
  const size_t limit = options_.max_response_bytes;
  if (limit == 0 || estimate <= static_cast<double>(limit)) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrFormat(
      "the response would take about %.0f bytes (%s), more than the limit of "
      "--max-message-bytes=%d bytes; nothing was done. Ask for fewer queries or results, "
      "fewer output attributes, or no vectors",
      estimate, how, limit));
}

absl::Status Collection::CheckSearchEstimate(size_t lists, uint32_t k,
                                             const std::vector<int>& out_attrs,
                                             bool with_vectors, size_t explain_segments,
                                             size_t filter_bytes) const {
  const uint64_t per_list = std::min<uint64_t>(k, LiveCount());
  const size_t hit = HitBytesEstimate(out_attrs, with_vectors);
  double estimate = static_cast<double>(lists) * per_list * hit + 8.0 * lists;
  std::string how = absl::StrFormat("%d result lists x %d hits x ~%d bytes per hit%s", lists,
                                    per_list, hit, with_vectors ? " with its vectors" : "");
  if (explain_segments > 0) {
    // Each segment's plan quotes the filter twice (plan and text).
    const double e = explain_segments * (2.0 * filter_bytes + 1024) + 2.0 * filter_bytes;
    estimate += e;
    absl::StrAppend(&how, absl::StrFormat(", plus ~%.0f bytes of explain", e));
  }
  return CheckResponseEstimate(estimate, how);
}

absl::Status Collection::FillHit(const View& view, uint64_t id, float score,
                                 const std::vector<int>& out_attrs, bool with_vectors,
                                 ResponseBudget* budget, v1::Hit* hit) const {
  const Segment& seg = *view.parts[id >> 32].segment;
  const uint32_t off = static_cast<uint32_t>(id & 0xffffffffu);
  hit->set_id(seg.external_id(off));
  hit->set_score(score);
  const AttrRow& attrs = seg.attrs(off);
  for (int ai : out_attrs) {
    v1::Value value;
    if (AttrToValue(attrs[ai], &value)) {
      (*hit->mutable_attributes())[schema_->attributes()[ai].name] = std::move(value);
    }
  }
  if (with_vectors) AddVectors(seg, off, hit->mutable_vectors(), hit->mutable_multi_vectors());
  // ByteSizeLong is arithmetic over the fields (a packed float field is
  // counted, not walked); +4 for the hit's own tag and length.
  return budget->Add(hit->ByteSizeLong() + 4);
}

absl::Status Collection::FillHits(const View& view, const VectorFieldSpec& field,
                                  const std::vector<index::Neighbor>& hits,
                                  const std::vector<int>& out_attrs, bool with_vectors,
                                  ResponseBudget* budget,
                                  google::protobuf::RepeatedPtrField<v1::Hit>* out) const {
  // Scores follow the metric: distances for L2, similarities (negated back)
  // for IP and COSINE, MaxSim included.
  const bool similarity = field.metric != Metric::kL2;
  for (const index::Neighbor& nb : hits) {
    QUIVER_RETURN_IF_ERROR(FillHit(view, nb.id, similarity ? -nb.distance : nb.distance,
                                   out_attrs, with_vectors, budget, out->Add()));
  }
  return absl::OkStatus();
}

void Collection::AddVectors(const Segment& seg, uint32_t off,
                            google::protobuf::Map<std::string, v1::Vector>* vectors,
                            google::protobuf::Map<std::string, v1::MultiVector>* multi) const {
  for (size_t vf = 0; vf < schema_->vectors().size(); ++vf) {
    const VectorFieldSpec& field = schema_->vectors()[vf];
    if (field.multi) {
      const TokenSet t = seg.tokens(vf, off);
      v1::MultiVector& mv = (*multi)[field.name];
      for (uint32_t j = 0; j < t.count; ++j) {
        const float* src = t.data + static_cast<size_t>(j) * field.dim;
        mv.add_vectors()->mutable_values()->Add(src, src + field.dim);
      }
      continue;
    }
    const float* src = seg.vector(vf, off);
    (*vectors)[field.name].mutable_values()->Add(src, src + field.dim);
  }
}

namespace {

// Candidates' vector sets gathered contiguously for blocked MaxSim.
struct Gathered {
  std::vector<float> vectors;
  std::vector<uint64_t> offsets{0};
  void Add(const float* data, size_t count, size_t dim) {
    vectors.insert(vectors.end(), data, data + count * dim);
    offsets.push_back(offsets.back() + count);
  }
  index::MultiVectorDocs Docs(size_t dim) const {
    return {vectors.data(), offsets.data(), offsets.size() - 1, dim};
  }
};

}  // namespace

absl::Status Collection::SearchMulti(const v1::SearchRequest& req, int f, const StopToken& stop,
                                     v1::SearchResponse* resp) const {
  const VectorFieldSpec& field = schema_->vectors()[f];
  const size_t nq = req.multi_vectors_size();
  QUIVER_RETURN_IF_ERROR(CheckBatch(nq, req.k(), "query set", " (multi_vectors)"));
  QUIVER_RETURN_IF_ERROR(CheckSearchParams(req.params(), ""));
  std::vector<std::unique_ptr<float[]>> owned;
  std::vector<TokenSet> sets(nq);
  for (size_t q = 0; q < nq; ++q) {
    QUIVER_ASSIGN_OR_RETURN(sets[q], PrepareTokens(field, req.multi_vectors(static_cast<int>(q)),
                                                   absl::StrCat("query set ", q), &owned));
  }
  std::shared_ptr<const filter::Filter> flt;
  if (!req.filter().empty()) {
    QUIVER_ASSIGN_OR_RETURN(flt, filter::Filter::Compile(req.filter(), *schema_));
  }
  QUIVER_ASSIGN_OR_RETURN(const std::vector<int> out_attrs,
                          OutputAttributes(req.output_attributes()));
  const auto t_start = absl::Now();
  const View view = TakeView();
  QUIVER_RETURN_IF_ERROR(CheckSearchEstimate(nq, req.k(), out_attrs, req.with_vectors(),
                                             req.explain() ? view.parts.size() : 0,
                                             req.filter().size()));
  std::vector<index::TopK> topk(nq, index::TopK(req.k()));
  v1::Explain* explain = req.explain() ? resp->mutable_explain() : nullptr;
  std::string text;
  QUIVER_RETURN_IF_ERROR(SearchMultiView(f, sets, req.k(), req.params(), flt.get(), view,
                                         stop, explain, &topk, &text));
  ResponseBudget budget(options_.max_response_bytes);
  if (explain != nullptr) {
    explain->set_total_micros(absl::ToDoubleMicroseconds(absl::Now() - t_start));
    absl::StrAppend(&text, absl::StrFormat("  total=%.1fus\n", explain->total_micros()));
    explain->set_text(std::move(text));
    QUIVER_RETURN_IF_ERROR(budget.Add(explain->ByteSizeLong()));
  }
  for (index::TopK& t : topk) {
    QUIVER_RETURN_IF_ERROR(FillHits(view, field, t.Take(), out_attrs, req.with_vectors(),
                                    &budget, resp->add_results()->mutable_hits()));
  }
  return absl::OkStatus();
}

absl::Status Collection::SearchMultiView(int f, const std::vector<TokenSet>& sets, uint32_t k,
                                         const v1::SearchParams& params,
                                         const filter::Filter* flt, const View& view,
                                         const StopToken& stop, v1::Explain* explain,
                                         std::vector<index::TopK>* topk_out,
                                         std::string* text_out) const {
  const VectorFieldSpec& field = schema_->vectors()[f];
  const size_t nq = sets.size();
  std::vector<index::TopK>& topk = *topk_out;
  std::string& text = *text_out;
  const index::Similarity sim =
      field.metric == Metric::kL2 ? index::Similarity::kL2 : index::Similarity::kInnerProduct;
  auto query_of = [&](size_t q) {
    return index::MaxSimQuery{sets[q].data, sets[q].count, field.dim, sim};
  };
  index::MaxSimScratch scratch;
  uint64_t scored = 0, reads = 0;

  if (params.exact() || encoders_[f] == nullptr) {
    // Exact MaxSim over every visible row that passes the filter.
    for (size_t p = 0; p < view.parts.size(); ++p) {
      const Segment& seg = *view.parts[p].segment;
      const uint32_t rows = view.parts[p].rows;
      if (rows == 0) continue;
      QUIVER_RETURN_IF_ERROR(stop.Check());
      RowSet keep;
      QUIVER_RETURN_IF_ERROR(MatchingRows(seg, rows, view.seq, flt, stop, &keep));
      std::shared_ptr<const storage::RerankTable> table = seg.table(f);
      index::MultiVectorDocs docs;
      Gathered gathered;
      if (table != nullptr && table->mapped_vectors() != nullptr) {
        docs = {table->mapped_vectors(), table->offsets(), rows, field.dim};
      } else {
        for (uint32_t off = 0; off < rows; ++off) {
          const TokenSet t = seg.tokens(f, off);
          gathered.Add(t.data, t.count, field.dim);
        }
        docs = gathered.Docs(field.dim);
      }
      std::vector<float> dist(rows);
      for (size_t q = 0; q < nq; ++q) {
        QUIVER_RETURN_IF_ERROR(stop.Check());
        index::MaxSimDistances(query_of(q), docs, 0, rows, dist.data(), &scratch);
        keep.ForEach([&](uint32_t off) { topk[q].Push(dist[off], HitId(p, off)); });
      }
      scored += static_cast<uint64_t>(keep.Count()) * nq;
      if (explain != nullptr) {
        v1::SegmentPlan* sp = explain->add_segments();
        sp->set_segment_id(seg.id());
        sp->set_field(field.name);
        sp->set_rows(rows);
        sp->set_strategy("EXACT_SCAN");
        sp->set_plan(absl::StrCat("ExactMaxSim(rows=", keep.Count(), " of ", rows, ")"));
        sp->set_distances(static_cast<uint64_t>(keep.Count()) * nq);
      }
    }
    text = absl::StrCat("LateInteraction(field=\"", field.name, "\", k=", k, ", queries=",
                        nq, ", exact MaxSim over ", scored / std::max<size_t>(nq, 1), " points)\n");
  } else if (field.token_candidates) {
    // The baseline: each query vector's nearest token vectors in the
    // segment's index over all of them, mapped to their rows; those rows
    // are the candidates. Segments without that index are scored exactly.
    const float rf = params.refine_factor() > 0 ? params.refine_factor()
                                                      : kDefaultTokenRefine;
    const auto per_vector = static_cast<uint32_t>(std::min<double>(
        kMaxRefineCandidates, std::ceil(static_cast<double>(k) * std::max(1.0f, rf))));
    const auto t_cand = absl::Now();
    double rerank_us = 0;
    uint64_t token_searches = 0;
    for (size_t p = 0; p < view.parts.size(); ++p) {
      const Segment& seg = *view.parts[p].segment;
      const uint32_t rows = view.parts[p].rows;
      if (rows == 0) continue;
      QUIVER_RETURN_IF_ERROR(stop.Check());
      RowSet keep;
      QUIVER_RETURN_IF_ERROR(MatchingRows(seg, rows, view.seq, flt, stop, &keep));
      std::shared_ptr<const index::VectorIndex> idx = seg.index(f);
      std::shared_ptr<const std::vector<uint32_t>> token_rows;
      if (idx != nullptr && seg.sealed()) {
        token_rows = seg.TokenRows(f);
        if (token_rows->size() != idx->size()) token_rows = nullptr;
      }
      // A token passes when its row is visible and passes the filter.
      struct RowOfToken : index::LabelFilter {
        const RowSet* keep;
        const std::vector<uint32_t>* rows;
        bool Accept(uint32_t t) const override { return keep->Test((*rows)[t]); }
      } accept;
      accept.keep = &keep;
      accept.rows = token_rows.get();
      index::SearchParams sp;
      sp.ef = params.ef();
      sp.nprobe = params.nprobe();
      for (size_t q = 0; q < nq; ++q) {
        QUIVER_RETURN_IF_ERROR(stop.Check());
        std::vector<uint32_t> cand;
        if (token_rows == nullptr) {
          keep.ForEach([&](uint32_t off) { cand.push_back(off); });
        } else {
          absl::flat_hash_set<uint32_t> seen;
          for (uint32_t j = 0; j < sets[q].count; ++j) {
            index::TopK tk(per_vector);
            QUIVER_RETURN_IF_ERROR(
                idx->Search(sets[q].data + static_cast<size_t>(j) * field.dim, sp, &accept, &tk));
            ++token_searches;
            for (const index::Neighbor& nb : tk.Take()) {
              const uint32_t row = (*token_rows)[nb.id];
              if (seen.insert(row).second) cand.push_back(row);
            }
          }
        }
        const auto t0 = absl::Now();
        Gathered g;
        for (uint32_t off : cand) {
          const TokenSet t = seg.tokens(f, off);
          g.Add(t.data, t.count, field.dim);
        }
        std::vector<float> dist(cand.size());
        index::MaxSimDistances(query_of(q), g.Docs(field.dim), 0, cand.size(), dist.data(),
                               &scratch);
        for (size_t i = 0; i < cand.size(); ++i) topk[q].Push(dist[i], HitId(p, cand[i]));
        scored += cand.size();
        rerank_us += absl::ToDoubleMicroseconds(absl::Now() - t0);
      }
    }
    text = absl::StrCat(
        "LateInteraction(field=\"", field.name, "\", k=", k, ", queries=", nq, ")\n",
        absl::StrFormat("  MaxSimRerank(reranked=%d, %.1fus)\n", scored, rerank_us),
        absl::StrFormat("    TokenCandidates(nearest %d token vectors per query vector, %d "
                        "searches, %.1fus)\n",
                        per_vector, token_searches,
                        absl::ToDoubleMicroseconds(absl::Now() - t_cand) - rerank_us));
  } else {
    // Candidates: the field's index over MUVERA encodings (with the
    // filter, through the planner), then exact MaxSim over their sets.
    const uint32_t fde_dim = stored_dims_[f];
    std::vector<float> fde(nq * fde_dim), norms(nq);
    for (size_t q = 0; q < nq; ++q) {
      encoders_[f]->EncodeQuery(sets[q].data, sets[q].count, fde.data() + q * fde_dim);
      norms[q] = index::NormSqr(fde.data() + q * fde_dim, fde_dim);
    }
    const float rf = params.refine_factor() > 0 ? params.refine_factor()
                                                      : kDefaultMultiRefine;
    const auto candidates = static_cast<uint32_t>(std::min<double>(
        kMaxRefineCandidates, std::ceil(static_cast<double>(k) * std::max(1.0f, rf))));
    v1::SearchParams fde_params = params;
    fde_params.set_refine_factor(0);  // the encodings' own index, at its default
    const SearchContext ctx =
        MakeContext(static_cast<size_t>(f), candidates, fde, norms, fde_params, flt, stop);
    std::vector<index::TopK> cand(nq, index::TopK(candidates));
    QUIVER_RETURN_IF_ERROR(SearchView(ctx, view, explain, &cand));
    const auto t_rerank = absl::Now();
    for (size_t q = 0; q < nq; ++q) {
      QUIVER_RETURN_IF_ERROR(stop.Check());
      const std::vector<index::Neighbor> found = cand[q].Take();
      // Per segment: DISK fields read the sets from the table in one batch.
      std::map<size_t, std::vector<uint64_t>> by_part;
      for (const index::Neighbor& nb : found) by_part[nb.id >> 32].push_back(nb.id);
      for (auto& [p, ids] : by_part) {
        const Segment& seg = *view.parts[p].segment;
        std::shared_ptr<const storage::RerankTable> table = seg.table(f);
        Gathered g;
        if (field.disk && table != nullptr) {
          std::vector<uint64_t> rows;
          for (uint64_t id : ids) rows.push_back(id & 0xffffffffu);
          std::vector<std::vector<float>> got;
          QUIVER_RETURN_IF_ERROR(table->Read(rows, &got, &reads));
          for (const auto& v : got) g.Add(v.data(), v.size() / field.dim, field.dim);
        } else {
          for (uint64_t id : ids) {
            const TokenSet t = seg.tokens(f, static_cast<uint32_t>(id & 0xffffffffu));
            g.Add(t.data, t.count, field.dim);
          }
        }
        std::vector<float> dist(ids.size());
        index::MaxSimDistances(query_of(q), g.Docs(field.dim), 0, ids.size(), dist.data(),
                               &scratch);
        for (size_t i = 0; i < ids.size(); ++i) topk[q].Push(dist[i], ids[i]);
        scored += ids.size();
      }
    }
    text = absl::StrCat(
        "LateInteraction(field=\"", field.name, "\", k=", k, ", queries=", nq, ")\n",
        absl::StrFormat("  MaxSimRerank(candidates=%d per query, reranked=%d, reads=%d, %.1fus)\n",
                        candidates, scored, reads,
                        absl::ToDoubleMicroseconds(absl::Now() - t_rerank)),
        "    MuveraCandidates(encoding dims=", fde_dim, ", ", encoders_[f]->params().r_reps,
        " repetitions x ", 1u << encoders_[f]->params().k_sim, " partitions)\n");
    if (explain != nullptr) AppendSegmentsText(*explain, 0, "      ", &text);
  }
  return absl::OkStatus();
}

absl::Status Collection::Search(const v1::SearchRequest& req, const StopToken& stop,
                                v1::SearchResponse* resp) const {
  if (req.k() == 0 || req.k() > kMaxK) {
    return absl::InvalidArgumentError(absl::StrCat("k must be in 1..", kMaxK, ", got ", req.k()));
  }
  if (!req.field_queries().empty()) return SearchHybrid(req, stop, resp);
  if (req.fusion() != v1::FUSION_METHOD_UNSPECIFIED || req.rrf_k() != 0 ||
      req.with_field_results()) {
    return absl::InvalidArgumentError(
        "fusion, rrf_k and with_field_results apply only to hybrid search (field_queries)");
  }
  QUIVER_ASSIGN_OR_RETURN(const int f, ResolveField(req.field()));
  const VectorFieldSpec& field = schema_->vectors()[f];
  if (field.multi) {
    if (!req.vectors().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "field \"", field.name,
          "\" is a multi-vector field: give the query sets in multi_vectors"));
    }
    return SearchMulti(req, f, stop, resp);
  }
  if (!req.multi_vectors().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "multi_vectors: field \"", field.name, "\" is not a multi-vector field"));
  }
  const size_t nq = req.vectors_size();
  QUIVER_RETURN_IF_ERROR(CheckBatch(nq, req.k(), "query vector", ""));
  QUIVER_RETURN_IF_ERROR(CheckSearchParams(req.params(), ""));
  std::vector<float> queries, qnorms;
  QUIVER_RETURN_IF_ERROR(PrepareQueries(field, req.vectors().data(), nq, "query vector",
                                        /*numbered=*/true, &queries, &qnorms));
  std::shared_ptr<const filter::Filter> flt;
  if (!req.filter().empty()) {
    QUIVER_ASSIGN_OR_RETURN(flt, filter::Filter::Compile(req.filter(), *schema_));
  }
  QUIVER_ASSIGN_OR_RETURN(const std::vector<int> out_attrs,
                          OutputAttributes(req.output_attributes()));
  const SearchContext ctx =
      MakeContext(f, req.k(), queries, qnorms, req.params(), flt.get(), stop);

  const auto t_start = absl::Now();
  const View view = TakeView();
  QUIVER_RETURN_IF_ERROR(CheckSearchEstimate(nq, req.k(), out_attrs, req.with_vectors(),
                                             req.explain() ? view.parts.size() : 0,
                                             req.filter().size()));
  std::vector<index::TopK> topk(nq, index::TopK(req.k()));
  v1::Explain* explain = req.explain() ? resp->mutable_explain() : nullptr;
  QUIVER_RETURN_IF_ERROR(SearchView(ctx, view, explain, &topk));
  ResponseBudget budget(options_.max_response_bytes);
  if (explain != nullptr) {
    explain->set_total_micros(absl::ToDoubleMicroseconds(absl::Now() - t_start));
    std::string text = absl::StrCat(
        "Search(collection=\"", name_, "\", field=\"", field.name, "\", k=", req.k(),
        ", queries=", nq, ", filter=", flt ? absl::StrCat("\"", flt->ToString(), "\"") : "none",
        ", strategy=", ForcedStrategyName(ctx.forced), ")\n",
        "  MergeTopK(segments=", explain->segments_size(), ")\n");
    AppendSegmentsText(*explain, 0, "    ", &text);
    absl::StrAppend(&text, absl::StrFormat("  total=%.1fus\n", explain->total_micros()));
    explain->set_text(std::move(text));
    QUIVER_RETURN_IF_ERROR(budget.Add(explain->ByteSizeLong()));
  }

  for (index::TopK& t : topk) {
    QUIVER_RETURN_IF_ERROR(FillHits(view, field, t.Take(), out_attrs, req.with_vectors(),
                                    &budget, resp->add_results()->mutable_hits()));
  }
  return absl::OkStatus();
}

absl::Status Collection::SearchHybrid(const v1::SearchRequest& req, const StopToken& stop,
                                      v1::SearchResponse* resp) const {
  if (!req.field().empty() || !req.vectors().empty() || !req.multi_vectors().empty()) {
    return absl::InvalidArgumentError(
        "hybrid search takes its queries in field_queries: leave field and vectors (and "
        "multi_vectors) empty");
  }
  double rrf_k = kDefaultRrfK;
  if (req.rrf_k() != 0) {
    if (!std::isfinite(req.rrf_k()) || req.rrf_k() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("rrf_k must be a positive number, got ", req.rrf_k()));
    }
    rrf_k = req.rrf_k();
  }
  if (req.fusion() != v1::FUSION_METHOD_UNSPECIFIED && req.fusion() != v1::RRF &&
      req.fusion() != v1::WEIGHTED) {
    return absl::InvalidArgumentError(absl::StrCat("unknown fusion method ", req.fusion()));
  }
  const FusionKind kind = req.fusion() == v1::WEIGHTED ? FusionKind::kWeighted : FusionKind::kRrf;

  struct Part {
    int field;
    uint32_t k;
    double weight;
    std::vector<float> queries, qnorms;
    std::vector<TokenSet> sets;  // a multi-vector field's query set
  };
  std::vector<std::unique_ptr<float[]>> owned;
  const size_t nf = req.field_queries_size();
  std::vector<Part> parts(nf);
  std::vector<bool> used(schema_->vectors().size(), false);
  for (size_t i = 0; i < nf; ++i) {
    const v1::FieldQuery& fq = req.field_queries(static_cast<int>(i));
    const std::string what = absl::StrCat("field_queries[", i, "]");
    if (fq.field().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": field is empty"));
    }
    QUIVER_ASSIGN_OR_RETURN(const int f, ResolveField(fq.field()));
    if (used[f]) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": field \"", fq.field(), "\" is queried twice"));
    }
    used[f] = true;
    Part& part = parts[i];
    part.field = f;
    part.k = fq.k() == 0 ? req.k() : fq.k();
    if (part.k > kMaxK) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": k must be in 1..", kMaxK, ", got ", fq.k()));
    }
    if (!std::isfinite(fq.weight()) || fq.weight() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": weight must be a finite number >= 0, got ", fq.weight()));
    }
    part.weight = fq.weight() == 0 ? 1.0 : fq.weight();
    QUIVER_RETURN_IF_ERROR(CheckSearchParams(fq.params(), absl::StrCat(what, ": ")));
    const VectorFieldSpec& spec = schema_->vectors()[f];
    switch (fq.query_case()) {
      case v1::FieldQuery::kVector: {
        if (spec.multi) {
          return absl::InvalidArgumentError(absl::StrCat(
              what, ": \"", spec.name, "\" is a multi-vector field: give a multi_vector"));
        }
        const v1::Vector* v = &fq.vector();
        QUIVER_RETURN_IF_ERROR(PrepareQueries(spec, &v, 1, absl::StrCat(what, " vector"),
                                              /*numbered=*/false, &part.queries, &part.qnorms));
        break;
      }
      case v1::FieldQuery::kMultiVector: {
        if (!spec.multi) {
          return absl::InvalidArgumentError(absl::StrCat(
              what, ": \"", spec.name, "\" is not a multi-vector field: give a vector"));
        }
        QUIVER_ASSIGN_OR_RETURN(TokenSet set,
                                PrepareTokens(spec, fq.multi_vector(),
                                              absl::StrCat(what, " query set"), &owned));
        part.sets.push_back(set);
        break;
      }
      case v1::FieldQuery::QUERY_NOT_SET:
        return absl::InvalidArgumentError(absl::StrCat(what, ": no query vector"));
    }
  }
  std::shared_ptr<const filter::Filter> flt;
  if (!req.filter().empty()) {
    QUIVER_ASSIGN_OR_RETURN(flt, filter::Filter::Compile(req.filter(), *schema_));
  }
  QUIVER_ASSIGN_OR_RETURN(const std::vector<int> out_attrs,
                          OutputAttributes(req.output_attributes()));

  const auto t_start = absl::Now();
  const View view = TakeView();
  {
    // The fused list, and each field's own list if asked for.
    QUIVER_RETURN_IF_ERROR(CheckSearchEstimate(1, req.k(), out_attrs, req.with_vectors(),
                                               req.explain() ? view.parts.size() * nf : 0,
                                               req.filter().size()));
    if (req.with_field_results()) {
      uint32_t field_k = 0;
      for (const Part& part : parts) field_k = std::max(field_k, part.k);
      QUIVER_RETURN_IF_ERROR(CheckSearchEstimate(
          nf + 1, std::max(field_k, req.k()), out_attrs, req.with_vectors(),
          req.explain() ? view.parts.size() * nf : 0, req.filter().size()));
    }
  }
  // One filter plan for every field: the estimate and row set of each
  // segment are computed once, by the first field that needs them.
  std::vector<SharedSegmentFilter> shared(flt != nullptr ? view.parts.size() : 0);
  std::vector<std::vector<index::TopK>> topk(nf);
  std::vector<v1::Explain> explains(req.explain() ? nf : 0);
  std::vector<absl::Status> statuses(nf);
  std::vector<double> field_micros(nf);
  std::vector<std::string> multi_text(nf);
  std::vector<std::function<void()>> tasks;
  for (size_t i = 0; i < nf; ++i) {
    tasks.push_back([&, i] {
      const auto t0 = absl::Now();
      const v1::SearchParams& params = req.field_queries(static_cast<int>(i)).params();
      topk[i].assign(1, index::TopK(parts[i].k));
      if (!parts[i].sets.empty()) {
        statuses[i] = SearchMultiView(parts[i].field, parts[i].sets, parts[i].k, params,
                                      flt.get(), view, stop,
                                      req.explain() ? &explains[i] : nullptr, &topk[i],
                                      &multi_text[i]);
      } else {
        SearchContext ctx = MakeContext(parts[i].field, parts[i].k, parts[i].queries,
                                        parts[i].qnorms, params, flt.get(), stop);
        if (!shared.empty()) ctx.shared_filter = shared.data();
        statuses[i] = SearchView(ctx, view, req.explain() ? &explains[i] : nullptr, &topk[i]);
      }
      field_micros[i] = absl::ToDoubleMicroseconds(absl::Now() - t0);
    });
  }
  if (options_.search_pool != nullptr) options_.search_pool->RunAll(tasks);
  else for (const auto& t : tasks) t();
  for (const absl::Status& st : statuses) QUIVER_RETURN_IF_ERROR(st);

  std::vector<RankedList> lists(nf);
  for (size_t i = 0; i < nf; ++i) {
    lists[i].hits = topk[i][0].Take();
    lists[i].weight = parts[i].weight;
  }
  const auto t_fuse = absl::Now();
  const std::vector<FusedHit> fused = Fuse(kind, lists, req.k(), rrf_k);
  const double fuse_micros = absl::ToDoubleMicroseconds(absl::Now() - t_fuse);

  ResponseBudget budget(options_.max_response_bytes);
  v1::SearchResult* result = resp->add_results();
  for (const FusedHit& h : fused) {
    QUIVER_RETURN_IF_ERROR(FillHit(view, h.id, static_cast<float>(h.score), out_attrs,
                                   req.with_vectors(), &budget, result->add_hits()));
  }
  if (req.with_field_results()) {
    for (size_t i = 0; i < nf; ++i) {
      v1::FieldResult* fr = resp->add_field_results();
      const VectorFieldSpec& field = schema_->vectors()[parts[i].field];
      fr->set_field(field.name);
      QUIVER_RETURN_IF_ERROR(FillHits(view, field, lists[i].hits, out_attrs, req.with_vectors(),
                                      &budget, fr->mutable_hits()));
    }
  }
  if (req.explain()) {
    v1::Explain* explain = resp->mutable_explain();
    explain->set_total_micros(absl::ToDoubleMicroseconds(absl::Now() - t_start));
    std::string text = absl::StrCat(
        "HybridSearch(collection=\"", name_, "\", k=", req.k(), ", fields=", nf,
        ", filter=", flt ? absl::StrCat("\"", flt->ToString(), "\"") : "none", ")\n",
        "  Fuse(", kind == FusionKind::kRrf ? absl::StrCat("RRF, rrf_k=", rrf_k) : "WEIGHTED",
        absl::StrFormat(", %.1fus)\n", fuse_micros));
    for (size_t i = 0; i < nf; ++i) {
      const v1::FieldQuery& fq = req.field_queries(static_cast<int>(i));
      absl::StrAppend(&text, "    Field(\"", schema_->vectors()[parts[i].field].name,
                      "\", k=", parts[i].k, ", weight=", parts[i].weight,
                      ", strategy=", v1::FilterStrategy_Name(fq.params().filter_strategy()),
                      absl::StrFormat(", %.1fus)\n", field_micros[i]),
                      "      MergeTopK(segments=", explains[i].segments_size(), ")\n");
      for (absl::string_view line : absl::StrSplit(multi_text[i], '\n', absl::SkipEmpty())) {
        absl::StrAppend(&text, "        ", line, "\n");
      }
      if (multi_text[i].empty()) AppendSegmentsText(explains[i], 0, "        ", &text);
      for (v1::SegmentPlan& sp : *explains[i].mutable_segments()) {
        *explain->add_segments() = std::move(sp);
      }
    }
    absl::StrAppend(&text, absl::StrFormat("  total=%.1fus\n", explain->total_micros()));
    explain->set_text(std::move(text));
    QUIVER_RETURN_IF_ERROR(budget.Add(explain->ByteSizeLong()));
  }
  return absl::OkStatus();
}

absl::Status Collection::Get(const v1::GetPointsRequest& req,
                             v1::GetPointsResponse* resp) const {
  std::vector<int> out_attrs;
  for (const std::string& a : req.attributes()) {
    const int ai = schema_->AttributeIndex(a);
    if (ai < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "attributes: collection \"", name_, "\" has no attribute \"", TruncateForMessage(a),
          "\""));
    }
    out_attrs.push_back(ai);
  }
  if (req.attributes().empty()) {
    for (size_t i = 0; i < schema_->attributes().size(); ++i) out_attrs.push_back(static_cast<int>(i));
  }
  // The rows found are copied out under the reader lock: id-map entries are
  // only valid while the segment list cannot change.
  ReaderMutexLock lock(&mu_);
  // Lookups are cheap next to copying vectors: the points found are
  // counted first, so a response past the limit is refused before any is
  // copied (an id asked for twice is returned twice).
  if (options_.max_response_bytes > 0) {
    size_t found = 0;
    for (const std::string& id : req.ids()) found += id_map_.contains(id);
    const size_t point = HitBytesEstimate(out_attrs, req.with_vectors());
    QUIVER_RETURN_IF_ERROR(CheckResponseEstimate(
        static_cast<double>(found) * point,
        absl::StrFormat("%d points found x ~%d bytes per point%s", found, point,
                        req.with_vectors() ? " with its vectors" : "")));
  }
  ResponseBudget budget(options_.max_response_bytes);
  for (int i = 0; i < req.ids_size(); ++i) {
    auto it = id_map_.find(req.ids(i));
    if (it == id_map_.end()) continue;
    const Segment& seg = *it->second.segment;
    const uint32_t off = it->second.offset;
    v1::Point* p = resp->add_points();
    p->set_id(seg.external_id(off));
    for (int ai : out_attrs) {
      v1::Value value;
      if (AttrToValue(seg.attrs(off)[ai], &value)) {
        (*p->mutable_attributes())[schema_->attributes()[ai].name] = std::move(value);
      }
    }
    if (req.with_vectors()) AddVectors(seg, off, p->mutable_vectors(), p->mutable_multi_vectors());
    QUIVER_RETURN_IF_ERROR(budget.Add(p->ByteSizeLong() + 4));
  }
  return absl::OkStatus();
}

namespace {

// An unindexed predicate costs a few nanoseconds per row; a filter's
// predicates are counted by its size (a predicate with its connective
// takes ~8 bytes at the least), which needs no parsing.
uint64_t FilterWork(uint64_t rows, size_t filter_bytes) {
  return filter_bytes == 0 ? 0 : rows * (1 + filter_bytes / 8);
}

}  // namespace

uint64_t Collection::EstimateCountWork(const std::string& filter_expr) const {
  uint64_t live;
  {
    ReaderMutexLock lock(&mu_);
    live = live_;
  }
  return FilterWork(live, filter_expr.size());
}

uint64_t Collection::EstimateWork(const v1::SearchRequest& req) const {
  uint64_t live;
  {
    ReaderMutexLock lock(&mu_);
    live = live_;
  }
  // Floats of distance computation per query vector: every row for an
  // exact scan, a few thousand rows' worth through an index.
  auto search = [&](uint32_t dim, bool exact, uint64_t vectors) {
    const uint64_t rows = exact ? live : std::min<uint64_t>(live, 4096);
    return vectors * rows * std::max<uint32_t>(dim, 16) / 16;
  };
  uint64_t work = FilterWork(live, req.filter().size());
  const int f = schema_->VectorFieldIndex(req.field());
  const uint32_t dim = f >= 0 ? schema_->vectors()[f].dim
                              : schema_->vectors().empty() ? 0 : schema_->vectors()[0].dim;
  const bool exact = req.params().exact();
  work += search(dim, exact, static_cast<uint64_t>(req.vectors_size()));
  for (const v1::MultiVector& mv : req.multi_vectors()) {
    work += search(dim, exact, static_cast<uint64_t>(mv.vectors_size()));
  }
  for (const v1::FieldQuery& fq : req.field_queries()) {
    const int ff = schema_->VectorFieldIndex(fq.field());
    if (ff < 0) continue;
    work += search(schema_->vectors()[ff].dim, fq.params().exact(),
                   fq.has_multi_vector() ? fq.multi_vector().vectors_size() : 1);
  }
  return work;
}

absl::StatusOr<uint64_t> Collection::Count(const std::string& filter_expr,
                                           const StopToken& stop) const {
  std::shared_ptr<const filter::Filter> flt;
  if (!filter_expr.empty()) {
    QUIVER_ASSIGN_OR_RETURN(flt, filter::Filter::Compile(filter_expr, *schema_));
  }
  if (flt == nullptr) {
    ReaderMutexLock lock(&mu_);
    return live_;
  }
  const View view = TakeView();
  uint64_t count = 0;
  for (const View::Part& part : view.parts) {
    RowSet rows;
    QUIVER_RETURN_IF_ERROR(MatchingRows(*part.segment, part.rows, view.seq, flt.get(), stop, &rows));
    count += rows.Count();
  }
  return count;
}

void Collection::Describe(v1::CollectionInfo* info) const {
  info->Clear();
  storage::CollectionRecord rec = Record();
  info->set_name(name_);
  *info->mutable_schema() = std::move(*rec.mutable_schema());
  info->set_created_at_unix_ms(created_at_unix_ms_);
  const View view = TakeView();
  v1::CollectionStats* st = info->mutable_stats();
  uint64_t dead = 0;
  {
    ReaderMutexLock lock(&mu_);
    st->set_point_count(live_);
  }
  for (const View::Part& part : view.parts) dead += part.segment->dead();
  st->set_deleted_count(dead);
  st->set_last_sequence(view.seq);
  const size_t nf = schema_->vectors().size();
  for (size_t f = 0; f < nf; ++f) {
    v1::VectorFieldStats* vs = st->add_vectors();
    vs->set_name(schema_->vectors()[f].name);
  }
  for (const View::Part& part : view.parts) {
    const Segment& seg = *part.segment;
    v1::SegmentInfo* si = st->add_segments();
    si->set_id(seg.id());
    si->set_rows(part.rows);
    si->set_deleted(seg.dead());
    bool indexed = true;
    for (size_t f = 0; f < nf; ++f) {
      const VectorFieldSpec& field = schema_->vectors()[f];
      const index::IndexSpec spec = IndexSpecFor(f);
      v1::SegmentInfo::Field* fi = si->add_fields();
      fi->set_name(field.name);
      std::shared_ptr<const index::VectorIndex> idx = seg.index(f);
      if (idx != nullptr) fi->set_index(idx->Describe());
      if (spec.type != "FLAT" && (idx == nullptr || !SameIndexSpec(idx->spec(), spec))) {
        indexed = false;
      }
      fi->set_memory_bytes(seg.VectorBytes(f, part.rows) + (idx ? idx->MemoryBytes() : 0));
      std::shared_ptr<const storage::RerankTable> table = seg.table(f);
      fi->set_disk_bytes(seg.disk_bytes(f) + (table ? table->file_bytes() : 0));
      v1::VectorFieldStats* vs = st->mutable_vectors(static_cast<int>(f));
      vs->set_memory_bytes(vs->memory_bytes() + fi->memory_bytes());
      vs->set_disk_bytes(vs->disk_bytes() + fi->disk_bytes());
    }
    si->set_state(!seg.sealed() ? v1::SegmentInfo::GROWING
                  : indexed     ? v1::SegmentInfo::INDEXED
                  : seg.building() ? v1::SegmentInfo::BUILDING
                                   : v1::SegmentInfo::SEALED);
  }
}

// ---------------------------------------------------------------- validation

absl::StatusOr<PreparedUpsert> Collection::ValidateUpsert(
    const v1::UpsertPointsRequest& req) const {
  if (req.points().empty()) return absl::InvalidArgumentError("upsert needs at least one point");
  PreparedUpsert up;
  up.points.resize(req.points_size());
  absl::flat_hash_set<absl::string_view> seen;
  size_t owned_floats = 0;
  for (const VectorFieldSpec& f : schema_->vectors()) {
    if (f.metric == Metric::kCosine && !f.multi) {
      owned_floats += static_cast<size_t>(f.dim) * req.points_size();
    }
  }
  up.owned.resize(owned_floats);
  size_t owned_pos = 0;
  const auto& attrs = schema_->attributes();
  for (int i = 0; i < req.points_size(); ++i) {
    const v1::Point& p = req.points(i);
    // Built only on the error paths: most batches have none.
    auto label = [&] { return PointLabel(p.id(), i); };
    if (p.id().empty()) return absl::InvalidArgumentError(absl::StrCat(label(), ": id is empty"));
    if (p.id().size() > kMaxIdBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(label(), ": id is longer than ", kMaxIdBytes, " bytes"));
    }
    if (!seen.insert(p.id()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(label(), ": id appears more than once in this request"));
    }
    for (const auto& [fname, mv] : p.multi_vectors()) {
      const int f = schema_->VectorFieldIndex(fname);
      if (f < 0 || !schema_->vectors()[f].multi) {
        return absl::InvalidArgumentError(absl::StrCat(
            label(), ": field \"", TruncateForMessage(fname),
            "\" is not a multi-vector field of collection \"",
            name_, "\""));
      }
    }
    for (const auto& [fname, vec] : p.vectors()) {
      const int f = schema_->VectorFieldIndex(fname);
      if (f < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            label(), ": collection \"", name_, "\" has no vector field \"",
            TruncateForMessage(fname), "\""));
      }
      if (schema_->vectors()[f].multi) {
        return absl::InvalidArgumentError(absl::StrCat(
            label(), ": field \"", fname,
            "\" is a multi-vector field: give its vectors in multi_vectors"));
      }
    }
    PreparedUpsert::Point& out = up.points[i];
    out.vectors.resize(schema_->vectors().size());
    out.tokens.resize(schema_->vectors().size());
    for (size_t f = 0; f < schema_->vectors().size(); ++f) {
      const VectorFieldSpec& spec = schema_->vectors()[f];
      if (spec.multi) {
        auto mit = p.multi_vectors().find(spec.name);
        if (mit == p.multi_vectors().end()) {
          return absl::InvalidArgumentError(
              absl::StrCat(label(), ": multi-vector field \"", spec.name, "\" is missing"));
        }
        QUIVER_ASSIGN_OR_RETURN(
            TokenSet set,
            PrepareTokens(spec, mit->second, absl::StrCat(label(), ": field \"", spec.name, "\""),
                          &up.owned_blocks));
        out.tokens[f] = set;
        float* fde = new float[stored_dims_[f]];
        up.owned_blocks.emplace_back(fde);
        if (encoders_[f] != nullptr && !spec.token_candidates) {
          encoders_[f]->EncodeDocument(set.data, set.count, fde);
        } else {
          std::fill(fde, fde + stored_dims_[f], 0.0f);  // unused: TOKENS index the vectors
        }
        out.vectors[f] = fde;
        continue;
      }
      auto it = p.vectors().find(spec.name);
      if (it == p.vectors().end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(label(), ": vector field \"", spec.name, "\" is missing"));
      }
      if (absl::Status st = CheckVector(it->second.values(), spec.dim, spec.metric, "");
          !st.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(label(), ": field \"", spec.name, "\"", st.message()));
      }
      if (spec.metric == Metric::kCosine) {
        float* dst = up.owned.data() + owned_pos;
        owned_pos += spec.dim;
        Normalize(it->second.values().data(), dst, spec.dim);
        out.vectors[f] = dst;
      } else {
        out.vectors[f] = it->second.values().data();
      }
    }
    out.attrs.resize(attrs.size());
    out.record.set_id(p.id());
    for (size_t a = 0; a < attrs.size(); ++a) out.record.add_attributes();
    for (const auto& [aname, value] : p.attributes()) {
      const int ai = schema_->AttributeIndex(aname);
      if (ai < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            label(), ": collection \"", name_, "\" has no attribute \"",
            TruncateForMessage(aname), "\""));
      }
      absl::StatusOr<AttrValue> av = ValueToAttr(value, attrs[ai].type, "");
      if (!av.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(label(), ": attribute \"", aname, "\"", av.status().message()));
      }
      out.attrs[ai] = *std::move(av);
      *out.record.mutable_attributes(ai) = value;
      if (attrs[ai].type == AttrType::kDouble && value.has_int_value()) {
        out.record.mutable_attributes(ai)->set_double_value(static_cast<double>(value.int_value()));
      }
    }
  }
  return up;
}

absl::StatusOr<PreparedDelete> Collection::ValidateDelete(
    const v1::DeletePointsRequest& req) const {
  PreparedDelete del;
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
    QUIVER_ASSIGN_OR_RETURN(del.filter, filter::Filter::Compile(req.filter(), *schema_));
  }
  return del;
}

// ---------------------------------------------------------------- commit

int64_t Collection::ResolveForWrite(const std::string& id) const {
  auto p = pending_.find(id);
  if (p != pending_.end()) return p->second;
  ReaderMutexLock lock(&mu_);
  auto it = id_map_.find(id);
  if (it == id_map_.end()) return -1;
  return static_cast<int64_t>(it->second.segment->iid(it->second.offset));
}

void Collection::PrepareUpsert(uint64_t seq, const PreparedUpsert& up, storage::Batch* batch,
                               WriteEffects* fx) {
  storage::OpRecord op;
  op.set_type(storage::OpRecord::UPSERT);
  op.set_collection_id(id_);
  op.set_unix_ms(NowMs());
  std::vector<uint32_t> dims;
  for (const VectorFieldSpec& f : schema_->vectors()) dims.push_back(f.dim);
  std::vector<const float*> stored(dims.size());
  for (const PreparedUpsert::Point& p : up.points) {
    // Multi-vector fields store the point's vectors; encodings are derived.
    for (size_t f = 0; f < dims.size(); ++f) {
      if (schema_->vectors()[f].multi) {
        stored[f] = p.tokens[f].data;
        dims[f] = p.tokens[f].count * schema_->vectors()[f].dim;
      } else {
        stored[f] = p.vectors[f];
      }
    }
    const std::string& id = p.record.id();
    const int64_t old = ResolveForWrite(id);
    if (old >= 0) {
      batch->DeletePointData(id_, old, dims.size());
      fx->removed_ids.push_back(id);
      op.add_removed_iids(old);
    }
    const uint64_t iid = next_iid_++;
    batch->PutPoint(id_, iid, p.record, stored, dims);
    fx->added.push_back(iid);
    pending_[id] = static_cast<int64_t>(iid);
    op.add_ids(id);
    op.add_added_iids(iid);
  }
  batch->PutNextInternalId(id_, next_iid_);
  batch->LogOp(seq, op);
}

void Collection::PrepareDelete(uint64_t seq, const PreparedDelete& del, storage::Batch* batch,
                               WriteEffects* fx) {
  storage::OpRecord op;
  op.set_type(storage::OpRecord::DELETE);
  op.set_collection_id(id_);
  op.set_unix_ms(NowMs());
  auto remove = [&](const std::string& id, uint64_t iid) {
    batch->DeletePointData(id_, iid, schema_->vectors().size());
    batch->DeleteIdMapping(id_, id);
    fx->removed_ids.push_back(id);
    pending_[id] = -1;
    op.add_ids(id);
    op.add_removed_iids(iid);
  };
  if (del.filter != nullptr) {
    // The engine runs a filter delete as a group of its own, so the applied
    // state is the whole truth here.
    const View view = TakeView();
    for (const View::Part& part : view.parts) {
      const Segment& seg = *part.segment;
      MatchingRows(seg, part.rows, view.seq, del.filter.get()).ForEach([&](uint32_t off) {
        remove(seg.external_id(off), seg.iid(off));
      });
    }
  } else {
    absl::flat_hash_set<absl::string_view> seen;
    for (const std::string& id : del.ids) {
      if (!seen.insert(id).second) continue;
      const int64_t iid = ResolveForWrite(id);
      if (iid >= 0) remove(id, iid);
    }
  }
  batch->LogOp(seq, op);
}

Segment& Collection::GrowingForAppend() {
  if (growing_ != nullptr && growing_->full()) SealGrowing();
  if (growing_ == nullptr) {
    growing_ = std::make_shared<Segment>(next_segment_id_++, schema_, options_.segment_max_rows);
    writer_segments_.push_back(growing_);
  }
  return *growing_;
}

std::shared_ptr<Segment> Collection::SealGrowing() {
  if (growing_ == nullptr || growing_->appended() == 0) return nullptr;
  growing_->Seal();
  just_sealed_.push_back(growing_);
  std::shared_ptr<Segment> sealed = std::move(growing_);
  growing_ = nullptr;
  return sealed;
}

void Collection::PublishLocked(uint64_t seq) {
  // Row data is written before the counts that cover it are published; the
  // release in Publish and the mutex order both before any reader's view.
  for (const auto& s : writer_segments_) {
    if (s->published() != s->appended()) s->Publish(s->appended());
  }
  if (segments_.size() != writer_segments_.size() ||
      !std::equal(segments_.begin(), segments_.end(), writer_segments_.begin())) {
    segments_ = writer_segments_;
  }
  seq_ = std::max(seq_, seq);
}

void Collection::NotifySealed() {
  std::vector<std::shared_ptr<Segment>> sealed;
  sealed.swap(just_sealed_);
  if (on_sealed_) {
    for (auto& s : sealed) on_sealed_(*this, std::move(s));
  }
}

void Collection::ApplyUpsert(uint64_t seq, const PreparedUpsert& up, const WriteEffects& fx) {
  std::vector<RowRef> rows;
  rows.reserve(up.points.size());
  for (size_t i = 0; i < up.points.size(); ++i) {
    const PreparedUpsert::Point& p = up.points[i];
    Segment& seg = GrowingForAppend();
    rows.push_back(
        {&seg, seg.Append(fx.added[i], p.record.id(), p.attrs, p.vectors, p.tokens.data())});
  }
  {
    MutexLock lock(&mu_);
    for (const std::string& id : fx.removed_ids) {
      auto it = id_map_.find(id);
      if (it != id_map_.end()) it->second.segment->MarkDeleted(it->second.offset, seq);
    }
    for (size_t i = 0; i < up.points.size(); ++i) id_map_[up.points[i].record.id()] = rows[i];
    live_ += up.points.size() - fx.removed_ids.size();
    PublishLocked(seq);
  }
  last_write_ = absl::Now();
  NotifySealed();
}

void Collection::ApplyDelete(uint64_t seq, const WriteEffects& fx) {
  {
    MutexLock lock(&mu_);
    for (const std::string& id : fx.removed_ids) {
      auto it = id_map_.find(id);
      if (it == id_map_.end()) continue;
      it->second.segment->MarkDeleted(it->second.offset, seq);
      id_map_.erase(it);
    }
    live_ -= fx.removed_ids.size();
    PublishLocked(seq);
  }
  last_write_ = absl::Now();
}

void Collection::ApplyNoop(uint64_t seq) {
  MutexLock lock(&mu_);
  PublishLocked(seq);
}

void Collection::SealIfIdle(absl::Duration idle) {
  if (growing_ == nullptr || growing_->appended() == 0 || absl::Now() - last_write_ < idle) return;
  SealGrowing();
  {
    MutexLock lock(&mu_);
    PublishLocked(seq_);
  }
  NotifySealed();
}

std::vector<CompactionPlan> Collection::PlanCompactions() {
  const uint32_t max_rows = options_.segment_max_rows;
  const uint32_t small =
      options_.merge_below_rows != 0 ? options_.merge_below_rows : std::max(1u, max_rows / 2);
  std::vector<CompactionPlan> plans;
  CompactionPlan merge;
  uint64_t merge_live = 0;
  auto sparse = [&](const Segment& seg) {
    return seg.appended() > 0 && seg.dead() >= options_.compact_deleted_ratio * seg.appended();
  };
  // A merge group of one is only worth rewriting for its deletions.
  auto flush_merge = [&] {
    if (merge.inputs.size() >= 2 || (merge.inputs.size() == 1 && sparse(*merge.inputs[0]))) {
      plans.push_back(std::move(merge));
    }
    merge = CompactionPlan();
    merge_live = 0;
  };
  for (const auto& seg : writer_segments_) {
    if (!seg->sealed() || seg->compacting() || seg->building()) {
      flush_merge();
      continue;
    }
    const uint32_t rows = seg->appended();
    const uint32_t live = rows - std::min(rows, seg->dead());
    if (live < small) {
      if (merge_live + live > max_rows) flush_merge();
      merge.inputs.push_back(seg);
      merge_live += live;
      continue;
    }
    flush_merge();
    if (sparse(*seg)) {
      CompactionPlan p;
      p.inputs.push_back(seg);
      plans.push_back(std::move(p));
    }
  }
  flush_merge();
  for (CompactionPlan& p : plans) {
    p.output_id = next_segment_id_++;
    for (const auto& in : p.inputs) in->SetCompacting(true);
  }
  return plans;
}

std::shared_ptr<Segment> Collection::BuildCompacted(const CompactionPlan& plan) const {
  const View view = TakeView();
  uint64_t live = 0;
  for (const auto& in : plan.inputs) {
    const uint32_t rows = in->published();
    for (uint32_t off = 0; off < rows; ++off) live += in->Visible(off, view.seq);
  }
  auto out = std::make_shared<Segment>(plan.output_id, schema_,
                                       static_cast<uint32_t>(std::max<uint64_t>(live, 1)));
  const size_t nf = schema_->vectors().size();
  std::vector<const float*> vectors(nf);
  std::vector<TokenSet> tokens(nf);
  for (const auto& in : plan.inputs) {
    const uint32_t rows = in->published();
    for (uint32_t off = 0; off < rows && !out->full(); ++off) {
      if (!in->Visible(off, view.seq)) continue;
      for (size_t f = 0; f < nf; ++f) {
        vectors[f] = in->vector(f, off);
        if (schema_->vectors()[f].multi) tokens[f] = in->tokens(f, off);
      }
      out->Append(in->iid(off), in->external_id(off), in->attrs(off), vectors, tokens.data());
    }
  }
  out->Seal();
  out->Publish(out->appended());
  return out;
}

bool Collection::SwapCompacted(const CompactionPlan& plan,
                               const std::shared_ptr<Segment>& output) {
  for (const auto& in : plan.inputs) in->SetCompacting(false);
  if (dropped()) return false;
  for (const auto& in : plan.inputs) in->SetRetired();
  // Where each copied row came from: inputs are scanned in the same order
  // BuildCompacted used, matching rows by internal id.
  absl::flat_hash_map<uint64_t, uint32_t> out_offset;
  const uint32_t out_rows = output->appended();
  for (uint32_t off = 0; off < out_rows; ++off) out_offset[output->iid(off)] = off;
  MutexLock lock(&mu_);
  for (const auto& in : plan.inputs) {
    const uint32_t rows = in->published();
    for (uint32_t off = 0; off < rows; ++off) {
      auto it = out_offset.find(in->iid(off));
      if (it == out_offset.end()) continue;
      const uint64_t del = in->delete_seq(off);
      if (del != kAlive) {
        // Deleted or overwritten after the copy was taken.
        output->MarkDeleted(it->second, del);
        continue;
      }
      auto ref = id_map_.find(in->external_id(off));
      if (ref != id_map_.end() && ref->second.segment == in.get() && ref->second.offset == off) {
        ref->second = RowRef{output.get(), it->second};
      }
    }
  }
  // The output takes the place of the first input; the others go.
  std::vector<std::shared_ptr<Segment>> next;
  bool placed = false;
  for (const auto& seg : writer_segments_) {
    const bool is_input =
        std::find(plan.inputs.begin(), plan.inputs.end(), seg) != plan.inputs.end();
    if (!is_input) {
      next.push_back(seg);
    } else if (!placed) {
      if (output->appended() > 0) next.push_back(output);
      placed = true;
    }
  }
  writer_segments_ = std::move(next);
  PublishLocked(seq_);
  return true;
}

absl::Status Collection::Persist(Segment& seg, const storage::SegmentFiles& files) const {
  if (dropped() || seg.retired()) return absl::OkStatus();
  // Several builder workers may finish one segment (an index change
  // re-queues it): one persist at a time, so a table is written and
  // attached once.
  MutexLock persist_lock(&persist_mu_);
  QUIVER_ASSIGN_OR_RETURN(const std::string tmp, files.BeginWrite(id_, seg.id()));
  // A failed persist (a full disk, say) leaves nothing behind: the space
  // goes back, and the next attempt starts over.
  std::vector<std::string> tables;  // written by this attempt
  bool committed = false;
  struct Cleanup {
    const std::string& tmp;
    const std::vector<std::string>& tables;
    const bool& committed;
    storage::FileSystem& fs;
    ~Cleanup() {
      if (committed) return;
      // Commit failed after renaming the directory into place (its last
      // fsync): the MANIFEST on disk names these tables, keep them.
      absl::StatusOr<bool> exists = fs.Exists(tmp);
      if (exists.ok() && !*exists) return;
      (void)fs.DeleteTree(tmp);
      for (const std::string& t : tables) (void)fs.DeleteFile(t);
    }
  } cleanup{tmp, tables, committed, files.fs()};
  storage::SegmentManifest m;
  m.set_collection_id(id_);
  m.set_segment_id(seg.id());
  const uint32_t rows = seg.published();
  for (uint32_t off = 0; off < rows; ++off) m.add_iids(seg.iid(off));
  {
    ReaderMutexLock lock(&mu_);
    m.set_sequence(seq_);
  }
  for (size_t f = 0; f < schema_->vectors().size(); ++f) {
    std::shared_ptr<const index::VectorIndex> idx = seg.index(f);
    if (idx == nullptr) continue;
    const VectorFieldSpec& field = schema_->vectors()[f];
    const index::IndexSpec& spec = idx->spec();
    storage::SegmentManifest::IndexFile* e = m.add_indexes();
    e->set_field(static_cast<uint32_t>(f));
    e->set_field_name(field.name);
    e->set_index_type(spec.type);
    e->mutable_index_params()->insert(spec.params.begin(), spec.params.end());
    e->set_file(absl::StrCat("f", f, ".index"));
    QUIVER_RETURN_IF_ERROR(idx->Save(files.fs(), absl::StrCat(tmp, "/", e->file())));
    QUIVER_RETURN_IF_ERROR(files.Checksum(tmp, e));
  }
  // DISK fields: the full vectors go to a rerank table, written once; an
  // attached one is named again with the sequence it was written at.
  std::vector<size_t> written;
  for (size_t f = 0; f < schema_->vectors().size(); ++f) {
    // Multi-vector fields always keep their sets in a table: one contiguous
    // array that exact MaxSim scans block by block.
    const VectorFieldSpec& field = schema_->vectors()[f];
    if (!field.disk && !field.multi) continue;
    storage::SegmentManifest::RerankFile* rf = m.add_rerank_tables();
    rf->set_field(static_cast<uint32_t>(f));
    if (std::shared_ptr<const storage::RerankTable> t = seg.table(f); t != nullptr) {
      rf->set_sequence(t->sequence());
      rf->set_size(t->file_bytes());
      continue;
    }
    const std::string path = files.RerankTablePath(id_, seg.id(), static_cast<uint32_t>(f));
    QUIVER_RETURN_IF_ERROR(files.fs().CreateDirs(storage::DirName(path)));
    storage::RerankTableWriter w(files.fs(), path, field.dim, m.sequence(), field.multi);
    for (uint32_t off = 0; off < rows; ++off) {
      if (field.multi) {
        const TokenSet t = seg.tokens(f, off);
        QUIVER_RETURN_IF_ERROR(w.Add(t.data, t.count));
      } else {
        QUIVER_RETURN_IF_ERROR(w.Add(seg.vector(f, off), 1));
      }
    }
    QUIVER_RETURN_IF_ERROR(w.Finish());
    tables.push_back(path);
    rf->set_sequence(m.sequence());
    QUIVER_ASSIGN_OR_RETURN(const uint64_t table_bytes, files.fs().FileSize(path));
    rf->set_size(table_bytes);
    written.push_back(f);
  }
  QUIVER_RETURN_IF_ERROR(files.Commit(tmp, m));
  committed = true;
  // A compaction may have replaced the segment while it was being written;
  // it removes the files of segments it retires, and either it sees these
  // files or this sees the retirement.
  if (seg.retired()) return files.RemoveSegment(id_, seg.id());
  seg.SetPersisted();
  for (const auto& e : m.indexes()) seg.SetDiskBytes(e.field(), e.size());
  // Only now, with the manifest naming them, do the tables serve.
  for (size_t f : written) {
    storage::RerankTableExpect expect;
    expect.dim = schema_->vectors()[f].dim;
    expect.rows = rows;
    expect.sequence = m.sequence();
    expect.multi = schema_->vectors()[f].multi;
    QUIVER_RETURN_IF_ERROR(AttachTable(seg, f, files.RerankTablePath(id_, seg.id(),
                                                                     static_cast<uint32_t>(f)),
                                       expect, /*compute_norms=*/false));
  }
  return absl::OkStatus();
}

bool Collection::LoadIndexes(Segment* seg, const storage::SegmentManifest& manifest,
                             const storage::SegmentFiles& files) const {
  const storage::SegmentManifest* m = &manifest;
  bool complete = true;
  for (size_t f = 0; f < schema_->vectors().size(); ++f) {
    const VectorFieldSpec& field = schema_->vectors()[f];
    const index::IndexSpec spec = IndexSpecFor(f);
    if (spec.type == "FLAT") continue;
    const storage::SegmentManifest::IndexFile* entry = nullptr;
    for (const auto& e : m->indexes()) {
      if (e.field() == f && e.index_type() == spec.type &&
          std::map<std::string, std::string>(e.index_params().begin(), e.index_params().end()) ==
              spec.params) {
        entry = &e;
      }
    }
    absl::Status s = entry == nullptr ? absl::NotFoundError("no index file for the current spec")
                                      : files.VerifyFile(id_, seg->id(), *entry);
    if (s.ok()) {
      auto idx = index::CreateIndex(spec);
      s = idx.ok() ? (*idx)->Load(absl::StrCat(files.SegmentDir(id_, seg->id()), "/", entry->file()))
                   : idx.status();
      // A TOKENS index is checked against the vector sets' table; without
      // one the sets are still being loaded (and the table is rebuilt).
      if (s.ok() && field.token_candidates && seg->table(f) == nullptr) {
        s = absl::DataLossError("no verified vector-set table to check the index against");
      }
      const uint64_t want = !s.ok() ? 0
                            : field.token_candidates ? seg->TokenCount(f, seg->appended())
                                                     : seg->appended();
      if (s.ok() && (*idx)->size() != want) {
        s = absl::DataLossError("index size does not match the segment");
      }
      if (s.ok()) {
        seg->SetIndex(f, std::shared_ptr<const index::VectorIndex>(std::move(*idx)));
        seg->SetDiskBytes(f, entry->size());
      }
    }
    if (!s.ok()) {
      spdlog::warn("collection \"{}\" segment {} field \"{}\": rebuilding index: {}", name_,
                   seg->id(), field.name, s.ToString());
      complete = false;
    }
  }
  return complete;
}

absl::Status Collection::Recover(storage::Store& store, const storage::SegmentFiles& files,
                                 uint64_t last_seq) {
  const auto& attrs = schema_->attributes();
  absl::flat_hash_map<uint64_t, RowRef> by_iid;

  // 1. Persisted segments. A compaction writes its output under a new, higher
  // id before it removes its inputs, so when two claim the same row the
  // newer one wins and the older is discarded.
  // A damaged MANIFEST (or one that fails the cross-checks below) is not
  // trusted in any part: the segment is derived data, so its files go and
  // its rows are loaded from RocksDB into new segments like rows no segment
  // covers, and indexed again.
  auto rebuild = [&](uint64_t segment_id, const std::string& why) {
    spdlog::warn("collection \"{}\" segment {}: {}; rebuilding the segment from RocksDB", name_,
                 segment_id, why);
    next_segment_id_ = std::max(next_segment_id_, segment_id + 1);
    (void)files.RemoveSegment(id_, segment_id);
  };
  std::vector<std::pair<uint64_t, std::string>> damaged;
  std::vector<storage::SegmentManifest> manifests =
      files.List(id_, [&](uint64_t segment_id, const std::string&, const std::string& why) {
        damaged.emplace_back(segment_id, why);
      });
  for (const auto& [segment_id, why] : damaged) rebuild(segment_id, why);
  std::vector<std::pair<std::shared_ptr<Segment>, const storage::SegmentManifest*>> restored;
  absl::flat_hash_set<uint64_t> claimed;
  for (auto it = manifests.rbegin(); it != manifests.rend(); ++it) {
    const storage::SegmentManifest& m = *it;
    next_segment_id_ = std::max(next_segment_id_, m.segment_id() + 1);
    // What a checksummed manifest can still get wrong (a bug that wrote it,
    // a file from another data directory) and costs nothing to see: an
    // internal id this collection never assigned, or one row claimed twice.
    {
      std::string why;
      absl::flat_hash_set<uint64_t> seen;
      seen.reserve(static_cast<size_t>(m.iids_size()));
      for (int r = 0; r < m.iids_size() && why.empty(); ++r) {
        const uint64_t iid = m.iids(r);
        if (iid >= next_iid_) {
          why = absl::StrCat("MANIFEST row ", r, " names internal id ", iid,
                             ", never assigned (next is ", next_iid_, ")");
        } else if (!seen.insert(iid).second) {
          why = absl::StrCat("MANIFEST names internal id ", iid, " twice");
        }
      }
      if (!why.empty()) {
        rebuild(m.segment_id(), why);
        continue;
      }
    }
    bool overlaps = m.sequence() > last_seq || m.iids().empty();
    for (uint64_t iid : m.iids()) overlaps = overlaps || claimed.contains(iid);
    if (overlaps) {
      spdlog::info("collection \"{}\": discarding superseded segment {}", name_, m.segment_id());
      (void)files.RemoveSegment(id_, m.segment_id());
      continue;
    }
    claimed.insert(m.iids().begin(), m.iids().end());
    auto seg = std::make_shared<Segment>(m.segment_id(), schema_,
                                         static_cast<uint32_t>(m.iids_size()));
    for (uint64_t iid : m.iids()) by_iid[iid] = RowRef{seg.get(), seg->AppendHole(iid)};
    seg->Seal();
    // DISK fields with a verified table serve from it at once: their
    // vectors are never loaded into memory (ScanVectors skips them). A
    // missing, stale or corrupt table is rebuilt by the builder.
    for (size_t f = 0; f < schema_->vectors().size(); ++f) {
      if (!schema_->vectors()[f].disk && !schema_->vectors()[f].multi) continue;
      absl::Status st = absl::NotFoundError("not in the manifest");
      for (const auto& rf : m.rerank_tables()) {
        if (rf.field() != f) continue;
        storage::RerankTableExpect expect;
        expect.dim = schema_->vectors()[f].dim;
        expect.rows = static_cast<uint64_t>(m.iids_size());
        expect.sequence = rf.sequence();
        expect.multi = schema_->vectors()[f].multi;
        st = AttachTable(*seg, f, files.RerankTablePath(id_, m.segment_id(),
                                                        static_cast<uint32_t>(f)),
                         expect, /*compute_norms=*/true);
      }
      if (!st.ok()) {
        spdlog::warn("collection \"{}\" segment {} field \"{}\": rebuilding rerank table: {}",
                     name_, m.segment_id(), schema_->vectors()[f].name, st.ToString());
      }
    }
    restored.emplace_back(std::move(seg), &m);
  }
  // A table's CRC says its bytes are the ones written, not that row r holds
  // the vectors of the manifest's row r: compare every row with RocksDB's
  // copy. Opening the table read it whole for the CRC, so this reads it
  // from the page cache; the price is one more scan of the DISK fields'
  // vectors in RocksDB. A segment that disagrees is rebuilt.
  {
    absl::flat_hash_set<const Segment*> mismatched;
    for (size_t f = 0; f < schema_->vectors().size(); ++f) {
      const VectorFieldSpec& field = schema_->vectors()[f];
      bool any = false;
      for (const auto& [seg, m] : restored) any = any || seg->table(f) != nullptr;
      if (!any) continue;
      QUIVER_RETURN_IF_ERROR(store.ScanVectors(
          id_, static_cast<uint16_t>(f),
          [&](uint64_t iid, const float* data, size_t d) -> absl::Status {
            auto it = by_iid.find(iid);
            if (it == by_iid.end()) return absl::OkStatus();
            const Segment* seg = it->second.segment;
            std::shared_ptr<const storage::RerankTable> t = seg->table(f);
            if (t == nullptr || mismatched.contains(seg)) return absl::OkStatus();
            const uint32_t off = it->second.offset;
            const bool same =
                static_cast<size_t>(t->count(off)) * field.dim == d &&
                std::memcmp(t->mapped_vectors() + t->offset(off) * field.dim, data,
                            d * sizeof(float)) == 0;
            if (!same) {
              mismatched.insert(seg);
              rebuild(seg->id(), absl::StrCat("field \"", field.name, "\": rerank table row ",
                                              off, " does not hold internal id ", iid,
                                              "'s vectors"));
            }
            return absl::OkStatus();
          }));
    }
    if (!mismatched.empty()) {
      for (auto it = restored.begin(); it != restored.end();) {
        if (!mismatched.contains(it->first.get())) {
          ++it;
          continue;
        }
        for (uint64_t iid : it->second->iids()) by_iid.erase(iid);
        it = restored.erase(it);
      }
    }
  }
  {
    std::vector<uint64_t> keep;
    for (const auto& [seg, m] : restored) keep.push_back(seg->id());
    files.RemoveOrphanTables(id_, keep);
  }
  std::sort(restored.begin(), restored.end(),
            [](const auto& a, const auto& b) { return a.first->id() < b.first->id(); });
  for (auto& [seg, m] : restored) writer_segments_.push_back(seg);
  // Index files load on another thread while this one reads the points from
  // RocksDB: the two are the bulk of a restart and need nothing from each
  // other (a restored segment's size is known from its manifest).
  std::vector<std::shared_ptr<Segment>> load_order;
  for (auto& [seg, m] : restored) load_order.push_back(seg);
  std::future<std::vector<bool>> loaded =
      std::async(std::launch::async, [this, jobs = restored, &files] {
        std::vector<bool> complete;
        for (const auto& [seg, m] : jobs) complete.push_back(LoadIndexes(seg.get(), *m, files));
        return complete;
      });

  // 2. Points: into their persisted segment, or appended to new segments of
  // segment_max_rows in iid order, all sealed but the last.
  QUIVER_RETURN_IF_ERROR(store.ScanPoints(
      id_, [&](uint64_t iid, storage::PointRecord& rec) -> absl::Status {
        if (iid >= next_iid_) next_iid_ = iid + 1;
        AttrRow row_attrs(attrs.size());
        for (int a = 0; a < rec.attributes_size() && a < static_cast<int>(attrs.size()); ++a) {
          QUIVER_ASSIGN_OR_RETURN(row_attrs[a],
                                  ValueToAttr(rec.attributes(a), attrs[a].type, "stored point"));
        }
        auto found = by_iid.find(iid);
        if (found == by_iid.end()) {
          Segment& seg = GrowingForAppend();
          found = by_iid.emplace(iid, RowRef{&seg, seg.AppendHole(iid)}).first;
        }
        found->second.segment->FillRow(found->second.offset, rec.id(), std::move(row_attrs));
        return absl::OkStatus();
      }));
  // Persisted segments none of whose rows still exist are gone for good.
  for (auto it = restored.begin(); it != restored.end();) {
    Segment& seg = *it->first;
    if (seg.dead() < seg.appended()) {
      ++it;
      continue;
    }
    for (uint32_t off = 0; off < seg.appended(); ++off) by_iid.erase(seg.iid(off));
    writer_segments_.erase(std::find(writer_segments_.begin(), writer_segments_.end(), it->first));
    (void)files.RemoveSegment(id_, seg.id());
    it = restored.erase(it);
  }
  uint64_t live = 0;
  for (const auto& [iid, ref] : by_iid) live += ref.segment->Visible(ref.offset, last_seq);
  for (size_t f = 0; f < schema_->vectors().size(); ++f) {
    const VectorFieldSpec& field = schema_->vectors()[f];
    const uint32_t dim = field.dim;
    std::vector<float> fde(field.multi ? stored_dims_[f] : 0, 0.0f);
    uint64_t found = 0;
    QUIVER_RETURN_IF_ERROR(store.ScanVectors(
        id_, static_cast<uint16_t>(f),
        [&](uint64_t iid, const float* data, size_t d) -> absl::Status {
          auto it = by_iid.find(iid);
          const bool size_ok = field.multi ? d > 0 && d % dim == 0 : d == dim;
          if (!size_ok || it == by_iid.end()) {
            return absl::DataLossError(absl::StrCat("collection \"", name_,
                                                    "\": vector without a point record"));
          }
          if (field.multi) {
            // The encoding is derived: recomputed with the field's seed.
            const TokenSet set{data, static_cast<uint32_t>(d / dim)};
            if (encoders_[f] != nullptr && !field.token_candidates) {
              encoders_[f]->EncodeDocument(set.data, set.count, fde.data());
            }
            it->second.segment->SetVector(it->second.offset, f, fde.data());
            it->second.segment->SetTokens(it->second.offset, f, set);
          } else {
            it->second.segment->SetVector(it->second.offset, f, data);
          }
          ++found;
          return absl::OkStatus();
        }));
    if (found != live) {
      return absl::DataLossError(absl::StrCat("collection \"", name_, "\": field \"",
                                              schema_->vectors()[f].name, "\" has ", found,
                                              " vectors for ", live, " points"));
    }
  }

  // 3. Indexes of restored segments (loaded meanwhile): where a file was
  // intact and built for the field's current spec it serves; the rest are
  // rebuilt.
  const std::vector<bool> complete = loaded.get();
  bool has_windows = false;
  for (const AttributeSpec& a : attrs) has_windows = has_windows || a.window;
  for (size_t i = 0; i < load_order.size(); ++i) {
    const auto& seg = load_order[i];
    if (std::find(writer_segments_.begin(), writer_segments_.end(), seg) == writer_segments_.end()) {
      continue;  // dropped above: no live rows
    }
    seg->Publish(seg->appended());
    // A file that passed its checksum can still hold a bad index (one built
    // by an older version over placeholder rows): the vectors are loaded by
    // now, so a few own-vector searches tell, and a failure is rebuilt.
    bool indexes_ok = complete[i];
    for (size_t f = 0; f < schema_->vectors().size() && indexes_ok; ++f) {
      std::shared_ptr<const index::VectorIndex> idx = seg->index(f);
      if (idx == nullptr) continue;
      const IndexCheckResult check = CheckIndex(*seg, f, *idx, options_.index_check_samples,
                                                seg->id() * 131 + f, /*measure_recall=*/false);
      if (check.ok) continue;
      spdlog::error("collection \"{}\" segment {} field \"{}\": index file fails its self-check, "
                    "rebuilding (searched exactly meanwhile): {}",
                    name_, seg->id(), schema_->vectors()[f].name, check.ToString());
      seg->SetIndex(f, nullptr);
      indexes_ok = false;
    }
    if (indexes_ok) {
      seg->SetAttrIndex(SegmentAttrIndex::Build(*seg, seg->appended()));
    }
    // The builder builds what is missing: vector indexes that did not load,
    // attribute indexes, window indexes (which are not persisted).
    bool tables = true;
    for (size_t f = 0; f < schema_->vectors().size(); ++f) {
      tables = tables && ((!schema_->vectors()[f].disk && !schema_->vectors()[f].multi) ||
                          seg->table(f) != nullptr);
    }
    if (!indexes_ok || has_windows || !tables) just_sealed_.push_back(seg);
    // Files that are being replaced are not the segment's until Persist
    // rewrites them (verify would report the damage it already knows).
    if (indexes_ok && tables) seg->SetPersisted();
  }
  {
    MutexLock lock(&mu_);
    for (const auto& [iid, ref] : by_iid) {
      if (ref.segment->Visible(ref.offset, last_seq)) {
        id_map_.emplace(ref.segment->external_id(ref.offset), ref);
      }
    }
    live_ = id_map_.size();
    PublishLocked(last_seq);
  }
  NotifySealed();
  return absl::OkStatus();
}

}  // namespace quiver
