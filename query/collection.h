// Collection: one collection's live state in memory — schema, segments, the
// external-id map — and the read paths over it (search, get, count).
//
// Rows live in segments (query/segment.h): sealed, immutable segments with
// ANN indexes built in the background, and one growing segment that takes
// new rows and is searched exactly. Searches fan out over a View (the
// segment list and row counts at one sequence number) and merge the
// per-segment top-k.
//
// Requests arrive bound (query/bind/bound.h): the binder has checked them
// against this collection's schema (bind_target()), so what is here does
// the work. Writes follow the engine's commit protocol, all on the
// engine's single commit thread except binding:
//   1. bind::BindUpsert / BindDelete (any thread): check the request
//      against the schema and copy out what is needed. Nothing changes.
//   2. Prepare*(seq, batch): resolve ids (seeing earlier, not yet applied
//      writes of the same commit group), assign internal ids and add the
//      mutation to the RocksDB batch.
//   3. Apply*(seq): after the batch is durable, make the mutation visible.
// EndGroup() is called after every commit group, applied or failed.
// Segment-list changes that are not writes (sealing an idle growing segment,
// swapping in a compacted segment) also run on the commit thread, so the
// writer's view of the segments never races with them.
//
// Where it lives, by concept: construction, index specs, views, reader
// epochs, get/count/describe in collection.cc; scroll in
// collection_scroll.cc; the commit protocol in collection_write.cc, partial
// updates' merge in collection_update.cc; compaction in collection_compaction.cc; Persist and
// Recover in collection_recovery.cc; Verify in collection_verify.cc;
// searches in query/execute/ (search.cc, late_interaction.cc, hybrid.cc,
// and response.cc for filling responses and explain).
//
// Ownership: the collection owns its segments (shared with views and
// the index builder) and the id map; readers hold Views, which keep the
// segments they list alive.
// Errors: absl::Status; reads return CANCELLED / DEADLINE_EXCEEDED when
// stopped and RESOURCE_EXHAUSTED past the response limit; recovery returns
// DATA_LOSS when RocksDB's rows and vectors disagree.
//
// Thread-safety: read methods may run concurrently with each other and with
// the commit thread. Methods marked "commit thread" must only be called from
// the engine's commit thread (or before the collection is shared).
#ifndef QUIVER_QUERY_COLLECTION_H_
#define QUIVER_QUERY_COLLECTION_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "base/thread_role.h"
#include "absl/time/time.h"
#include "query/bind/binder.h"
#include "query/bind/bound.h"
#include "query/bind/point_binder.h"
#include "query/bind/request_checks.h"
#include "query/execute/response.h"
#include "query/execute/result_info.h"
#include "query/filter/filter.h"
#include "index/maxsim.h"
#include "index/muvera.h"
#include "query/execute/rerank.h"
#include "query/execute/segment_search.h"
#include "query/plan/planner.h"
#include "query/plan/search_context.h"
#include "query/plan/segment_filter.h"
#include "query/plan/segment_planner.h"
#include "query/query_stats.h"
#include "query/segment.h"
#include "query/sparse_index.h"
#include "query/stop.h"
#include "query/text/bm25_stats.h"
#include "quiver/v1/collections.pb.h"
#include "quiver/v1/points.pb.h"
#include "quiver/v1/search.pb.h"
#include "storage/records.pb.h"
#include "storage/rerank_table.h"
#include "storage/schema.h"
#include "storage/segment_files.h"
#include "storage/store.h"

