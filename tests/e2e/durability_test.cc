// Storage failures, end to end against the real quiverd:
// - a full file system (a small tmpfs as the data directory): writes fail
//   RESOURCE_EXHAUSTED, nothing acknowledged is lost, reads go on, the
//   server neither aborts idle nor on SIGTERM nor on a restart with little
//   space, and writes succeed again once space is freed, without a restart;
// - a RocksDB write-ahead log damaged before its tail: quiverd refuses to
//   start, names the file and offset and changes nothing; with
//   --accept-wal-loss it keeps a copy, starts and says what it discarded;
// - a torn WAL tail (what a crash leaves) is recovered silently.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "storage/wal_check.h"
#include "tests/common/quiverd_process.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

namespace fs = std::filesystem;
using ::quiver::testing::QuiverdOptions;
using ::quiver::testing::QuiverdProcess;
using ::quiver::testing::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

v1::Point MakePoint(const std::string& id, uint32_t dim, int version, size_t pad) {
  v1::Point p;
  p.set_id(id);
  auto* v = (*p.mutable_vectors())["v"].mutable_values();
  const size_t h = std::hash<std::string>()(id);
  for (uint32_t d = 0; d < dim; ++d) v->Add(static_cast<float>((h >> (d % 32)) % 1000 + version));
  (*p.mutable_attributes())["version"].set_int_value(version);
  if (pad > 0) {
    // Incompressible, so SST files take as much space as the WAL.
    std::string text(pad, ' ');
    uint64_t x = h | 1;
    for (char& ch : text) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      ch = static_cast<char>('a' + x % 26);
    }
    (*p.mutable_attributes())["pad"].set_string_value(std::move(text));
  }
  return p;
}

v1::CollectionSchema Schema(uint32_t dim, const std::string& index) {
  v1::CollectionSchema schema;
  v1::VectorField f = ::quiver::testing::VectorField("v", dim);
  f.mutable_index()->set_type(index);
  *schema.add_vectors() = f;
  *schema.add_attributes() = ::quiver::testing::Attribute("version", v1::INT64);
  *schema.add_attributes() = ::quiver::testing::Attribute("pad", v1::STRING);
  return schema;
}

// Every id in `expect` has exactly the version given (-1: absent).
void ExpectPoints(client::Client& c, const std::map<std::string, int>& expect,
                  const std::string& collection = "c") {
  std::vector<std::string> ids;
  for (const auto& [id, version] : expect) ids.push_back(id);
  std::map<std::string, int> found;
  for (size_t i = 0; i < ids.size(); i += 500) {
    v1::GetPointsRequest get;
    get.set_collection(collection);
    for (size_t j = i; j < std::min(ids.size(), i + 500); ++j) get.add_ids(ids[j]);
    auto got = c.GetPoints(get);
    QUIVER_ASSERT_OK(got);
    for (const v1::Point& p : got->points()) {
      found[p.id()] = static_cast<int>(p.attributes().at("version").int_value());
    }
  }
  int wrong = 0;
  for (const auto& [id, version] : expect) {
    auto it = found.find(id);
    const int have = it == found.end() ? -1 : it->second;
    if (have != version && ++wrong <= 5) {
      ADD_FAILURE() << id << ": expected version " << version << ", found " << have;
    }
  }
  EXPECT_EQ(wrong, 0) << "of " << expect.size() << " points";
}

// Writes `path` until the file system is full; returns the bytes written.
uint64_t FillFile(const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const std::string chunk(64 << 10, 'f');
  uint64_t total = 0;
  while (out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()))) total += chunk.size();
  return total;
}

void PrintLogTail(const std::string& path) {
  const std::string log = ReadFile(path);
  std::cerr << "--- end of quiverd's log:\n"
            << log.substr(log.size() > 4000 ? log.size() - 4000 : 0) << "---\n";
}

// ---------------------------------------------------------------- disk full

// Temporary files of segment and rerank-table writes under `data`.
std::set<std::string> TempSegmentFiles(const std::string& data) {
  std::set<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(data + "/segments", ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(".tmp-", 0) == 0 || (name.size() > 4 && name.substr(name.size() - 4) == ".tmp")) {
      out.insert(it->path().string());
    }
  }
  return out;
}

// Indexed segments of collections c and d and whether their files are on
// disk.
std::vector<std::pair<std::string, bool>> IndexedSegments(client::Client& c) {
  std::vector<std::pair<std::string, bool>> out;
  for (const std::string name : {"c", "d"}) {
    auto info = c.GetCollection(name);
    EXPECT_TRUE(info.ok()) << info.status();
    if (!info.ok()) continue;
    for (const v1::SegmentInfo& seg : info->stats().segments()) {
      if (seg.state() != v1::SegmentInfo::INDEXED) continue;
      bool on_disk = true;
      for (const auto& f : seg.fields()) on_disk = on_disk && f.disk_bytes() > 0;
      out.emplace_back(absl::StrCat(name, " segment ", seg.id()), on_disk);
    }
  }
  return out;
}

