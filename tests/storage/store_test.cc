#include "storage/store.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include "absl/strings/str_cat.h"

#include "storage/wal_check.h"
#include "tests/common/test_util.h"

namespace quiver::storage {
namespace {

using ::quiver::testing::TempDir;

CollectionRecord Record(uint32_t id, const std::string& name) {
  CollectionRecord r;
  r.set_id(id);
  r.set_name(name);
  auto* v = r.mutable_schema()->add_vectors();
  v->set_name("v");
  v->set_dim(3);
  v->set_metric(StoredVectorField::L2);
  return r;
}

PointRecord Point(const std::string& id, int64_t label) {
  PointRecord p;
  p.set_id(id);
  p.add_attributes()->set_int_value(label);
  return p;
}

std::unique_ptr<Store> OpenStore(const std::string& path) {
  StoreOptions o;
  o.path = path;
  auto s = Store::Open(o);
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(s).value();
}

TEST(StoreTest, PointsCatalogAndSequenceSurviveReopen) {
  TempDir dir;
  {
    auto store = OpenStore(dir.path());
    EXPECT_EQ(store->last_sequence(), 0u);
    EXPECT_EQ(store->next_collection_id(), 1u);
    auto b = store->NewBatch();
    b->PutCollection(Record(1, "c"));
    b->PutNextCollectionId(2);
    const float v0[3] = {1, 2, 3}, v1[3] = {4, 5, 6};
    const uint32_t dims[1] = {3};
    const float* p0[1] = {v0};
    const float* p1[1] = {v1};
    b->PutPoint(1, 0, Point("a", 7), p0, dims);
    b->PutPoint(1, 1, Point("b", 8), p1, dims);
    b->PutNextInternalId(1, 2);
    OpRecord op;
    op.set_type(OpRecord::UPSERT);
    b->LogOp(1, op);
    QUIVER_ASSERT_OK(store->Write(*b));
    EXPECT_EQ(store->last_sequence(), 1u);
    EXPECT_EQ(store->next_collection_id(), 2u);
  }
  auto store = OpenStore(dir.path());
  EXPECT_EQ(store->last_sequence(), 1u);
  EXPECT_EQ(store->next_collection_id(), 2u);
  auto cols = store->LoadCollections();
  QUIVER_ASSERT_OK(cols);
  ASSERT_EQ(cols->size(), 1u);
  EXPECT_EQ((*cols)[0].record.name(), "c");
  EXPECT_EQ((*cols)[0].next_iid, 2u);

  std::vector<std::string> ids;
  QUIVER_ASSERT_OK(store->ScanPoints(1, [&](uint64_t iid, PointRecord& rec) {
    ids.push_back(absl::StrCat(iid, ":", rec.id(), ":", rec.attributes(0).int_value()));
    return absl::OkStatus();
  }));
  EXPECT_THAT(ids, ::testing::ElementsAre("0:a:7", "1:b:8"));
  std::vector<float> all;
  QUIVER_ASSERT_OK(store->ScanVectors(1, 0, [&](uint64_t, const float* d, size_t dim) {
    all.insert(all.end(), d, d + dim);
    return absl::OkStatus();
  }));
  EXPECT_THAT(all, ::testing::ElementsAre(1, 2, 3, 4, 5, 6));
  int ops = 0;
  QUIVER_ASSERT_OK(store->ScanOplog(0, [&](uint64_t seq, const OpRecord& op) {
    EXPECT_EQ(seq, 1u);
    EXPECT_EQ(op.type(), OpRecord::UPSERT);
    ++ops;
    return absl::OkStatus();
  }));
  EXPECT_EQ(ops, 1);
}

TEST(StoreTest, DropCollectionRemovesEverythingOfItOnly) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  const float v[3] = {1, 1, 1};
  const uint32_t dims[1] = {3};
  const float* pv[1] = {v};
  auto b = store->NewBatch();
  b->PutCollection(Record(1, "x"));
  b->PutCollection(Record(2, "y"));
  b->PutPoint(1, 0, Point("a", 1), pv, dims);
  b->PutPoint(2, 0, Point("a", 2), pv, dims);
  b->LogOp(1, OpRecord());
  QUIVER_ASSERT_OK(store->Write(*b));
  auto d = store->NewBatch();
  d->DropCollection(1, "x");
  d->LogOp(2, OpRecord());
  QUIVER_ASSERT_OK(store->Write(*d));
  auto cols = store->LoadCollections();
  ASSERT_EQ(cols->size(), 1u);
  EXPECT_EQ((*cols)[0].record.name(), "y");
  int n1 = 0, n2 = 0;
  QUIVER_ASSERT_OK(store->ScanPoints(1, [&](uint64_t, PointRecord&) { ++n1; return absl::OkStatus(); }));
  QUIVER_ASSERT_OK(store->ScanPoints(2, [&](uint64_t, PointRecord&) { ++n2; return absl::OkStatus(); }));
  EXPECT_EQ(n1, 0);
  EXPECT_EQ(n2, 1);
}

TEST(StoreTest, DeleteVectorFieldRemovesThatFieldsVectorsOnly) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  const float v[2] = {1, 2};
  const uint32_t dims[3] = {2, 2, 2};
  const float* pv[3] = {v, v, v};
  auto b = store->NewBatch();
  for (uint32_t cid = 1; cid <= 2; ++cid) {
    for (uint64_t iid = 0; iid < 5; ++iid) b->PutPoint(cid, iid, Point("p", 1), pv, dims);
  }
  b->LogOp(1, OpRecord());
  QUIVER_ASSERT_OK(store->Write(*b));
  auto d = store->NewBatch();
  d->DeleteVectorField(1, 1);
  d->LogOp(2, OpRecord());
  QUIVER_ASSERT_OK(store->Write(*d));
  auto count = [&](uint32_t cid, uint16_t field) {
    int n = 0;
    EXPECT_TRUE(store
                    ->ScanVectors(cid, field,
                                  [&](uint64_t, const float*, size_t) {
                                    ++n;
                                    return absl::OkStatus();
                                  })
                    .ok());
    return n;
  };
  EXPECT_EQ(count(1, 0), 5);
  EXPECT_EQ(count(1, 1), 0);
  EXPECT_EQ(count(1, 2), 5);
  EXPECT_EQ(count(2, 1), 5);
}

