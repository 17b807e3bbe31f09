#include "storage/store.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/table.h"
#include "rocksdb/cache.h"
#include "rocksdb/write_batch.h"

namespace quiver::storage {
namespace {

void AppendBE(std::string* out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t ReadBE(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string CidKey(uint32_t cid) {
  std::string k;
  AppendBE(&k, cid, 4);
  return k;
}

std::string PointKey(uint32_t cid, uint64_t iid) {
  std::string k = CidKey(cid);
  AppendBE(&k, iid, 8);
  return k;
}

std::string VectorKey(uint32_t cid, uint16_t field, uint64_t iid) {
  std::string k = CidKey(cid);
  AppendBE(&k, field, 2);
  AppendBE(&k, iid, 8);
  return k;
}

std::string SeqKey(uint64_t seq) {
  std::string k;
  AppendBE(&k, seq, 8);
  return k;
}

std::string NextIidKey(uint32_t cid) { return "n/" + CidKey(cid); }

constexpr char kNextCidKey[] = "meta/next_cid";
constexpr char kLastSeqKey[] = "meta/last_seq";

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat(what, ": ", s.ToString()));
  return absl::InternalError(absl::StrCat("storage: ", what, ": ", s.ToString()));
}

}  // namespace

Batch::Batch(Store* store) : store_(store), wb_(std::make_unique<rocksdb::WriteBatch>()) {}
Batch::~Batch() = default;

void Batch::PutCollection(const CollectionRecord& rec) {
  rec.SerializeToString(&scratch_);
  wb_->Put(store_->catalog_, "c/" + rec.name(), scratch_);
}

void Batch::DropCollection(uint32_t cid, absl::string_view name) {
  wb_->Delete(store_->catalog_, absl::StrCat("c/", name));
  wb_->Delete(store_->catalog_, NextIidKey(cid));
  const std::string begin = CidKey(cid), end = CidKey(cid + 1);
  for (auto* cf : {store_->vectors_, store_->attributes_, store_->idmap_}) {
    wb_->DeleteRange(cf, begin, end);
  }
}

void Batch::PutNextCollectionId(uint32_t next) {
  std::string v;
  AppendBE(&v, next, 4);
  wb_->Put(store_->catalog_, kNextCidKey, v);
  next_cid_ = next;
}

void Batch::PutNextInternalId(uint32_t cid, uint64_t next) {
  std::string v;
  AppendBE(&v, next, 8);
  wb_->Put(store_->catalog_, NextIidKey(cid), v);
}

void Batch::PutPoint(uint32_t cid, uint64_t iid, const PointRecord& rec,
                     absl::Span<const float* const> vectors,
                     absl::Span<const uint32_t> dims) {
  rec.SerializeToString(&scratch_);
  wb_->Put(store_->attributes_, PointKey(cid, iid), scratch_);
  for (size_t f = 0; f < vectors.size(); ++f) {
    // Stored as raw little-endian float32 (the only byte order we build for).
    wb_->Put(store_->vectors_, VectorKey(cid, static_cast<uint16_t>(f), iid),
             rocksdb::Slice(reinterpret_cast<const char*>(vectors[f]),
                            dims[f] * sizeof(float)));
  }
  std::string v;
  AppendBE(&v, iid, 8);
  wb_->Put(store_->idmap_, CidKey(cid) + rec.id(), v);
}

void Batch::DeletePointData(uint32_t cid, uint64_t iid, size_t num_vector_fields) {
  wb_->Delete(store_->attributes_, PointKey(cid, iid));
  for (size_t f = 0; f < num_vector_fields; ++f) {
    wb_->Delete(store_->vectors_, VectorKey(cid, static_cast<uint16_t>(f), iid));
  }
}

void Batch::DeleteIdMapping(uint32_t cid, absl::string_view external_id) {
  wb_->Delete(store_->idmap_, absl::StrCat(CidKey(cid), external_id));
}

void Batch::LogOp(uint64_t seq, const OpRecord& op) {
  op.SerializeToString(&scratch_);
  wb_->Put(store_->oplog_, SeqKey(seq), scratch_);
  wb_->Put(store_->catalog_, kLastSeqKey, SeqKey(seq));
  last_seq_ = seq;
  const uint64_t keep = store_->options_.oplog_retention;
  // Trimming in steps keeps the number of range tombstones small.
  if (seq > keep && seq % 1024 == 0) {
    wb_->DeleteRange(store_->oplog_, SeqKey(0), SeqKey(seq - keep));
  }
}

void Batch::SetSavePoint() {
  wb_->SetSavePoint();
  saved_.push_back({last_seq_, next_cid_});
}

void Batch::RollbackToSavePoint() {
  (void)wb_->RollbackToSavePoint();
  if (!saved_.empty()) {
    last_seq_ = saved_.back().first;
    next_cid_ = saved_.back().second;
    saved_.pop_back();
  }
}
void Batch::PopSavePoint() {
  (void)wb_->PopSavePoint();
  if (!saved_.empty()) saved_.pop_back();
}

size_t Batch::ByteSize() const { return wb_->GetDataSize(); }

Store::~Store() {
  if (db_) {
    // With async durability the WAL tail may still be in the OS only; a
    // clean shutdown makes it durable.
    (void)db_->SyncWAL();
    for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
    (void)db_->Close();
  }
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  std::unique_ptr<Store> store(new Store());
  store->options_ = options;

  rocksdb::Options db_opts;
  db_opts.create_if_missing = true;
  db_opts.create_missing_column_families = true;
  db_opts.IncreaseParallelism(2);
  // Fewer, larger memtables: ingest is bulk float data.
  db_opts.write_buffer_size = 64 << 20;
  db_opts.max_write_buffer_number = 3;
  db_opts.enable_pipelined_write = false;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  rocksdb::ColumnFamilyOptions cf_opts(db_opts);
  cf_opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::ColumnFamilyOptions vec_opts = cf_opts;
  // Float data barely compresses; don't spend CPU on it.
  vec_opts.compression = rocksdb::kNoCompression;

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, cf_opts},
      {"catalog", cf_opts},
      {"vectors", vec_opts},
      {"attributes", cf_opts},
      {"idmap", cf_opts},
      {"oplog", cf_opts},
  };
  rocksdb::DB* raw = nullptr;
  rocksdb::DBOptions dbo(db_opts);
  rocksdb::Status s = rocksdb::DB::Open(dbo, options.path, cfs, &store->handles_, &raw);
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot open data directory ", options.path, ": ", s.ToString()));
  }
  store->db_.reset(raw);
  store->catalog_ = store->handles_[1];
  store->vectors_ = store->handles_[2];
  store->attributes_ = store->handles_[3];
  store->idmap_ = store->handles_[4];
  store->oplog_ = store->handles_[5];

  std::string v;
  s = raw->Get(rocksdb::ReadOptions(), store->catalog_, kLastSeqKey, &v);
  if (s.ok() && v.size() == 8) store->last_seq_ = ReadBE(v.data(), 8);
  else if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "read last sequence");
  s = raw->Get(rocksdb::ReadOptions(), store->catalog_, kNextCidKey, &v);
  if (s.ok() && v.size() == 4) store->next_cid_ = static_cast<uint32_t>(ReadBE(v.data(), 4));
  else if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "read next collection id");
  return store;
}