namespace quiver {

// The engine's commit thread (query/engine.h), as a capability: state only
// it touches is ABSL_GUARDED_BY(kCommitThread) and functions only it may call
// require it, so clang's -Wthread-safety checks the confinement. The commit
// loop, and recovery before the collection is shared, Assume() it.
inline ThreadRole kCommitThread;

class TaskPool;

// Work (EstimateWork units) past which a read counts as expensive: about
// 20-50 ms of one core.
inline constexpr uint64_t kExpensiveWork = uint64_t{16} << 20;

struct CollectionOptions {
  // A growing segment is sealed (and indexed) when it holds this many rows.
  // Default: 65536.
  uint32_t segment_max_rows = 65536;
  // A sealed segment whose deleted share passes this is rewritten without
  // its deleted rows. Default: 0.2.
  double compact_deleted_ratio = 0.2;
  // Sealed segments with fewer live rows than this are merged with their
  // neighbours, up to segment_max_rows. Default: segment_max_rows / 2
  // (0 means that default).
  uint32_t merge_below_rows = 0;
  // Segments sized for search, not for ingest: sealed segments are merged
  // in the background into larger ones of up to this many bytes of vectors
  // (each row's stored vectors and norms), so that a large collection is
  // searched as a few large graphs instead of many ingest-sized ones (a
  // search costs about the same per graph, whatever its size). Merges are
  // tiered, as in an LSM tree: merge_factor adjacent segments of one size
  // tier (live rows in [merge_below_rows * factor^t, ... * factor^(t+1)))
  // become one of the next tier, when together they fit the target; so a
  // row is rewritten (and indexed again) once per tier, not once per merge.
  // 0: no merging by size (small and sparse segments still are). Default:
  // 0 here; quiverd's --merge-target-mb sets it (1 GiB, Milvus's segment
  // size, unless told otherwise).
  uint64_t merge_target_bytes = 0;
  // Segments per tiered merge. Default: 4.
  uint32_t merge_factor = 4;
  // Once no write has come for this long, adjacent indexed segments of any
  // tiers are merged into ones of up to merge_target_bytes (packed greedily
  // in segment order), so that an import finished at a size between tiers
  // (1M rows: three 262,144-row segments and three of 65,536) is searched
  // as one graph where the target allows. A group is merged only when its
  // other members add at least a quarter of its largest one's rows: a few
  // new rows next to a large segment wait (at most 5x write amplification
  // per merge). Default: 30 s; InfiniteDuration: never.
  absl::Duration merge_idle = absl::Seconds(30);
  // Runs the fields of a hybrid search in parallel; null runs them one
  // after another. Not owned; outlives the collection.
  TaskPool* search_pool = nullptr;
  // Read DISK fields' rerank tables with O_DIRECT, bypassing the page cache
  // (so a benchmark measures the device). Default: off.
  bool rerank_direct_io = false;
  // Index files loaded at start-up are read in place through a read-only
  // mapping where their kind allows (HNSW; VectorIndex::LoadMapped) rather
  // than copied into memory. Default: on.
  bool map_index_files = true;
  // Rows each index file loaded at start-up is checked on (own-vector
  // searches, query/index_check.h); one that fails is rebuilt. 0: off.
  // Default: 32.
  uint32_t index_check_samples = 32;
  // Largest response a read may build, in serialized bytes (quiverd's
  // --max-message-bytes, which gRPC enforces only once the response
  // exists). Reads estimate their response first and refuse one past this
  // with RESOURCE_EXHAUSTED, doing nothing; what cannot be estimated
  // exactly (vector sets, string attributes) is counted while the response
  // is filled, which stops at the limit. 0: no limit.
  size_t max_response_bytes = 0;
  // The engine's planner and executor counters (metrics); null: not
  // counted. Not owned; outlives the collection.
  QueryStats* query_stats = nullptr;
};

// One compaction: rewrite `inputs` (sealed segments of one collection) as
// one new segment `output_id` holding their live rows.
struct CompactionPlan {
  std::vector<std::shared_ptr<Segment>> inputs;
  uint64_t output_id = 0;
};

// What Prepare* decided, for Apply*.
struct WriteEffects {
  std::vector<uint64_t> added;           // iid per point of a BoundUpsert
  std::vector<std::string> removed_ids;  // external ids whose current row goes
  // Set by Collection::StageUpsert: the points' rows, appended already at
  // [staged_first, staged_first + points) of this segment, unpublished.
  Segment* staged_in = nullptr;
  uint32_t staged_first = 0;
};

// The segments a reader sees, with their row counts, at sequence `seq`.
struct View {
  struct Part {
    std::shared_ptr<const Segment> segment;
    uint32_t rows;
  };
  std::vector<Part> parts;
  uint64_t seq = 0;
  // Keeps memory a DISK field's vectors were served from alive while this
  // view may hold pointers into it (see Collection::Pin).
  std::shared_ptr<const void> pin;
};

struct GroupedLists;  // query/execute/grouped_search.cc

class Collection : public std::enable_shared_from_this<Collection> {
 public:
  // Called (outside any lock, on the commit thread) with each segment as it
  // is sealed.
  using SealedCallback = std::function<void(Collection&, std::shared_ptr<Segment>)>;

  Collection(const storage::CollectionRecord& record, Schema schema, uint64_t next_iid,
             CollectionOptions options, SealedCallback on_sealed);

  const std::string& name() const { return name_; }
  uint32_t id() const { return id_; }
  // The current schema. UpdateCollection replaces it (ApplySchema), but a
  // schema once published lives as long as the collection does, so the
  // reference stays valid for any reader holding the collection. Versions
  // only append fields and never change a field's type, so an attribute or
  // vector field index taken from an older version means the same field in
  // every later one. Any thread.
  const Schema& schema() const { return *current_schema_.load(std::memory_order_acquire); }
  // Vector field f's MUVERA encoder: null unless f is a multi-vector field
  // searched through encodings. Any thread (see encoders_).
  const index::MuveraEncoder* encoder(size_t f) const { return encoders_[f].get(); }
  std::shared_ptr<const Schema> shared_schema() const {
    MutexLock lock(&schema_mu_);
    return schemas_.back();
  }
  // Field f's index kind and build parameters now: the schema's, unless an
  // UpdateCollection changed them since. Any thread.
  index::IndexSpec IndexSpecFor(size_t f) const;
  // The collection's catalog record with the current index specs.
  storage::CollectionRecord Record() const;

  // What requests to this collection are bound against (binder.h). Valid
  // while the collection is.
  bind::BindTarget bind_target() const {
    return bind::BindTarget{schema(), name_, &encoders_, &stored_dims_, &analyzers_};
  }

