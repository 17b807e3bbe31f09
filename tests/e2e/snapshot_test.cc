// Snapshots end to end, with the real quiverd: a snapshot taken while a
// writer upserts and deletes continuously is restored online into a new
// collection and offline into a fresh data directory, and each restore
// holds exactly the state at the snapshot's sequence number (replayed here
// from the acknowledged writes), with its indexes loaded, not rebuilt;
// downloads stream to a file that restores again; cut or altered files are
// refused naming the packed file; list/delete; kill -9 after a snapshot
// keeps it, kill -9 during one leaves nothing listed.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/mutex.h"
#include "base/status_macros.h"
#include "client/client.h"
#include "client/snapshot_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/quiverd_process.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::QuiverdOptions;
using ::quiver::testing::QuiverdProcess;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;
using ::testing::ContainsRegex;

constexpr uint32_t kDim = 16;
constexpr int kPreload = 4000;
constexpr absl::Duration kTimeout = absl::Seconds(120);

// Small integers: squared L2 distances are exact in float32, so scores can
// be compared exactly.
std::vector<float> Vec(int id, int version) {
  std::vector<float> v(kDim);
  for (uint32_t d = 0; d < kDim; ++d) {
    v[d] = static_cast<float>((id * 131 + version * 7 + static_cast<int>(d) * 17) % 251);
  }
  return v;
}

v1::Point MakePoint(int id, int version) {
  v1::Point p;
  p.set_id(absl::StrCat("k", id));
  const std::vector<float> v = Vec(id, version);
  (*p.mutable_vectors())["v"].mutable_values()->Assign(v.begin(), v.end());
  (*p.mutable_attributes())["version"].set_int_value(version);
  return p;
}

// One acknowledged write: upserts (id, version) or deletes ids.
struct Write {
  uint64_t seq;
  std::vector<std::pair<int, int>> upserts;
  std::vector<int> deletes;
};

// id -> version after replaying the writes with sequence <= seq.
std::map<int, int> StateAt(std::vector<Write> log, uint64_t seq) {
  std::sort(log.begin(), log.end(), [](const Write& a, const Write& b) { return a.seq < b.seq; });
  std::map<int, int> state;
  for (const Write& w : log) {
    if (w.seq > seq) break;
    for (auto [id, ver] : w.upserts) state[id] = ver;
    for (int id : w.deletes) state.erase(id);
  }
  return state;
}

v1::CollectionSchema Schema() {
  v1::CollectionSchema s;
  v1::VectorField f = ::quiver::testing::VectorField("v", kDim);
  f.mutable_index()->set_type("HNSW");
  (*f.mutable_index()->mutable_params())["M"] = "32";
  (*f.mutable_index()->mutable_params())["ef_construction"] = "400";
  *s.add_vectors() = f;
  *s.add_attributes() = ::quiver::testing::Attribute("version", v1::INT64);
  return s;
}

// The server at `address` holds `want` points in `coll`.
void ExpectCount(const std::string& address, const std::string& coll, uint64_t want) {
  client::Client c(address);
  absl::StatusOr<uint64_t> n = c.Count(coll);
  QUIVER_ASSERT_OK(n);
  EXPECT_EQ(*n, want) << coll;
}

// Every expected point is there with its version and exact vector, and
// nothing else is.
void ExpectContent(client::Client& c, const std::string& coll, const std::map<int, int>& want) {
  absl::StatusOr<uint64_t> n = c.Count(coll);
  QUIVER_ASSERT_OK(n);
  ASSERT_EQ(*n, want.size()) << coll;
  std::vector<std::pair<int, int>> all(want.begin(), want.end());
  for (size_t at = 0; at < all.size(); at += 500) {
    v1::GetPointsRequest req;
    req.set_collection(coll);
    req.set_with_vectors(true);
    const size_t end = std::min(all.size(), at + 500);
    for (size_t i = at; i < end; ++i) req.add_ids(absl::StrCat("k", all[i].first));
    absl::StatusOr<v1::GetPointsResponse> r = c.GetPoints(req);
    QUIVER_ASSERT_OK(r);
    ASSERT_EQ(r->points_size(), static_cast<int>(end - at)) << coll;
    for (int i = 0; i < r->points_size(); ++i) {
      const auto& [id, ver] = all[at + static_cast<size_t>(i)];
      const v1::Point& p = r->points(i);
      ASSERT_EQ(p.id(), absl::StrCat("k", id));
      ASSERT_EQ(p.attributes().at("version").int_value(), ver) << p.id();
      const auto& got = p.vectors().at("v").values();
      ASSERT_EQ(std::vector<float>(got.begin(), got.end()), Vec(id, ver)) << p.id();
    }
  }
}

