// EngineCollector: the Prometheus families quiverd computes at scrape time
// from what the engine already keeps, rather than updating gauges on every
// write: each scrape describes every collection (as GetCollection does) and
// reads the query layer's counters, RocksDB's statistics and /proc. A
// dropped collection is gone from the next scrape.
//
// Families (labels in braces):
//   quiver_collections
//   quiver_collection_points{collection}, quiver_collection_deleted_points{collection}
//   quiver_collection_segments{collection,state}  state: growing, sealed, building, indexed
//   quiver_collection_storage_bytes{collection}    RocksDB's share (approximate)
//   quiver_collection_compaction_debt_rows{collection}, ..._debt_bytes{collection}
//   quiver_collection_compactions_total{collection}
//   quiver_collection_compacted_deleted_rows_total{collection}
//   quiver_field_memory_bytes{collection,field}, quiver_field_disk_bytes{collection,field}
//   quiver_index_build_pending_segments{collection,field}
//   quiver_index_builds_total{collection,field}, quiver_index_build_seconds_total{collection,field}
//   quiver_recall_audit{collection,field}, quiver_recall_audit_searches_total{collection,field}
//   quiver_recall_audit_dropped_total, quiver_recall_audit_failed_total, quiver_recall_audit_rate
//   quiver_index_builder_queue
//   quiver_planner_segment_searches_total{strategy}, quiver_planner_post_filter_fallbacks_total
//   quiver_rerank_candidates_total, quiver_rerank_table_reads_total
//   quiver_rocksdb_wal_bytes_total, quiver_rocksdb_wal_syncs_total,
//   quiver_rocksdb_write_stall_seconds_total, quiver_rocksdb_write_stopped,
//   quiver_rocksdb_pending_compaction_bytes, quiver_rocksdb_block_cache_usage_bytes,
//   quiver_rocksdb_block_cache_capacity_bytes, quiver_rocksdb_memtable_bytes,
//   quiver_rocksdb_live_sst_bytes
//   process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
//   process_max_fds, process_threads, process_cpu_seconds_total, process_start_time_seconds
//
// Ownership: borrows the Engine, which must outlive every Collect (quiverd
// stops the metrics endpoint before it closes the engine). Thread-safety:
// Collect may run on any thread, concurrently with everything (it reads
// through the engine's thread-safe accessors). Errors: none; a /proc file
// that cannot be read leaves its family out.
#ifndef QUIVER_SERVER_METRICS_COLLECTOR_H_
#define QUIVER_SERVER_METRICS_COLLECTOR_H_

#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"
#include "query/engine.h"

namespace quiver::server {

class EngineCollector final : public prometheus::Collectable {
 public:
  explicit EngineCollector(Engine* engine) : engine_(engine) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  void CollectCollections(std::vector<prometheus::MetricFamily>* out) const;
  void CollectQuery(std::vector<prometheus::MetricFamily>* out) const;
  void CollectRocksDb(std::vector<prometheus::MetricFamily>* out) const;

  Engine* engine_;
};

// The process_* families above, from /proc/self.
void CollectProcess(std::vector<prometheus::MetricFamily>* out);

}  // namespace quiver::server

#endif  // QUIVER_SERVER_METRICS_COLLECTOR_H_
