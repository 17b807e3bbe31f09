// The engine's commit thread (engine.h): the write entry points that queue
// Writers, the queue and its commit groups (Prepare, one RocksDB batch,
// Apply), and the jobs that run on that thread (maintenance, barriers,
// verification's consistent point).
#include <algorithm>
#include <future>
#include <map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/status_macros.h"
#include "base/truncate.h"
#include "index/muvera.h"
#include "query/engine.h"
#include "query/engine_writer.h"
#include "query/schema_update.h"
#include "spdlog/spdlog.h"

namespace quiver {
namespace {

// A DISK field keeps only its index in memory, so the index must hold
// compressed codes and leave exact distances to the rerank table.
absl::Status CheckStorage(const VectorFieldSpec& field, const index::IndexSpec& spec) {
  // A multi-vector field's index is over encodings, kept in memory whatever
  // the storage; DISK moves only its vector sets to the table.
  if (!field.disk || field.multi) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<index::VectorIndex>> idx = index::CreateIndex(spec);
  if (!idx.ok()) return idx.status();
  if (!(*idx)->approximate()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "DISK storage needs an index over compressed codes (IVF_SQ8, IVF_PQ or HNSW_SQ8), got ",
        spec.type));
  }
  return absl::OkStatus();
}

// A vector field's index spec and storage, as create and add_vectors check
// them; the error names the field.
absl::Status CheckFieldIndex(const VectorFieldSpec& f) {
  absl::Status s = index::ValidateIndexSpec(IndexSpecOf(f));
  if (s.ok()) s = CheckStorage(f, IndexSpecOf(f));
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat("vector field \"", f.name, "\": ", s.message()));
}