  // --- Reads (any thread), of requests bound against bind_target() ---
  // Stops with CANCELLED or DEADLINE_EXCEEDED once `stop` says so;
  // RESOURCE_EXHAUSTED when the response would pass max_response_bytes.
  // A search of one field (query/execute/search.cc, late_interaction.cc).
  absl::Status Search(const BoundSearch& q, const StopToken& stop,
                      v1::SearchResponse* resp) const;
  // Hybrid search: each field searched in parallel on the search pool, over
  // one view, with one filter plan; lists fused (query/execute/hybrid.cc).
  absl::Status SearchHybrid(const BoundHybridSearch& q, const StopToken& stop,
                            v1::SearchResponse* resp) const;
  // A search of a sparse vector field (query/execute/sparse_search.cc).
  absl::Status SearchSparse(const BoundSparseSearch& q, const StopToken& stop,
                            v1::SearchResponse* resp) const;
  // A full-text (BM25) search of a text attribute (the same file).
  absl::Status SearchText(const BoundTextSearch& q, const StopToken& stop,
                          v1::SearchResponse* resp) const;
  absl::Status Get(const BoundGet& q, v1::GetPointsResponse* resp) const;
  absl::StatusOr<uint64_t> Count(const BoundCount& q, const StopToken& stop = StopToken()) const;
  // One page of ScrollPoints (query/collection_scroll.cc): the points
  // passing q's filter with ids after q.after, in id order, from one view;
  // next_cursor set when more follow. A page stops early at
  // max_response_bytes (RESOURCE_EXHAUSTED only if not one point fits).
  absl::Status Scroll(const BoundScroll& q, const StopToken& stop,
                      v1::ScrollPointsResponse* resp) const;
  void Describe(v1::CollectionInfo* info) const;
  // A rough count of the unit operations (one filter predicate on one row,
  // 16 floats of distance computation) a search or a count with this
  // filter would take, from the request's shape and the collection's size,
  // without doing any of it. quiverd runs requests estimated past
  // kExpensiveWork on its pool for expensive requests.
  uint64_t EstimateWork(const BoundSearchRequest& q) const;
  uint64_t EstimateCountWork(const std::string& filter_expr) const;
  // A scroll page looks at every live row (its id), filtered or not.
  uint64_t EstimateScrollWork(const std::string& filter_expr) const {
    return LiveCount() + EstimateCountWork(filter_expr);
  }
  View TakeView() const;
  // Bytes of vectors and indexes in memory: the sum of the fields'
  // memory_bytes that Describe reports. Any thread.
  uint64_t MemoryBytes() const;
  // Deleted rows in sealed segments whose deleted share has reached
  // compact_deleted_ratio: what compaction has yet to remove (commit
  // thread, which changes the segment list).
  uint64_t CompactionDebtRows() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // Segment vectors may move from memory to a mapped rerank table (DISK
  // fields) while readers run; the memory is freed only once every pin
  // taken before the move is released. Anything that reads vectors outside
  // a View (index builds, compaction) holds one.
  std::shared_ptr<const void> Pin() const;
  // One copy of every vector: once field f's index of sealed `seg` keeps
  // the rows itself (an HNSW level-0 block, IVF_FLAT's lists), the segment
  // reads them there (Segment::AdoptRows) and its own copy is freed when no
  // pin taken before can reach it. A refusal (rows differ, say) is logged
  // and the segment keeps its copy: two copies, right answers. Any thread; not
  // concurrently for one segment and field (the index builder, recovery).
  // compare false: recovery, before the vectors are loaded (it compares
  // them as it loads them; Segment::AdoptRows).
  void AdoptIndexRows(Segment& seg, size_t f, bool compare = true) const;
  // Runs `fn` while no Persist of this collection runs, so the segment
  // files it reads are whole (snapshots link them).
  void WithPersistLocked(const std::function<void()>& fn) const {
    MutexLock lock(&persist_mu_);
    fn();
  }

