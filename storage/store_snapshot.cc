// Store's snapshot export and restore import (declared in store.h): copying
// a consistent state into a new database, and a collection's keys from a
// restored database into this one under a new collection id.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "storage/store.h"

namespace quiver::storage {
namespace {

// The key layout of store.cc, repeated for the few keys handled here.
std::string CidKey(uint32_t cid) {
  std::string k;
  for (int i = 3; i >= 0; --i) k.push_back(static_cast<char>((cid >> (8 * i)) & 0xff));
  return k;
}
uint32_t ReadCid(const rocksdb::Slice& key) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(key[i]);
  return v;
}
std::string NextIidKey(uint32_t cid) { return "n/" + CidKey(cid); }
std::string RestoreMarkKey(uint32_t cid) { return "r/" + CidKey(cid); }
constexpr char kRestorePrefix[] = "r/";

absl::Status Rocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  if (s.IsNoSpace() || s.ToString().find("No space left") != std::string::npos) {
    return absl::ResourceExhaustedError(absl::StrCat("disk full: ", what, ": ", s.ToString()));
  }
  return absl::InternalError(absl::StrCat("storage: ", what, ": ", s.ToString()));
}

}  // namespace

void Batch::PutRestoreMark(uint32_t cid) { wb_->Put(store_->catalog_, RestoreMarkKey(cid), ""); }
void Batch::DeleteRestoreMark(uint32_t cid) { wb_->Delete(store_->catalog_, RestoreMarkKey(cid)); }

void Batch::DropCollectionData(uint32_t cid) {
  wb_->Delete(store_->catalog_, NextIidKey(cid));
  const std::string begin = CidKey(cid), end = CidKey(cid + 1);
  for (auto* cf : {store_->vectors_, store_->attributes_, store_->idmap_}) {
    wb_->DeleteRange(cf, begin, end);
  }
}

absl::StatusOr<std::vector<uint32_t>> Store::UnfinishedRestores() {
  std::vector<uint32_t> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), catalog_));
  for (it->Seek(kRestorePrefix); it->Valid() && it->key().starts_with(kRestorePrefix);
       it->Next()) {
    if (it->key().size() != 6) continue;
    rocksdb::Slice k = it->key();
    k.remove_prefix(2);
    out.push_back(ReadCid(k));
  }
  QUIVER_RETURN_IF_ERROR(Rocks(it->status(), "scan catalog"));
  return out;
}

absl::Status Store::ExportTo(const StoreSnapshot& snapshot, const std::vector<uint32_t>* cids,
                             const std::string& dest_path) {
  QUIVER_ASSIGN_OR_RETURN(const bool exists, options_.fs->Exists(dest_path));
  if (exists) return absl::AlreadyExistsError(absl::StrCat(dest_path, " exists"));
  QUIVER_RETURN_IF_ERROR(options_.fs->CreateDirs(dest_path));
  StoreOptions o;
  o.path = dest_path;
  o.durability = Durability::kAsync;
  o.block_cache_bytes = 8u << 20;
  o.fs = options_.fs;
  QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<Store> dest, Store::Open(o));
  auto wanted = [&](uint32_t cid) {
    return cids == nullptr || std::find(cids->begin(), cids->end(), cid) != cids->end();
  };
  // The copy is written without its own WAL and flushed at the end: a
  // crash midway leaves a temporary directory that is thrown away anyway.
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot.snap_;
  ro.fill_cache = false;
  const std::vector<std::pair<rocksdb::ColumnFamilyHandle*, rocksdb::ColumnFamilyHandle*>> cfs = {
      {catalog_, dest->catalog_},     {vectors_, dest->vectors_}, {attributes_, dest->attributes_},
      {idmap_, dest->idmap_},         {oplog_, dest->oplog_}};
  for (const auto& [from, to] : cfs) {
    if (from == oplog_ && cids != nullptr) continue;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, from));
    rocksdb::WriteBatch wb;
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      const rocksdb::Slice k = it->key();
      bool keep = true;
      if (from == catalog_) {
        if (k.starts_with("c/")) {
          CollectionRecord rec;
          keep = rec.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())) &&
                 wanted(rec.id());
        } else if (k.starts_with("n/") && k.size() == 6) {
          rocksdb::Slice c = k;
          c.remove_prefix(2);
          keep = wanted(ReadCid(c));
        } else if (k.starts_with(kRestorePrefix)) {
          keep = cids == nullptr;
        } else if (IsAliasKey(absl::string_view(k.data(), k.size()))) {
          // An alias goes with its collection (to an offline restore).
          AliasRecord rec;
          keep = rec.ParseFromArray(it->value().data(), static_cast<int>(it->value().size())) &&
                 wanted(rec.collection_id());
        }
      } else if (from != oplog_) {
        keep = k.size() >= 4 && wanted(ReadCid(k));
      }
      if (!keep) continue;
      QUIVER_RETURN_IF_ERROR(Rocks(wb.Put(to, k, it->value()), "export"));
      if (wb.GetDataSize() > (4u << 20)) {
        QUIVER_RETURN_IF_ERROR(Rocks(dest->db_->Write(wo, &wb), "export write"));
        wb.Clear();
      }
    }
    QUIVER_RETURN_IF_ERROR(Rocks(it->status(), "export scan"));
    QUIVER_RETURN_IF_ERROR(Rocks(dest->db_->Write(wo, &wb), "export write"));
  }
  rocksdb::FlushOptions fo;
  fo.wait = true;
  for (auto* h : dest->handles_) {
    QUIVER_RETURN_IF_ERROR(Rocks(dest->db_->Flush(fo, h), "export flush"));
  }
  return absl::OkStatus();
}

absl::Status Store::AddImportChunk(Store& src, uint32_t src_cid, uint32_t dst_cid,
                                   size_t max_bytes, ImportCursor* cursor, Batch* batch) {
  rocksdb::ColumnFamilyHandle* const from[] = {src.vectors_, src.attributes_, src.idmap_};
  rocksdb::ColumnFamilyHandle* const to[] = {vectors_, attributes_, idmap_};
  const std::string src_prefix = CidKey(src_cid), dst_prefix = CidKey(dst_cid);
  const std::string end = CidKey(src_cid + 1);
  const size_t start_bytes = batch->ByteSize();
  while (cursor->cf < 3) {
    rocksdb::Slice upper(end);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper;
    ro.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(src.db_->NewIterator(ro, from[cursor->cf]));
    for (it->Seek(cursor->next.empty() ? src_prefix : cursor->next); it->Valid(); it->Next()) {
      if (batch->ByteSize() - start_bytes >= max_bytes) {
        cursor->next = it->key().ToString();
        return absl::OkStatus();
      }
      rocksdb::Slice rest = it->key();
      rest.remove_prefix(4);
      const std::string key = dst_prefix + rest.ToString();
      QUIVER_RETURN_IF_ERROR(
          Rocks(batch->wb_->Put(to[cursor->cf], key, it->value()), "import"));
    }
    QUIVER_RETURN_IF_ERROR(Rocks(it->status(), "import scan"));
    ++cursor->cf;
    cursor->next.clear();
  }
  cursor->done = true;
  return absl::OkStatus();
}

}  // namespace quiver::storage