TEST(StoreTest, SavePointRollbackDropsOnlyLaterWrites) {
  TempDir dir;
  auto store = OpenStore(dir.path());
  const float v[3] = {1, 1, 1};
  const uint32_t dims[1] = {3};
  const float* pv[1] = {v};
  auto b = store->NewBatch();
  b->PutPoint(1, 0, Point("keep", 1), pv, dims);
  b->SetSavePoint();
  b->PutPoint(1, 1, Point("drop", 1), pv, dims);
  b->RollbackToSavePoint();
  b->LogOp(1, OpRecord());
  QUIVER_ASSERT_OK(store->Write(*b));
  std::vector<std::string> ids;
  QUIVER_ASSERT_OK(store->ScanPoints(1, [&](uint64_t, PointRecord& r) {
    ids.push_back(r.id());
    return absl::OkStatus();
  }));
  EXPECT_THAT(ids, ::testing::ElementsAre("keep"));
}

TEST(StoreTest, OplogIsTrimmedToRetention) {
  TempDir dir;
  StoreOptions o;
  o.path = dir.path();
  o.oplog_retention = 100;
  auto store = std::move(Store::Open(o)).value();
  for (uint64_t seq = 1; seq <= 3000; ++seq) {
    auto b = store->NewBatch();
    b->LogOp(seq, OpRecord());
    QUIVER_ASSERT_OK(store->Write(*b));
  }
  uint64_t first = 0, count = 0;
  QUIVER_ASSERT_OK(store->ScanOplog(0, [&](uint64_t seq, const OpRecord&) {
    if (count++ == 0) first = seq;
    return absl::OkStatus();
  }));
  // Trimming happens every 1024 sequences, keeping at least `retention`.
  EXPECT_GE(count, 100u);
  EXPECT_LE(count, 100u + 1024u);
  EXPECT_GT(first, 1u);
}

TEST(StoreTest, OpenFailsClearlyOnUnusablePath) {
  StoreOptions o;
  o.path = "/proc/quiver-cannot-create-here";
  auto s = Store::Open(o);
  EXPECT_THAT(s, ::quiver::testing::StatusIs(absl::StatusCode::kUnavailable,
                                             "cannot open data directory"));
}


// --- Damaged and torn write-ahead logs. Closing a Store does not flush its
// memtables, so everything written in a session is in its WAL alone.