bool AllPersisted(client::Client& c) {
  for (const auto& [id, on_disk] : IndexedSegments(c)) {
    if (!on_disk) return false;
  }
  return true;
}

// Every indexed segment is (or, on a full disk, none is) persisted.
void ExpectPersisted(client::Client& c, bool persisted) {
  const auto segments = IndexedSegments(c);
  EXPECT_FALSE(segments.empty());
  for (const auto& [id, on_disk] : segments) {
    EXPECT_EQ(on_disk, persisted) << id;
  }
}

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mnt_ = dir_.path() + "/mnt";
    fs::create_directories(mnt_);
    if (::mount("tmpfs", mnt_.c_str(), "tmpfs", 0, "size=48m") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs (needs root): " << std::strerror(errno);
    }
    mounted_ = true;
  }
  void TearDown() override {
    if (HasFailure()) PrintLogTail(log_);
    if (mounted_) ::umount2(mnt_.c_str(), MNT_DETACH);
  }

  TempDir dir_;
  std::string log_ = dir_.path() + "/quiverd.log";
  std::string mnt_;
  bool mounted_ = false;
};

TEST_F(DiskFullTest, WritesFailCleanlyAndResumeOnceSpaceIsFreed) {
  const std::string data = mnt_ + "/data";
  QuiverdOptions o;
  o.binary = QUIVERD_PATH;
  o.log_file = log_;
  QuiverdProcess server(o);
  // Small segments, sealed soon: index files are written (and fail) too.
  const std::vector<std::string> args = {"--segment-max-rows", "2048", "--seal-idle-ms", "300"};
  QUIVER_ASSERT_OK(server.Start(data, args));
  constexpr uint32_t kDim = 16;
  constexpr size_t kPad = 2000;
  // Replaced after each restart (the port changes).
  auto c = std::make_unique<client::Client>(server.address());
  QUIVER_ASSERT_OK(c->CreateCollection("c", Schema(kDim, "HNSW")));
  // And a DISK field: its segments write rerank tables and a FAISS index.
  v1::CollectionSchema disk = Schema(kDim, "IVF_SQ8");
  disk.mutable_vectors(0)->set_storage(v1::DISK);
  QUIVER_ASSERT_OK(c->CreateCollection("d", disk));

  // Space to give back later: a little before the restart (less than the
  // data it recovers), then enough for RocksDB to flush its memtables.
  const std::string big_filler = mnt_ + "/filler-big";
  WriteFile(big_filler, std::string(28 << 20, 'b'));
  const std::string small_filler = mnt_ + "/filler-small";
  WriteFile(small_filler, std::string(3 << 20, 's'));

  std::map<std::string, int> acked, acked_d;
  int next = 0;
  auto upsert_to = [&](const std::string& coll, std::map<std::string, int>& into, int n) {
    v1::UpsertPointsRequest req;
    req.set_collection(coll);
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      ids.push_back(absl::StrCat("p", next++));
      *req.add_points() = MakePoint(ids.back(), kDim, 1, kPad);
    }
    absl::Status s = c->Upsert(req).status();
    if (s.ok()) {
      for (const auto& id : ids) into[id] = 1;
    }
    return s;
  };
  auto upsert = [&](int n) { return upsert_to("c", acked, n); };
  auto fill = [&]() -> absl::Status {
    for (int i = 0; i < 2000; ++i) {
      absl::Status s = upsert(50);
      if (s.ok()) s = upsert_to("d", acked_d, 10);
      if (!s.ok()) return s;
    }
    return absl::InternalError("the disk never filled up");
  };
  absl::Status full = fill();
  ASSERT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_THAT(std::string(full.message()), ::testing::StartsWith("disk full: "));
  ASSERT_GT(acked.size(), 1000u);
  ASSERT_LT(acked.size(), 20000u);
  FillFile(mnt_ + "/filler-rest");

  // Idle on a full disk: RocksDB's log, segment seals, index files and
  // their retries all meet ENOSPC. The server must still be there.
  absl::SleepFor(absl::Seconds(22));
  QUIVER_ASSERT_OK(c->Health());
  auto count = c->Count("c");
  QUIVER_ASSERT_OK(count);
  EXPECT_EQ(*count, acked.size());
  ExpectPoints(*c, acked);
  ExpectPoints(*c, acked_d, "d");
  {
    v1::SearchRequest req;
    req.set_collection("c");
    req.set_k(5);
    *req.add_vectors() = MakePoint("p7", kDim, 1, 0).vectors().at("v");
    auto r = c->Search(req);
    QUIVER_ASSERT_OK(r);
    EXPECT_EQ(r->results(0).hits_size(), 5);
  }
  absl::Status again = upsert(50);
  EXPECT_EQ(again.code(), absl::StatusCode::kResourceExhausted) << again;
  // Index files that could not be written left nothing behind (checked
  // twice, so that a retry running at that moment does not count).
  const std::set<std::string> leftovers = TempSegmentFiles(data);
  absl::SleepFor(absl::Milliseconds(500));
  std::set<std::string> stuck;
  for (const auto& f : TempSegmentFiles(data)) {
    if (leftovers.count(f) > 0) stuck.insert(f);
  }
  EXPECT_THAT(stuck, ::testing::IsEmpty());
  // The segment the last writes went to is sealed and indexed by now, but
  // its files do not fit. (A segment sealed before the disk filled may have
  // made it to disk: that depends on timing, so it is not checked.)
  EXPECT_FALSE(AllPersisted(*c));

  // SIGTERM on a full disk: a clean exit.
  QUIVER_ASSERT_OK(server.Stop());

  // A restart with little space: less than the WAL it recovers, which
  // stays in memory instead of being flushed.
  fs::remove(small_filler);
  QUIVER_ASSERT_OK(server.Start(data, args));
  c = std::make_unique<client::Client>(server.address());
  ExpectPoints(*c, acked);
  ExpectPoints(*c, acked_d, "d");
  absl::Status refull = fill();
  ASSERT_EQ(refull.code(), absl::StatusCode::kResourceExhausted) << refull;
  // The segment those writes went to is sealed and indexed, but its files
  // do not fit.
  for (int i = 0; i < 100 && AllPersisted(*c); ++i) absl::SleepFor(absl::Milliseconds(100));
  ASSERT_FALSE(AllPersisted(*c));

  // Space comes back: writes succeed again, no restart. (The store asks
  // RocksDB to resume at most once a second.)
  fs::remove(big_filler);
  absl::Status resumed;
  for (int i = 0; i < 50; ++i) {
    resumed = upsert(50);
    if (resumed.ok()) break;
    absl::SleepFor(absl::Milliseconds(200));
  }
  QUIVER_ASSERT_OK(resumed);
  for (int i = 0; i < 5; ++i) QUIVER_ASSERT_OK(upsert(50));
  ExpectPoints(*c, acked);
  // The index files that failed are written by a later retry.
  for (int i = 0; i < 30 && !AllPersisted(*c); ++i) absl::SleepFor(absl::Seconds(1));
  ExpectPersisted(*c, true);
  QUIVER_ASSERT_OK(server.Stop());

  // And all of it survives a restart.
  QUIVER_ASSERT_OK(server.Start(data, args));
  c = std::make_unique<client::Client>(server.address());
  ExpectPoints(*c, acked);
  ExpectPoints(*c, acked_d, "d");
  QUIVER_ASSERT_OK(server.Stop());
  EXPECT_THAT(ReadFile(log_), ::testing::Not(::testing::HasSubstr("Assertion")));
}

