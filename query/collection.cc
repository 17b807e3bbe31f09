#include "query/collection.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "index/distance.h"
#include "index/flat_search.h"
#include "index/topk.h"
#include "storage/status_macros.h"

namespace quiver {
namespace {

std::string PointLabel(const std::string& id, int index) {
  return absl::StrCat("point ", index, " (id \"", id.size() > 64 ? id.substr(0, 64) + "..." : id,
                      "\")");
}

absl::Status CheckVector(const google::protobuf::RepeatedField<float>& v, uint32_t dim,
                         Metric metric, absl::string_view what) {
  if (static_cast<uint32_t>(v.size()) != dim) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected ", dim, " values, got ", v.size()));
  }
  double norm = 0;
  for (int i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": value ", i, " is not finite (NaN or Inf)"));
    }
    norm += static_cast<double>(v[i]) * v[i];
  }
  if (metric == Metric::kCosine && norm == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": a COSINE vector must not be all zeros"));
  }
  return absl::OkStatus();
}

void Normalize(const float* in, float* out, size_t dim) {
  double norm = 0;
  for (size_t i = 0; i < dim; ++i) norm += static_cast<double>(in[i]) * in[i];
  const float inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (size_t i = 0; i < dim; ++i) out[i] = in[i] * inv;
}

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

}  // namespace

Collection::Collection(const storage::CollectionRecord& record, Schema schema,
                       uint64_t next_iid)
    : id_(record.id()),
      name_(record.name()),
      schema_(std::move(schema)),
      created_at_unix_ms_(record.created_at_unix_ms()),
      next_iid_(next_iid),
      writer_chunks_(std::make_shared<ChunkDir>()),
      chunks_(writer_chunks_) {}

Snapshot Collection::TakeSnapshot() const {
  absl::ReaderMutexLock lock(&mu_);
  return Snapshot{chunks_, rows_, seq_};
}

absl::StatusOr<int> Collection::ResolveField(const std::string& field) const {
  if (field.empty()) {
    if (schema_.vectors().size() == 1) return 0;
    return absl::InvalidArgumentError(absl::StrCat(
        "collection \"", name_, "\" has ", schema_.vectors().size(),
        " vector fields: name the one to search in `field`"));
  }
  const int f = schema_.VectorFieldIndex(field);
  if (f < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("collection \"", name_, "\" has no vector field \"", field, "\""));
  }
  return f;
}

// ---------------------------------------------------------------- reads