std::vector<std::vector<float>> Queries() {
  std::vector<std::vector<float>> q;
  std::mt19937 rng(7);
  for (int i = 0; i < 12; ++i) {
    std::vector<float> v(kDim);
    for (float& x : v) x = static_cast<float>(rng() % 251);
    q.push_back(v);
  }
  return q;
}

// exact: a scan; else the indexes, with an ef that makes their answers
// exact on segments this small.
absl::StatusOr<v1::SearchResponse> SearchAll(client::Client& c, const std::string& coll,
                                             bool exact) {
  v1::SearchRequest req;
  req.set_collection(coll);
  req.set_k(10);
  req.mutable_params()->set_exact(exact);
  if (!exact) req.mutable_params()->set_ef(500);
  for (const auto& q : Queries()) req.add_vectors()->mutable_values()->Assign(q.begin(), q.end());
  return c.Search(req);
}

// Exact top-10 scores of each query over `state`.
std::vector<std::vector<float>> TrueScores(const std::map<int, int>& state) {
  std::vector<std::vector<float>> out;
  for (const auto& q : Queries()) {
    std::vector<float> d;
    for (const auto& [id, ver] : state) {
      const std::vector<float> v = Vec(id, ver);
      float s = 0;
      for (uint32_t i = 0; i < kDim; ++i) s += (v[i] - q[i]) * (v[i] - q[i]);
      d.push_back(s);
    }
    std::sort(d.begin(), d.end());
    d.resize(std::min<size_t>(10, d.size()));
    out.push_back(d);
  }
  return out;
}

std::vector<std::vector<float>> Scores(const v1::SearchResponse& r) {
  std::vector<std::vector<float>> out;
  for (const auto& res : r.results()) {
    std::vector<float> s;
    for (const auto& h : res.hits()) s.push_back(h.score());
    out.push_back(s);
  }
  return out;
}

// Rows of segments that serve from a loaded index.
uint64_t IndexedRows(const v1::CollectionInfo& info) {
  uint64_t rows = 0;
  for (const auto& s : info.stats().segments()) {
    if (s.state() == v1::SegmentInfo::INDEXED) rows += s.rows();
  }
  return rows;
}

absl::Status WaitIndexed(client::Client& c, const std::string& coll, uint64_t rows) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    absl::StatusOr<v1::CollectionInfo> info = c.GetCollection(coll);
    if (!info.ok()) return info.status();
    if (IndexedRows(*info) >= rows) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError("segments not indexed in time");
}

std::vector<std::string> Args() {
  // Small segments, all built and persisted quickly; no compaction, so the
  // preloaded segments stay as they were persisted.
  return {"--segment-max-rows", "1000", "--seal-idle-ms", "200", "--compact-deleted-ratio", "1.0"};
}

absl::Status Upsert(client::Client& c, const std::string& coll, int from, int to, int version,
                    std::vector<Write>* log) {
  v1::UpsertPointsRequest req;
  req.set_collection(coll);
  Write w;
  for (int id = from; id < to; ++id) {
    *req.add_points() = MakePoint(id, version);
    w.upserts.emplace_back(id, version);
  }
  absl::StatusOr<v1::UpsertPointsResponse> r = c.Upsert(req);
  if (!r.ok()) return r.status();
  w.seq = r->sequence();
  if (log != nullptr) log->push_back(std::move(w));
  return absl::OkStatus();
}

