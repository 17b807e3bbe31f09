#include "query/engine.h"

#include <algorithm>
#include <filesystem>
#include <future>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "index/flat_search.h"
#include "index/muvera.h"
#include "spdlog/spdlog.h"
#include "base/status_macros.h"
#include "base/truncate.h"

namespace quiver {

std::string ConfigureBlas(int threads_per_call) {
  index::SetBlasThreads(threads_per_call);
  return index::BlasDescription();
}

namespace {

absl::Status RunSearch(const Collection& c, const BoundSearch& q, const StopToken& stop,
                       v1::SearchResponse* resp) {
  return c.Search(q, stop, resp);
}
absl::Status RunSearch(const Collection& c, const BoundHybridSearch& q, const StopToken& stop,
                       v1::SearchResponse* resp) {
  return c.SearchHybrid(q, stop, resp);
}

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

}  // namespace

struct Engine::Writer {
  // kInternal runs `internal` on the commit thread: segment-list changes
  // that write nothing to storage and take no sequence number.
  enum class Kind { kCreate, kDrop, kUpdate, kUpsert, kDelete, kInternal };
  Kind kind;
  // Runs as a commit group of its own, so its Prepare sees only applied
  // state (catalog changes and filter deletes).
  bool barrier = false;
  std::string name;
  std::optional<Schema> schema;  // kCreate
  std::shared_ptr<Collection> coll;
  BoundUpsert up;
  BoundDelete del;
  WriteEffects fx;
  absl::Time deadline = absl::InfiniteFuture();
  size_t bytes = 0;
  uint64_t seq = 0;
  storage::CollectionRecord created;  // kCreate
  std::function<void()> internal;     // kInternal
  std::vector<std::pair<size_t, index::IndexSpec>> index_updates;  // kUpdate
  // Fills the response after a successful apply.
  std::function<void(Writer&)> respond;
  Done done;
};

absl::StatusOr<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options) {
  std::unique_ptr<Engine> engine(new Engine());
  engine->options_ = options;
  engine->options_.store.path = options.data_dir + "/db";
  std::error_code ec;
  std::filesystem::create_directories(engine->options_.store.path, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create data directory ", options.data_dir, ": ", ec.message()));
  }
  QUIVER_ASSIGN_OR_RETURN(engine->store_, storage::Store::Open(engine->options_.store));
  int search_threads = options.search_threads;
  if (search_threads <= 0) {
    search_threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) - 1);
  }
  engine->search_pool_ = std::make_unique<TaskPool>(search_threads);
  engine->options_.collection.search_pool = engine->search_pool_.get();
  engine->files_ = std::make_unique<storage::SegmentFiles>(options.data_dir + "/segments");
  engine->builder_ = std::make_unique<IndexBuilder>(
      options.builder, [e = engine.get()](Collection& c, const auto& seg) {
        absl::Status s = c.Persist(*seg, *e->files_);
        if (!s.ok()) {
          // Derived data: the segment keeps serving from memory (and would
          // be rebuilt after a restart); the maintenance thread tries again.
          spdlog::warn("collection \"{}\" segment {}: not persisted, retrying in {}: {}",
                       c.name(), seg->id(), absl::FormatDuration(e->options_.persist_retry),
                       s.ToString());
          MutexLock lock(&e->persist_retry_mu_);
          e->persist_retries_.push_back(
              {c.weak_from_this(), seg, absl::Now() + e->options_.persist_retry});
        }
      },
      [e = engine.get()](const std::shared_ptr<Collection>& c, CompactionPlan plan,
                         std::shared_ptr<Segment> out) {
        // The swap runs on the commit thread, ordered with writes.
        e->RunOnCommitThreadAsync([e, c, plan = std::move(plan), out = std::move(out)] {
          if (!c->SwapCompacted(plan, out)) return;
          for (const auto& in : plan.inputs) (void)e->files_->RemoveSegment(c->id(), in->id());
        });
      });
  QUIVER_ASSIGN_OR_RETURN(std::vector<storage::CollectionState> states,
                          engine->store_->LoadCollections());
  const uint64_t last_seq = engine->store_->last_sequence();
  for (storage::CollectionState& st : states) {
    absl::StatusOr<Schema> schema = Schema::FromProto(st.record.schema());
    if (!schema.ok()) {
      return absl::DataLossError(absl::StrCat("collection \"", st.record.name(),
                                              "\": stored schema is invalid: ",
                                              schema.status().message()));
    }
    const absl::Time start = absl::Now();
    auto coll = engine->NewCollection(st.record, *std::move(schema), st.next_iid);
    QUIVER_RETURN_IF_ERROR(coll->Recover(*engine->store_, *engine->files_, last_seq));
    v1::CollectionInfo info;
    coll->Describe(&info);
    spdlog::info("recovered collection \"{}\": {} points in {:.3f}s", st.record.name(),
                 info.stats().point_count(), absl::ToDoubleSeconds(absl::Now() - start));
    MutexLock lock(&engine->collections_mu_);
    engine->collections_.emplace(st.record.name(), std::move(coll));
  }
  engine->commit_thread_ = std::thread([e = engine.get()] { e->CommitLoop(); });
  engine->maintenance_thread_ = std::thread([e = engine.get()] { e->MaintenanceLoop(); });
  return engine;
}

