#include "query/index_builder.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/time/clock.h"
#include "query/attr_index.h"
#include "query/execute/sparse_search.h"
#include "query/index_check.h"
#include "query/recall_calibration.h"
#include "query/window_index.h"
#include "spdlog/spdlog.h"

namespace quiver {

IndexBuilder::IndexBuilder(IndexBuilderOptions options, BuiltCallback on_built,
                           CompactedCallback on_compacted)
    : options_(options), on_built_(std::move(on_built)), on_compacted_(std::move(on_compacted)) {
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] { Work(); });
  }
}

IndexBuilder::~IndexBuilder() {
  Stop();
  for (auto& t : workers_) t.join();
}

void IndexBuilder::Stop() {
  stop_builds_.store(true, std::memory_order_relaxed);
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    for (const Job& job : queue_) {
      if (job.unindexed > 0) unindexed_rows_.fetch_sub(job.unindexed, std::memory_order_relaxed);
    }
    queue_.clear();
  }
  cv_.NotifyAll();
}


namespace {

// The segment's rows if some field that should have an index has none.
uint64_t UnindexedRows(const std::weak_ptr<Collection>& collection, const Segment& seg) {
  std::shared_ptr<Collection> c = collection.lock();
  if (c == nullptr) return 0;
  for (size_t f = 0; f < c->schema().vectors().size(); ++f) {
    if (c->schema().vectors()[f].dropped || seg.LacksField(f)) continue;
    if (seg.index(f) == nullptr && c->IndexSpecFor(f).type != "FLAT") return seg.published();
  }
  return 0;
}

}  // namespace

void IndexBuilder::Enqueue(std::weak_ptr<Collection> collection,
                           std::shared_ptr<Segment> segment) {
  const uint64_t unindexed = UnindexedRows(collection, *segment);
  MutexLock lock(&mu_);
  if (stopping_) return;
  Job job{std::move(collection), std::move(segment), CompactionPlan()};
  job.unindexed = unindexed;
  unindexed_rows_.fetch_add(unindexed, std::memory_order_relaxed);
  queue_.push_back(std::move(job));
  cv_.NotifyAll();
}

void IndexBuilder::EnqueueCompaction(std::weak_ptr<Collection> collection,
                                     CompactionPlan plan) {
  // Not counted in unindexed_rows_: the inputs serve, through their
  // indexes, until the output is built and swapped in.
  MutexLock lock(&mu_);
  if (stopping_) return;
  queue_.push_back({std::move(collection), nullptr, std::move(plan)});
  cv_.NotifyAll();
}

double IndexBuilder::rows_per_second() const {
  MutexLock lock(&rate_mu_);
  return rows_per_second_;
}

void IndexBuilder::EnqueuePersist(std::weak_ptr<Collection> collection,
                                  std::shared_ptr<Segment> segment) {
  MutexLock lock(&mu_);
  if (stopping_) return;
  Job job{std::move(collection), std::move(segment), CompactionPlan()};
  job.persist_only = true;
  queue_.push_back(std::move(job));
  cv_.NotifyAll();
}

void IndexBuilder::WaitIdle() {
  MutexLock lock(&mu_);
  cv_.Wait(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return queue_.empty() && running_ == 0;
  });
}

