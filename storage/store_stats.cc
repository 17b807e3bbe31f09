// Store::Stats: RocksDB's tickers and properties as plain numbers, so the
// layers above export them without including RocksDB.
#include "rocksdb/db.h"
#include "rocksdb/statistics.h"
#include "storage/store.h"

namespace quiver::storage {

StoreStats Store::Stats() const {
  StoreStats st;
  if (statistics_ != nullptr) {
    st.wal_bytes = statistics_->getTickerCount(rocksdb::WAL_FILE_BYTES);
    st.wal_syncs = statistics_->getTickerCount(rocksdb::WAL_FILE_SYNCED);
    st.stall_micros = statistics_->getTickerCount(rocksdb::STALL_MICROS);
  }
  if (db_ == nullptr) return st;
  uint64_t v = 0;
  if (db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kEstimatePendingCompactionBytes,
                                    &v)) {
    st.pending_compaction_bytes = v;
  }
  if (db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables, &v)) {
    st.memtable_bytes = v;
  }
  if (db_->GetAggregatedIntProperty(rocksdb::DB::Properties::kLiveSstFilesSize, &v)) {
    st.live_sst_bytes = v;
  }
  // One block cache is shared by every column family: asked once.
  if (db_->GetIntProperty(rocksdb::DB::Properties::kBlockCacheUsage, &v)) {
    st.block_cache_usage_bytes = v;
  }
  if (db_->GetIntProperty(rocksdb::DB::Properties::kBlockCacheCapacity, &v)) {
    st.block_cache_capacity_bytes = v;
  }
  if (db_->GetIntProperty(rocksdb::DB::Properties::kIsWriteStopped, &v)) {
    st.write_stopped = v != 0;
  }
  return st;
}

}  // namespace quiver::storage