std::shared_ptr<Collection> Engine::NewCollection(const storage::CollectionRecord& rec,
                                                  Schema schema, uint64_t next_iid) {
  return std::make_shared<Collection>(
      rec, std::move(schema), next_iid, options_.collection,
      [this](Collection& c, std::shared_ptr<Segment> seg) {
        builder_->Enqueue(c.weak_from_this(), std::move(seg));
      });
}

std::vector<std::shared_ptr<Collection>> Engine::AllCollections() const {
  std::vector<std::shared_ptr<Collection>> all;
  ReaderMutexLock lock(&collections_mu_);
  for (const auto& [name, c] : collections_) all.push_back(c);
  return all;
}

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
    w->internal = [this] {
      for (const auto& c : AllCollections()) {
        c->SealIfIdle(options_.seal_idle);
        for (CompactionPlan& p : c->PlanCompactions()) {
          builder_->EnqueueCompaction(c->weak_from_this(), std::move(p));
        }
      }
    };
    w->respond = [](Writer&) {};
    w->done = [](absl::Status) {};
    Enqueue(std::move(w));
    RetryPersists();
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
  if (req.index_samples() > 10000) {
    return absl::InvalidArgumentError(
        absl::StrCat("index_samples is ", req.index_samples(), "; at most 10000"));
  }
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
  QUIVER_RETURN_IF_ERROR(coll->Verify(req, view, *store_, *snapshot, *files_, resp, stop));
  // A drop during the check removed the files it was reading.
  if (coll->dropped()) {
    return absl::NotFoundError(absl::StrCat("collection \"", req.name(), "\" was dropped"));
  }
  return absl::OkStatus();
}

void Engine::SealAndWaitForIndexes() {
  RunOnCommitThread([this] {
    for (const auto& c : AllCollections()) c->SealIfIdle(absl::ZeroDuration());
  });
  builder_->WaitIdle();
  // Compaction swaps the builders queued on the commit thread run before
  // this no-op does.
  RunOnCommitThread([] {});
}

Engine::~Engine() {
  {
    MutexLock lock(&maintenance_mu_);
    maintenance_stop_ = true;
  }
  maintenance_cv_.NotifyAll();
  if (maintenance_thread_.joinable()) maintenance_thread_.join();
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    stopping_ = true;
    accepting_ = false;
  }
  queue_cv_.notify_all();
  if (commit_thread_.joinable()) commit_thread_.join();
  builder_.reset();  // joins the builders before collections go away
}

void Engine::StopAcceptingWrites() {
  std::lock_guard<std::mutex> lock(queue_mu_);
  accepting_ = false;
}

