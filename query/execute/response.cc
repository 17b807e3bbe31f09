// Collection's response side: filling hits and points (FillHit, FillHits,
// AddVectors), response-size estimates checked before a read does any
// work, the byte budget checked while it fills, and explain text.
#include "query/execute/response.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "query/bind/wire_schema.h"
#include "query/collection.h"

namespace quiver {

void AppendSegmentsText(const v1::Explain& explain, int first, const std::string& indent,
                        std::string* text) {
  for (int i = first; i < explain.segments_size(); ++i) {
    const v1::SegmentPlan& sp = explain.segments(i);
    absl::StrAppend(text, indent, "Segment(id=", sp.segment_id(), ", ", sp.state(), ", rows=",
                    sp.rows(), ", live=", sp.live_rows(), ") -> ", sp.strategy(), "\n");
    AppendIndented(sp.plan(), indent + "  ", text);
    if (!sp.recall_choice().empty()) {
      absl::StrAppend(text, indent, "  recall: ", sp.recall_choice(), "\n");
    }
    absl::StrAppend(text, indent, "  why: ", sp.reason(), "\n",
                    absl::StrFormat("%s  measured: distances=%d filter_checks=%d "
                                    "plan=%.1fus filter=%.1fus search=%.1fus\n",
                                    indent, sp.distances(), sp.filter_checks(), sp.plan_micros(),
                                    sp.filter_micros(), sp.search_micros()));
  }
}

void AppendIndented(absl::string_view lines, const std::string& indent, std::string* text) {
  for (absl::string_view line : absl::StrSplit(lines, '\n', absl::SkipEmpty())) {
    absl::StrAppend(text, indent, line, "\n");
  }
}

absl::Status ResponseBudget::Add(size_t bytes) {
  used_ += bytes;
  if (limit_ == 0 || used_ <= limit_) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "the response grew past the limit of --max-message-bytes=", limit_,
      " bytes while it was being filled (vector sets or attribute values larger than "
      "estimated); ask for fewer results, fewer output attributes, or no vectors"));
}

size_t Collection::HitBytesEstimate(const std::vector<int>& out_attrs, bool with_vectors) const {
  // Protobuf framing: a tag and a length varint per message and map entry.
  constexpr size_t kIdBytes = 16;  // nominal; actual ids are counted when filled
  size_t b = 4 + (2 + kIdBytes) + 5;  // the hit, its id, its score
  for (int ai : out_attrs) {
    const AttributeSpec& a = schema().attributes()[ai];
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
    for (const VectorFieldSpec& f : schema().vectors()) {
      if (f.dropped) continue;
      // One vector of a set at the least; sets are counted when filled.
      b += 6 + (2 + f.name.size()) + (6 + 4 * static_cast<size_t>(f.dim)) + (f.multi ? 6 : 0);
    }
    // Sparse vectors are counted when filled (their size varies).
    for (const SparseFieldSpec& f : schema().sparse()) b += 6 + (2 + f.name.size());
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
    if (bind::AttrToValue(AttrAt(attrs, ai), &value)) {
      (*hit->mutable_attributes())[schema().attributes()[ai].name] = std::move(value);
    }
  }
  if (with_vectors) {
    AddVectors(seg, off, hit->mutable_vectors(), hit->mutable_multi_vectors(),
               hit->mutable_sparse_vectors());
  }
  // ByteSizeLong is arithmetic over the fields (a packed float field is
  // counted, not walked); +4 for the hit's own tag and length.
  return budget->Add(hit->ByteSizeLong() + 4);
}

absl::Status Collection::BeginSearch(const BoundSearch& q, v1::SearchResponse* resp,
                                     SearchStart* s) const {
  s->t_start = absl::Now();
  s->view = TakeView();
  QUIVER_RETURN_IF_ERROR(CheckSearchEstimate(q.num_queries(), q.k, q.output.attributes,
                                             q.output.with_vectors,
                                             q.explain ? s->view.parts.size() : 0,
                                             q.filter_bytes));
  s->topk.assign(q.num_queries(), index::TopK(q.k));
  s->explain = q.explain ? resp->mutable_explain() : nullptr;
  return absl::OkStatus();
}

absl::Status Collection::FinishExplain(const SearchStart& s, std::string text,
                                       ResponseBudget* budget) const {
  if (s.explain == nullptr) return absl::OkStatus();
  s.explain->set_total_micros(absl::ToDoubleMicroseconds(absl::Now() - s.t_start));
  absl::StrAppend(&text, absl::StrFormat("  total=%.1fus\n", s.explain->total_micros()));
  s.explain->set_text(std::move(text));
  return budget->Add(s.explain->ByteSizeLong());
}

absl::Status Collection::FinishSearch(const SearchStart& s, const BoundSearch& q,
                                      std::string text, const SearchLists& lists,
                                      MatchingCounter* counter, v1::SearchResponse* resp) const {
  QUIVER_ASSIGN_OR_RETURN(const std::vector<ListInfo> infos, DescribeLists(lists, q.k, counter));
  ResponseBudget budget(options_.max_response_bytes);
  QUIVER_RETURN_IF_ERROR(FinishExplain(s, std::move(text), &budget));
  const VectorFieldSpec& field = schema().vectors()[q.field];
  for (size_t i = 0; i < lists.hits.size(); ++i) {
    v1::SearchResult* result = resp->add_results();
    SetListInfo(infos[i], result);
    QUIVER_RETURN_IF_ERROR(FillHits(s.view, field, lists.hits[i], q.output.attributes,
                                    q.output.with_vectors, &budget, result->mutable_hits()));
  }
  return absl::OkStatus();
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
                            google::protobuf::Map<std::string, v1::MultiVector>* multi,
                            google::protobuf::Map<std::string, v1::SparseVector>* sparse) const {
  for (size_t s = 0; s < schema().sparse().size(); ++s) {
    if (const SparseVector* v = SparseAt(seg.sparse(off), s)) {
      bind::SparseToProto(*v, &(*sparse)[schema().sparse()[s].name]);
    }
  }
  for (size_t vf = 0; vf < schema().vectors().size(); ++vf) {
    const VectorFieldSpec& field = schema().vectors()[vf];
    if (field.dropped) continue;
    if (field.multi) {
      const TokenSet t = seg.tokens(vf, off);
      v1::MultiVector& mv = (*multi)[field.name];
      for (uint32_t j = 0; j < t.count; ++j) {
        const float* src = t.data + static_cast<size_t>(j) * field.dim;
        mv.add_vectors()->mutable_values()->Add(src, src + field.dim);
      }
      continue;
    }
    if (!seg.HasVector(vf, off)) continue;  // an optional field the point lacks
    const float* src = seg.vector(vf, off);
    (*vectors)[field.name].mutable_values()->Add(src, src + field.dim);
  }
}

}  // namespace quiver
