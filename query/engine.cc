#include "query/engine.h"

#include <algorithm>
#include <filesystem>
#include <future>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "index/flat_search.h"
#include "spdlog/spdlog.h"
#include "base/status_macros.h"
#include "base/truncate.h"
#include "query/engine_writer.h"

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
absl::Status RunSearch(const Collection& c, const BoundSparseSearch& q, const StopToken& stop,
                       v1::SearchResponse* resp) {
  return c.SearchSparse(q, stop, resp);
}
absl::Status RunSearch(const Collection& c, const BoundTextSearch& q, const StopToken& stop,
                       v1::SearchResponse* resp) {
  return c.SearchText(q, stop, resp);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options) {
  std::unique_ptr<Engine> engine(new Engine());
  engine->options_ = options;
  engine->options_.store.path = options.data_dir + "/db";
  if (engine->options_.store.fs == nullptr) {
    engine->options_.store.fs = storage::FileSystem::Default();
  }
  // A half-done offline restore would open as an empty or partial
  // database (and its leftovers be cleaned up as debris).
  absl::StatusOr<bool> restoring = engine->options_.store.fs->Exists(
      absl::StrCat(options.data_dir, "/", kRestoringMarker));
  if (!restoring.ok()) return restoring.status();
  if (*restoring) {
    return absl::FailedPreconditionError(absl::StrCat(
        "data directory ", options.data_dir, " holds an offline restore that never finished (",
        kRestoringMarker, " is there): start again with --restore-from and the same snapshot "
        "file to redo it"));
  }
  if (absl::Status s = engine->options_.store.fs->CreateDirs(engine->options_.store.path);
      !s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot create data directory ", options.data_dir, ": ", s.message()));
  }
  QUIVER_ASSIGN_OR_RETURN(engine->store_, storage::Store::Open(engine->options_.store));
  int search_threads = options.search_threads;
  if (search_threads <= 0) {
    search_threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) - 1);
  }
  engine->search_pool_ = std::make_unique<TaskPool>(search_threads);
  engine->options_.collection.search_pool = engine->search_pool_.get();
  engine->options_.collection.query_stats = &engine->query_stats_;
  engine->files_ = std::make_unique<storage::SegmentFiles>(options.data_dir + "/segments",
                                                          engine->options_.store.fs);
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
          kCommitThread.Assume();
          uint64_t reclaimed = 0;
          for (const auto& in : plan.inputs) reclaimed += in->dead();
          if (!c->SwapCompacted(plan, out)) return;
          c->counters().compactions.fetch_add(1, std::memory_order_relaxed);
          c->counters().compacted_deleted_rows.fetch_add(reclaimed, std::memory_order_relaxed);
          for (const auto& in : plan.inputs) (void)e->files_->RemoveSegment(c->id(), in->id());
        });
      });
  QUIVER_RETURN_IF_ERROR(engine->CleanSnapshotLeftovers());
  QUIVER_ASSIGN_OR_RETURN(std::vector<storage::CollectionState> states,
                          engine->store_->LoadCollections());
  const uint64_t last_seq = engine->store_->last_sequence();
  for (storage::CollectionState& st : states) {
    absl::StatusOr<Schema> schema = SchemaFromRecord(st.record.schema());
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
  QUIVER_RETURN_IF_ERROR(engine->RecoverAliases());
  {
    // Before the commit thread exists: the first writes meet the budget
    // with what recovery loaded counted.
    kCommitThread.Assume();
    engine->MeasureLimits();
  }
  engine->delayer_ = std::make_unique<WriteDelayer>();
  engine->commit_thread_ = std::thread([e = engine.get()] { e->CommitLoop(); });
  engine->maintenance_thread_ = std::thread([e = engine.get()] { e->MaintenanceLoop(); });
  if (options.recall_audit_rate > 0) {
    engine->auditor_ = std::make_unique<RecallAuditor>(options.recall_audit_rate, /*max_queued=*/16,
                                                     options.recall_audit_cpu_share);
  }
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

void Engine::SealAndWaitForIndexes() {
  RunOnCommitThread([this] {
    kCommitThread.Assume();
    for (const auto& c : AllCollections()) c->SealIfIdle(absl::ZeroDuration());
  });
  builder_->WaitIdle();
  // Compaction swaps the builders queued on the commit thread run before
  // this no-op does.
  RunOnCommitThread([] {});
}

void Engine::StopAcceptingWrites() {
  MutexLock lock(&queue_mu_);
  accepting_ = false;
}

void Engine::StopIndexBuilds() {
  if (builder_ != nullptr) builder_->Stop();
}

absl::StatusOr<std::shared_ptr<Collection>> Engine::Find(const std::string& name) const {
  ReaderMutexLock lock(&collections_mu_);
  auto it = collections_.find(name);
  if (it == collections_.end()) {
    if (auto a = aliases_.find(name); a != aliases_.end()) it = collections_.find(a->second);
  }
  if (it == collections_.end()) {
    return absl::NotFoundError(
        absl::StrCat("collection \"", TruncateForMessage(name), "\" does not exist"));
  }
  return it->second;
}

absl::StatusOr<Bound<BoundSearchRequest>> Engine::BindSearch(
    const v1::SearchRequest& req) const {
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<Collection> c, Find(req.collection()));
  QUIVER_ASSIGN_OR_RETURN(BoundSearchRequest q, bind::BindSearch(c->bind_target(), req));
  // The candidate lists are allocated when the search starts (the
  // response is estimated against --max-message-bytes on its own).
  QUIVER_RETURN_IF_ERROR(CheckRequestMemory(options_.limits, SearchWorkBytes(q, c->schema()),
                                            "the candidate lists of its queries"));
  return Bound<BoundSearchRequest>{std::move(c), std::move(q)};
}