void IndexBuilder::Work() {
  if (options_.nice > 0) {
    // Per thread on Linux: this worker, and the threads its builds start.
    if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), options_.nice) != 0) {
      spdlog::warn("index builder: cannot lower its CPU priority (nice {}): {}", options_.nice,
                   std::strerror(errno));
    }
  }
  for (;;) {
    Job job;
    {
      MutexLock lock(&mu_);
      cv_.Wait(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty();
      });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    const absl::Time job_start = absl::Now();
    bool worked = false;
    if (std::shared_ptr<Collection> coll = job.collection.lock();
        coll != nullptr && !coll->dropped()) {
      worked = true;
      if (job.persist_only) {
        // Persist reads vectors (rerank tables), as in Build.
        const std::shared_ptr<const void> pin = coll->Pin();
        if (on_built_) on_built_(*coll, job.segment);
      } else if (job.plan.inputs.empty()) {
        // A stopped build says nothing about the builder's rate.
        worked = Build(*coll, job.segment);
      } else {
        const absl::Time start = absl::Now();
        std::shared_ptr<Segment> out = coll->BuildCompacted(job.plan);
        if (Build(*coll, out)) {
          // Rows no index took over (a failed build or self-check) are
          // copied before anyone searches the output.
          out->OwnRows();
          spdlog::info(
              "collection \"{}\": compacted {} segment(s) into segment {} ({} rows) in {:.2f}s",
              coll->name(), job.plan.inputs.size(), out->id(), out->appended(),
              absl::ToDoubleSeconds(absl::Now() - start));
          if (on_compacted_) on_compacted_(coll, std::move(job.plan), std::move(out));
        } else {
          // Nothing of the output was persisted or swapped in: the inputs
          // stay, and the compaction is planned again after the restart.
          spdlog::info("collection \"{}\": compaction of {} segment(s) stopped (shutting down); "
                       "it is redone after a restart",
                       coll->name(), job.plan.inputs.size());
        }
      }
    }
    if (job.unindexed > 0) {
      unindexed_rows_.fetch_sub(job.unindexed, std::memory_order_relaxed);
    }
    if (job.unindexed > 0 && worked) {
      const double seconds = std::max(1e-3, absl::ToDoubleSeconds(absl::Now() - job_start));
      const double rate = static_cast<double>(job.unindexed) / seconds;
      MutexLock lock(&rate_mu_);
      rows_per_second_ = rows_per_second_ == 0 ? rate : 0.7 * rows_per_second_ + 0.3 * rate;
    }
    MutexLock lock(&mu_);
    --running_;
    cv_.NotifyAll();
  }
}