// ---------------------------------------------------------------- WAL damage

class WalTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) PrintLogTail(log_);
  }

  // Upserts, overwrites and deletes, each batch acknowledged, then kill -9:
  // everything is in the WAL only. Returns what each id must be.
  std::map<std::string, int> WriteAndKill(QuiverdProcess& server, const std::string& data) {
    std::map<std::string, int> expect;
    EXPECT_TRUE(server.Start(data).ok());
    client::Client c(server.address());
    EXPECT_TRUE(c.CreateCollection("c", Schema(kDim, "FLAT")).ok());
    auto upsert = [&](int from, int to, int version) {
      v1::UpsertPointsRequest req;
      req.set_collection("c");
      for (int i = from; i < to; ++i) {
        *req.add_points() = MakePoint(absl::StrCat("k", i), kDim, version, 0);
      }
      ASSERT_TRUE(c.Upsert(req).ok());
      for (int i = from; i < to; ++i) expect[absl::StrCat("k", i)] = version;
    };
    for (int i = 0; i < 1500; i += 10) upsert(i, i + 10, 1);      // 1,500 upserts
    for (int i = 0; i < 1000; i += 10) upsert(i, i + 10, 2);      // 1,000 overwrites
    for (int i = 500; i < 1500; i += 10) {                        // 1,000 deletes
      v1::DeletePointsRequest req;
      req.set_collection("c");
      for (int j = i; j < i + 10; ++j) req.add_ids(absl::StrCat("k", j));
      EXPECT_TRUE(c.Delete(req).ok());
      for (int j = i; j < i + 10; ++j) expect[absl::StrCat("k", j)] = -1;
    }
    last_batch_.clear();
    for (int i = 2000; i < 2010; ++i) last_batch_.push_back(absl::StrCat("k", i));
    upsert(2000, 2010, 3);
    EXPECT_TRUE(server.Kill9().ok());
    return expect;
  }

  std::string TheWal(const std::string& data) {
    const std::vector<std::string> wals = storage::ListWalFiles(data + "/db");
    EXPECT_EQ(wals.size(), 1u);
    return wals.empty() ? "" : wals.back();
  }

  static constexpr uint32_t kDim = 8;
  TempDir dir_;
  std::string log_ = dir_.path() + "/quiverd.log";
  std::vector<std::string> last_batch_;
};

