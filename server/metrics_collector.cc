#include "server/metrics_collector.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "prometheus/client_metric.h"

namespace quiver::server {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily* AddFamily(std::vector<MetricFamily>* out, std::string name, std::string help,
                        MetricType type) {
  out->push_back(MetricFamily{std::move(name), std::move(help), type, {}});
  return &out->back();
}

void AddSample(MetricFamily* f, std::vector<ClientMetric::Label> labels, double v) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f->type == MetricType::Counter) m.counter.value = v;
  else m.gauge.value = v;
  f->metric.push_back(std::move(m));
}

// A family with one unlabelled sample.
void AddSingle(std::vector<MetricFamily>* out, std::string name, std::string help,
               MetricType type, double v) {
  AddSample(AddFamily(out, std::move(name), std::move(help), type), {}, v);
}

constexpr MetricType kGauge = MetricType::Gauge;
constexpr MetricType kCounter = MetricType::Counter;

}  // namespace

std::vector<MetricFamily> EngineCollector::Collect() const {
  std::vector<MetricFamily> out;
  CollectCollections(&out);
  CollectQuery(&out);
  CollectRocksDb(&out);
  CollectProcess(&out);
  return out;
}

void EngineCollector::CollectCollections(std::vector<MetricFamily>* out) const {
  std::vector<std::shared_ptr<Collection>> all = engine_->Collections();
  all.erase(std::remove_if(all.begin(), all.end(), [](const auto& c) { return c->dropped(); }),
            all.end());
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a->name() < b->name(); });
  AddSingle(out, "quiver_collections", "Collections", kGauge, static_cast<double>(all.size()));
  // Families are appended first and filled by index: push_back would move them.
  enum {
    kPoints, kDeleted, kSegments, kStorage, kDebtRows, kDebtBytes, kCompactions, kCompacted,
    kMemory, kDisk, kPending, kBuilds, kBuildSeconds, kRecall, kAudited, kTarget, kAchieved,
    kTargetAudited, kNum
  };
  const size_t base = out->size();
  AddFamily(out, "quiver_collection_points", "Live points", kGauge);
  AddFamily(out, "quiver_collection_deleted_points",
            "Rows deleted or overwritten and not yet reclaimed by compaction", kGauge);
  AddFamily(out, "quiver_collection_segments", "Segments by state", kGauge);
  AddFamily(out, "quiver_collection_storage_bytes",
            "Approximate bytes of the collection in RocksDB", kGauge);
  AddFamily(out, "quiver_collection_compaction_debt_rows",
            "Deleted rows held in segments, awaiting compaction", kGauge);
  AddFamily(out, "quiver_collection_compaction_debt_bytes",
            "Segment memory and disk bytes held by deleted rows, awaiting compaction", kGauge);
  AddFamily(out, "quiver_collection_compactions_total", "Compactions swapped in", kCounter);
  AddFamily(out, "quiver_collection_compacted_deleted_rows_total",
            "Deleted rows reclaimed by compactions", kCounter);
  AddFamily(out, "quiver_field_memory_bytes", "Memory of a vector field: vectors and indexes",
            kGauge);
  AddFamily(out, "quiver_field_disk_bytes",
            "Derived files of a vector field on disk: index files and rerank tables", kGauge);
  AddFamily(out, "quiver_index_build_pending_segments",
            "Sealed segments whose index for the field is not built (yet) for its current spec",
            kGauge);
  AddFamily(out, "quiver_index_builds_total", "Vector index builds that were put to use",
            kCounter);
  AddFamily(out, "quiver_index_build_seconds_total", "Time spent building vector indexes",
            kCounter);
  AddFamily(out, "quiver_recall_audit",
            "Mean recall@k of the last 100 audited ANN searches against an exact re-run",
            kGauge);
  AddFamily(out, "quiver_recall_audit_searches_total",
            "ANN searches whose recall was audited", kCounter);
  AddFamily(out, "quiver_recall_audit_target",
            "Mean target_recall of the last 100 audited searches that asked for one", kGauge);
  AddFamily(out, "quiver_recall_audit_target_achieved",
            "Mean recall@k achieved by the last 100 audited searches that asked for a recall",
            kGauge);
  AddFamily(out, "quiver_recall_audit_target_searches_total",
            "Audited searches that asked for a recall (target_recall)", kCounter);
  auto fam = [&](int i) { return &(*out)[base + static_cast<size_t>(i)]; };

  for (const auto& c : all) {
    v1::CollectionInfo info;
    engine_->DescribeCollection(*c, &info);
    const v1::CollectionStats& st = info.stats();
    const std::string& name = c->name();
    AddSample(fam(kPoints), {{"collection", name}}, static_cast<double>(st.point_count()));
    AddSample(fam(kDeleted), {{"collection", name}}, static_cast<double>(st.deleted_count()));
    AddSample(fam(kStorage), {{"collection", name}}, static_cast<double>(st.storage_bytes()));
    double by_state[5] = {0, 0, 0, 0, 0};
    double debt_rows = 0, debt_bytes = 0;
    for (const v1::SegmentInfo& seg : st.segments()) {
      by_state[std::clamp<int>(seg.state(), 0, 4)] += 1;
      debt_rows += static_cast<double>(seg.deleted());
      if (seg.rows() == 0 || seg.deleted() == 0) continue;
      double bytes = 0;
      for (const auto& f : seg.fields()) bytes += static_cast<double>(f.memory_bytes() + f.disk_bytes());
      debt_bytes += bytes * static_cast<double>(seg.deleted()) / static_cast<double>(seg.rows());
    }
    const char* states[] = {"", "growing", "sealed", "building", "indexed"};
    for (int s = 1; s <= 4; ++s) {
      AddSample(fam(kSegments), {{"collection", name}, {"state", states[s]}}, by_state[s]);
    }
    AddSample(fam(kDebtRows), {{"collection", name}}, debt_rows);
    AddSample(fam(kDebtBytes), {{"collection", name}}, debt_bytes);
    const CollectionCounters& counters = c->counters();
    AddSample(fam(kCompactions), {{"collection", name}},
              static_cast<double>(counters.compactions.load(std::memory_order_relaxed)));
    AddSample(fam(kCompacted), {{"collection", name}},
              static_cast<double>(counters.compacted_deleted_rows.load(std::memory_order_relaxed)));

    // Segments whose field index is missing or stale, as the builder sees it.
    const Schema& schema = c->schema();
    const size_t nf = schema.vectors().size();
    std::vector<double> pending(nf, 0);
    const View view = c->TakeView();
    for (size_t f = 0; f < nf; ++f) {
      const index::IndexSpec spec = c->IndexSpecFor(f);
      if (spec.type == "FLAT" || schema.vectors()[f].dropped) continue;
      for (const View::Part& part : view.parts) {
        if (!part.segment->sealed() || part.segment->LacksField(f)) continue;
        std::shared_ptr<const index::VectorIndex> idx = part.segment->index(f);
        pending[f] += idx == nullptr || !SameIndexSpec(idx->spec(), spec);
      }
    }
    // By name: describe leaves dropped fields out of st.vectors.
    for (const v1::VectorFieldStats& vs : st.vectors()) {
      const int fi = schema.VectorFieldIndex(vs.name());
      const std::vector<ClientMetric::Label> labels{{"collection", name}, {"field", vs.name()}};
      if (fi < 0 && schema.SparseFieldIndex(vs.name()) >= 0) {
        // A sparse field: its memory only (its index is built with the
        // segment's attribute indexes, and its searches are exact).
        AddSample(fam(kMemory), labels, static_cast<double>(vs.memory_bytes()));
        continue;
      }
      if (fi < 0 || static_cast<size_t>(fi) >= nf) continue;
      const size_t f = static_cast<size_t>(fi);
      AddSample(fam(kMemory), labels, static_cast<double>(vs.memory_bytes()));
      AddSample(fam(kDisk), labels, static_cast<double>(vs.disk_bytes()));
      AddSample(fam(kPending), labels, pending[f]);
      const CollectionCounters::Field& fc = counters.field(f);
      AddSample(fam(kBuilds), labels,
                static_cast<double>(fc.index_builds.load(std::memory_order_relaxed)));
      AddSample(fam(kBuildSeconds), labels,
                static_cast<double>(fc.index_build_micros.load(std::memory_order_relaxed)) / 1e6);
      AddSample(fam(kAudited), labels, static_cast<double>(vs.recall_audit_searches()));
      // No figure until a search was audited: 0 would read as "finds nothing".
      if (vs.recall_audit_searches() > 0) AddSample(fam(kRecall), labels, vs.recall_audit());
      AddSample(fam(kTargetAudited), labels,
                static_cast<double>(vs.recall_audit_target_searches()));
      if (vs.recall_audit_target_searches() > 0) {
        AddSample(fam(kTarget), labels, vs.recall_audit_target());
        AddSample(fam(kAchieved), labels, vs.recall_audit_target_achieved());
      }
    }
  }
  static_assert(kNum == 18);
}