// A text attribute's options, as create and update check them (the
// analyzer knows the languages); the error names the attribute.
absl::Status CheckTextAttributes(const Schema& schema) {
  for (const AttributeSpec& a : schema.attributes()) {
    if (!a.text) continue;
    absl::StatusOr<std::shared_ptr<const text::Analyzer>> an = MakeTextAnalyzer(a.text_spec);
    if (!an.ok()) {
      return absl::Status(an.status().code(),
                          absl::StrCat("attribute \"", a.name, "\": ", an.status().message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

void Engine::MaintenanceLoop() {
  // Ticks often enough that an idle segment is sealed soon after seal_idle.
  const absl::Duration tick =
      std::clamp(options_.seal_idle / 4, absl::Milliseconds(20), absl::Milliseconds(500));
  for (;;) {
    {
      MutexLock lock(&maintenance_mu_);
      if (maintenance_cv_.WaitUntil(&maintenance_mu_, absl::Now() + tick,
                                    [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(maintenance_mu_) {
                                      return maintenance_stop_;
                                    })) {
        return;
      }
    }
    auto w = std::make_unique<Writer>();
    w->kind = Writer::Kind::kInternal;
    // A group of its own, so that MeasureLimits sees every upsert the
    // memory account charged applied (an upsert prepared in the same group
    // but applied after it would be counted by neither).
    w->barrier = true;
    w->internal = [this] {
      kCommitThread.Assume();  // internal jobs run in the commit loop
      absl::Time last_write = absl::InfinitePast();
      for (const auto& c : AllCollections()) {
        c->SealIfIdle(options_.seal_idle);
        last_write = std::max(last_write, c->last_write());
        for (CompactionPlan& p : c->PlanCompactions()) {
          builder_->EnqueueCompaction(c->weak_from_this(), std::move(p));
        }
      }
      FlushIfIdle(last_write);
      MeasureLimits();
    };
    w->respond = [](Writer&) {};
    w->done = [](absl::Status) {};
    Enqueue(std::move(w));
    RetryPersists();
  }
}

void Engine::FlushIfIdle(absl::Time last_write) {
  // Once per pause in writes, as the growing segments are sealed: what
  // the memtables still hold is the last writes' copy (up to 64 MiB per
  // column family, the vectors' and the operation log's alike), kept until
  // later writes would have filled them.
  const absl::Time now = absl::Now();
  if (last_write <= idle_flushed_ || now - last_write < options_.seal_idle) return;
  idle_flushed_ = now;
  if (store_->disk_full() || store_->Stats().memtable_bytes < kIdleFlushBytes) return;
  if (absl::Status s = store_->FlushMemtables(); !s.ok()) {
    spdlog::warn("flushing memtables after writes paused: {}", s.ToString());
  }
}

void Engine::RetryPersists() {
  std::vector<PersistRetry> due;
  {
    MutexLock lock(&persist_retry_mu_);
    const absl::Time now = absl::Now();
    auto later = std::partition(persist_retries_.begin(), persist_retries_.end(),
                                [now](const PersistRetry& r) { return r.due > now; });
    due.assign(std::make_move_iterator(later), std::make_move_iterator(persist_retries_.end()));
    persist_retries_.erase(later, persist_retries_.end());
  }
  for (PersistRetry& r : due) {
    if (std::shared_ptr<Segment> seg = r.segment.lock()) {
      builder_->EnqueuePersist(std::move(r.collection), std::move(seg));
    }
  }
}

void Engine::RunOnCommitThreadAsync(std::function<void()> fn) {
  auto w = std::make_unique<Writer>();
  w->kind = Writer::Kind::kInternal;
  w->internal = std::move(fn);
  w->respond = [](Writer&) {};
  w->done = [](absl::Status) {};
  Enqueue(std::move(w));
}

void Engine::RunOnCommitThread(std::function<void()> fn) {
  std::promise<absl::Status> p;
  std::future<absl::Status> f = p.get_future();
  auto w = std::make_unique<Writer>();
  w->kind = Writer::Kind::kInternal;
  w->barrier = true;
  w->internal = std::move(fn);
  w->respond = [](Writer&) {};
  w->done = [&p](absl::Status s) { p.set_value(std::move(s)); };
  Enqueue(std::move(w));
  (void)f.get();
}

absl::Status Engine::VerifyCollection(const v1::VerifyCollectionRequest& req,
                                      v1::VerifyCollectionResponse* resp,
                                      const StopToken& stop) {
  QUIVER_ASSIGN_OR_RETURN(const BoundVerify check, bind::BindVerify(req));
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<Collection> coll, Find(req.name()));
  // The engine's commit thread writes a group to RocksDB and then makes it
  // visible, so at any moment RocksDB may be ahead of every view, and a view
  // paired with a snapshot taken on another thread would see false defects
  // (points without rows, rows deleted on disk but not yet in memory). Both
  // are taken on the commit thread, by an internal barrier that runs as a
  // group of its own: every earlier group is written and applied, no later
  // one has started, and RocksDB and the view agree at the view's sequence.
  // That costs the writers one empty group, not the length of the check,
  // which runs here against the pair while writes go on (a RocksDB snapshot
  // instead of reading at a sequence number, because Quiver's sequences are
  // not RocksDB's).
  View view;
  std::unique_ptr<storage::StoreSnapshot> snapshot;
  std::promise<absl::Status> p;
  std::future<absl::Status> f = p.get_future();
  auto w = std::make_unique<Writer>();
  w->kind = Writer::Kind::kInternal;
  w->barrier = true;
  w->internal = [&] {
    view = coll->TakeView();
    snapshot = store_->NewSnapshot();
  };
  w->respond = [](Writer&) {};
  w->done = [&p](absl::Status s) { p.set_value(std::move(s)); };
  Enqueue(std::move(w));
  QUIVER_RETURN_IF_ERROR(f.get());
  if (coll->dropped()) {
    return absl::NotFoundError(absl::StrCat("collection \"", req.name(), "\" was dropped"));
  }
  QUIVER_RETURN_IF_ERROR(coll->Verify(check, view, *store_, *snapshot, *files_, resp, stop));
  // A drop during the check removed the files it was reading.
  if (coll->dropped()) {
    return absl::NotFoundError(absl::StrCat("collection \"", req.name(), "\" was dropped"));
  }
  return absl::OkStatus();
}

Engine::~Engine() {
  // First, so that index builds and compactions end within milliseconds
  // while the threads below wind down (a restart redoes them).
  if (builder_ != nullptr) builder_->Stop();
  auditor_.reset();
  {
    MutexLock lock(&maintenance_mu_);
    maintenance_stop_ = true;
  }
  maintenance_cv_.NotifyAll();
  if (maintenance_thread_.joinable()) maintenance_thread_.join();
  delayer_.reset();  // queues (or refuses) the upserts it held
  {
    MutexLock lock(&queue_mu_);
    stopping_ = true;
    accepting_ = false;
  }
  queue_cv_.NotifyAll();
  if (commit_thread_.joinable()) commit_thread_.join();
  builder_.reset();  // joins the builders before collections go away
}

// ---------------------------------------------------------------- writes

void Engine::Enqueue(std::unique_ptr<Writer> w) {
  bool write_failed = false;
  {
    MutexLock lock(&queue_mu_);
    write_failed = write_failed_;
    if (accepting_) {
      queue_.push_back(std::move(w));
      queue_cv_.NotifyOne();
      return;
    }
  }
  w->done(absl::UnavailableError(
      write_failed ? "a storage write failed earlier; writes are refused until quiverd restarts"
                   : "server is shutting down"));
}

void Engine::CreateCollection(const v1::CreateCollectionRequest& req,
                              v1::CreateCollectionResponse* resp, Done done) {
  if (!IsValidName(req.name())) {
    return done(absl::InvalidArgumentError(absl::StrCat(
        "invalid collection name \"", TruncateForMessage(req.name()),
        "\": names must match [A-Za-z][A-Za-z0-9_]{0,63}")));
  }
  // Multi-vector fields: resolve the encoding parameters now and store them
  // whole, so a later change of the defaults never re-encodes this field.
  v1::CollectionSchema proto = req.schema();
  for (v1::VectorField& vf : *proto.mutable_vectors()) {
    if (!vf.has_multi_vector() || vf.dim() == 0) continue;
    const auto& given = vf.multi_vector().encoding_params();
    absl::StatusOr<index::MuveraParams> p = index::ParseMuveraParams(
        std::map<std::string, std::string>(given.begin(), given.end()), vf.dim());
    if (p.ok()) {
      if (absl::StatusOr<index::MuveraEncoder> e = index::MuveraEncoder::Create(vf.dim(), *p);
          !e.ok()) {
        p = e.status();
      }
    }
    if (!p.ok()) {
      return done(absl::Status(p.status().code(), absl::StrCat("vector field \"", TruncateForMessage(vf.name()),
                                                                 "\": ", p.status().message())));
    }
    auto* params = vf.mutable_multi_vector()->mutable_encoding_params();
    params->clear();
    for (const auto& [k, v] : index::MuveraParamsToMap(*p)) (*params)[k] = v;
  }
  absl::StatusOr<Schema> schema = bind::BindSchema(proto);
  if (!schema.ok()) return done(schema.status());
  for (const VectorFieldSpec& f : schema->vectors()) {
    if (absl::Status s = CheckFieldIndex(f); !s.ok()) return done(s);
  }
  if (absl::Status s = CheckTextAttributes(*schema); !s.ok()) return done(s);
  auto w = std::make_unique<Writer>();
  w->kind = Writer::Kind::kCreate;
  w->barrier = true;
  w->name = req.name();
  w->schema = *std::move(schema);
  w->respond = [this, resp](Writer& w) {
    auto c = Find(w.name);
    if (c.ok()) Describe(**c, resp->mutable_collection());
  };
  w->done = std::move(done);
  Enqueue(std::move(w));
}

void Engine::DropCollection(const v1::DropCollectionRequest& req,
                            v1::DropCollectionResponse* resp, Done done) {
  auto w = std::make_unique<Writer>();
  w->kind = Writer::Kind::kDrop;
  w->barrier = true;
  w->name = req.name();
  w->respond = [resp](Writer& w) { resp->set_sequence(w.seq); };
  w->done = std::move(done);
  Enqueue(std::move(w));
}

void Engine::UpdateCollection(const v1::UpdateCollectionRequest& req,
                              v1::UpdateCollectionResponse* resp, Done done) {
  absl::StatusOr<std::shared_ptr<Collection>> coll = Find(req.name());
  if (!coll.ok()) return done(coll.status());
  if (req.vectors().empty() && req.attributes().empty() && req.add_vectors().empty() &&
      req.drop_vectors().empty() && req.add_sparse_vectors().empty()) {
    return done(absl::InvalidArgumentError(
        "update names nothing to change: give vector fields' indexes (vectors), attributes, "
        "add_vectors, drop_vectors or add_sparse_vectors"));
  }
  // Checked now to answer at once; applied in Prepare to the schema then
  // current, which an update queued before this one may have changed.
  const Schema& current = (*coll)->schema();
  absl::StatusOr<std::shared_ptr<const Schema>> next = EvolveSchema(current, req.name(), req);
  if (!next.ok()) return done(next.status());
  if (*next != nullptr) {
    // Added fields' indexes and storage, as at create.
    for (size_t f = current.vectors().size(); f < (*next)->vectors().size(); ++f) {
      if (absl::Status s = CheckFieldIndex((*next)->vectors()[f]); !s.ok()) return done(s);
    }
    if (absl::Status s = CheckTextAttributes(**next); !s.ok()) return done(s);
  }
  auto w = std::make_unique<Writer>();
  *w->schema_update.mutable_attributes() = req.attributes();
  *w->schema_update.mutable_add_vectors() = req.add_vectors();
  *w->schema_update.mutable_drop_vectors() = req.drop_vectors();
  *w->schema_update.mutable_add_sparse_vectors() = req.add_sparse_vectors();
  for (const v1::VectorFieldUpdate& u : req.vectors()) {
    const int f = (*coll)->schema().VectorFieldIndex(u.field());
    if (f < 0) {
      return done(absl::InvalidArgumentError(absl::StrCat(
          "collection \"", req.name(), "\" has no vector field \"", TruncateForMessage(u.field()),
          "\"")));
    }
    if (std::find(req.drop_vectors().begin(), req.drop_vectors().end(), u.field()) !=
        req.drop_vectors().end()) {
      return done(absl::InvalidArgumentError(absl::StrCat(
          "vector field \"", u.field(), "\" is both dropped and given a new index")));
    }
    index::IndexSpec spec = IndexSpecOf((*coll)->schema().vectors()[f]);
    spec.type = absl::AsciiStrToUpper(u.index().type());
    if (spec.type.empty()) spec.type = "FLAT";
    spec.params = std::map<std::string, std::string>(u.index().params().begin(),
                                                     u.index().params().end());
    absl::Status s = index::ValidateIndexSpec(spec);
    if (s.ok()) s = CheckStorage((*coll)->schema().vectors()[f], spec);
    if (!s.ok()) {
      return done(absl::Status(s.code(), absl::StrCat("vector field \"", u.field(), "\": ",
                                                      s.message())));
    }
    w->index_updates.emplace_back(f, std::move(spec));
  }
  w->kind = Writer::Kind::kUpdate;
  w->barrier = true;
  w->name = req.name();
  w->coll = *std::move(coll);
  w->respond = [this, resp](Writer& w) {
    resp->set_sequence(w.seq);
    Describe(*w.coll, resp->mutable_collection());
  };
  w->done = std::move(done);
  Enqueue(std::move(w));
}

void Engine::Upsert(const v1::UpsertPointsRequest& req, v1::UpsertPointsResponse* resp,
                    absl::Time deadline, Done done) {
  absl::StatusOr<Bound<BoundUpsert>> up = BindUpsert(req);
  if (!up.ok()) return done(up.status());
  Upsert(*std::move(up), resp, deadline, std::move(done));
}

void Engine::Delete(const v1::DeletePointsRequest& req, v1::DeletePointsResponse* resp,
                    absl::Time deadline, Done done) {
  absl::StatusOr<Bound<BoundDelete>> del = BindDelete(req);
  if (!del.ok()) return done(del.status());
  Delete(*std::move(del), resp, deadline, std::move(done));
}

void Engine::Upsert(Bound<BoundUpsert> up, v1::UpsertPointsResponse* resp, absl::Time deadline,
                    Done done) {
  auto w = std::make_unique<Writer>();
  w->kind = Writer::Kind::kUpsert;
  w->name = up.collection->name();
  w->coll = std::move(up.collection);
  w->up = std::move(up.request);
  w->deadline = deadline;
  w->bytes = w->up.request_bytes;
  w->respond = [resp](Writer& w) {
    resp->set_sequence(w.seq);
    resp->set_upserted_count(static_cast<uint32_t>(w.up.points.size()));
  };
  w->done = std::move(done);
  AdmitUpsert(std::move(w));
}

void Engine::Delete(Bound<BoundDelete> del, v1::DeletePointsResponse* resp, absl::Time deadline,
                    Done done) {
  auto w = std::make_unique<Writer>();
  w->kind = Writer::Kind::kDelete;
  w->barrier = del.request.filter != nullptr;
  w->name = del.collection->name();
  w->coll = std::move(del.collection);
  w->del = std::move(del.request);
  w->deadline = deadline;
  w->bytes = w->del.request_bytes;
  w->respond = [resp](Writer& w) {
    resp->set_sequence(w.seq);
    resp->set_deleted_count(w.fx.removed_ids.size());
  };
  w->done = std::move(done);
  Enqueue(std::move(w));
}


absl::Status Engine::CreateCollection(const v1::CreateCollectionRequest& req,
                                      v1::CreateCollectionResponse* resp) {
  return Wait([&](Done d) { CreateCollection(req, resp, std::move(d)); });
}
absl::Status Engine::DropCollection(const v1::DropCollectionRequest& req,
                                    v1::DropCollectionResponse* resp) {
  return Wait([&](Done d) { DropCollection(req, resp, std::move(d)); });
}
absl::Status Engine::UpdateCollection(const v1::UpdateCollectionRequest& req,
                                      v1::UpdateCollectionResponse* resp) {
  return Wait([&](Done d) { UpdateCollection(req, resp, std::move(d)); });
}
absl::Status Engine::Upsert(const v1::UpsertPointsRequest& req, v1::UpsertPointsResponse* resp) {
  return Wait([&](Done d) { Upsert(req, resp, absl::InfiniteFuture(), std::move(d)); });
}
absl::Status Engine::Delete(const v1::DeletePointsRequest& req, v1::DeletePointsResponse* resp) {
  return Wait([&](Done d) { Delete(req, resp, absl::InfiniteFuture(), std::move(d)); });
}

void Engine::CommitLoop() {
  kCommitThread.Assume();
  std::vector<std::unique_ptr<Writer>> group;
  for (;;) {
    {
      MutexLock lock(&queue_mu_);
      queue_cv_.Wait(&queue_mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
        return stopping_ || !queue_.empty();
      });
      if (queue_.empty()) return;  // stopping, and nothing left to do
      size_t bytes = 0;
      while (!queue_.empty()) {
        Writer& next = *queue_.front();
        if (!group.empty() && (next.barrier || group.front()->barrier ||
                               bytes + next.bytes > options_.max_group_bytes)) {
          break;
        }
        bytes += next.bytes;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    CommitGroup(group);
    group.clear();
  }
}

absl::Status Engine::Prepare(Writer& w, uint64_t seq, storage::Batch* batch) {
  if (w.kind == Writer::Kind::kInternal) return absl::OkStatus();
  if (absl::Now() > w.deadline) {
    return absl::DeadlineExceededError("deadline passed before the write was committed");
  }
  if (w.kind == Writer::Kind::kAlias) return PrepareAlias(w, seq, batch);
  if (w.kind == Writer::Kind::kCreate) {
    QUIVER_RETURN_IF_ERROR(CheckNameFree(w.name));
    w.created.set_id(store_->next_collection_id());
    w.created.set_name(w.name);
    *w.created.mutable_schema() = SchemaToRecord(*w.schema);
    w.created.set_created_at_unix_ms(absl::ToUnixMillis(absl::Now()));
    batch->PutCollection(w.created);
    batch->PutNextCollectionId(w.created.id() + 1);
    storage::OpRecord op;
    op.set_type(storage::OpRecord::CREATE_COLLECTION);
    op.set_collection_id(w.created.id());
    op.set_unix_ms(w.created.created_at_unix_ms());
    batch->LogOp(seq, op);
    return absl::OkStatus();
  }
  if (w.kind == Writer::Kind::kRestore) {
    QUIVER_RETURN_IF_ERROR(CheckNameFree(w.name));
    QUIVER_RETURN_IF_ERROR(ChargeMemory(w));
    batch->PutCollection(w.created);
    batch->PutNextInternalId(w.created.id(), w.next_iid);
    batch->DeleteRestoreMark(w.created.id());
    storage::OpRecord op;
    op.set_type(storage::OpRecord::CREATE_COLLECTION);
    op.set_collection_id(w.created.id());
    op.set_unix_ms(w.created.created_at_unix_ms());
    batch->LogOp(seq, op);
    return absl::OkStatus();
  }
  if (w.kind == Writer::Kind::kDrop) {
    QUIVER_RETURN_IF_ERROR(CheckDroppable(w.name));
    QUIVER_ASSIGN_OR_RETURN(w.coll, Find(w.name));
    batch->DropCollection(w.coll->id(), w.name);
    storage::OpRecord op;
    op.set_type(storage::OpRecord::DROP_COLLECTION);
    op.set_collection_id(w.coll->id());
    op.set_unix_ms(absl::ToUnixMillis(absl::Now()));
    batch->LogOp(seq, op);
    return absl::OkStatus();
  }
  // The collection may have been dropped (and even re-created) since the
  // request was validated against it.
  // By its own name: `name` may be an alias switched since.
  absl::StatusOr<std::shared_ptr<Collection>> current = Find(w.coll->name());
  if (!current.ok() || *current != w.coll) {
    return absl::NotFoundError(absl::StrCat("collection \"", w.name, "\" was dropped"));
  }
  if (w.kind == Writer::Kind::kUpdate) {
    const Schema& now = w.coll->schema();
    QUIVER_ASSIGN_OR_RETURN(w.next_schema, EvolveSchema(now, w.name, w.schema_update));
    // A dropped field's vectors go with the schema change, in one batch.
    if (w.next_schema != nullptr) {
      for (size_t f : DroppedFields(now, *w.next_schema)) {
        batch->DeleteVectorField(w.coll->id(), static_cast<uint16_t>(f));
      }
    }
    const Schema& after = w.next_schema != nullptr ? *w.next_schema : now;
    for (const auto& [f, spec] : w.index_updates) {
      if (after.vectors()[f].dropped) {  // by an update queued before this one
        return absl::NotFoundError(absl::StrCat("vector field \"", after.vectors()[f].name,
                                                "\" of collection \"", w.name, "\" was dropped"));
      }
    }
    storage::CollectionRecord rec =
        w.next_schema != nullptr ? w.coll->RecordWith(*w.next_schema) : w.coll->Record();
    for (const auto& [f, spec] : w.index_updates) {
      auto* idx = rec.mutable_schema()->mutable_vectors(static_cast<int>(f))->mutable_index();
      idx->set_type(spec.type);
      idx->mutable_params()->clear();
      idx->mutable_params()->insert(spec.params.begin(), spec.params.end());
    }
    batch->PutCollection(rec);
    storage::OpRecord op;
    op.set_type(storage::OpRecord::UPDATE_COLLECTION);
    op.set_collection_id(w.coll->id());
    op.set_unix_ms(absl::ToUnixMillis(absl::Now()));
    batch->LogOp(seq, op);
  } else if (w.kind == Writer::Kind::kUpsert || w.kind == Writer::Kind::kPointUpdate) {
    if (w.kind == Writer::Kind::kPointUpdate) {
      QUIVER_RETURN_IF_ERROR(
          w.coll->MergeUpdate(w.point_update, &w.merge_view, &w.up, &w.points_created));
    }
    QUIVER_RETURN_IF_ERROR(ChargeMemory(w));
    w.coll->PrepareUpsert(seq, w.up, batch, &w.fx);
  } else {
    w.coll->PrepareDelete(seq, w.del, batch, &w.fx);
  }
  return absl::OkStatus();
}

void Engine::Apply(Writer& w) {
  switch (w.kind) {
    case Writer::Kind::kInternal:
      w.internal();
      break;
    case Writer::Kind::kCreate: {
      auto coll = NewCollection(w.created, *w.schema, 0);
      coll->ApplyNoop(w.seq);
      MutexLock lock(&collections_mu_);
      collections_.emplace(w.name, std::move(coll));
      break;
    }
    case Writer::Kind::kRestore: {
      w.coll->ApplyNoop(w.seq);
      MutexLock lock(&collections_mu_);
      collections_.emplace(w.name, w.coll);
      break;
    }
    case Writer::Kind::kDrop: {
      {
        MutexLock lock(&collections_mu_);
        collections_.erase(w.name);
      }
      w.coll->MarkDropped();
      if (absl::Status s = files_->RemoveCollection(w.coll->id()); !s.ok()) {
        spdlog::warn("drop \"{}\": {}", w.name, s.ToString());
      }
      MeasureLimits();  // a drop frees at once what the budget counted
      break;
    }
    case Writer::Kind::kUpdate:
      if (w.next_schema != nullptr) w.coll->ApplySchema(w.seq, w.next_schema);
      for (const auto& [f, spec] : w.index_updates) w.coll->ApplyIndexSpec(w.seq, f, spec);
      break;
    case Writer::Kind::kUpsert:
    case Writer::Kind::kPointUpdate:
      w.coll->ApplyUpsert(w.seq, w.up, w.fx);
      break;
    case Writer::Kind::kDelete:
      w.coll->ApplyDelete(w.seq, w.fx);
      break;
    case Writer::Kind::kAlias:
      ApplyAlias(w);
      break;
  }
}

bool Engine::StagesRows(const std::vector<std::unique_ptr<Writer>>& group) const {
  size_t bytes = 0;
  for (const auto& w : group) {
    // An internal job may seal or swap segments between staged rows and
    // their apply: a group holding one is written the plain way.
    if (w->kind == Writer::Kind::kInternal) return false;
    if (w->kind == Writer::Kind::kUpsert || w->kind == Writer::Kind::kPointUpdate) {
      bytes += w->bytes;
    }
  }
  return bytes > 0 && bytes >= options_.stage_min_bytes;
}

void Engine::CommitGroup(std::vector<std::unique_ptr<Writer>>& group) {
  std::unique_ptr<storage::Batch> batch = store_->NewBatch();
  std::vector<absl::Status> status(group.size());
  uint64_t seq = store_->last_sequence();
  size_t prepared = 0;
  for (size_t i = 0; i < group.size(); ++i) {
    batch->SetSavePoint();
    status[i] = Prepare(*group[i], seq + 1, batch.get());
    if (!status[i].ok()) {
      batch->RollbackToSavePoint();
      continue;
    }
    batch->PopSavePoint();
    if (group[i]->kind != Writer::Kind::kInternal) {
      group[i]->seq = ++seq;
      ++prepared;
    }
  }
  absl::Status written = absl::OkStatus();
  if (prepared > 0 && StagesRows(group)) {
    // The write (mostly the WAL's checksum, copy and fsync) runs on the
    // side thread while this one copies the upserts' rows into their
    // growing segments, unpublished: the copy no longer adds to a
    // request's latency. Staged rows the write failed are taken back.
    write_thread_.Start([this, &batch] { return store_->Write(*batch); });
    absl::flat_hash_set<Collection*> refused;
    for (size_t i = 0; i < group.size(); ++i) {
      Writer& w = *group[i];
      if (!status[i].ok() ||
          (w.kind != Writer::Kind::kUpsert && w.kind != Writer::Kind::kPointUpdate)) {
        continue;
      }
      if (refused.contains(w.coll.get()) || !w.coll->StageUpsert(w.up, &w.fx)) {
        refused.insert(w.coll.get());
      }
    }
    written = write_thread_.Wait();
    if (!written.ok()) {
      for (auto& w : group) {
        if (w->fx.staged_in == nullptr) continue;
        w->coll->UnstageUpserts();
        w->fx.staged_in = nullptr;
      }
    }
  } else if (prepared > 0) {
    written = store_->Write(*batch);
  }
  // A full disk (RESOURCE_EXHAUSTED) is the exception to what follows: the
  // store had RocksDB stop writing, so nothing of the group reached it to
  // disagree with memory, and its next write resumes once space is free.
  if (!written.ok() && !absl::IsResourceExhausted(written)) {
    // Memory and disk may now disagree (the WAL may hold part of what
    // failed), so stop writing: recovery at the next start rebuilds memory
    // from disk.
    spdlog::critical("commit of {} writes failed, refusing further writes until restart: {}",
                     prepared, written.ToString());
    {
      MutexLock lock(&queue_mu_);
      accepting_ = false;
      write_failed_ = true;
    }
    if (options_.on_write_failure) options_.on_write_failure();
  }
  for (size_t i = 0; i < group.size(); ++i) {
    Writer& w = *group[i];
    // An internal job (a compaction's swap, seals) writes nothing to the
    // batch: after a full disk, where memory still matches RocksDB, it runs
    // as if alone. Dropping it would leave, say, a compaction's inputs
    // marked as compacting for good.
    const bool runs = written.ok() || (w.kind == Writer::Kind::kInternal &&
                                       absl::IsResourceExhausted(written));
    if (status[i].ok()) {
      if (runs) {
        Apply(w);
        w.respond(w);
      } else {
        status[i] = written;
      }
    }
    if (w.coll != nullptr) w.coll->EndGroup();
  }
  for (size_t i = 0; i < group.size(); ++i) group[i]->done(status[i]);
}

}  // namespace quiver