namespace {

// Measures field f's index `idx` for target-recall searches
// (query/recall_calibration.h) and attaches the result to the segment.
// False if nothing was attached: calibration off, a kind or segment it does
// not apply to (logged at debug level), or a stop.
bool CalibrateField(const IndexBuilderOptions& options, const std::atomic<bool>* stop,
                    Collection& coll, Segment* seg, size_t f,
                    const std::shared_ptr<const index::VectorIndex>& idx) {
  if (options.calibration.samples == 0 || !Calibratable(coll.schema().vectors()[f], *idx)) {
    return false;
  }
  CalibrationOptions copts = options.calibration;
  copts.seed = seg->id() * 7919 + f;
  const absl::Time start = absl::Now();
  absl::StatusOr<RecallCalibration> cal =
      Calibrate(*seg, f, *idx, copts, stop, /*held_out=*/false, coll.encoder(f));
  if (!cal.ok()) {
    if (!absl::IsCancelled(cal.status())) {
      spdlog::debug("collection \"{}\" segment {} field \"{}\": not calibrated: {}", coll.name(),
                    seg->id(), coll.schema().vectors()[f].name, cal.status().ToString());
    }
    return false;
  }
  spdlog::info("collection \"{}\" segment {} field \"{}\": recall {} in {:.2f}s", coll.name(),
               seg->id(), coll.schema().vectors()[f].name, cal->Describe(),
               absl::ToDoubleSeconds(absl::Now() - start));
  seg->SetCalibration(f, idx.get(), std::make_shared<const RecallCalibration>(std::move(*cal)));
  return true;
}

// Builds field f's index of `seg` if its spec asks for one the segment does
// not have, checks it and installs it. False when nothing was installed:
// no index wanted, or the build or its self-check failed (logged; the
// segment stays searchable exactly, and a later rebuild may succeed).
bool BuildVectorIndex(const IndexBuilderOptions& options, const std::atomic<bool>* stop,
                      Collection& coll, Segment* seg, size_t f) {
  const VectorFieldSpec& field = coll.schema().vectors()[f];
  // No index for a dropped field, nor for one no row here holds (searches
  // skip the segment).
  if (field.dropped || seg->LacksField(f)) return false;
  const index::IndexSpec spec = coll.IndexSpecFor(f);
  std::shared_ptr<const index::VectorIndex> current = seg->index(f);
  if (spec.type == "FLAT") return false;
  if (current != nullptr && SameIndexSpec(current->spec(), spec)) {
    // Loaded from a file written before calibration existed: measured now,
    // and the segment persisted again with it.
    return seg->calibration(f) == nullptr && CalibrateField(options, stop, coll, seg, f, current);
  }
  const absl::Time start = absl::Now();
  auto idx = index::CreateIndex(spec);
  if (!idx.ok()) {
    spdlog::error("collection \"{}\" segment {} field \"{}\": {}", coll.name(), seg->id(),
                  field.name, idx.status().ToString());
    return false;
  }
  const uint32_t rows = seg->published();
  // TOKENS multi-vector fields: an index over every vector of every row
  // (a placeholder row has none).
  const bool tokens = field.multi && field.token_candidates;
  // Rows are read in place (the builder is the only one to swap this
  // segment's rows, after the build); tokens are gathered, a row holding
  // several.
  const std::vector<float> data = tokens ? seg->GatherTokens(f, rows) : std::vector<float>();
  const size_t n = tokens ? data.size() / field.dim : rows;
  index::VectorIndex::RowReader read;
  if (tokens) {
    read = [&data, dim = size_t{field.dim}](size_t i) { return data.data() + i * dim; };
  } else {
    read = [seg, f](size_t i) { return seg->vector(f, static_cast<uint32_t>(i)); };
  }
  const RowsWithData with_data(*seg, rows, static_cast<int>(f));
  const index::LabelFilter* build_rows = tokens || with_data.all() ? nullptr : &with_data;
  (*idx)->set_build_stop(stop);
  // Graph kinds are calibrated while they are built: the sampled rows go in
  // last, and are searched for just before, as queries the graph has not
  // seen (query/recall_calibration.h).
  std::shared_ptr<const RecallCalibration> calibration;
  double calibration_seconds = 0;
  absl::Status s;
  if (options.calibration.samples > 0 && (*idx)->holds_out() && Calibratable(field, **idx)) {
    CalibrationOptions copts = options.calibration;
    copts.seed = seg->id() * 7919 + f;
    const std::vector<uint32_t> samples = CalibrationSamples(*seg, f, rows, copts);
    s = (*idx)->BuildFromRows(read, n, options.threads_per_build, build_rows, samples,
                              [&] {
                                const absl::Time cal_start = absl::Now();
                                absl::StatusOr<RecallCalibration> cal = Calibrate(
                                    *seg, f, **idx, copts, stop, /*held_out=*/true,
                                    coll.encoder(f));
                                calibration_seconds =
                                    absl::ToDoubleSeconds(absl::Now() - cal_start);
                                if (cal.ok()) {
                                  calibration = std::make_shared<const RecallCalibration>(
                                      std::move(*cal));
                                }
                              });
  } else {
    s = (*idx)->BuildFromRows(read, n, options.threads_per_build, build_rows, {}, nullptr);
  }
  if (absl::IsCancelled(s) && stop->load(std::memory_order_relaxed)) {
    spdlog::info("collection \"{}\" segment {} field \"{}\": index build stopped after {:.2f}s "
                 "(shutting down); it is built again after a restart",
                 coll.name(), seg->id(), field.name, absl::ToDoubleSeconds(absl::Now() - start));
    return false;
  }
  if (!s.ok()) {
    spdlog::error("collection \"{}\" segment {} field \"{}\": index build failed: {}",
                  coll.name(), seg->id(), field.name, s.ToString());
    return false;
  }
  const double build_seconds = absl::ToDoubleSeconds(absl::Now() - start) - calibration_seconds;
  const absl::Time check_start = absl::Now();
  const IndexCheckResult check =
      CheckIndex(*seg, f, **idx, options.check_samples, /*seed=*/seg->id() * 131 + f);
  const double check_seconds = absl::ToDoubleSeconds(absl::Now() - check_start);
  if (!check.ok) {
    // Serving it would answer wrong without a trace; exact search is slow
    // but right. UpdateCollection or a restart builds it again.
    spdlog::error("collection \"{}\" segment {} field \"{}\": built {} over {} rows fails its "
                  "self-check, not used (the segment is searched exactly): {}",
                  coll.name(), seg->id(), field.name, (*idx)->Describe(), n, check.ToString());
    return false;
  }
  if (!check.passed_at_defaults) {
    // Served, and right, but a search at the default ef or nprobe misses
    // the nearest neighbour of most queries: say so where the operator looks.
    spdlog::warn("collection \"{}\" segment {} field \"{}\": the index finds most rows' nearest "
                 "neighbour only with more than its default effort ({}); searches should raise "
                 "ef / nprobe or ask for a recall (target_recall)",
                 coll.name(), seg->id(), field.name, check.ToString());
  }
  spdlog::info("collection \"{}\" segment {} field \"{}\": built {} over {} {} in {:.2f}s; "
               "self-check in {:.2f}s: {}",
               coll.name(), seg->id(), field.name, (*idx)->Describe(),
               build_rows != nullptr ? with_data.count() : n,
               tokens ? "vectors of its rows" : "rows", build_seconds, check_seconds,
               check.ToString());
  std::shared_ptr<const index::VectorIndex> built(std::move(*idx));
  if (calibration != nullptr) {
    spdlog::info("collection \"{}\" segment {} field \"{}\": recall {} (held out of the build) "
                 "in {:.2f}s", coll.name(), seg->id(), field.name, calibration->Describe(),
                 calibration_seconds);
    seg->SetIndex(f, built, std::move(calibration));
  } else {
    // Served at once; target-recall searches scan the segment exactly until
    // the calibration below is attached.
    seg->SetIndex(f, built);
    CalibrateField(options, stop, coll, seg, f, built);
  }
  if (coll.schema().vectors()[f].dropped) {
    // Dropped while it was built. Either this sees the drop, or the drop
    // (which publishes the schema, then drops the segments' indexes under
    // the same lock SetIndex takes) comes after SetIndex and removes it.
    seg->DropIndexes(f);
    return false;
  }
  // The index holds the rows now (HNSW, IVF_FLAT): the segment reads them
  // there and frees its own copy.
  coll.AdoptIndexRows(*seg, f);
  CollectionCounters::Field& counted = coll.counters().field(f);
  counted.index_builds.fetch_add(1, std::memory_order_relaxed);
  counted.index_build_micros.fetch_add(static_cast<uint64_t>(build_seconds * 1e6),
                                       std::memory_order_relaxed);
  return true;
}

// Window indexes: per window attribute and indexed vector field, over the
// attribute index's sorted column. Failures are logged and skipped.
void BuildWindowIndexes(const IndexBuilderOptions& options, const std::atomic<bool>* stop,
                        Collection& coll, Segment* seg) {
  const Schema& schema = coll.schema();
  std::shared_ptr<const SegmentAttrIndex> attrs = seg->attr_index();
  for (size_t a = 0; a < schema.attributes().size() && attrs != nullptr; ++a) {
    if (!schema.attributes()[a].window || !attrs->indexed(static_cast<int>(a))) continue;
    for (size_t f = 0; f < schema.vectors().size(); ++f) {
      if (schema.vectors()[f].token_candidates) continue;  // its index is not per row
      if (schema.vectors()[f].dropped || seg->LacksField(f)) continue;
      const index::IndexSpec spec = coll.IndexSpecFor(f);
      std::shared_ptr<const WindowIndex> current = seg->window_index(static_cast<int>(a), f);
      if (spec.type == "FLAT" || (current != nullptr && SameIndexSpec(current->spec(), spec))) {
        continue;
      }
      const absl::Time start = absl::Now();
      if (stop->load(std::memory_order_relaxed)) return;
      auto w = WindowIndex::Build(*seg, attrs, static_cast<int>(a), f, spec,
                                  options.threads_per_build, stop);
      if (!w.ok() && stop->load(std::memory_order_relaxed)) return;
      if (!w.ok()) {
        spdlog::error("collection \"{}\" segment {} window on \"{}\": {}", coll.name(), seg->id(),
                      schema.attributes()[a].name, w.status().ToString());
        continue;
      }
      if (*w == nullptr) continue;  // no row has a value for the attribute
      spdlog::info("collection \"{}\" segment {} field \"{}\": built {} on \"{}\" in {:.2f}s",
                   coll.name(), seg->id(), schema.vectors()[f].name, (*w)->Describe(),
                   schema.attributes()[a].name, absl::ToDoubleSeconds(absl::Now() - start));
      seg->SetWindowIndex(std::move(*w));
      if (coll.schema().vectors()[f].dropped) seg->DropIndexes(f);  // as in BuildVectorIndex
    }
  }
}

// A DISK field without its rerank table (new, or found missing or corrupt
// at start-up) needs a persist even when every index loaded.
// (Multi-vector fields always keep their sets in a table, FLAT or not.)
bool NeedsRerankTable(const Collection& coll, const Segment& seg) {
  const Schema& schema = coll.schema();
  for (size_t f = 0; f < schema.vectors().size(); ++f) {
    const VectorFieldSpec& field = schema.vectors()[f];
    if (field.dropped) continue;
    const bool has_index = seg.index(f) != nullptr || coll.IndexSpecFor(f).type == "FLAT";
    if ((field.disk || field.multi) && seg.table(f) == nullptr && has_index) return true;
  }
  return false;
}

// A segment restored from files written before a vector field was added
// (no index file for it, nor the mark that none is needed) and no row of
// which holds it: its MANIFEST is written again to say so, or every restart
// would look for the index again.
bool NeedsManifest(const Collection& coll, const Segment& seg) {
  if (seg.persisted()) return false;
  const Schema& schema = coll.schema();
  for (size_t f = 0; f < schema.vectors().size(); ++f) {
    if (!schema.vectors()[f].dropped && seg.LacksField(f) && coll.IndexSpecFor(f).type != "FLAT") {
      return true;
    }
  }
  return false;
}

}  // namespace