void EngineCollector::CollectQuery(std::vector<MetricFamily>* out) const {
  const QueryStats& q = engine_->query_stats();
  MetricFamily* by = AddFamily(out, "quiver_planner_segment_searches_total",
                               "Segment searches by the strategy the planner chose", kCounter);
  for (size_t s = 0; s < kNumStrategies; ++s) {
    std::string name(StrategyName(static_cast<Strategy>(s)));
    std::transform(name.begin(), name.end(), name.begin(), ::tolower);
    AddSample(by, {{"strategy", name}},
              static_cast<double>(q.segment_searches[s].load(std::memory_order_relaxed)));
  }
  AddSingle(out, "quiver_planner_post_filter_fallbacks_total",
            "Queries a post-filtered search handed to its fallback strategy", kCounter,
            static_cast<double>(q.post_filter_fallbacks.load(std::memory_order_relaxed)));
  AddSingle(out, "quiver_rerank_candidates_total",
            "Candidates of compressed indexes reranked with exact distances", kCounter,
            static_cast<double>(q.rerank_candidates.load(std::memory_order_relaxed)));
  AddSingle(out, "quiver_rerank_table_reads_total",
            "Records read from rerank tables (DISK fields) by reranks", kCounter,
            static_cast<double>(q.rerank_table_reads.load(std::memory_order_relaxed)));
  AddSingle(out, "quiver_index_builder_queue",
            "Index builds, compactions and persist retries waiting for a builder thread",
            kGauge, static_cast<double>(engine_->builder_queue()));
  const RecallAuditor* audit = engine_->recall_auditor();
  AddSingle(out, "quiver_recall_audit_rate", "Share of ANN searches audited (--recall-audit-rate)",
            kGauge, audit ? audit->rate() : 0);
  AddSingle(out, "quiver_recall_audit_dropped_total",
            "Sampled searches not audited because the audit queue was full", kCounter,
            audit ? static_cast<double>(audit->dropped()) : 0);
  AddSingle(out, "quiver_recall_audit_cpu_share",
            "Average share of one core the audits may use (--recall-audit-cpu)", kGauge,
            audit ? audit->cpu_share() : 0);
  AddSingle(out, "quiver_recall_audit_skipped_total",
            "Sampled searches not audited because audits were pausing for their CPU budget",
            kCounter, audit ? static_cast<double>(audit->skipped()) : 0);
  AddSingle(out, "quiver_recall_audit_failed_total", "Audits whose exact re-run failed",
            kCounter, audit ? static_cast<double>(audit->failed()) : 0);
}