TEST_F(WalTest, DamagedWalStopsStartUntilLossIsAccepted) {
  const std::string data = dir_.path() + "/data";
  const std::string& log = log_;
  QuiverdOptions o;
  o.binary = QUIVERD_PATH;
  o.log_file = log;
  QuiverdProcess server(o);
  const std::map<std::string, int> expect = WriteAndKill(server, data);
  const std::string wal = TheWal(data);
  std::string bytes = ReadFile(wal);
  ASSERT_GT(bytes.size(), 200'000u);
  bytes[bytes.size() / 2] ^= 0x10;
  WriteFile(wal, bytes);

  // Refused: a non-zero exit, one line naming the file, nothing changed.
  absl::Status start = server.Start(data);
  ASSERT_FALSE(start.ok()) << "quiverd started on a WAL damaged in the middle";
  ASSERT_TRUE(WIFEXITED(server.last_wait_status())) << start;
  EXPECT_NE(WEXITSTATUS(server.last_wait_status()), 0);
  const std::string refused_log = ReadFile(log);
  EXPECT_THAT(refused_log,
              ::testing::HasSubstr(absl::StrCat("write-ahead log ", wal, " is damaged at byte ")));
  EXPECT_THAT(refused_log, ::testing::HasSubstr("--accept-wal-loss"));
  EXPECT_EQ(ReadFile(wal), bytes);
  for (const auto& e : fs::directory_iterator(data)) {
    EXPECT_EQ(e.path().filename().string().rfind("damaged-wal-", 0), std::string::npos);
  }

  // Accepted: a copy aside, a start, a log line saying what went.
  QUIVER_ASSERT_OK(server.Start(data, {"--accept-wal-loss"}));
  std::vector<std::string> asides;
  for (const auto& e : fs::directory_iterator(data)) {
    if (e.path().filename().string().rfind("damaged-wal-", 0) == 0) asides.push_back(e.path());
  }
  ASSERT_EQ(asides.size(), 1u);
  EXPECT_EQ(ReadFile(asides[0] + "/" + fs::path(wal).filename().string()), bytes);
  const std::string accepted_log = ReadFile(log);
  EXPECT_THAT(accepted_log, ::testing::HasSubstr(absl::StrCat(
                                "accepted write-ahead log loss: discarded ", wal, " from byte ")));
  EXPECT_THAT(accepted_log, ::testing::HasSubstr("recovered through RocksDB sequence"));
  EXPECT_THAT(accepted_log, ::testing::HasSubstr(asides[0]));
  // What is served is a prefix of the history: the last batch is gone.
  client::Client c(server.address());
  std::map<std::string, int> last;
  for (const auto& id : last_batch_) last[id] = -1;
  ExpectPoints(c, last);
  QUIVER_ASSERT_OK(server.Stop());
}

TEST_F(WalTest, TornTailKeepsEveryEarlierAcknowledgedWrite) {
  const std::string data = dir_.path() + "/data";
  QuiverdOptions o;
  o.binary = QUIVERD_PATH;
  o.log_file = log_;
  QuiverdProcess server(o);
  std::map<std::string, int> expect = WriteAndKill(server, data);
  // The last record (the last batch) loses its last bytes, as when a crash
  // cuts a write short.
  const std::string wal = TheWal(data);
  fs::resize_file(wal, fs::file_size(wal) - 5);
  for (const auto& id : last_batch_) expect[id] = -1;

  QUIVER_ASSERT_OK(server.Start(data));
  client::Client c(server.address());
  ExpectPoints(c, expect);
  auto count = c.Count("c");
  QUIVER_ASSERT_OK(count);
  EXPECT_EQ(*count, 500u);
  QUIVER_ASSERT_OK(server.Stop());
}

}  // namespace
}  // namespace quiver