// "big": 40,000 points of 256 dims, enough that a snapshot of it takes a
// while (for catching one under way).
absl::Status CreateBig(client::Client& c) {
  v1::CollectionSchema schema;
  *schema.add_vectors() = ::quiver::testing::VectorField("v", 256);
  QUIVER_RETURN_IF_ERROR(c.CreateCollection("big", schema).status());
  for (int at = 0; at < 40000; at += 1000) {
    v1::UpsertPointsRequest req;
    req.set_collection("big");
    for (int id = at; id < at + 1000; ++id) {
      v1::Point* p = req.add_points();
      p->set_id(absl::StrCat("p", id));
      auto* v = (*p->mutable_vectors())["v"].mutable_values();
      for (int d = 0; d < 256; ++d) v->Add(static_cast<float>((id * 7 + d) % 997));
    }
    QUIVER_RETURN_IF_ERROR(c.Upsert(req).status());
  }
  return absl::OkStatus();
}

class SnapshotTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

TEST_F(SnapshotTest, SnapshotUnderWritesRestoresExactlyItsSequence) {
  QuiverdProcess server(QuiverdOptions{});
  QUIVER_ASSERT_OK(server.Start(dir_.path() + "/data", Args()));
  client::Client c(server.address());
  QUIVER_ASSERT_OK(c.CreateCollection("c", Schema()));
  std::vector<Write> log;
  for (int at = 0; at < kPreload; at += 500) {
    QUIVER_ASSERT_OK(Upsert(c, "c", at, at + 500, 0, &log));
  }
  QUIVER_ASSERT_OK(WaitIndexed(c, "c", kPreload));

  // The writer: overwrites, new points and deletes, each batch one write.
  Mutex mu;
  std::atomic<bool> stop{false};
  std::atomic<int> acked{0};
  std::thread writer([&] {
    client::Client wc(server.address());
    std::mt19937 rng(1);
    int next_new = kPreload, version = 1;
    while (!stop.load()) {
      v1::UpsertPointsRequest up;
      up.set_collection("c");
      Write w;
      for (int i = 0; i < 20; ++i) {
        const int id = (i % 4 == 0) ? next_new++ : static_cast<int>(rng() % kPreload);
        if (std::any_of(w.upserts.begin(), w.upserts.end(),
                        [&](const auto& e) { return e.first == id; })) {
          continue;
        }
        *up.add_points() = MakePoint(id, version);
        w.upserts.emplace_back(id, version);
      }
      ++version;
      absl::StatusOr<v1::UpsertPointsResponse> r = wc.Upsert(up);
      ASSERT_TRUE(r.ok()) << r.status();
      w.seq = r->sequence();
      Write d;
      v1::DeletePointsRequest del;
      del.set_collection("c");
      for (int i = 0; i < 3; ++i) {
        const int id = static_cast<int>(rng() % kPreload);
        del.add_ids(absl::StrCat("k", id));
        d.deletes.push_back(id);
      }
      absl::StatusOr<v1::DeletePointsResponse> dr = wc.Delete(del);
      ASSERT_TRUE(dr.ok()) << dr.status();
      d.seq = dr->sequence();
      MutexLock lock(&mu);
      log.push_back(std::move(w));
      log.push_back(std::move(d));
      acked.fetch_add(1);
    }
  });
  auto wait_acked = [&](int n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (acked.load() < n && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  };
  wait_acked(30);
  uint64_t acked_before = 0;
  {
    MutexLock lock(&mu);
    for (const Write& w : log) acked_before = std::max(acked_before, w.seq);
  }
  absl::StatusOr<v1::SnapshotInfo> snap =
      client::CreateSnapshot(c, "", "under-writes", kTimeout);
  const int acked_at_create = acked.load();
  wait_acked(acked_at_create + 30);
  stop.store(true);
  writer.join();
  QUIVER_ASSERT_OK(snap);
  EXPECT_EQ(snap->name(), "under-writes");
  EXPECT_TRUE(snap->all_collections());
  // Every write acknowledged before Create began is in it; writes went on
  // during and after it.
  EXPECT_GE(snap->sequence(), acked_before);
  uint64_t last = 0;
  for (const Write& w : log) last = std::max(last, w.seq);
  ASSERT_GT(last, snap->sequence()) << "no write came after the snapshot's point";
  const std::map<int, int> want = StateAt(log, snap->sequence());
  const std::vector<std::vector<float>> truth = TrueScores(want);

  // Online, from the snapshot on the server, under a new name.
  absl::StatusOr<v1::RestoreSnapshotResponse> r1 =
      client::RestoreSnapshot(c, "under-writes", "", "", "restored", kTimeout);
  QUIVER_ASSERT_OK(r1);
  EXPECT_EQ(r1->sequence(), snap->sequence());
  // The persisted segments came with their indexes (nothing was rebuilt).
  EXPECT_GE(IndexedRows(r1->collection()), static_cast<uint64_t>(kPreload));
  ExpectContent(c, "restored", want);
  absl::StatusOr<v1::SearchResponse> exact = SearchAll(c, "restored", true);
  QUIVER_ASSERT_OK(exact);
  EXPECT_EQ(Scores(*exact), truth);
  absl::StatusOr<v1::SearchResponse> ann = SearchAll(c, "restored", false);
  QUIVER_ASSERT_OK(ann);
  EXPECT_EQ(Scores(*ann), truth);
  // The source moved on; the restore is a collection of its own.
  absl::StatusOr<uint64_t> source_count = c.Count("c");
  QUIVER_ASSERT_OK(source_count);
  EXPECT_NE(*source_count, want.size());
  // A name taken is refused.
  EXPECT_THAT(client::RestoreSnapshot(c, "under-writes", "", "", "restored", kTimeout),
              StatusIs(absl::StatusCode::kAlreadyExists));

  // Downloaded through the stream, uploaded again under another name.
  const std::string file = dir_.path() + "/under-writes.qsnap";
  absl::StatusOr<v1::SnapshotInfo> dl =
      client::DownloadSnapshot(c, "under-writes", file, kTimeout);
  QUIVER_ASSERT_OK(dl);
  EXPECT_EQ(std::filesystem::file_size(file), dl->size_bytes());
  absl::StatusOr<v1::RestoreSnapshotResponse> r2 =
      client::RestoreSnapshot(c, "", file, "c", "uploaded", kTimeout);
  QUIVER_ASSERT_OK(r2);
  ExpectContent(c, "uploaded", want);

  // Offline into a fresh data directory.
  const std::string fresh = dir_.path() + "/fresh";
  std::vector<std::string> restore_args = Args();
  restore_args.insert(restore_args.end(), {"--restore-from", file});
  QuiverdProcess offline(QuiverdOptions{});
  QUIVER_ASSERT_OK(offline.Start(fresh, restore_args));
  client::Client oc(offline.address());
  absl::StatusOr<v1::CollectionInfo> info = oc.GetCollection("c");
  QUIVER_ASSERT_OK(info);
  EXPECT_GE(IndexedRows(*info), static_cast<uint64_t>(kPreload));
  ExpectContent(oc, "c", want);
  absl::StatusOr<v1::SearchResponse> offline_exact = SearchAll(oc, "c", true);
  QUIVER_ASSERT_OK(offline_exact);
  EXPECT_EQ(Scores(*offline_exact), truth);
  absl::StatusOr<v1::SearchResponse> offline_ann = SearchAll(oc, "c", false);
  QUIVER_ASSERT_OK(offline_ann);
  EXPECT_EQ(Scores(*offline_ann), truth);
  QUIVER_ASSERT_OK(offline.Stop());

  // --restore-from refuses a directory with anything in it.
  const std::string busy = dir_.path() + "/busy";
  std::filesystem::create_directories(busy);
  std::ofstream(busy + "/keep") << "x";
  QuiverdProcess refused(QuiverdOptions{});
  EXPECT_FALSE(refused.Start(busy, restore_args).ok());
  EXPECT_TRUE(std::filesystem::exists(busy + "/keep"));
  EXPECT_FALSE(std::filesystem::exists(busy + "/db"));
}

TEST_F(SnapshotTest, DamagedSnapshotsAreRefusedNamingTheFile) {
  QuiverdProcess server(QuiverdOptions{});
  QUIVER_ASSERT_OK(server.Start(dir_.path() + "/data", Args()));
  client::Client c(server.address());
  QUIVER_ASSERT_OK(c.CreateCollection("c", Schema()));
  for (int at = 0; at < 3000; at += 500) QUIVER_ASSERT_OK(Upsert(c, "c", at, at + 500, 0, nullptr));
  QUIVER_ASSERT_OK(WaitIndexed(c, "c", 3000));
  QUIVER_ASSERT_OK(client::CreateSnapshot(c, "c", "one", kTimeout));
  const std::string good = dir_.path() + "/one.qsnap";
  QUIVER_ASSERT_OK(client::DownloadSnapshot(c, "one", good, kTimeout));
  const uint64_t size = std::filesystem::file_size(good);

  const std::string cut = dir_.path() + "/cut.qsnap";
  std::filesystem::copy_file(good, cut);
  std::filesystem::resize_file(cut, size / 2);
  const std::string flipped = dir_.path() + "/flipped.qsnap";
  std::filesystem::copy_file(good, flipped);
  {
    std::fstream f(flipped, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(size * 3 / 5));
    char b = 0;
    f.read(&b, 1);
    b = static_cast<char>(b ^ 0x5a);
    f.seekp(static_cast<std::streamoff>(size * 3 / 5));
    f.write(&b, 1);
  }
  EXPECT_THAT(client::RestoreSnapshot(c, "", cut, "", "from_cut", kTimeout),
              StatusIs(absl::StatusCode::kDataLoss, "truncated"));
  absl::StatusOr<v1::RestoreSnapshotResponse> bad =
      client::RestoreSnapshot(c, "", flipped, "", "from_flipped", kTimeout);
  ASSERT_THAT(bad, StatusIs(absl::StatusCode::kDataLoss, "failed its checksum"));
  EXPECT_THAT(std::string(bad.status().message()),
              ContainsRegex("file (db|segments)/[^ ]+ failed its checksum"));
  absl::StatusOr<v1::RestoreSnapshotResponse> cut_status =
      client::RestoreSnapshot(c, "", cut, "", "from_cut", kTimeout);
  EXPECT_THAT(std::string(cut_status.status().message()),
              ContainsRegex("file (db|segments)/[^ ]+"));
  // Not a snapshot at all: said of the upload, never of its file on the
  // server (a client has no business with the data directory's path).
  const std::string junk = dir_.path() + "/junk.qsnap";
  std::ofstream(junk) << "this is not a snapshot, but it is long enough to read a header from";
  absl::StatusOr<v1::RestoreSnapshotResponse> junk_status =
      client::RestoreSnapshot(c, "", junk, "", "from_junk", kTimeout);
  EXPECT_THAT(junk_status, StatusIs(absl::StatusCode::kDataLoss,
                                    "the uploaded snapshot is not a Quiver snapshot"));
  EXPECT_EQ(std::string(junk_status.status().message()).find(dir_.path()), std::string::npos)
      << junk_status.status();
  // Nothing changed: no collection, no leftovers in the snapshot directory.
  absl::StatusOr<std::vector<v1::CollectionInfo>> colls = c.ListCollections();
  QUIVER_ASSERT_OK(colls);
  EXPECT_EQ(colls->size(), 1u);
  std::vector<std::string> left;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path() + "/data/snapshots")) {
    left.push_back(e.path().filename().string());
  }
  EXPECT_THAT(left, ::testing::ElementsAre("one.qsnap"));
  // A good upload still works after the bad ones.
  QUIVER_ASSERT_OK(client::RestoreSnapshot(c, "", good, "", "from_good", kTimeout));

  // Offline: refused, and the data directory is left empty.
  for (const std::string& f : {cut, flipped}) {
    const std::string fresh = dir_.path() + "/fresh-" + std::filesystem::path(f).stem().string();
    QuiverdProcess offline(QuiverdOptions{});
    EXPECT_FALSE(offline.Start(fresh, {"--restore-from", f}).ok()) << f;
    EXPECT_TRUE(std::filesystem::is_empty(fresh)) << f;
  }
}