void EngineCollector::CollectRocksDb(std::vector<MetricFamily>* out) const {
  const storage::StoreStats s = engine_->store().Stats();
  AddSingle(out, "quiver_rocksdb_wal_bytes_total", "Bytes written to RocksDB's write-ahead log",
            kCounter, static_cast<double>(s.wal_bytes));
  AddSingle(out, "quiver_rocksdb_wal_syncs_total", "fsyncs of RocksDB's write-ahead log",
            kCounter, static_cast<double>(s.wal_syncs));
  AddSingle(out, "quiver_rocksdb_write_stall_seconds_total",
            "Time RocksDB delayed or stopped writes", kCounter,
            static_cast<double>(s.stall_micros) / 1e6);
  AddSingle(out, "quiver_rocksdb_write_stopped", "1 while RocksDB stops writes", kGauge,
            s.write_stopped ? 1 : 0);
  AddSingle(out, "quiver_rocksdb_pending_compaction_bytes",
            "Bytes RocksDB estimates its compactions must rewrite", kGauge,
            static_cast<double>(s.pending_compaction_bytes));
  AddSingle(out, "quiver_rocksdb_block_cache_usage_bytes", "RocksDB block cache in use", kGauge,
            static_cast<double>(s.block_cache_usage_bytes));
  AddSingle(out, "quiver_rocksdb_block_cache_capacity_bytes", "RocksDB block cache size",
            kGauge, static_cast<double>(s.block_cache_capacity_bytes));
  AddSingle(out, "quiver_rocksdb_memtable_bytes", "RocksDB memtables, all column families",
            kGauge, static_cast<double>(s.memtable_bytes));
  AddSingle(out, "quiver_rocksdb_live_sst_bytes", "RocksDB's live SST files", kGauge,
            static_cast<double>(s.live_sst_bytes));
}