absl::StatusOr<std::shared_ptr<Collection>> Engine::Find(const std::string& name) const {
  ReaderMutexLock lock(&collections_mu_);
  auto it = collections_.find(name);
  if (it == collections_.end()) {
    return absl::NotFoundError(
        absl::StrCat("collection \"", TruncateForMessage(name), "\" does not exist"));
  }
  return it->second;
}

// ---------------------------------------------------------------- writes

void Engine::Enqueue(std::unique_ptr<Writer> w) {
  bool write_failed = false;
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    write_failed = write_failed_;
    if (accepting_) {
      queue_.push_back(std::move(w));
      queue_cv_.notify_one();
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
  absl::StatusOr<Schema> schema = Schema::FromProto(proto);
  if (!schema.ok()) return done(schema.status());
  for (const VectorFieldSpec& f : schema->vectors()) {
    absl::Status s = index::ValidateIndexSpec(IndexSpecOf(f));
    if (s.ok()) s = CheckStorage(f, IndexSpecOf(f));
    if (!s.ok()) {
      return done(absl::Status(s.code(), absl::StrCat("vector field \"", f.name, "\": ", s.message())));
    }
  }
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
  if (req.vectors().empty()) {
    return done(absl::InvalidArgumentError("update names no vector field to change"));
  }
  auto w = std::make_unique<Writer>();
  for (const v1::VectorFieldUpdate& u : req.vectors()) {
    const int f = (*coll)->schema().VectorFieldIndex(u.field());
    if (f < 0) {
      return done(absl::InvalidArgumentError(absl::StrCat(
          "collection \"", req.name(), "\" has no vector field \"", TruncateForMessage(u.field()),
          "\"")));
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

absl::StatusOr<Bound<BoundSearchRequest>> Engine::BindSearch(
    const v1::SearchRequest& req) const {
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<Collection> c, Find(req.collection()));
  QUIVER_ASSIGN_OR_RETURN(BoundSearchRequest q, bind::BindSearch(c->bind_target(), req));
  return Bound<BoundSearchRequest>{std::move(c), std::move(q)};
}

absl::StatusOr<Bound<BoundUpsert>> Engine::BindUpsert(const v1::UpsertPointsRequest& req) const {
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<Collection> c, Find(req.collection()));
  QUIVER_ASSIGN_OR_RETURN(BoundUpsert up, bind::BindUpsert(c->bind_target(), req));
  return Bound<BoundUpsert>{std::move(c), std::move(up)};
}

absl::StatusOr<Bound<BoundDelete>> Engine::BindDelete(const v1::DeletePointsRequest& req) const {
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<Collection> c, Find(req.collection()));
  QUIVER_ASSIGN_OR_RETURN(BoundDelete del, bind::BindDelete(c->bind_target(), req));
  return Bound<BoundDelete>{std::move(c), std::move(del)};
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
  Enqueue(std::move(w));
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

namespace {

// Runs an asynchronous write and waits for it.
template <typename Fn>
absl::Status Wait(Fn&& start) {
  std::promise<absl::Status> p;
  std::future<absl::Status> f = p.get_future();
  start([&p](absl::Status s) { p.set_value(std::move(s)); });
  return f.get();
}
}  // namespace

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
  std::vector<std::unique_ptr<Writer>> group;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
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
  if (w.kind == Writer::Kind::kCreate) {
    if (Find(w.name).ok()) {
      return absl::AlreadyExistsError(absl::StrCat("collection \"", w.name, "\" already exists"));
    }
    w.created.set_id(store_->next_collection_id());
    w.created.set_name(w.name);
    *w.created.mutable_schema() = w.schema->proto();
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
  if (w.kind == Writer::Kind::kDrop) {
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
  absl::StatusOr<std::shared_ptr<Collection>> current = Find(w.name);
  if (!current.ok() || *current != w.coll) {
    return absl::NotFoundError(absl::StrCat("collection \"", w.name, "\" was dropped"));
  }
  if (w.kind == Writer::Kind::kUpdate) {
    storage::CollectionRecord rec = w.coll->Record();
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
  } else if (w.kind == Writer::Kind::kUpsert) {
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
    case Writer::Kind::kDrop: {
      {
        MutexLock lock(&collections_mu_);
        collections_.erase(w.name);
      }
      w.coll->MarkDropped();
      if (absl::Status s = files_->RemoveCollection(w.coll->id()); !s.ok()) {
        spdlog::warn("drop \"{}\": {}", w.name, s.ToString());
      }
      break;
    }
    case Writer::Kind::kUpdate:
      for (const auto& [f, spec] : w.index_updates) w.coll->ApplyIndexSpec(w.seq, f, spec);
      break;
    case Writer::Kind::kUpsert:
      w.coll->ApplyUpsert(w.seq, w.up, w.fx);
      break;
    case Writer::Kind::kDelete:
      w.coll->ApplyDelete(w.seq, w.fx);
      break;
  }
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
  absl::Status written = prepared > 0 ? store_->Write(*batch) : absl::OkStatus();
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
      std::lock_guard<std::mutex> lock(queue_mu_);
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

// ---------------------------------------------------------------- reads

void Engine::Describe(const Collection& c, v1::CollectionInfo* info) const {
  c.Describe(info);
  info->mutable_stats()->set_storage_bytes(store_->ApproximateCollectionBytes(c.id()));
}

absl::Status Engine::GetCollection(const v1::GetCollectionRequest& req,
                                   v1::GetCollectionResponse* resp) const {
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<Collection> c, Find(req.name()));
  Describe(*c, resp->mutable_collection());
  return absl::OkStatus();
}

absl::Status Engine::ListCollections(v1::ListCollectionsResponse* resp) const {
  std::vector<std::shared_ptr<Collection>> all;
  {
    ReaderMutexLock lock(&collections_mu_);
    for (const auto& [name, c] : collections_) all.push_back(c);
  }
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a->name() < b->name(); });
  for (const auto& c : all) Describe(*c, resp->add_collections());
  return absl::OkStatus();
}

absl::Status Engine::GetPoints(const v1::GetPointsRequest& req,
                               v1::GetPointsResponse* resp) const {
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<Collection> c, Find(req.collection()));
  QUIVER_ASSIGN_OR_RETURN(const BoundGet q, bind::BindGet(c->bind_target(), req));
  const absl::Status s = c->Get(q, resp);
  if (!s.ok()) resp->Clear();  // what was filled before a limit stopped it
  return s;
}