absl::Status Collection::Search(const v1::SearchRequest& req, absl::Time deadline,
                                v1::SearchResponse* resp) const {
  if (req.explain()) {
    return absl::UnimplementedError("explain is not implemented yet");
  }
  if (!req.multi_vectors().empty()) {
    return absl::UnimplementedError("multi-vector (late interaction) search is not implemented yet");
  }
  if (!req.field_queries().empty()) {
    return absl::UnimplementedError("hybrid search over several fields is not implemented yet");
  }
  QUIVER_ASSIGN_OR_RETURN(const int f, ResolveField(req.field()));
  const VectorFieldSpec& field = schema_.vectors()[f];
  if (req.k() == 0 || req.k() > kMaxK) {
    return absl::InvalidArgumentError(absl::StrCat("k must be in 1..", kMaxK, ", got ", req.k()));
  }
  const size_t nq = req.vectors_size();
  if (nq == 0) return absl::InvalidArgumentError("search needs at least one query vector");
  if (nq > kMaxQueriesPerRequest) {
    return absl::InvalidArgumentError(absl::StrCat(
        "at most ", kMaxQueriesPerRequest, " query vectors per request, got ", nq));
  }
  const size_t dim = field.dim;
  std::vector<float> queries(nq * dim);
  std::vector<float> qnorms(nq);
  for (size_t q = 0; q < nq; ++q) {
    const auto& v = req.vectors(static_cast<int>(q)).values();
    QUIVER_RETURN_IF_ERROR(
        CheckVector(v, field.dim, field.metric, absl::StrCat("query vector ", q)));
    float* dst = queries.data() + q * dim;
    if (field.metric == Metric::kCosine) Normalize(v.data(), dst, dim);
    else std::memcpy(dst, v.data(), dim * sizeof(float));
    qnorms[q] = index::NormSqr(dst, dim);
  }
  std::shared_ptr<const filter::Filter> flt;
  if (!req.filter().empty()) {
    QUIVER_ASSIGN_OR_RETURN(flt, filter::Filter::Compile(req.filter(), schema_));
  }
  bool all_attrs = false;
  std::vector<int> out_attrs;
  for (const std::string& a : req.output_attributes()) {
    if (a == "*") { all_attrs = true; continue; }
    const int ai = schema_.AttributeIndex(a);
    if (ai < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "output_attributes: collection \"", name_, "\" has no attribute \"", a, "\""));
    }
    out_attrs.push_back(ai);
  }
  if (all_attrs) {
    out_attrs.clear();
    for (size_t i = 0; i < schema_.attributes().size(); ++i) out_attrs.push_back(static_cast<int>(i));
  }

  const Snapshot snap = TakeSnapshot();
  const uint32_t k = req.k();
  std::vector<index::TopK> topk(nq, index::TopK(k));
  index::QueryBatch qb;
  qb.vectors = queries.data();
  qb.norms_sqr = qnorms.data();
  qb.nq = nq;
  qb.dim = dim;
  qb.similarity =
      field.metric == Metric::kL2 ? index::Similarity::kL2 : index::Similarity::kInnerProduct;
  std::vector<float> scratch;
  uint8_t mask[kChunkRows];
  const size_t num_chunks = (snap.rows + kChunkRows - 1) / kChunkRows;
  for (size_t c = 0; c < num_chunks; ++c) {
    const Chunk* chunk = (*snap.chunks)[c].get();
    if (chunk == nullptr) continue;
    // Bounded work between deadline checks: 16 chunks = 16k rows.
    if (c % 16 == 0 && absl::Now() > deadline) {
      return absl::DeadlineExceededError("search deadline exceeded");
    }
    const size_t n = std::min<uint64_t>(kChunkRows, snap.rows - c * kChunkRows);
    size_t passing = 0;
    for (size_t i = 0; i < n; ++i) {
      const bool keep = chunk->delete_seq[i].load(std::memory_order_relaxed) > snap.seq &&
                        (flt == nullptr || flt->Matches(chunk->attrs[i]));
      mask[i] = keep;
      passing += keep;
    }
    index::Block block;
    block.rows = chunk->vectors[f].get();
    block.norms_sqr = chunk->norms[f].get();
    block.n = n;
    block.first_id = c * kChunkRows;
    block.mask = passing == n ? nullptr : mask;
    block.passing = passing;
    index::ScanBlock(qb, block, topk.data(), &scratch);
  }

  const bool similarity = field.metric != Metric::kL2;
  for (size_t q = 0; q < nq; ++q) {
    v1::SearchResult* result = resp->add_results();
    for (const index::Neighbor& nb : topk[q].Take()) {
      const Chunk* chunk = snap.ChunkOf(nb.id);
      const size_t row = nb.id % kChunkRows;
      v1::Hit* hit = result->add_hits();
      hit->set_id(chunk->ids[row]);
      hit->set_score(similarity ? -nb.distance : nb.distance);
      const AttrRow& attrs = chunk->attrs[row];
      for (int ai : out_attrs) {
        v1::Value value;
        if (AttrToValue(attrs[ai], &value)) {
          (*hit->mutable_attributes())[schema_.attributes()[ai].name] = std::move(value);
        }
      }
      if (req.with_vectors()) {
        for (size_t vf = 0; vf < schema_.vectors().size(); ++vf) {
          const size_t d = schema_.vectors()[vf].dim;
          const float* src = chunk->vectors[vf].get() + row * d;
          auto* vals = (*hit->mutable_vectors())[schema_.vectors()[vf].name].mutable_values();
          vals->Add(src, src + d);
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::Status Collection::Get(const v1::GetPointsRequest& req,
                             v1::GetPointsResponse* resp) const {
  std::vector<int> out_attrs;
  for (const std::string& a : req.attributes()) {
    const int ai = schema_.AttributeIndex(a);
    if (ai < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "attributes: collection \"", name_, "\" has no attribute \"", a, "\""));
    }
    out_attrs.push_back(ai);
  }
  if (req.attributes().empty()) {
    for (size_t i = 0; i < schema_.attributes().size(); ++i) out_attrs.push_back(static_cast<int>(i));
  }
  std::vector<int64_t> iids(req.ids_size(), -1);
  Snapshot snap;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (int i = 0; i < req.ids_size(); ++i) {
      auto it = id_map_.find(req.ids(i));
      if (it != id_map_.end()) iids[i] = static_cast<int64_t>(it->second);
    }
    snap = Snapshot{chunks_, rows_, seq_};
  }
  for (int i = 0; i < req.ids_size(); ++i) {
    if (iids[i] < 0 || !snap.Visible(iids[i])) continue;
    const Chunk* chunk = snap.ChunkOf(iids[i]);
    const size_t row = iids[i] % kChunkRows;
    v1::Point* p = resp->add_points();
    p->set_id(chunk->ids[row]);
    for (int ai : out_attrs) {
      v1::Value value;
      if (AttrToValue(chunk->attrs[row][ai], &value)) {
        (*p->mutable_attributes())[schema_.attributes()[ai].name] = std::move(value);
      }
    }
    if (req.with_vectors()) {
      for (size_t vf = 0; vf < schema_.vectors().size(); ++vf) {
        const size_t d = schema_.vectors()[vf].dim;
        const float* src = chunk->vectors[vf].get() + row * d;
        (*p->mutable_vectors())[schema_.vectors()[vf].name].mutable_values()->Add(src, src + d);
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Collection::Count(const std::string& filter_expr) const {
  std::shared_ptr<const filter::Filter> flt;
  if (!filter_expr.empty()) {
    QUIVER_ASSIGN_OR_RETURN(flt, filter::Filter::Compile(filter_expr, schema_));
  }
  if (flt == nullptr) {
    absl::ReaderMutexLock lock(&mu_);
    return live_;
  }
  const Snapshot snap = TakeSnapshot();
  uint64_t count = 0;
  for (uint64_t iid = 0; iid < snap.rows; ++iid) {
    const Chunk* chunk = (*snap.chunks)[iid / kChunkRows].get();
    if (chunk == nullptr) {
      iid += kChunkRows - 1;
      continue;
    }
    const size_t row = iid % kChunkRows;
    if (chunk->delete_seq[row].load(std::memory_order_relaxed) > snap.seq &&
        flt->Matches(chunk->attrs[row])) {
      ++count;
    }
  }
  return count;
}

void Collection::Describe(v1::CollectionInfo* info) const {
  info->set_name(name_);
  *info->mutable_schema() = schema_.proto();
  info->set_created_at_unix_ms(created_at_unix_ms_);
  absl::ReaderMutexLock lock(&mu_);
  v1::CollectionStats* st = info->mutable_stats();
  st->set_point_count(live_);
  st->set_deleted_count(dead_);
  st->set_last_sequence(seq_);
  size_t allocated = 0;
  for (const auto& c : *chunks_) allocated += c != nullptr;
  for (const VectorFieldSpec& f : schema_.vectors()) {
    v1::VectorFieldStats* vs = st->add_vectors();
    vs->set_name(f.name);
    vs->set_memory_bytes(allocated * kChunkRows * (f.dim + 1) * sizeof(float));
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
  for (const VectorFieldSpec& f : schema_.vectors()) {
    if (f.metric == Metric::kCosine) owned_floats += static_cast<size_t>(f.dim) * req.points_size();
  }
  up.owned.resize(owned_floats);
  size_t owned_pos = 0;
  const auto& attrs = schema_.attributes();
  for (int i = 0; i < req.points_size(); ++i) {
    const v1::Point& p = req.points(i);
    const std::string label = PointLabel(p.id(), i);
    if (p.id().empty()) return absl::InvalidArgumentError(absl::StrCat(label, ": id is empty"));
    if (p.id().size() > kMaxIdBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": id is longer than ", kMaxIdBytes, " bytes"));
    }
    if (!seen.insert(p.id()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, ": id appears more than once in this request"));
    }
    if (!p.multi_vectors().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          label, ": field \"", p.multi_vectors().begin()->first,
          "\" is not a multi-vector field of collection \"", name_, "\""));
    }
    for (const auto& [fname, vec] : p.vectors()) {
      if (schema_.VectorFieldIndex(fname) < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            label, ": collection \"", name_, "\" has no vector field \"", fname, "\""));
      }
    }
    PreparedUpsert::Point& out = up.points[i];
    out.vectors.resize(schema_.vectors().size());
    for (size_t f = 0; f < schema_.vectors().size(); ++f) {
      const VectorFieldSpec& spec = schema_.vectors()[f];
      auto it = p.vectors().find(spec.name);
      if (it == p.vectors().end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(label, ": vector field \"", spec.name, "\" is missing"));
      }
      QUIVER_RETURN_IF_ERROR(CheckVector(it->second.values(), spec.dim, spec.metric,
                                         absl::StrCat(label, ": field \"", spec.name, "\"")));
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
      const int ai = schema_.AttributeIndex(aname);
      if (ai < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            label, ": collection \"", name_, "\" has no attribute \"", aname, "\""));
      }
      QUIVER_ASSIGN_OR_RETURN(
          out.attrs[ai],
          ValueToAttr(value, attrs[ai].type, absl::StrCat(label, ": attribute \"", aname, "\"")));
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
    QUIVER_ASSIGN_OR_RETURN(del.filter, filter::Filter::Compile(req.filter(), schema_));
  }
  return del;
}