TEST_F(SnapshotTest, ListDeleteAndKill9) {
  const std::string data = dir_.path() + "/data";
  QuiverdProcess server(QuiverdOptions{});
  QUIVER_ASSERT_OK(server.Start(data, Args()));
  client::Client c(server.address());
  QUIVER_ASSERT_OK(c.CreateCollection("c", Schema()));
  QUIVER_ASSERT_OK(Upsert(c, "c", 0, 100, 0, nullptr));
  QUIVER_ASSERT_OK(client::CreateSnapshot(c, "c", "s1", kTimeout));
  QUIVER_ASSERT_OK(client::CreateSnapshot(c, "", "s2", kTimeout));
  EXPECT_THAT(client::CreateSnapshot(c, "", "s2", kTimeout),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(client::CreateSnapshot(c, "nope", "", kTimeout),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(client::CreateSnapshot(c, "", "../x", kTimeout),
              StatusIs(absl::StatusCode::kInvalidArgument));
  absl::StatusOr<v1::ListSnapshotsResponse> l = client::ListSnapshots(c, kTimeout);
  QUIVER_ASSERT_OK(l);
  ASSERT_EQ(l->snapshots_size(), 2);
  EXPECT_EQ(l->snapshots(0).name(), "s1");
  EXPECT_FALSE(l->snapshots(0).all_collections());
  EXPECT_THAT(l->snapshots(0).collections(), ::testing::ElementsAre("c"));
  EXPECT_EQ(l->snapshots(1).name(), "s2");
  EXPECT_GT(l->snapshots(1).size_bytes(), 0u);
  QUIVER_ASSERT_OK(client::DeleteSnapshot(c, "s1", kTimeout));
  EXPECT_THAT(client::DeleteSnapshot(c, "s1", kTimeout), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(client::DownloadSnapshot(c, "s1", dir_.path() + "/x", kTimeout),
              StatusIs(absl::StatusCode::kNotFound));

  QUIVER_ASSERT_OK(server.Kill9());
  QUIVER_ASSERT_OK(server.Start(data, Args()));
  client::Client c2(server.address());
  l = client::ListSnapshots(c2, kTimeout);
  QUIVER_ASSERT_OK(l);
  ASSERT_EQ(l->snapshots_size(), 1);
  EXPECT_EQ(l->snapshots(0).name(), "s2");
  absl::StatusOr<v1::RestoreSnapshotResponse> r =
      client::RestoreSnapshot(c2, "s2", "", "c", "back", kTimeout);
  QUIVER_ASSERT_OK(r);
  EXPECT_EQ(r->collection().stats().point_count(), 100u);
}

// Snapshots nobody named, taken back to back with no write between (same
// second, same sequence), of everything and of one collection: each gets a
// name of its own.
TEST_F(SnapshotTest, UnnamedSnapshotsBackToBackGetDistinctNames) {
  QuiverdProcess server(QuiverdOptions{});
  QUIVER_ASSERT_OK(server.Start(dir_.path() + "/data", Args()));
  client::Client c(server.address());
  QUIVER_ASSERT_OK(c.CreateCollection("c", Schema()));
  QUIVER_ASSERT_OK(Upsert(c, "c", 0, 10, 0, nullptr));
  std::set<std::string> names;
  for (const char* coll : {"", "", "c", "c", ""}) {
    absl::StatusOr<v1::SnapshotInfo> s = client::CreateSnapshot(c, coll, "", kTimeout);
    QUIVER_ASSERT_OK(s);
    EXPECT_THAT(s->name(), ::testing::StartsWith("snap-"));
    names.insert(s->name());
  }
  EXPECT_EQ(names.size(), 5u);
  absl::StatusOr<v1::ListSnapshotsResponse> l = client::ListSnapshots(c, kTimeout);
  QUIVER_ASSERT_OK(l);
  EXPECT_EQ(l->snapshots_size(), 5);
}

// A create whose client's deadline passes while it waits behind a long
// one is not started: no snapshot appears after the client was told
// DEADLINE_EXCEEDED (its retry would have made a second one).
TEST_F(SnapshotTest, QueuedCreateWhoseClientIsGoneIsNotStarted) {
  const std::string data = dir_.path() + "/data";
  QuiverdProcess server(QuiverdOptions{});
  QUIVER_ASSERT_OK(server.Start(data, Args()));
  client::Client c(server.address());
  QUIVER_ASSERT_OK(CreateBig(c));
  absl::Status first;
  std::thread create([&] {
    client::Client cc(server.address());
    first = client::CreateSnapshot(cc, "", "first", kTimeout).status();
  });
  const std::string snaps = data + "/snapshots";
  bool started = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!started && absl::Now() < deadline) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(snaps, ec)) {
      if (e.path().filename().string().rfind(".tmp-", 0) == 0) started = true;
    }
    if (!started) absl::SleepFor(absl::Microseconds(200));
  }
  ASSERT_TRUE(started);
  absl::StatusOr<v1::SnapshotInfo> late =
      client::CreateSnapshot(c, "", "late", absl::Milliseconds(200));
  create.join();
  QUIVER_ASSERT_OK(first);
  ASSERT_THAT(late, StatusIs(absl::StatusCode::kDeadlineExceeded))
      << "the first snapshot was too quick to queue the second behind it";
  // The worker runs jobs in order: once this one is answered, the late
  // one was taken off the queue.
  QUIVER_ASSERT_OK(client::CreateSnapshot(c, "", "after", kTimeout));
  absl::StatusOr<v1::ListSnapshotsResponse> l = client::ListSnapshots(c, kTimeout);
  QUIVER_ASSERT_OK(l);
  std::vector<std::string> names;
  for (const auto& s : l->snapshots()) names.push_back(s.name());
  EXPECT_THAT(names, ::testing::ElementsAre("after", "first"));
}