std::unique_ptr<Batch> Store::NewBatch() { return std::unique_ptr<Batch>(new Batch(this)); }

absl::Status Store::Write(Batch& batch) {
  rocksdb::WriteOptions wo;
  wo.sync = options_.durability == Durability::kSync;
  rocksdb::Status s = db_->Write(wo, batch.wb_.get());
  if (!s.ok()) return FromRocks(s, "write");
  if (batch.last_seq_ != 0) last_seq_.store(batch.last_seq_, std::memory_order_release);
  if (batch.next_cid_ != 0) next_cid_ = batch.next_cid_;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<CollectionState>> Store::LoadCollections() {
  std::vector<CollectionState> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), catalog_));
  for (it->Seek("c/"); it->Valid() && it->key().starts_with("c/"); it->Next()) {
    CollectionState st;
    if (!st.record.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("corrupt catalog record ", it->key().ToString()));
    }
    std::string v;
    rocksdb::Status s =
        db_->Get(rocksdb::ReadOptions(), catalog_, NextIidKey(st.record.id()), &v);
    if (s.ok() && v.size() == 8) st.next_iid = ReadBE(v.data(), 8);
    else if (!s.ok() && !s.IsNotFound()) return FromRocks(s, "read next internal id");
    out.push_back(std::move(st));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scan catalog");
  return out;
}

StoreSnapshot::~StoreSnapshot() { db_->ReleaseSnapshot(snap_); }