  // --- Commit protocol (commit thread) ---
  void PrepareUpsert(uint64_t seq, const BoundUpsert& up, storage::Batch* batch,
                     WriteEffects* fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  void PrepareDelete(uint64_t seq, const BoundDelete& del, storage::Batch* batch,
                     WriteEffects* fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  void ApplyUpsert(uint64_t seq, const BoundUpsert& up, const WriteEffects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // Appends a prepared upsert's rows to the growing segment while its
  // group's storage write is still in flight, so that copying them overlaps
  // the fsync; ApplyUpsert then only links and publishes them. Nothing a
  // reader sees changes: the rows stay unpublished (PublishLocked stops
  // short of them) until their own ApplyUpsert. False, with nothing
  // staged, when the rows do not all fit in the growing segment (a seal
  // belongs after the write); the engine then stages no later upsert of
  // this collection in the group either, so staged rows are never sealed
  // before they are applied. UnstageUpserts takes back whatever is staged
  // and unapplied (the write failed).
  bool StageUpsert(const BoundUpsert& up, WriteEffects* fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  void UnstageUpserts() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // A partial update as the upsert it amounts to (query/collection_update.cc):
  // each point's current row merged with its changes into *merged, which
  // then goes through PrepareUpsert and ApplyUpsert. *keep holds the rows
  // *merged points into until it is applied; *created counts the points
  // created (u.upsert). NOT_FOUND naming the first missing id (without
  // upsert), INVALID_ARGUMENT for a point to create without every vector.
  // REQUIRES: run in a commit group of its own (the applied state is the
  // whole truth).
  absl::Status MergeUpdate(const BoundUpdate& u, View* keep, BoundUpsert* merged,
                           uint32_t* created) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  void ApplyDelete(uint64_t seq, const WriteEffects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // Records that `seq` touched this collection without changing rows.
  void ApplyNoop(uint64_t seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // Publishes `next`, a later version of the schema (query/schema_update.h
  // checked it: it only appends attributes or vector fields, changes
  // attributes' indexed / window flags, or marks vector fields dropped).
  // Sealed segments whose attribute indexes or window indexes no longer
  // match go to the sealed callback for a rebuild; a window turned off is
  // dropped at once. A vector field added or dropped seals the growing
  // segment first (its rows have the old fields; new rows go to a segment
  // of the new schema); sealed segments get the added field's index built
  // in the background, and lose a dropped field's indexes at once.
  // Commit thread.
  void ApplySchema(uint64_t seq, std::shared_ptr<const Schema> next)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // The catalog record `next` would make (Record() with its schema).
  storage::CollectionRecord RecordWith(const Schema& next) const;
  // Switches field f to `spec` (commit thread). Segments whose index was
  // built for another spec go to the sealed callback for a rebuild; their
  // old index serves until then. FLAT drops the indexes.
  void ApplyIndexSpec(uint64_t seq, size_t f, const index::IndexSpec& spec)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  void EndGroup() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread) { pending_.clear(); }
  // Seals the growing segment if it has rows and no write came for
  // `idle`, nor was held back for it (HoldIdleSeal) (commit thread).
  void SealIfIdle(absl::Duration idle) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // A write was refused or delayed by backpressure, its writer told to
  // come back at `until`: for SealIfIdle the writer is not idle before
  // then, so a throttled import does not seal a small segment every time
  // the builder falls behind. Any thread.
  void HoldIdleSeal(absl::Time until);
  // When the last write was applied (InfinitePast: none since opening).
  absl::Time last_write() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread) {
    return last_write_;
  }

  // --- Compaction.
  // Picks segments to compact and marks them (commit thread).
  std::vector<CompactionPlan> PlanCompactions() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // PlanCompactions' merges once writes have paused (merge_idle).
  void PlanIdleMerges(uint64_t row_bytes, std::vector<CompactionPlan>* plans) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // Copies the live rows of the plan's inputs into a new sealed segment, as
  // of a fresh view (any thread; the result is not visible to anyone yet).
  std::shared_ptr<Segment> BuildCompacted(const CompactionPlan& plan) const;
  // Replaces the inputs by `output` (commit thread): rows deleted since the
  // copy are marked deleted in it and the id map moves to it. Returns false
  // (and changes nothing) if the collection was dropped.
  bool SwapCompacted(const CompactionPlan& plan, const std::shared_ptr<Segment>& output)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);

  // Loads all points from the store (before the collection is shared).
  // Segments persisted in `files` are restored with their indexes when their
  // files are intact; rows no persisted segment covers go to new segments.
  // Segments left without an index go to the sealed callback for building.
  absl::Status Recover(storage::Store& store, const storage::SegmentFiles& files,
                       uint64_t last_seq);

  // Writes a sealed segment's indexes and row list to `files` (builder
  // thread). Skipped for a dropped collection.
  absl::Status Persist(Segment& segment, const storage::SegmentFiles& files) const;

  // Checks the derived data of `view` (its segments' files, rows, vectors
  // and indexes) against RocksDB as of `snapshot`, adding what is wrong to
  // resp->defects. REQUIRES: `view` and `snapshot` show the same state: the
  // view was taken on the commit thread between commit groups, with the
  // snapshot (Engine::VerifyCollection). Any thread; reads only. Errors are
  // for failures to read RocksDB, not for defects, and CANCELLED or
  // DEADLINE_EXCEEDED once `stop` says so (checked every few hundred rows
  // and between segments).
  absl::Status Verify(const BoundVerify& check, const View& view,
                      storage::Store& store, const storage::StoreSnapshot& snapshot,
                      const storage::SegmentFiles& files, v1::VerifyCollectionResponse* resp,
                      const StopToken& stop = StopToken()) const;

  // Marks the collection dropped: later writes queued for it fail NOT_FOUND.
  void MarkDropped() { dropped_.store(true, std::memory_order_release); }
  bool dropped() const { return dropped_.load(std::memory_order_acquire); }

  // Counters of index builds, compactions and recall audits (metrics).
  // Thread-safe.
  CollectionCounters& counters() const { return counters_; }

 private:
  // The schema as a StoredSchema or the API's message, with the current
  // index specs. Any thread.
  template <typename SchemaMsg>
  SchemaMsg CurrentSchema(const Schema& schema) const;

  // Where an external id's current row lives. Mutable: an id map entry is
  // pointed at the id's new row in place (its hash, the id's, is the same).
  struct RowRef {
    mutable Segment* segment;
    mutable uint32_t offset;
  };
  // The id map holds rows, not ids: hashing and comparing an entry read the
  // id from its segment, so the map costs 16 bytes a slot instead of a
  // second copy of every id (~70 MB less at 1M points). Every entry must
  // therefore point at a row of a segment the collection still holds.
  static std::string_view IdOf(std::string_view id) { return id; }
  static std::string_view IdOf(const RowRef& r) { return r.segment->external_id(r.offset); }
  struct IdHash {
    using is_transparent = void;
    template <typename T>
    size_t operator()(const T& key) const {
      return absl::Hash<std::string_view>{}(IdOf(key));
    }
  };
  struct IdEq {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return IdOf(a) == IdOf(b);
    }
  };
  using IdMap = absl::flat_hash_set<RowRef, IdHash, IdEq>;
  // A row replaced or deleted at `seq`: marked, and out of the term
  // statistics. Commit thread, under mu_.
  void Unlink(const RowRef& row, uint64_t seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);

  // Resolves an external id as the commit thread sees it: pending writes of
  // the current group first, then the applied id map. -1 if absent.
  int64_t ResolveForWrite(const std::string& id) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  SearchContext MakeContext(size_t f, uint32_t k, const std::vector<float>& queries,
                            const std::vector<float>& qnorms, const BoundSearchParams& params,
                            const filter::Filter* flt, const StopToken& stop) const;
  // Searches every segment of `view`, pushing into topk (one per query).
  absl::Status SearchView(const SearchContext& ctx, const View& view, v1::Explain* explain,
                          std::vector<index::TopK>* topk) const;
  // Late-interaction search of a multi-vector field (q.multi).
  absl::Status SearchMulti(const BoundSearch& q, const StopToken& stop,
                           v1::SearchResponse* resp) const;
  // Its core over one view: the k best points of each query set (checked
  // already), into topk (one per set), and explain's text (its first line
  // the search, the operators under it indented). One of three ways, by the
  // field's candidates (query/execute/late_interaction.cc), each reading
  // the MultiViewArgs SearchMultiView packs.
  // With params.target_recall, `recall` (may be null) gets each segment's
  // predicted recall.
  absl::Status SearchMultiView(int f, const std::vector<TokenSet>& sets, uint32_t k,
                               const BoundSearchParams& params, const filter::Filter* flt,
                               const View& view, const StopToken& stop, v1::Explain* explain,
                               std::vector<index::TopK>* topk, std::string* text,
                               RecallTally* recall = nullptr) const;
  struct MultiViewArgs;
  absl::Status ExactMaxSimView(const MultiViewArgs& a) const;
  absl::Status TokenMaxSimView(const MultiViewArgs& a) const;
  absl::Status MuveraMaxSimView(const MultiViewArgs& a) const;
  // MUVERA with target_recall: each segment as its calibration picks
  // (fde / norms: the queries' encodings and their squared norms).
  absl::Status MuveraTargetView(const MultiViewArgs& a, const std::vector<float>& fde,
                                const std::vector<float>& norms) const;
  // Exact MaxSim of every row in `keep` of part p (seg, its rows) into
  // a.topk; fills `plan` when not null.
  absl::Status ExactMaxSimPart(const MultiViewArgs& a, size_t p, const Segment& seg,
                               uint32_t rows, const RowSet& keep, index::MaxSimScratch* scratch,
                               v1::SegmentPlan* plan) const;
  // Sparse field s searched over one view: each query's k best points
  // into topk (one per query; ids as HitId), a SegmentPlan per segment
  // into explain (may be null). shared: one SharedSegmentFilter per part
  // of the view, or null.
  absl::Status SparseSearchView(int s, const std::vector<SparseValue>& queries, uint32_t k,
                                bool exact, const filter::Filter* flt, const View& view,
                                const StopToken& stop, SharedSegmentFilter* shared,
                                v1::Explain* explain, std::vector<index::TopK>* topk) const;
  // A sparse or text search, start to end: a view, the response estimate,
  // `search` over the view into one top-k heap per query, the lists cut
  // to k and filled (similarity scores), and explain's text after
  // header() (called only with explain).
  using TermViewSearch = std::function<absl::Status(const View&, v1::Explain*,
                                                    std::vector<index::TopK>*)>;
  absl::Status RunTermSearch(size_t queries, uint32_t k, const BoundOutput& output,
                             size_t filter_bytes, bool with_explain, const TermViewSearch& search,
                             const std::function<std::string()>& header,
                             v1::SearchResponse* resp) const;
  // Text attribute a searched by BM25 over one view, as SparseSearchView.
  absl::Status TextSearchView(int a, const std::vector<TextTerms>& queries, uint32_t k,
                              bool exact, const filter::Filter* flt, const View& view,
                              const StopToken& stop, SharedSegmentFilter* shared,
                              v1::Explain* explain, std::vector<index::TopK>* topk) const;
  // Text attribute a's queries as weighted terms: IDF from the statistics
  // now (one snapshot for the batch) times the count in the query, terms
  // in no live point left out; *scoring gets the attribute's BM25
  // parameters and average length.
  std::vector<std::vector<SparseTerm>> TextQueryTerms(int a, const std::vector<TextTerms>& queries,
                                                      SparseScoring* scoring) const;
  // Text attributes' and IDF sparse fields' statistics follow the rows
  // written and removed (commit thread), and are counted again from the
  // live rows at recovery.
  void AddTermStats(const TextRow& text, const SparseRow& sparse)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  void RemoveTermStats(const TextRow& text, const SparseRow& sparse)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  void RecountTermStats() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // Analyzers and statistics for the text attributes and IDF sparse fields
  // of `schema` that have none yet (construction, ApplySchema before the
  // schema is published).
  void SetUpTermStats(const Schema& schema);
  // Sparse field s's queries, each value times its index's IDF when the
  // field has the IDF modifier (one statistics snapshot for the batch);
  // the queries as they are otherwise.
  std::vector<SparseValue> SparseQueriesFor(int s, const std::vector<SparseValue>& queries) const;
  // SearchHybrid's steps (query/execute/hybrid.cc): check the response
  // estimate, search the fields, explain.
  struct HybridRun;
  absl::Status CheckHybridEstimate(const BoundHybridSearch& q, const View& view) const;
  // The name of the field a hybrid part searches (vector or sparse).
  const std::string& FieldName(const BoundFieldQuery& part) const;
  absl::Status RunHybridFields(const View& view, const StopToken& stop, HybridRun* run) const;
  // Multi-stage search (query/execute/multi_stage.cc): the fused candidates
  // through each stage, and the exact scoring a stage does.
  absl::Status RunStages(const View& view, const StopToken& stop, HybridRun* run,
                         std::vector<index::Neighbor>* hits) const;
  // Scores candidates `ids` (HitIds of `view`) exactly by q's field:
  // (*dist)[i] as the searches' heaps hold scores, (*present)[i] 0 where
  // the row lacks the field. Counts the scores in stats->distances.
  absl::Status ScoreCandidates(const View& view, const BoundFieldQuery& q, const StopToken& stop,
                               const std::vector<uint64_t>& ids, std::vector<float>* dist,
                               std::vector<uint8_t>* present, OpStats* stats) const;
  // How a stage scores, for explain: "exact MaxSim (IP)", "BM25(...)", ...
  std::string StageScoring(const BoundFieldQuery& q) const;
  // Appends hits scored as a search of q's field scores them (metric,
  // MaxSim, dot product, BM25), from its heaps' distances.
  absl::Status FillPartHits(const View& view, const BoundFieldQuery& q,
                            const std::vector<index::Neighbor>& hits, const BoundOutput& output,
                            ResponseBudget* budget,
                            google::protobuf::RepeatedPtrField<v1::Hit>* out) const;
  void HybridExplain(HybridRun* run, v1::Explain* explain) const;
  // A single-field search (plain or late interaction) under way: its view,
  // a top-k heap per query and resp's explain if asked for.
  struct SearchStart {
    absl::Time t_start;
    View view;
    std::vector<index::TopK> topk;
    v1::Explain* explain = nullptr;
  };
  // Its start: takes the view and checks the response's estimate
  // (RESOURCE_EXHAUSTED past --max-message-bytes) before any work.
  absl::Status BeginSearch(const BoundSearch& q, v1::SearchResponse* resp,
                           SearchStart* s) const;
  // Its end: explain's total and text, given all but its total line, then
  // every query's hits (best first, as the Limit operator left them) and
  // what each list says about itself (result_info.h), all counted against
  // the response budget.
  // explain's total and text (given all but its total line), counted
  // against *budget; nothing without explain.
  absl::Status FinishExplain(const SearchStart& s, std::string text, ResponseBudget* budget) const;
  absl::Status FinishSearch(const SearchStart& s, const BoundSearch& q, std::string text,
                            const SearchLists& lists, MatchingCounter* counter,
                            v1::SearchResponse* resp) const;
  // min_results / exhaustive (query/execute/fallback.cc): searches again the
  // queries of `ctx` whose lists are short while more points match, first
  // with ef and nprobe widened, then exactly; notes each step in *text.
  absl::Status FallBack(const BoundSearch& q, const SearchContext& ctx, const View& view,
                        MatchingCounter* counter, SearchLists* lists, std::string* text) const;
  // One step of it: the queries `which` of ctx searched with `c`'s
  // parameters, their lists replaced where the new one is longer.
  absl::Status SearchAgain(const BoundSearch& q, SearchContext c, const View& view,
                           const std::vector<size_t>& which, SearchLists* lists) const;
  // Grouped search (q.group_by; query/execute/grouped_search.cc), and its
  // response: per query its groups and what the list says about itself.
  absl::Status SearchGrouped(const BoundSearch& q, const StopToken& stop,
                             v1::SearchResponse* resp) const;
  absl::Status FinishGrouped(const SearchStart& s, const BoundSearch& q, std::string text,
                             uint64_t matching, const GroupedLists& g,
                             v1::SearchResponse* resp) const;
  // Appends a hit per neighbour of field `field`, scored by its metric,
  // counting each against *budget (stops at its limit).
  absl::Status FillHits(const View& view, const VectorFieldSpec& field,
                        const std::vector<index::Neighbor>& hits,
                        const std::vector<int>& out_attrs, bool with_vectors,
                        ResponseBudget* budget,
                        google::protobuf::RepeatedPtrField<v1::Hit>* out) const;
  // Serialized bytes of one hit or point with these attributes (strings at
  // a nominal length) and, with_vectors, every vector field (a vector set
  // counted as one vector: a lower bound).
  size_t HitBytesEstimate(const std::vector<int>& out_attrs, bool with_vectors) const;
  // RESOURCE_EXHAUSTED naming --max-message-bytes if `estimate` is past
  // options_.max_response_bytes; `how` says what it is made of.
  absl::Status CheckResponseEstimate(double estimate, const std::string& how) const;
  // Points visible now.
  uint64_t LiveCount() const;
  // CheckResponseEstimate for `lists` result lists of up to k hits each
  // (at most the points there are), and explain text over
  // `explain_segments` segment plans (0: no explain) that each quote the
  // filter.
  absl::Status CheckSearchEstimate(size_t lists, uint32_t k, const std::vector<int>& out_attrs,
                                   bool with_vectors, size_t explain_segments,
                                   size_t filter_bytes) const;
  // Adds row `off`'s vectors: single-vector fields to *vectors,
  // multi-vector fields to *multi, sparse fields to *sparse.
  void AddVectors(const Segment& seg, uint32_t off,
                  google::protobuf::Map<std::string, v1::Vector>* vectors,
                  google::protobuf::Map<std::string, v1::MultiVector>* multi,
                  google::protobuf::Map<std::string, v1::SparseVector>* sparse) const;
  // Fills a hit from row `id` (HitId) of `view`, counted against *budget.
  absl::Status FillHit(const View& view, uint64_t id, float score,
                       const std::vector<int>& out_attrs, bool with_vectors,
                       ResponseBudget* budget, v1::Hit* hit) const;
  // Loads the index files of a restored segment that match the current
  // specs; false if any field must be rebuilt. Thread-safe.
  bool LoadIndexes(Segment* seg, const storage::SegmentManifest& manifest,
                   const storage::SegmentFiles& files) const;
  // Persist's steps: the segment's index files into directory `tmp`, and
  // the rerank tables of its DISK and multi-vector fields (the paths
  // written to *tables, their fields to *written), each named in *m.
  absl::Status WriteIndexFiles(const Segment& seg, const storage::SegmentFiles& files,
                               const std::string& tmp, storage::SegmentManifest* m) const;
  absl::Status WriteRerankTables(const Segment& seg, const storage::SegmentFiles& files,
                                 uint32_t rows, storage::SegmentManifest* m,
                                 std::vector<std::string>* tables,
                                 std::vector<size_t>* written) const;
  // Recover's steps (query/collection_recovery.cc), in order: restore the
  // persisted segments whose MANIFEST holds up, check their rerank tables
  // against RocksDB, load the points from RocksDB (the index files load
  // meanwhile), let each restored segment read its rows in a loaded index
  // that keeps them (or give it its own), load the vectors (compared with
  // an index's rows, copied into the others), then keep the loaded indexes
  // that pass their self-check and queue the rest.
  struct RecoveryState;
  // Drops a persisted segment's files; its rows are loaded from RocksDB.
  void RebuildSegment(const storage::SegmentFiles& files, uint64_t segment_id,
                      const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // Why a MANIFEST cannot be trusted ("" if it can).
  std::string ManifestProblem(const storage::SegmentManifest& m) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  void RestorePersistedSegments(const storage::SegmentFiles& files, RecoveryState* st)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  void AttachRestoredTables(Segment& seg, const storage::SegmentManifest& m,
                            const storage::SegmentFiles& files) const;
  absl::Status CheckRestoredTables(storage::Store& store, const storage::SegmentFiles& files,
                                   RecoveryState* st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  absl::Status LoadPoints(storage::Store& store, const storage::SegmentFiles& files,
                          RecoveryState* st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // Adds to *mismatched the restored segments whose loaded index held
  // other vectors than RocksDB's (the index is dropped, rebuilt later).
  absl::Status LoadVectors(storage::Store& store, RecoveryState* st,
                           absl::flat_hash_set<const Segment*>* mismatched);
  // Whether field f's index kind may keep a sealed segment's rows itself
  // (VectorIndex::shares_rows): a single-vector, in-memory field.
  bool RowsMayBeShared(size_t f) const;
  void FinishRestoredSegments(const std::vector<bool>& complete, const RecoveryState& st)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // False (and the failing field's index dropped) if a loaded index fails
  // its self-check.
  bool CheckLoadedIndexes(Segment& seg) const;
  // The growing segment, creating one if there is none or it is full
  // (sealing the full one). Commit thread.
  Segment& GrowingForAppend() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // Seals the growing segment (commit thread). Returns it, or null.
  std::shared_ptr<Segment> SealGrowing() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);
  // Makes the writer's segment list and row counts visible. Commit thread.
  void PublishLocked(uint64_t seq) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_, kCommitThread);
  void NotifySealed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(kCommitThread);

  // Hands the in-memory vectors a rerank table or an index's block
  // replaced to the current epoch and starts a new one: they are freed when
  // the last pin taken before now is released. Epoch i holds epoch i+1, so
  // an old pin keeps everything retired after it alive.
  struct Epoch {
    std::shared_ptr<Epoch> next;
    std::vector<std::shared_ptr<const void>> retired;
    // Hands the freed memory back to the system: glibc keeps large freed
    // blocks in its heap, and the point of one copy is a smaller RSS.
    ~Epoch();
  };
  void Retire(std::vector<std::shared_ptr<const void>> memory) const;
  // Opens the table of DISK field f of `seg` and serves the field from it.
  absl::Status AttachTable(Segment& seg, size_t f, const std::string& path,
                           const storage::RerankTableExpect& expect, bool compute_norms) const;

  // Constant after construction.
  const uint32_t id_;
  const std::string name_;
  // Every schema version published, the current one last; never shrinks
  // (see schema()). current_schema_ points at the last.
  mutable Mutex schema_mu_;
  std::vector<std::shared_ptr<const Schema>> schemas_ ABSL_GUARDED_BY(schema_mu_);
  std::atomic<const Schema*> current_schema_{nullptr};
  const int64_t created_at_unix_ms_;
  const CollectionOptions options_;
  const SealedCallback on_sealed_;

  std::atomic<bool> dropped_{false};
  mutable CollectionCounters counters_;

  mutable std::shared_ptr<Epoch> epoch_ ABSL_GUARDED_BY(mu_);
  mutable Mutex persist_mu_;  // serializes Persist
  // Multi-vector fields' MUVERA encoders (null for other fields), and the
  // StoredDim of each field (parsed once, not per point or query). Sized
  // kMaxVectorFields at construction and never resized: the entry of a
  // field added later is written by ApplySchema before the schema naming
  // the field is published, and a reader reaches it only through that
  // schema (so the schema's release/acquire orders the write before the
  // read). Added fields are never multi-vector: their encoder stays null.
  std::vector<std::shared_ptr<const index::MuveraEncoder>> encoders_;
  std::vector<uint32_t> stored_dims_;
  // Text attributes' analyzers and BM25 statistics, by attribute index
  // (null for other attributes). Sized kMaxAttributes and filled like
  // encoders_ (an added attribute's before the schema naming it).
  std::vector<std::shared_ptr<const text::Analyzer>> analyzers_;
  std::vector<std::unique_ptr<Bm25Stats>> text_stats_;
  // Per sparse field with the IDF modifier (sized kMaxSparseFields, null
  // for the others), as text_stats_.
  std::vector<std::unique_ptr<Bm25Stats>> sparse_stats_;

  // What the filter planner learned from past searches (thread-safe).
  mutable PlanFeedback plan_feedback_;

  mutable Mutex spec_mu_;
  std::vector<index::IndexSpec> index_specs_ ABSL_GUARDED_BY(spec_mu_);

  // Commit thread only.
  uint64_t next_iid_ ABSL_GUARDED_BY(kCommitThread);
  uint64_t next_segment_id_ ABSL_GUARDED_BY(kCommitThread) = 1;
  absl::flat_hash_map<std::string, int64_t> pending_ ABSL_GUARDED_BY(kCommitThread);
  // The growing segment last.
  std::vector<std::shared_ptr<Segment>> writer_segments_ ABSL_GUARDED_BY(kCommitThread);
  std::shared_ptr<Segment> growing_ ABSL_GUARDED_BY(kCommitThread);
  // The first row of growing_ staged but not yet applied (StageUpsert);
  // PublishLocked publishes growing_ up to it. kNoneStaged when none is.
  static constexpr uint32_t kNoneStaged = std::numeric_limits<uint32_t>::max();
  uint32_t staged_from_ ABSL_GUARDED_BY(kCommitThread) = kNoneStaged;
  std::vector<std::shared_ptr<Segment>> just_sealed_ ABSL_GUARDED_BY(kCommitThread);
  absl::Time last_write_ ABSL_GUARDED_BY(kCommitThread) = absl::InfinitePast();
  // HoldIdleSeal's latest `until`, in Unix nanoseconds.
  std::atomic<int64_t> idle_seal_held_until_ns_{std::numeric_limits<int64_t>::min()};

  // What readers see; changed only by the commit thread, under mu_.
  mutable Mutex mu_;
  std::vector<std::shared_ptr<Segment>> segments_ ABSL_GUARDED_BY(mu_);
  uint64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t live_ ABSL_GUARDED_BY(mu_) = 0;
  IdMap id_map_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quiver

#endif  // QUIVER_QUERY_COLLECTION_H_