bool IndexBuilder::Build(Collection& coll, const std::shared_ptr<Segment>& seg) {
  bool built_any = false;
  auto stopped = [&] {
    if (!stop_builds_.load(std::memory_order_relaxed)) return false;
    seg->SetBuilding(false);
    return true;
  };
  // Vectors are read below (builds, and Persist writing rerank tables).
  const std::shared_ptr<const void> pin = coll.Pin();
  seg->SetBuilding(true);
  // Attribute indexes first: they take milliseconds, vector indexes seconds,
  // and filtered searches use them at once.
  // The collection's current schema: UpdateCollection may have turned an
  // attribute's index on or off since the segment was made.
  const std::shared_ptr<const Schema> schema = coll.shared_schema();
  if (!SegmentAttrIndex::Matches(seg->attr_index().get(), schema->attributes())) {
    seg->SetAttrIndex(SegmentAttrIndex::Build(*seg, seg->published(), schema->attributes()));
  }
  // Sparse fields' inverted indexes, as fast to build (one pass over the
  // rows' postings); never persisted, so built again after a restart.
  for (size_t s = 0; s < schema->sparse().size(); ++s) {
    if (!seg->LacksSparse(s) && seg->sparse_index(s) == nullptr) {
      seg->SetSparseIndex(s, BuildSparseIndex(*seg, s, seg->published()));
    }
  }
  for (size_t a = 0; a < schema->attributes().size(); ++a) {
    if (schema->attributes()[a].text && seg->text_index(a) == nullptr) {
      seg->SetTextIndex(a, BuildTextIndex(*seg, a, seg->published()));
    }
  }
  for (size_t f = 0; f < coll.schema().vectors().size(); ++f) {
    if (stopped()) return false;
    if (BuildVectorIndex(options_, &stop_builds_, coll, seg.get(), f)) built_any = true;
  }
  if (stopped()) return false;
  BuildWindowIndexes(options_, &stop_builds_, coll, seg.get());
  // Persisting new index files can take seconds: after a stop the segment
  // is indexed again after the restart instead.
  if (stopped()) return false;
  seg->SetBuilding(false);
  if ((built_any || NeedsRerankTable(coll, *seg) || NeedsManifest(coll, *seg)) && on_built_) {
    on_built_(coll, seg);
  }
  return true;
}

}  // namespace quiver