std::unique_ptr<StoreSnapshot> Store::NewSnapshot() {
  return std::unique_ptr<StoreSnapshot>(new StoreSnapshot(db_.get(), db_->GetSnapshot()));
}

absl::Status Store::ScanPoints(
    uint32_t cid, const std::function<absl::Status(uint64_t, PointRecord&)>& fn,
    const StoreSnapshot* snapshot) {
  const std::string begin = CidKey(cid), end = CidKey(cid + 1);
  rocksdb::ReadOptions ro;
  if (snapshot != nullptr) ro.snapshot = snapshot->snap_;
  rocksdb::Slice upper(end);
  ro.iterate_upper_bound = &upper;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, attributes_));
  PointRecord rec;
  for (it->Seek(begin); it->Valid(); it->Next()) {
    if (it->key().size() != 12) return absl::DataLossError("corrupt point key");
    if (!rec.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("corrupt point record");
    }
    absl::Status st = fn(ReadBE(it->key().data() + 4, 8), rec);
    if (!st.ok()) return st;
  }
  return FromRocks(it->status(), "scan points");
}

absl::Status Store::ScanVectors(
    uint32_t cid, uint16_t field,
    const std::function<absl::Status(uint64_t, const float*, size_t)>& fn,
    const StoreSnapshot* snapshot) {
  std::string begin = CidKey(cid), end = CidKey(cid);
  AppendBE(&begin, field, 2);
  AppendBE(&end, static_cast<uint64_t>(field) + 1, 2);
  rocksdb::ReadOptions ro;
  if (snapshot != nullptr) ro.snapshot = snapshot->snap_;
  rocksdb::Slice upper(end);
  ro.iterate_upper_bound = &upper;
  ro.fill_cache = false;
  ro.readahead_size = 4 << 20;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, vectors_));
  std::vector<float> aligned;
  for (it->Seek(begin); it->Valid(); it->Next()) {
    if (it->key().size() != 14 || it->value().size() % sizeof(float) != 0) {
      return absl::DataLossError("corrupt vector entry");
    }
    const size_t dim = it->value().size() / sizeof(float);
    aligned.resize(dim);
    std::memcpy(aligned.data(), it->value().data(), it->value().size());
    absl::Status st = fn(ReadBE(it->key().data() + 6, 8), aligned.data(), dim);
    if (!st.ok()) return st;
  }
  return FromRocks(it->status(), "scan vectors");
}

absl::Status Store::ScanIdMap(
    uint32_t cid, const std::function<absl::Status(absl::string_view, uint64_t)>& fn,
    const StoreSnapshot* snapshot) {
  const std::string begin = CidKey(cid), end = CidKey(cid + 1);
  rocksdb::ReadOptions ro;
  if (snapshot != nullptr) ro.snapshot = snapshot->snap_;
  rocksdb::Slice upper(end);
  ro.iterate_upper_bound = &upper;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, idmap_));
  for (it->Seek(begin); it->Valid(); it->Next()) {
    if (it->key().size() <= 4 || it->value().size() != 8) {
      return absl::DataLossError("corrupt id-map entry");
    }
    absl::Status st = fn(absl::string_view(it->key().data() + 4, it->key().size() - 4),
                         ReadBE(it->value().data(), 8));
    if (!st.ok()) return st;
  }
  return FromRocks(it->status(), "scan id map");
}

absl::Status Store::ScanOplog(
    uint64_t from, const std::function<absl::Status(uint64_t, const OpRecord&)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), oplog_));
  OpRecord op;
  for (it->Seek(SeqKey(from)); it->Valid(); it->Next()) {
    if (it->key().size() != 8 ||
        !op.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("corrupt operation-log entry");
    }
    absl::Status st = fn(ReadBE(it->key().data(), 8), op);
    if (!st.ok()) return st;
  }
  return FromRocks(it->status(), "scan oplog");
}

uint64_t Store::ApproximateCollectionBytes(uint32_t cid) {
  const std::string begin = CidKey(cid), end = CidKey(cid + 1);
  rocksdb::Range r(begin, end);
  uint64_t total = 0;
  for (auto* cf : {vectors_, attributes_, idmap_}) {
    uint64_t size = 0;
    rocksdb::SizeApproximationOptions o;
    o.include_memtables = true;
    o.include_files = true;
    if (db_->GetApproximateSizes(o, cf, &r, 1, &size).ok()) total += size;
  }
  return total;
}

}  // namespace quiver::storage
