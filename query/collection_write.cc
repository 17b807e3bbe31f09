// Collection's write side, the commit protocol (collection.h) for bound
// upserts and deletes: Prepare* on the commit thread (resolve ids,
// assign internal ids, fill the RocksDB batch), Apply* once the batch is
// durable (append rows, mark deletes, publish), and the other segment-list
// changes the commit thread makes (sealing, index spec changes).
#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "query/collection.h"
#include "query/schema_update.h"

namespace quiver {
namespace {

int64_t NowMs() { return absl::ToUnixMillis(absl::Now()); }

}  // namespace

// ---------------------------------------------------------------- commit

int64_t Collection::ResolveForWrite(const std::string& id) const {
  auto p = pending_.find(id);
  if (p != pending_.end()) return p->second;
  ReaderMutexLock lock(&mu_);
  auto it = id_map_.find(id);
  if (it == id_map_.end()) return -1;
  return static_cast<int64_t>(it->segment->iid(it->offset));
}

void Collection::PrepareUpsert(uint64_t seq, const BoundUpsert& up, storage::Batch* batch,
                               WriteEffects* fx) {
  storage::OpRecord op;
  op.set_type(storage::OpRecord::UPSERT);
  op.set_collection_id(id_);
  op.set_unix_ms(NowMs());
  std::vector<uint32_t> dims;
  for (const VectorFieldSpec& f : schema().vectors()) dims.push_back(f.dim);
  std::vector<const float*> stored(dims.size());
  for (const BoundUpsert::Point& p : up.points) {
    // Multi-vector fields store the point's vectors; encodings are derived.
    // A request bound before a field was added has no slot for it, and
    // one bound before a field was dropped may still carry its vector
    // (stored, it would outlive the drop's range delete).
    for (size_t f = 0; f < dims.size(); ++f) {
      const VectorFieldSpec& field = schema().vectors()[f];
      if (f >= p.vectors.size() || field.dropped) {
        stored[f] = nullptr;
      } else if (field.multi) {
        stored[f] = p.tokens[f].data;
        dims[f] = p.tokens[f].count * field.dim;
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

void Collection::PrepareDelete(uint64_t seq, const BoundDelete& del, storage::Batch* batch,
                               WriteEffects* fx) {
  storage::OpRecord op;
  op.set_type(storage::OpRecord::DELETE);
  op.set_collection_id(id_);
  op.set_unix_ms(NowMs());
  auto remove = [&](const std::string& id, uint64_t iid)
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread) {
    batch->DeletePointData(id_, iid, schema().vectors().size());
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
        kCommitThread.Assume();  // called inline, on this thread
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
    growing_ = std::make_shared<Segment>(next_segment_id_++, shared_schema(), options_.segment_max_rows);
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
    const uint32_t rows =
        s == growing_ && staged_from_ != kNoneStaged ? staged_from_ : s->appended();
    if (s->published() != rows) s->Publish(rows);
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

void Collection::Unlink(const RowRef& row, uint64_t seq) {
  RemoveTermStats(row.segment->text(row.offset), row.segment->sparse(row.offset));
  row.segment->MarkDeleted(row.offset, seq);
}

bool Collection::StageUpsert(const BoundUpsert& up, WriteEffects* fx) {
  const size_t n = up.points.size();
  if (n == 0) return false;
  if (growing_ == nullptr) {
    if (n > options_.segment_max_rows) return false;
    GrowingForAppend();
  } else if (growing_->appended() + n > growing_->capacity()) {
    return false;
  }
  Segment& seg = *growing_;
  if (staged_from_ == kNoneStaged) staged_from_ = seg.appended();
  fx->staged_in = &seg;
  fx->staged_first = seg.appended();
  for (size_t i = 0; i < n; ++i) {
    const BoundUpsert::Point& p = up.points[i];
    seg.Append(fx->added[i], p.record.id(), p.attrs, p.vectors, p.tokens.data(), p.sparse,
               p.text);
  }
  return true;
}

void Collection::UnstageUpserts() {
  if (staged_from_ == kNoneStaged) return;
  growing_->Unappend(staged_from_);
  staged_from_ = kNoneStaged;
}

void Collection::ApplyUpsert(uint64_t seq, const BoundUpsert& up, const WriteEffects& fx) {
  std::vector<RowRef> rows;
  rows.reserve(up.points.size());
  if (fx.staged_in != nullptr) {
    // Staged rows are applied in the order they were staged, each upsert's
    // after the one before it, so the rows held back start after these.
    for (size_t i = 0; i < up.points.size(); ++i) {
      rows.push_back({fx.staged_in, fx.staged_first + static_cast<uint32_t>(i)});
      AddTermStats(up.points[i].text, up.points[i].sparse);
    }
    staged_from_ = fx.staged_first + static_cast<uint32_t>(up.points.size());
    if (staged_from_ == fx.staged_in->appended()) staged_from_ = kNoneStaged;
  } else {
    for (size_t i = 0; i < up.points.size(); ++i) {
      const BoundUpsert::Point& p = up.points[i];
      Segment& seg = GrowingForAppend();
      rows.push_back(
          {&seg, seg.Append(fx.added[i], p.record.id(), p.attrs, p.vectors, p.tokens.data(),
                            p.sparse, p.text)});
      AddTermStats(p.text, p.sparse);
    }
  }
  {
    MutexLock lock(&mu_);
    for (const std::string& id : fx.removed_ids) {
      auto it = id_map_.find(id);
      if (it == id_map_.end()) continue;
      Unlink(*it, seq);
    }
    for (const RowRef& row : rows) {
      auto [it, inserted] = id_map_.insert(row);
      if (!inserted) {
        it->segment = row.segment;
        it->offset = row.offset;
      }
    }
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
      Unlink(*it, seq);
      id_map_.erase(it);
    }
    live_ -= fx.removed_ids.size();
    PublishLocked(seq);
  }
  last_write_ = absl::Now();
}

void Collection::AddTermStats(const TextRow& text, const SparseRow& sparse) {
  for (size_t a = 0; a < text.size(); ++a) {
    if (text[a] != nullptr && text_stats_[a] != nullptr) text_stats_[a]->Add(*text[a]);
  }
  for (size_t s = 0; s < sparse.size(); ++s) {
    if (sparse[s] != nullptr && sparse_stats_[s] != nullptr) sparse_stats_[s]->Add(*sparse[s]);
  }
}

void Collection::RemoveTermStats(const TextRow& text, const SparseRow& sparse) {
  for (size_t a = 0; a < text.size(); ++a) {
    if (text[a] != nullptr && text_stats_[a] != nullptr) text_stats_[a]->Remove(*text[a]);
  }
  for (size_t s = 0; s < sparse.size(); ++s) {
    if (sparse[s] != nullptr && sparse_stats_[s] != nullptr) sparse_stats_[s]->Remove(*sparse[s]);
  }
}

void Collection::ApplyNoop(uint64_t seq) {
  MutexLock lock(&mu_);
  PublishLocked(seq);
}

void Collection::HoldIdleSeal(absl::Time until) {
  const int64_t ns = absl::ToUnixNanos(until);
  int64_t held = idle_seal_held_until_ns_.load(std::memory_order_relaxed);
  while (held < ns &&
         !idle_seal_held_until_ns_.compare_exchange_weak(held, ns, std::memory_order_relaxed)) {
  }
}

void Collection::SealIfIdle(absl::Duration idle) {
  if (growing_ == nullptr || growing_->appended() == 0) return;
  const absl::Time held =
      absl::FromUnixNanos(idle_seal_held_until_ns_.load(std::memory_order_relaxed));
  if (absl::Now() - std::max(last_write_, held) < idle) return;
  SealGrowing();
  {
    MutexLock lock(&mu_);
    PublishLocked(seq_);
  }
  NotifySealed();
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

void Collection::ApplySchema(uint64_t seq, std::shared_ptr<const Schema> next) {
  const std::shared_ptr<const Schema> prev = shared_schema();
  const std::vector<size_t> dropped = DroppedFields(*prev, *next);
  const bool added = next->vectors().size() > prev->vectors().size() ||
                     next->sparse().size() > prev->sparse().size();
  if (added || !dropped.empty()) {
    // The growing segment's rows are laid out for the old fields: it takes
    // no more (the next write starts a segment of the new schema).
    SealGrowing();
    if (growing_ != nullptr) {
      // Empty: drop it rather than append to its old layout.
      writer_segments_.erase(
          std::find(writer_segments_.begin(), writer_segments_.end(), growing_));
      growing_ = nullptr;
    }
    for (size_t f = prev->vectors().size(); f < next->vectors().size(); ++f) {
      stored_dims_[f] = StoredDim(next->vectors()[f]);
      MutexLock lock(&spec_mu_);
      index_specs_.push_back(IndexSpecOf(next->vectors()[f]));
    }
  }
  SetUpTermStats(*next);  // before anyone can name the new attributes
  {
    MutexLock lock(&schema_mu_);
    schemas_.push_back(next);
    current_schema_.store(next.get(), std::memory_order_release);
  }
  // Windows turned off go now (the planner finds none to use); indexes and
  // windows turned on are built by the index builder, which compares each
  // sealed segment with the schema it finds then.
  bool rebuild = false;
  for (size_t a = 0; a < next->attributes().size(); ++a) {
    const AttributeSpec& now = next->attributes()[a];
    const bool was_indexed = a < prev->attributes().size() && prev->attributes()[a].indexed;
    const bool was_window = a < prev->attributes().size() && prev->attributes()[a].window;
    rebuild = rebuild || now.indexed != was_indexed || (now.window && !was_window);
    if (was_window && !now.window) {
      for (const auto& seg : writer_segments_) seg->DropWindowIndexes(static_cast<int>(a));
    }
  }
  for (size_t f : dropped) {
    // Nothing can search a dropped field any more: its indexes go now
    // (readers holding one keep it until they finish). The vectors in
    // memory stay until the segment is rewritten (or quiverd restarts):
    // a reader bound before the drop may still read them.
    for (const auto& seg : writer_segments_) seg->DropIndexes(f);
    MutexLock lock(&spec_mu_);
    index_specs_[f] = IndexSpecOf(next->vectors()[f]);
  }
  // Sealed segments get an added field's index from the builder.
  rebuild = rebuild || added;
  if (rebuild) {
    for (const auto& seg : writer_segments_) {
      if (seg->sealed()) just_sealed_.push_back(seg);
    }
  }
  ApplyNoop(seq);
  NotifySealed();
}

}  // namespace quiver