TEST_F(SnapshotTest, SnapshotCutByKill9IsNotListed) {
  const std::string data = dir_.path() + "/data";
  QuiverdProcess server(QuiverdOptions{});
  QUIVER_ASSERT_OK(server.Start(data, Args()));
  client::Client c(server.address());
  QUIVER_ASSERT_OK(CreateBig(c));
  std::thread create([&] {
    client::Client cc(server.address());
    (void)client::CreateSnapshot(cc, "", "cut", kTimeout);
  });
  // Kill as soon as the snapshot's work shows in the directory.
  const std::string snaps = data + "/snapshots";
  bool seen = false;
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!seen && absl::Now() < deadline) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(snaps, ec)) {
      const std::string n = e.path().filename().string();
      if (n.rfind(".tmp-", 0) == 0 || n.find(".qsnap.tmp") != std::string::npos) seen = true;
    }
    if (!seen) absl::SleepFor(absl::Microseconds(200));
  }
  QUIVER_ASSERT_OK(server.Kill9());
  create.join();
  ASSERT_TRUE(seen);
  ASSERT_FALSE(std::filesystem::exists(snaps + "/cut.qsnap")) << "the snapshot finished first";
  QUIVER_ASSERT_OK(server.Start(data, Args()));
  client::Client c2(server.address());
  absl::StatusOr<v1::ListSnapshotsResponse> l = client::ListSnapshots(c2, kTimeout);
  QUIVER_ASSERT_OK(l);
  EXPECT_EQ(l->snapshots_size(), 0);
  EXPECT_EQ(l->damaged_size(), 0);
  EXPECT_TRUE(std::filesystem::is_empty(snaps)) << "debris left";
  // And a snapshot of the same name can be taken now.
  QUIVER_ASSERT_OK(client::CreateSnapshot(c2, "", "cut", kTimeout));
}

