// Store's alias records (declared in store.h): catalog keys "a/" + alias ->
// AliasRecord. Written only in the engine's commit batches, with the
// operation-log entry of the change (query/engine_alias.cc).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "storage/store.h"

namespace quiver::storage {
namespace {
constexpr char kAliasPrefix[] = "a/";
}  // namespace

void Batch::PutAlias(const AliasRecord& rec) {
  rec.SerializeToString(&scratch_);
  wb_->Put(store_->catalog_, absl::StrCat(kAliasPrefix, rec.alias()), scratch_);
}

void Batch::DeleteAlias(absl::string_view alias) {
  wb_->Delete(store_->catalog_, absl::StrCat(kAliasPrefix, alias));
}

absl::StatusOr<std::vector<AliasRecord>> Store::LoadAliases() {
  std::vector<AliasRecord> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), catalog_));
  for (it->Seek(kAliasPrefix); it->Valid() && it->key().starts_with(kAliasPrefix); it->Next()) {
    AliasRecord rec;
    if (!rec.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("corrupt alias record ", it->key().ToString()));
    }
    out.push_back(std::move(rec));
  }
  if (!it->status().ok()) {
    return absl::InternalError(absl::StrCat("storage: scan aliases: ", it->status().ToString()));
  }
  return out;
}

bool IsAliasKey(absl::string_view catalog_key) {
  return catalog_key.substr(0, sizeof(kAliasPrefix) - 1) == kAliasPrefix;
}

}  // namespace quiver::storage