// Writes `n` batches, sequences 1..n, each with one point; returns the WAL.
std::string WriteBatchesAndClose(const std::string& path, int n) {
  auto store = OpenStore(path);
  const float v[3] = {1, 2, 3};
  const uint32_t dims[1] = {3};
  const float* p[1] = {v};
  for (int i = 1; i <= n; ++i) {
    auto b = store->NewBatch();
    b->PutPoint(1, static_cast<uint64_t>(i), Point(absl::StrCat("p", i), i), p, dims);
    OpRecord op;
    op.set_type(OpRecord::UPSERT);
    op.add_ids(std::string(200, 'x'));  // bulk, so the WAL spans many blocks
    b->LogOp(static_cast<uint64_t>(i), op);
    EXPECT_TRUE(store->Write(*b).ok());
  }
  store.reset();
  const std::vector<std::string> wals = ListWalFiles(path);
  EXPECT_EQ(wals.size(), 1u);
  return wals.empty() ? "" : wals.back();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

TEST(StoreTest, Crc32cMatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32c("123456789"), 0xe3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
}

TEST(StoreTest, WalCheckFindsNothingInAnIntactWal) {
  TempDir dir;
  const std::string wal = WriteBatchesAndClose(dir.path() + "/db", 500);
  auto damage = CheckWalFile(wal);
  QUIVER_ASSERT_OK(damage);
  EXPECT_FALSE(damage->has_value()) << (*damage)->reason << " at " << (*damage)->offset;
}

TEST(StoreTest, DamagedWalIsRefusedThenAcceptedOnRequest) {
  TempDir dir;
  const std::string db = dir.path() + "/db";
  const int kBatches = 500;
  const std::string wal = WriteBatchesAndClose(db, kBatches);
  std::string bytes = ReadAll(wal);
  ASSERT_GT(bytes.size(), 100'000u);
  const size_t flip = bytes.size() / 2;
  bytes[flip] = static_cast<char>(bytes[flip] ^ 0x40);
  WriteAll(wal, bytes);

  StoreOptions o;
  o.path = db;
  auto refused = Store::Open(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss) << refused.status();
  const std::string msg(refused.status().message());
  EXPECT_THAT(msg, ::testing::HasSubstr(absl::StrCat("write-ahead log ", wal, " is damaged at byte ")));
  EXPECT_THAT(msg, ::testing::HasSubstr("--accept-wal-loss"));
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line";
  EXPECT_EQ(ReadAll(wal), bytes) << "the damaged WAL must stay as it was";

  // The damage is located: the record holding the flipped byte starts at
  // most one record (here < 1 KiB) before it.
  auto damage = CheckWalFile(wal);
  QUIVER_ASSERT_OK(damage);
  ASSERT_TRUE(damage->has_value());
  EXPECT_LE((*damage)->offset, flip);
  EXPECT_GT((*damage)->offset + 1024, flip);
  EXPECT_EQ((*damage)->reason, "checksum mismatch");
  EXPECT_GT((*damage)->intact_batches, 0u);

  o.accept_wal_loss = true;
  auto store = Store::Open(o);
  QUIVER_ASSERT_OK(store);
  // Everything before the damaged record, nothing from it on.
  EXPECT_EQ((*store)->last_sequence(), (*damage)->intact_batches);
  EXPECT_LT((*store)->last_sequence(), static_cast<uint64_t>(kBatches));
  const std::string& report = (*store)->wal_loss_report();
  EXPECT_THAT(report, ::testing::HasSubstr(absl::StrCat("discarded ", wal, " from byte ",
                                                        (*damage)->offset)));
  // The copy aside is the damaged file as it was.
  std::vector<std::string> asides;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    if (e.path().filename().string().rfind("damaged-wal-", 0) == 0) asides.push_back(e.path());
  }
  ASSERT_EQ(asides.size(), 1u);
  EXPECT_THAT(report, ::testing::HasSubstr(asides[0]));
  EXPECT_EQ(ReadAll(asides[0] + "/" + std::filesystem::path(wal).filename().string()), bytes);
  // The store is usable.
  auto b = (*store)->NewBatch();
  OpRecord op;
  b->LogOp((*store)->last_sequence() + 1, op);
  QUIVER_ASSERT_OK((*store)->Write(*b));
}

// RocksDB alone takes a length running past the end of the last, partial
// block for a torn tail and drops the records after it silently.
TEST(StoreTest, DamagedLengthInTheLastBlockIsNotATornTail) {
  TempDir dir;
  const std::string db = dir.path() + "/db";
  const int kBatches = 500;
  const std::string wal = WriteBatchesAndClose(db, kBatches);
  std::string bytes = ReadAll(wal);
  const size_t start = bytes.size() - bytes.size() % 32768;
  ASSERT_GT(bytes.size() - start, 4000u) << "the last block holds several records";
  // Walk the last block's records to one in its middle.
  size_t pos = start;
  while (pos - start < (bytes.size() - start) / 2) {
    pos += 7 + (static_cast<unsigned char>(bytes[pos + 4]) |
                (static_cast<unsigned char>(bytes[pos + 5]) << 8));
  }
  ASSERT_LT(pos + 1000, bytes.size());
  bytes[pos + 4] = static_cast<char>(0xff);
  bytes[pos + 5] = static_cast<char>(0xff);
  WriteAll(wal, bytes);

  StoreOptions o;
  o.path = db;
  auto refused = Store::Open(o);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(),
              ::testing::HasSubstr(absl::StrCat(wal, " is damaged at byte ", pos, " of ",
                                                bytes.size(), " (bad record length)")));
  EXPECT_EQ(ReadAll(wal), bytes);

  o.accept_wal_loss = true;
  auto store = Store::Open(o);
  QUIVER_ASSERT_OK(store);
  EXPECT_GT((*store)->last_sequence(), 0u);
  EXPECT_LT((*store)->last_sequence(), static_cast<uint64_t>(kBatches));
  EXPECT_THAT((*store)->wal_loss_report(),
              ::testing::HasSubstr(absl::StrCat("from byte ", pos, " on")));
}

TEST(StoreTest, TornWalTailIsTolerated) {
  TempDir dir;
  const std::string db = dir.path() + "/db";
  const std::string wal = WriteBatchesAndClose(db, 300);
  const std::string bytes = ReadAll(wal);
  // The last record loses its last bytes, as when a crash interrupts it.
  std::filesystem::resize_file(wal, bytes.size() - 5);
  auto store = OpenStore(db);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->last_sequence(), 299u);
  EXPECT_TRUE(store->wal_loss_report().empty());
}

}  // namespace
}  // namespace quiver::storage