absl::Status Engine::CountPoints(const v1::CountPointsRequest& req,
                                 v1::CountPointsResponse* resp, const StopToken& stop) const {
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<Collection> c, Find(req.collection()));
  QUIVER_ASSIGN_OR_RETURN(const BoundCount q, bind::BindCount(c->bind_target(), req));
  QUIVER_ASSIGN_OR_RETURN(uint64_t n, c->Count(q, stop));
  resp->set_count(n);
  return absl::OkStatus();
}

bool Engine::IsExpensive(const Bound<BoundSearchRequest>& q) const {
  return q.collection->EstimateWork(q.request) > kExpensiveWork;
}

bool Engine::IsExpensive(const v1::CountPointsRequest& req) const {
  if (req.filter().empty()) return false;
  absl::StatusOr<std::shared_ptr<Collection>> c = Find(req.collection());
  return c.ok() && (*c)->EstimateCountWork(req.filter()) > kExpensiveWork;
}

absl::Status Engine::Search(const v1::SearchRequest& req, const StopToken& stop,
                            v1::SearchResponse* resp) const {
  QUIVER_ASSIGN_OR_RETURN(const Bound<BoundSearchRequest> q, BindSearch(req));
  return Search(q, stop, resp);
}

absl::Status Engine::Search(const Bound<BoundSearchRequest>& q, const StopToken& stop,
                            v1::SearchResponse* resp) const {
  const Collection& c = *q.collection;
  const absl::Status s =
      std::visit([&](const auto& bound) { return RunSearch(c, bound, stop, resp); }, q.request);
  if (!s.ok()) resp->Clear();  // what was filled before a limit or a stop ended it
  return s;
}

}  // namespace quiver