// ---------------------------------------------------------------- commit

int64_t Collection::ResolveForWrite(const std::string& id) const {
  auto p = pending_.find(id);
  if (p != pending_.end()) return p->second;
  absl::ReaderMutexLock lock(&mu_);
  auto it = id_map_.find(id);
  return it == id_map_.end() ? -1 : static_cast<int64_t>(it->second);
}

void Collection::PrepareUpsert(uint64_t seq, const PreparedUpsert& up, storage::Batch* batch,
                               WriteEffects* fx) {
  storage::OpRecord op;
  op.set_type(storage::OpRecord::UPSERT);
  op.set_collection_id(id_);
  op.set_unix_ms(NowMs());
  std::vector<uint32_t> dims;
  for (const VectorFieldSpec& f : schema_.vectors()) dims.push_back(f.dim);
  for (const PreparedUpsert::Point& p : up.points) {
    const std::string& id = p.record.id();
    const int64_t old = ResolveForWrite(id);
    if (old >= 0) {
      batch->DeletePointData(id_, old, dims.size());
      fx->removed.push_back(old);
      op.add_removed_iids(old);
    }
    const uint64_t iid = next_iid_++;
    batch->PutPoint(id_, iid, p.record, p.vectors, dims);
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
    batch->DeletePointData(id_, iid, schema_.vectors().size());
    batch->DeleteIdMapping(id_, id);
    fx->removed.push_back(iid);
    fx->removed_ids.push_back(id);
    pending_[id] = -1;
    op.add_ids(id);
    op.add_removed_iids(iid);
  };
  if (del.filter != nullptr) {
    // The engine runs a filter delete as a group of its own, so the applied
    // state is the whole truth here.
    const Snapshot snap = TakeSnapshot();
    for (uint64_t iid = 0; iid < snap.rows; ++iid) {
      const Chunk* chunk = (*snap.chunks)[iid / kChunkRows].get();
      if (chunk == nullptr) {
        iid += kChunkRows - 1;
        continue;
      }
      const size_t row = iid % kChunkRows;
      if (chunk->delete_seq[row].load(std::memory_order_relaxed) > snap.seq &&
          del.filter->Matches(chunk->attrs[row])) {
        remove(chunk->ids[row], iid);
      }
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

Chunk* Collection::ChunkForWrite(uint64_t iid) {
  const size_t c = iid / kChunkRows;
  if (c >= writer_chunks_->size() || (*writer_chunks_)[c] == nullptr) {
    // Copy-on-write: readers keep the directory they hold.
    auto dir = std::make_shared<ChunkDir>(*writer_chunks_);
    if (dir->size() <= c) dir->resize(c + 1);
    (*dir)[c] = std::make_shared<Chunk>(schema_);
    writer_chunks_ = std::move(dir);
  }
  return (*writer_chunks_)[c].get();
}

void Collection::FillRow(uint64_t iid, const std::string& id, AttrRow attrs,
                         const std::vector<const float*>& vectors) {
  Chunk* chunk = ChunkForWrite(iid);
  const size_t row = iid % kChunkRows;
  chunk->ids[row] = id;
  chunk->attrs[row] = std::move(attrs);
  for (size_t f = 0; f < vectors.size(); ++f) {
    const size_t dim = schema_.vectors()[f].dim;
    float* dst = chunk->vectors[f].get() + row * dim;
    std::memcpy(dst, vectors[f], dim * sizeof(float));
    chunk->norms[f][row] = index::NormSqr(dst, dim);
  }
  chunk->delete_seq[row].store(kAlive, std::memory_order_relaxed);
}

void Collection::Publish(uint64_t rows, uint64_t seq) {
  chunks_ = writer_chunks_;
  rows_ = std::max(rows_, rows);
  seq_ = std::max(seq_, seq);
}

void Collection::ApplyUpsert(uint64_t seq, const PreparedUpsert& up, const WriteEffects& fx) {
  for (size_t i = 0; i < up.points.size(); ++i) {
    const PreparedUpsert::Point& p = up.points[i];
    FillRow(fx.added[i], p.record.id(), p.attrs, p.vectors);
  }
  absl::MutexLock lock(&mu_);
  for (uint64_t iid : fx.removed) {
    (*writer_chunks_)[iid / kChunkRows]->delete_seq[iid % kChunkRows].store(
        seq, std::memory_order_relaxed);
  }
  for (size_t i = 0; i < up.points.size(); ++i) {
    id_map_[up.points[i].record.id()] = fx.added[i];
  }
  live_ += up.points.size() - fx.removed.size();
  dead_ += fx.removed.size();
  Publish(next_iid_, seq);
}

void Collection::ApplyDelete(uint64_t seq, const WriteEffects& fx) {
  absl::MutexLock lock(&mu_);
  for (uint64_t iid : fx.removed) {
    (*writer_chunks_)[iid / kChunkRows]->delete_seq[iid % kChunkRows].store(
        seq, std::memory_order_relaxed);
  }
  for (const std::string& id : fx.removed_ids) id_map_.erase(id);
  live_ -= fx.removed.size();
  dead_ += fx.removed.size();
  Publish(rows_, seq);
}

void Collection::ApplyNoop(uint64_t seq) {
  absl::MutexLock lock(&mu_);
  Publish(rows_, seq);
}

absl::Status Collection::Recover(storage::Store& store, uint64_t last_seq) {
  const auto& attrs = schema_.attributes();
  std::vector<std::pair<std::string, uint64_t>> ids;
  QUIVER_RETURN_IF_ERROR(store.ScanPoints(
      id_, [&](uint64_t iid, storage::PointRecord& rec) -> absl::Status {
        if (iid >= next_iid_) next_iid_ = iid + 1;
        Chunk* chunk = ChunkForWrite(iid);
        const size_t row = iid % kChunkRows;
        AttrRow row_attrs(attrs.size());
        for (int a = 0; a < rec.attributes_size() && a < static_cast<int>(attrs.size()); ++a) {
          QUIVER_ASSIGN_OR_RETURN(row_attrs[a],
                                  ValueToAttr(rec.attributes(a), attrs[a].type, "stored point"));
        }
        chunk->ids[row] = rec.id();
        chunk->attrs[row] = std::move(row_attrs);
        chunk->delete_seq[row].store(kAlive, std::memory_order_relaxed);
        ids.emplace_back(rec.id(), iid);
        return absl::OkStatus();
      }));
  for (size_t f = 0; f < schema_.vectors().size(); ++f) {
    const uint32_t dim = schema_.vectors()[f].dim;
    uint64_t found = 0;
    QUIVER_RETURN_IF_ERROR(store.ScanVectors(
        id_, static_cast<uint16_t>(f),
        [&](uint64_t iid, const float* data, size_t d) -> absl::Status {
          const size_t c = iid / kChunkRows;
          if (d != dim || c >= writer_chunks_->size() || (*writer_chunks_)[c] == nullptr) {
            return absl::DataLossError(absl::StrCat("collection \"", name_,
                                                    "\": vector without a point record"));
          }
          Chunk* chunk = (*writer_chunks_)[c].get();
          float* dst = chunk->vectors[f].get() + (iid % kChunkRows) * dim;
          std::memcpy(dst, data, dim * sizeof(float));
          chunk->norms[f][iid % kChunkRows] = index::NormSqr(dst, dim);
          ++found;
          return absl::OkStatus();
        }));
    if (found != ids.size()) {
      return absl::DataLossError(absl::StrCat("collection \"", name_, "\": field \"",
                                              schema_.vectors()[f].name, "\" has ", found,
                                              " vectors for ", ids.size(), " points"));
    }
  }
  absl::MutexLock lock(&mu_);
  for (auto& [id, iid] : ids) id_map_.emplace(std::move(id), iid);
  live_ = id_map_.size();
  dead_ = 0;
  Publish(next_iid_, last_seq);
  return absl::OkStatus();
}

}  // namespace quiver
