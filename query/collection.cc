// Collection: construction, index specs, views and reader epochs, and the
// reads that are not searches (get, count, describe, work estimates).
// Searches live in query/execute/, writes in collection_write.cc,
// compaction in collection_compaction.cc, persistence and recovery in
// collection_recovery.cc, verification in collection_verify.cc.
#include "query/collection.h"

#include <malloc.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "base/truncate.h"
#include "query/attr_index.h"
#include "query/sparse_index.h"
#include "query/bind/wire_schema.h"
#include "query/execute/response.h"
#include "spdlog/spdlog.h"

namespace quiver {

Collection::Collection(const storage::CollectionRecord& record, Schema schema, uint64_t next_iid,
                       CollectionOptions options, SealedCallback on_sealed)
    : id_(record.id()),
      name_(record.name()),
      created_at_unix_ms_(record.created_at_unix_ms()),
      options_(options),
      on_sealed_(std::move(on_sealed)),
      counters_(kMaxVectorFields),
      next_iid_(next_iid) {
  {
    MutexLock lock(&schema_mu_);
    schemas_.push_back(std::make_shared<const Schema>(std::move(schema)));
    current_schema_.store(schemas_.back().get(), std::memory_order_release);
  }
  {
    MutexLock lock(&mu_);
    epoch_ = std::make_shared<Epoch>();
  }
  for (const VectorFieldSpec& f : this->schema().vectors()) {
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
  // Room for every field UpdateCollection may add (ApplySchema): readers
  // index these without a lock, so they never reallocate.
  encoders_.resize(kMaxVectorFields);
  stored_dims_.resize(kMaxVectorFields, 0);
  analyzers_.resize(kMaxAttributes);
  text_stats_.resize(kMaxAttributes);
  sparse_stats_.resize(kMaxSparseFields);
  SetUpTermStats(this->schema());
  MutexLock lock(&spec_mu_);
  for (const VectorFieldSpec& f : this->schema().vectors()) index_specs_.push_back(IndexSpecOf(f));
}

void Collection::SetUpTermStats(const Schema& schema) {
  for (size_t a = 0; a < schema.attributes().size(); ++a) {
    const AttributeSpec& spec = schema.attributes()[a];
    if (!spec.text || analyzers_[a] != nullptr) continue;
    // Checked at create and update; a stored schema whose language this
    // build does not know leaves the attribute unsearchable, not the
    // collection unloadable.
    absl::StatusOr<std::shared_ptr<const text::Analyzer>> an = MakeTextAnalyzer(spec.text_spec);
    if (!an.ok()) {
      spdlog::error("collection \"{}\" attribute \"{}\": {}", name_, spec.name,
                    an.status().ToString());
      continue;
    }
    analyzers_[a] = *std::move(an);
    text_stats_[a] = std::make_unique<Bm25Stats>();
  }
  for (size_t s = 0; s < schema.sparse().size(); ++s) {
    if (schema.sparse()[s].idf && sparse_stats_[s] == nullptr) {
      sparse_stats_[s] = std::make_unique<Bm25Stats>();
    }
  }
}

index::IndexSpec Collection::IndexSpecFor(size_t f) const {
  MutexLock lock(&spec_mu_);
  return index_specs_[f];
}

// The schema in message form (stored or API), with each field's current
// index spec (UpdateCollection changes them after create).
template <typename SchemaMsg>
SchemaMsg Collection::CurrentSchema(const Schema& schema) const {
  SchemaMsg m = SchemaToMessage<SchemaMsg>(schema);
  MutexLock lock(&spec_mu_);
  // (The API's form leaves dropped fields out: j is field f's place.)
  int j = 0;
  for (size_t f = 0; f < index_specs_.size() && f < schema.vectors().size(); ++f) {
    if (schema.vectors()[f].dropped && !kSchemaKeepsDropped<SchemaMsg>) continue;
    auto* idx = m.mutable_vectors(j++)->mutable_index();
    idx->set_type(index_specs_[f].type);
    idx->mutable_params()->clear();
    idx->mutable_params()->insert(index_specs_[f].params.begin(), index_specs_[f].params.end());
  }
  return m;
}

storage::CollectionRecord Collection::Record() const { return RecordWith(schema()); }

storage::CollectionRecord Collection::RecordWith(const Schema& next) const {
  storage::CollectionRecord r;
  r.set_id(id_);
  r.set_name(name_);
  r.set_created_at_unix_ms(created_at_unix_ms_);
  *r.mutable_schema() = CurrentSchema<storage::StoredSchema>(next);
  return r;
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

void Collection::Retire(std::vector<std::shared_ptr<const void>> memory) const {
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

void Collection::AdoptIndexRows(Segment& seg, size_t f, bool compare) const {
  std::shared_ptr<const index::VectorIndex> idx = seg.index(f);
  if (idx == nullptr || !idx->shared_rows().has_value()) return;
  std::vector<std::shared_ptr<const void>> retired;
  if (absl::Status s = seg.AdoptRows(f, *idx, &retired, compare); !s.ok()) {
    spdlog::warn("collection \"{}\" segment {} field \"{}\": the segment keeps its own copy of "
                 "the vectors {} also holds: {}",
                 name_, seg.id(), schema().vectors()[f].name, idx->Describe(), s.ToString());
    return;
  }
  Retire(std::move(retired));
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
  std::vector<std::shared_ptr<const void>> retired;
  if (schema().vectors()[f].multi) {
    seg.AttachTokenTable(f, std::move(table), &retired);
  } else {
    seg.AttachTable(f, std::move(table), compute_norms, &retired);
  }
  Retire(std::move(retired));
  return absl::OkStatus();
}

uint64_t Collection::LiveCount() const {
  ReaderMutexLock lock(&mu_);
  return live_;
}

absl::Status Collection::Get(const BoundGet& q, v1::GetPointsResponse* resp) const {
  const std::vector<int>& out_attrs = q.output.attributes;
  const bool with_vectors = q.output.with_vectors;
  // The rows found are copied out under the reader lock: id-map entries are
  // only valid while the segment list cannot change.
  ReaderMutexLock lock(&mu_);
  // Lookups are cheap next to copying vectors: the points found are
  // counted first, so a response past the limit is refused before any is
  // copied (an id asked for twice is returned twice).
  if (options_.max_response_bytes > 0) {
    size_t found = 0;
    for (const std::string& id : q.ids) found += id_map_.contains(id);
    const size_t point = HitBytesEstimate(out_attrs, with_vectors);
    QUIVER_RETURN_IF_ERROR(CheckResponseEstimate(
        static_cast<double>(found) * point,
        absl::StrFormat("%d points found x ~%d bytes per point%s", found, point,
                        with_vectors ? " with its vectors" : "")));
  }
  ResponseBudget budget(options_.max_response_bytes);
  for (const std::string& id : q.ids) {
    auto it = id_map_.find(id);
    if (it == id_map_.end()) continue;
    const Segment& seg = *it->segment;
    const uint32_t off = it->offset;
    v1::Point* p = resp->add_points();
    p->set_id(seg.external_id(off));
    for (int ai : out_attrs) {
      v1::Value value;
      if (bind::AttrToValue(AttrAt(seg.attrs(off), ai), &value)) {
        (*p->mutable_attributes())[schema().attributes()[ai].name] = std::move(value);
      }
    }
    if (with_vectors) AddVectors(seg, off, p->mutable_vectors(), p->mutable_multi_vectors(),
                                  p->mutable_sparse_vectors());
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

uint64_t Collection::EstimateWork(const BoundSearchRequest& q) const {
  uint64_t live;
  {
    ReaderMutexLock lock(&mu_);
    live = live_;
  }
  // Floats of distance computation per query vector: every row for an
  // exact scan, a few thousand rows' worth through an index.
  auto search = [&](int f, bool exact, uint64_t vectors) {
    const uint32_t dim = schema().vectors()[f].dim;
    const uint64_t rows = exact ? live : std::min<uint64_t>(live, 4096);
    return vectors * rows * std::max<uint32_t>(dim, 16) / 16;
  };
  // Each query set counts its vectors.
  auto vectors = [](const std::vector<TokenSet>& sets, size_t single) {
    uint64_t n = single;
    for (const TokenSet& t : sets) n += t.count;
    return n;
  };
  // A sparse query reads the postings of its indexes (about a row's worth
  // of work per posting), or every row's vector when scanning.
  auto sparse = [&](const SparseVector& query, bool exact) -> uint64_t {
    const uint64_t per_index = std::max<uint64_t>(query.size(), 1) * std::min<uint64_t>(live, 4096);
    return exact ? live * 4 : per_index;
  };
  auto text = [&](const text::Analyzer::TermCounts& query, bool exact) -> uint64_t {
    const uint64_t per_index =
        std::max<uint64_t>(query.terms.size(), 1) * std::min<uint64_t>(live, 4096);
    return exact ? live * 4 : per_index;
  };
  if (const auto* h = std::get_if<BoundHybridSearch>(&q)) {
    uint64_t work = FilterWork(live, h->filter_bytes);
    for (const BoundFieldQuery& fq : h->fields) {
      work += fq.text_attr >= 0 ? text(*fq.text, fq.params.exact)
              : fq.sparse_field >= 0
                  ? sparse(*fq.sparse, fq.params.exact)
                  : search(fq.field, fq.params.exact, vectors(fq.sets, fq.qnorms.size()));
    }
    return work;
  }
  if (const auto* sp = std::get_if<BoundSparseSearch>(&q)) {
    uint64_t work = FilterWork(live, sp->filter_bytes);
    for (const SparseValue& query : sp->queries) work += sparse(*query, sp->exact);
    return work;
  }
  if (const auto* tx = std::get_if<BoundTextSearch>(&q)) {
    uint64_t work = FilterWork(live, tx->filter_bytes);
    for (const TextTerms& query : tx->queries) work += text(*query, tx->exact);
    return work;
  }
  const BoundSearch& s = std::get<BoundSearch>(q);
  return FilterWork(live, s.filter_bytes) +
         search(s.field, s.params.exact, vectors(s.sets, s.qnorms.size()));
}

absl::StatusOr<uint64_t> Collection::Count(const BoundCount& q, const StopToken& stop) const {
  const filter::Filter* flt = q.filter.get();
  if (flt == nullptr) {
    ReaderMutexLock lock(&mu_);
    return live_;
  }
  const View view = TakeView();
  uint64_t count = 0;
  for (const View::Part& part : view.parts) {
    RowSet rows;
    QUIVER_RETURN_IF_ERROR(MatchingRows(*part.segment, part.rows, view.seq, flt, stop, &rows));
    count += rows.Count();
  }
  return count;
}

uint64_t Collection::MemoryBytes() const {
  const View view = TakeView();
  uint64_t bytes = 0;
  for (const View::Part& part : view.parts) {
    for (size_t f = 0; f < schema().vectors().size(); ++f) {
      std::shared_ptr<const index::VectorIndex> idx = part.segment->index(f);
      bytes += part.segment->VectorBytes(f, part.rows) + (idx ? idx->MemoryBytes() : 0);
    }
    for (size_t s = 0; s < schema().sparse().size(); ++s) {
      bytes += part.segment->SparseBytes(s) + part.segment->SparseIndexBytes(s);
    }
  }
  return bytes;
}

uint64_t Collection::CompactionDebtRows() const {
  uint64_t rows = 0;
  for (const auto& seg : writer_segments_) {
    if (seg->sealed() && seg->appended() > 0 &&
        seg->dead() >= options_.compact_deleted_ratio * seg->appended()) {
      rows += seg->dead();
    }
  }
  return rows;
}

void Collection::Describe(v1::CollectionInfo* info) const {
  info->Clear();
  info->set_name(name_);
  *info->mutable_schema() = CurrentSchema<v1::CollectionSchema>(schema());
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
  const size_t nf = schema().vectors().size();
  // Dropped fields are not described: stats[f] is field f's place in the
  // list, -1 for those.
  std::vector<int> stats(nf, -1);
  for (size_t f = 0; f < nf; ++f) {
    if (schema().vectors()[f].dropped) continue;
    stats[f] = st->vectors_size();
    v1::VectorFieldStats* vs = st->add_vectors();
    vs->set_name(schema().vectors()[f].name);
    const RunningMean& recall = counters_.field(f).recall;
    vs->set_recall_audit(recall.Mean());
    vs->set_recall_audit_searches(recall.count());
    const RunningMean& target = counters_.field(f).target_recall;
    vs->set_recall_audit_target(target.Mean());
    vs->set_recall_audit_target_achieved(counters_.field(f).target_achieved.Mean());
    vs->set_recall_audit_target_searches(target.count());
  }
  // Sparse fields after the vector fields (their searches are exact: no
  // recall audit).
  const size_t ns = schema().sparse().size();
  const int first_sparse = st->vectors_size();
  for (size_t s = 0; s < ns; ++s) st->add_vectors()->set_name(schema().sparse()[s].name);
  for (const View::Part& part : view.parts) {
    const Segment& seg = *part.segment;
    v1::SegmentInfo* si = st->add_segments();
    si->set_id(seg.id());
    si->set_rows(part.rows);
    si->set_deleted(seg.dead());
    bool indexed = true;
    for (size_t f = 0; f < nf; ++f) {
      const VectorFieldSpec& field = schema().vectors()[f];
      if (stats[f] < 0) continue;
      const index::IndexSpec spec = IndexSpecFor(f);
      v1::SegmentInfo::Field* fi = si->add_fields();
      fi->set_name(field.name);
      std::shared_ptr<const index::VectorIndex> idx = seg.index(f);
      if (idx != nullptr) fi->set_index(idx->Describe());
      // (A segment no row of which holds the field needs no index of it.)
      if (spec.type != "FLAT" && !seg.LacksField(f) &&
          (idx == nullptr || !SameIndexSpec(idx->spec(), spec))) {
        indexed = false;
      }
      fi->set_memory_bytes(seg.VectorBytes(f, part.rows) + (idx ? idx->MemoryBytes() : 0));
      std::shared_ptr<const storage::RerankTable> table = seg.table(f);
      fi->set_disk_bytes(seg.disk_bytes(f) + (table ? table->file_bytes() : 0));
      v1::VectorFieldStats* vs = st->mutable_vectors(stats[f]);
      vs->set_memory_bytes(vs->memory_bytes() + fi->memory_bytes());
      vs->set_disk_bytes(vs->disk_bytes() + fi->disk_bytes());
    }
    for (size_t s = 0; s < ns; ++s) {
      v1::SegmentInfo::Field* fi = si->add_fields();
      fi->set_name(schema().sparse()[s].name);
      std::shared_ptr<const SparseIndex> idx = seg.sparse_index(s);
      if (idx != nullptr) fi->set_index("SPARSE_INVERTED");
      if (seg.sealed() && idx == nullptr && !seg.LacksSparse(s)) indexed = false;
      fi->set_memory_bytes(seg.SparseBytes(s) + (idx ? idx->MemoryBytes() : 0));
      v1::VectorFieldStats* vs = st->mutable_vectors(first_sparse + static_cast<int>(s));
      vs->set_memory_bytes(vs->memory_bytes() + fi->memory_bytes());
    }
    // Attribute indexes as the schema now asks (UpdateCollection may have
    // changed it since the segment's were built).
    const Schema& schema = this->schema();
    std::shared_ptr<const SegmentAttrIndex> attr_index = seg.attr_index();
    if (seg.sealed() && !SegmentAttrIndex::Matches(attr_index.get(), schema.attributes())) {
      indexed = false;
    }
    for (size_t a = 0; a < schema.attributes().size(); ++a) {
      const int ai = static_cast<int>(a);
      if (attr_index != nullptr && attr_index->indexed(ai)) {
        si->add_indexed_attributes(schema.attributes()[a].name);
      }
      for (size_t f = 0; f < nf; ++f) {
        if (seg.window_index(ai, f) != nullptr) {
          si->add_window_attributes(schema.attributes()[a].name);
          break;
        }
      }
    }
    si->set_state(!seg.sealed() ? v1::SegmentInfo::GROWING
                  : indexed     ? v1::SegmentInfo::INDEXED
                  : seg.building() ? v1::SegmentInfo::BUILDING
                                   : v1::SegmentInfo::SEALED);
  }
}

}  // namespace quiver