// quiverd restarted with the same --restore-from after a finished restore
// of that snapshot (a container's fixed arguments) starts on the directory
// as it is, writes since the restore included; a different snapshot, or a
// non-empty directory no restore made, is still refused, saying why.
TEST_F(SnapshotTest, RestartWithTheSameRestoreFromStartsOnTheRestoredData) {
  const std::string first = dir_.path() + "/first.qsnap", second = dir_.path() + "/second.qsnap";
  {
    QuiverdProcess server(QuiverdOptions{});
    QUIVER_ASSERT_OK(server.Start(dir_.path() + "/data", Args()));
    client::Client c(server.address());
    QUIVER_ASSERT_OK(c.CreateCollection("c", Schema()));
    QUIVER_ASSERT_OK(Upsert(c, "c", 0, 100, 0, nullptr));
    QUIVER_ASSERT_OK(client::CreateSnapshot(c, "", "first", kTimeout));
    QUIVER_ASSERT_OK(client::DownloadSnapshot(c, "first", first, kTimeout));
    QUIVER_ASSERT_OK(Upsert(c, "c", 100, 150, 0, nullptr));
    QUIVER_ASSERT_OK(client::CreateSnapshot(c, "", "second", kTimeout));
    QUIVER_ASSERT_OK(client::DownloadSnapshot(c, "second", second, kTimeout));
  }
  const std::string fresh = dir_.path() + "/fresh";
  std::vector<std::string> args = Args();
  args.insert(args.end(), {"--restore-from", first});
  QuiverdOptions opts;
  opts.capture_log = true;
  opts.log_level = "info";
  QuiverdProcess offline(opts);
  QUIVER_ASSERT_OK(offline.Start(fresh, args));
  {
    client::Client c(offline.address());
    absl::StatusOr<uint64_t> n = c.Count("c");
    QUIVER_ASSERT_OK(n);
    EXPECT_EQ(*n, 100u);
    QUIVER_ASSERT_OK(Upsert(c, "c", 1000, 1005, 0, nullptr));
  }
  QUIVER_ASSERT_OK(offline.Stop());

  // The same flag again: it starts, and nothing was restored over the
  // writes made since.
  const size_t lines = ::quiver::testing::CountLines(offline.log_path());
  QUIVER_ASSERT_OK(offline.Start(fresh, args));
  ExpectCount(offline.address(), "c", 105);
  QUIVER_ASSERT_OK(offline.Kill9());
  std::ifstream log(offline.log_path());
  std::string line;
  int applied = 0;
  for (size_t i = 0; std::getline(log, line); ++i) {
    if (i >= lines && line.find("was already restored into") != std::string::npos) ++applied;
  }
  EXPECT_EQ(applied, 1) << ::quiver::testing::FileTail(offline.log_path());
  // And after a kill -9 too.
  QUIVER_ASSERT_OK(offline.Start(fresh, args));
  QUIVER_ASSERT_OK(offline.Stop());

  // Another snapshot over it is refused, naming both; the data stays.
  std::vector<std::string> other = Args();
  other.insert(other.end(), {"--restore-from", second});
  QuiverdProcess refused(opts);
  absl::Status s = refused.Start(fresh, other);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()),
              ContainsRegex("restored from snapshot \"first\".*not from snapshot \"second\""));
  QUIVER_ASSERT_OK(offline.Start(fresh, Args()));
  ExpectCount(offline.address(), "c", 105);
  QUIVER_ASSERT_OK(offline.Stop());

  // A data directory of a server that never restored anything is refused
  // with the snapshot it would have matched.
  QuiverdProcess plain(opts);
  s = plain.Start(dir_.path() + "/data", args);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("holds no restore of a snapshot"));

  // The snapshot moved away after its restore (to free space): the restore
  // is on record in the directory, so the container's unchanged arguments
  // still start it, on its own data.
  ASSERT_EQ(std::rename(first.c_str(), (first + ".moved").c_str()), 0);
  QUIVER_ASSERT_OK(offline.Start(fresh, args));
  ExpectCount(offline.address(), "c", 105);
  QUIVER_ASSERT_OK(offline.Stop());
}