absl::StatusOr<Bound<BoundUpsert>> Engine::BindUpsert(const v1::UpsertPointsRequest& req) const {
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<Collection> c, Find(req.collection()));
  // Before binding, which allocates it: a small request of many points
  // can unfold into far more (a multi-vector encoding is thousands of
  // floats, whatever the size of the set).
  QUIVER_RETURN_IF_ERROR(CheckRequestMemory(
      options_.limits, UpsertPrepareBytes(c->schema(), *c->bind_target().stored_dims, req),
      absl::StrCat(req.points_size(), " points with their vector copies and encodings")));
  QUIVER_ASSIGN_OR_RETURN(BoundUpsert up, bind::BindUpsert(c->bind_target(), req));
  return Bound<BoundUpsert>{std::move(c), std::move(up)};
}

absl::StatusOr<Bound<BoundDelete>> Engine::BindDelete(const v1::DeletePointsRequest& req) const {
  QUIVER_ASSIGN_OR_RETURN(std::shared_ptr<Collection> c, Find(req.collection()));
  QUIVER_ASSIGN_OR_RETURN(BoundDelete del, bind::BindDelete(c->bind_target(), req));
  return Bound<BoundDelete>{std::move(c), std::move(del)};
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
  // A search bound before it waited (the expensive-request queue) must not
  // answer from a collection dropped, or dropped and created again, since.
  absl::StatusOr<std::shared_ptr<Collection>> current = Find(q.collection->name());
  if (!current.ok()) return current.status();
  if (*current != q.collection || q.collection->dropped()) {
    return absl::NotFoundError(absl::StrCat("collection \"",
                                            TruncateForMessage(q.collection->name()),
                                            "\" was dropped while the search waited"));
  }
  const Collection& c = *q.collection;
  const absl::Status s =
      std::visit([&](const auto& bound) { return RunSearch(c, bound, stop, resp); }, q.request);
  if (!s.ok()) {
    resp->Clear();  // what was filled before a limit or a stop ended it
    return s;
  }
  if (auditor_ != nullptr) {
    if (const auto* single = std::get_if<BoundSearch>(&q.request)) {
      auditor_->MaybeAudit(q.collection, *single, *resp);
    }
  }
  return s;
}

}  // namespace quiver