void CollectProcess(std::vector<MetricFamily>* out) {
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  // /proc/self/stat: fields after the command name (which may hold spaces).
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close != std::string::npos) {
    std::vector<std::string> f = absl::StrSplit(stat.substr(close + 2), ' ');
    // f[0] is field 3 (state): field n is f[n - 3].
    auto field = [&](size_t n, double* v) { return f.size() > n - 3 && absl::SimpleAtod(f[n - 3], v); };
    double utime = 0, stime = 0, threads = 0, start = 0, vsize = 0, rss = 0;
    if (field(14, &utime) && field(15, &stime)) {
      AddSingle(out, "process_cpu_seconds_total", "User and system CPU time", kCounter,
                (utime + stime) / ticks);
    }
    if (field(20, &threads)) {
      AddSingle(out, "process_threads", "Threads of the process", kGauge, threads);
    }
    if (field(23, &vsize)) {
      AddSingle(out, "process_virtual_memory_bytes", "Virtual memory size", kGauge, vsize);
    }
    if (field(24, &rss)) {
      AddSingle(out, "process_resident_memory_bytes", "Resident memory size", kGauge, rss * page);
    }
    // Start time: clock ticks after boot, plus the boot time from /proc/stat.
    std::ifstream boot_file("/proc/stat");
    std::string line;
    double btime = 0;
    while (std::getline(boot_file, line)) {
      if (line.rfind("btime ", 0) == 0 && absl::SimpleAtod(line.substr(6), &btime)) break;
    }
    if (btime > 0 && field(22, &start)) {
      AddSingle(out, "process_start_time_seconds", "Start time since the Unix epoch", kGauge,
                btime + start / ticks);
    }
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    double fds = 0;
    while (const dirent* e = readdir(d)) fds += e->d_name[0] != '.';
    closedir(d);
    AddSingle(out, "process_open_fds", "Open file descriptors", kGauge, fds - 1);  // less opendir's
  }
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    AddSingle(out, "process_max_fds", "Limit of open file descriptors", kGauge,
              lim.rlim_cur == RLIM_INFINITY ? -1 : static_cast<double>(lim.rlim_cur));
  }
}

}  // namespace quiver::server