// A fresh ext4 volume (a Kubernetes PersistentVolumeClaim) holds only
// lost+found: that is an empty data directory, not one to refuse.
TEST_F(SnapshotTest, RestoreFromIntoAVolumeHoldingOnlyLostAndFound) {
  const std::string snap = dir_.path() + "/s.qsnap";
  {
    QuiverdProcess server(QuiverdOptions{});
    QUIVER_ASSERT_OK(server.Start(dir_.path() + "/data", Args()));
    client::Client c(server.address());
    QUIVER_ASSERT_OK(c.CreateCollection("c", Schema()));
    QUIVER_ASSERT_OK(Upsert(c, "c", 0, 40, 0, nullptr));
    QUIVER_ASSERT_OK(client::CreateSnapshot(c, "", "s", kTimeout));
    QUIVER_ASSERT_OK(client::DownloadSnapshot(c, "s", snap, kTimeout));
  }
  const std::string volume = dir_.path() + "/volume";
  ASSERT_TRUE(std::filesystem::create_directories(volume + "/lost+found"));
  std::vector<std::string> args = Args();
  args.insert(args.end(), {"--restore-from", snap});
  QuiverdProcess restored(QuiverdOptions{});
  QUIVER_ASSERT_OK(restored.Start(volume, args));
  ExpectCount(restored.address(), "c", 40);
  QUIVER_ASSERT_OK(restored.Stop());
  EXPECT_TRUE(std::filesystem::exists(volume + "/lost+found"));
}

}  // namespace
}  // namespace quiver
