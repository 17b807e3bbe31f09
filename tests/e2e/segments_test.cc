// Segments through the real server: kill -9 while indexes are being built
// and while compactions run, and corrupt index files on disk; after each
// restart every acknowledged point is there, no deleted point comes back,
// and searches are right.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "tests/common/quiverd_process.h"
#include "tests/common/random_vectors.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::QuiverdOptions;
using ::quiver::testing::QuiverdProcess;
using ::quiver::testing::TempDir;

constexpr uint32_t kDim = 48;

// VerifyCollection finds no defect in collection "c".
void ExpectVerifyClean(client::Client& c) {
  v1::VerifyCollectionRequest req;
  req.set_name("c");
  auto r = c.VerifyCollection(req);
  QUIVER_ASSERT_OK(r);
  EXPECT_EQ(r->defects_total(), 0u) << r->DebugString();
  EXPECT_GT(r->rows_checked(), 0u);
}

std::vector<float> VectorOf(int i) { return ::quiver::testing::GaussianVector(i, kDim, 1); }

class SegmentsE2ETest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--segment-max-rows", "400", "--seal-idle-ms", "100"};
    args.insert(args.end(), extra.begin(), extra.end());
    QUIVER_ASSERT_OK(server_.Start(data_, args));
    client_ = std::make_unique<client::Client>(server_.address());
  }

  void Upsert(int first, int count) {
    v1::UpsertPointsRequest req;
    req.set_collection("c");
    for (int i = first; i < first + count; ++i) {
      v1::Point* p = req.add_points();
      p->set_id(absl::StrCat("p", i));
      auto v = VectorOf(i);
      (*p->mutable_vectors())["v"].mutable_values()->Add(v.begin(), v.end());
      (*p->mutable_attributes())["n"].set_int_value(i);
    }
    QUIVER_ASSERT_OK(client_->Upsert(req));
  }

  // Every live point finds itself first; no deleted point is ever found.
  void CheckSearches(const std::function<bool(int)>& alive, int n) {
    for (int i = 0; i < n; i += 37) {
      v1::SearchRequest req;
      req.set_collection("c");
      req.set_k(20);
      auto v = VectorOf(i);
      req.add_vectors()->mutable_values()->Add(v.begin(), v.end());
      auto r = client_->Search(req);
      ASSERT_TRUE(r.ok()) << r.status();
      for (const auto& h : r->results(0).hits()) {
        EXPECT_TRUE(alive(std::stoi(h.id().substr(1)))) << h.id() << " is deleted";
      }
      if (alive(i)) {
        ASSERT_GT(r->results(0).hits_size(), 0);
        EXPECT_EQ(r->results(0).hits(0).id(), absl::StrCat("p", i));
      }
    }
  }

  v1::CollectionStats Stats() {
    auto info = client_->GetCollection("c");
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->stats() : v1::CollectionStats();
  }

  void WaitAllIndexed(bool and_compacted) {
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
    for (;;) {
      v1::CollectionStats st = Stats();
      bool done = st.segments_size() > 0;
      for (const auto& seg : st.segments()) done = done && seg.state() == v1::SegmentInfo::INDEXED;
      if (and_compacted) done = done && st.deleted_count() == 0;
      if (done) return;
      ASSERT_LT(absl::Now(), give_up) << st.DebugString();
      absl::SleepFor(absl::Milliseconds(100));
    }
  }

  TempDir dir_;
  std::string data_ = dir_.path() + "/data";
  QuiverdProcess server_{[] {
    QuiverdOptions o;
    o.binary = QUIVERD_PATH;
    return o;
  }()};
  std::unique_ptr<client::Client> client_;
};

TEST_F(SegmentsE2ETest, Kill9DuringIndexBuildsAndCompactions) {
  Start();
  v1::CollectionSchema schema;
  *schema.add_vectors() = ::quiver::testing::VectorField("v", kDim);
  // A high ef_construction makes builds slow enough to be killed mid-way.
  schema.mutable_vectors(0)->mutable_index()->set_type("HNSW");
  (*schema.mutable_vectors(0)->mutable_index()->mutable_params())["ef_construction"] = "1000";
  (*schema.mutable_vectors(0)->mutable_index()->mutable_params())["M"] = "48";
  *schema.add_attributes() = ::quiver::testing::Attribute("n", v1::INT64);
  QUIVER_ASSERT_OK(client_->CreateCollection("c", schema));
  constexpr int kPoints = 4000;
  for (int i = 0; i < kPoints; i += 500) Upsert(i, 500);

  // 1. Crash while segments are sealed and their indexes are being built.
  absl::SleepFor(absl::Milliseconds(150));
  QUIVER_ASSERT_OK(server_.Kill9());
  Start();
  EXPECT_EQ(*client_->Count("c"), static_cast<uint64_t>(kPoints));
  CheckSearches([](int) { return true; }, kPoints);
  WaitAllIndexed(false);
  CheckSearches([](int) { return true; }, kPoints);

  // 2. Delete 70%: compactions start; crash in the middle of them, twice.
  auto alive = [](int i) { return i % 10 >= 7; };
  v1::DeletePointsRequest by_ids;
  by_ids.set_collection("c");
  for (int i = 0; i < kPoints; ++i) {
    if (!alive(i)) by_ids.add_ids(absl::StrCat("p", i));
  }
  QUIVER_ASSERT_OK(client_->Delete(by_ids));
  const uint64_t live = *client_->Count("c");
  ASSERT_EQ(live, static_cast<uint64_t>(kPoints * 3 / 10));
  for (int crash = 0; crash < 2; ++crash) {
    absl::SleepFor(absl::Milliseconds(60 + crash * 90));
    QUIVER_ASSERT_OK(server_.Kill9());
    Start();
    EXPECT_EQ(*client_->Count("c"), live);
    CheckSearches(alive, kPoints);
  }
  WaitAllIndexed(true);
  EXPECT_EQ(*client_->Count("c"), live);
  EXPECT_LE(Stats().segments_size(), 4);  // 1200 live rows in segments of <= 400
  CheckSearches(alive, kPoints);
  ExpectVerifyClean(*client_);
  QUIVER_ASSERT_OK(server_.Stop());
}

// Merges by size (--merge-target-mb): 16 segments of 400 rows of 48-d
// vectors (196 bytes a row) merge four at a time into segments of 1,600
// rows; four of those would pass 1 MiB, so they stay. kill -9 lands while
// merged segments are copied, indexed and swapped in.
TEST_F(SegmentsE2ETest, Kill9DuringSizeMerges) {
  const std::vector<std::string> merge = {"--merge-target-mb", "1"};
  Start(merge);
  v1::CollectionSchema schema;
  *schema.add_vectors() = ::quiver::testing::VectorField("v", kDim);
  schema.mutable_vectors(0)->mutable_index()->set_type("HNSW");
  *schema.add_attributes() = ::quiver::testing::Attribute("n", v1::INT64);
  QUIVER_ASSERT_OK(client_->CreateCollection("c", schema));
  constexpr int kPoints = 6400;
  for (int i = 0; i < kPoints; i += 400) Upsert(i, 400);
  auto alive = [](int i) { return i % 9 != 4; };
  v1::DeletePointsRequest del;
  del.set_collection("c");
  for (int i = 0; i < kPoints; ++i) {
    if (!alive(i)) del.add_ids(absl::StrCat("p", i));
  }
  QUIVER_ASSERT_OK(client_->Delete(del));
  const uint64_t live = *client_->Count("c");
  for (int crash = 0; crash < 4; ++crash) {
    absl::SleepFor(absl::Milliseconds(400 + crash * 300));
    QUIVER_ASSERT_OK(server_.Kill9());
    Start(merge);
    EXPECT_EQ(*client_->Count("c"), live);
    CheckSearches(alive, kPoints);
  }
  // Settled: at least two merged segments (800 live rows or more) exist and
  // the segment list stays the same for two seconds with every segment
  // indexed. Restarts move segment boundaries and a merged segment takes
  // its first input's place, so which first-tier segments end up adjacent
  // (only adjacent ones merge) depends on where the kills landed.
  auto merged = [](const v1::CollectionStats& st) {
    int n = 0;
    for (const auto& seg : st.segments()) n += seg.rows() - seg.deleted() >= 800;
    return n;
  };
  auto ids = [](const v1::CollectionStats& st) {
    std::vector<uint64_t> out;
    for (const auto& seg : st.segments()) out.push_back(seg.id());
    return out;
  };
  const absl::Time give_up = absl::Now() + absl::Seconds(120);
  std::vector<uint64_t> last;
  for (;;) {
    WaitAllIndexed(false);
    const v1::CollectionStats st = Stats();
    if (merged(st) >= 2 && ids(st) == last) break;
    last = ids(st);
    ASSERT_LT(absl::Now(), give_up) << st.DebugString();
    absl::SleepFor(absl::Seconds(2));
  }
  EXPECT_EQ(*client_->Count("c"), live);
  CheckSearches(alive, kPoints);
  ExpectVerifyClean(*client_);
  QUIVER_ASSERT_OK(server_.Stop());
}

TEST_F(SegmentsE2ETest, CorruptIndexFilesAreDetectedAndRebuilt) {
  // Five segments of 400, each with its own index file to damage (no
  // merging by size).
  const std::vector<std::string> no_merge = {"--merge-target-mb", "0"};
  Start(no_merge);
  v1::CollectionSchema schema;
  *schema.add_vectors() = ::quiver::testing::VectorField("v", kDim);
  schema.mutable_vectors(0)->mutable_index()->set_type("IVF_FLAT");
  *schema.add_attributes() = ::quiver::testing::Attribute("n", v1::INT64);
  QUIVER_ASSERT_OK(client_->CreateCollection("c", schema));
  Upsert(0, 2000);
  WaitAllIndexed(false);
  QUIVER_ASSERT_OK(server_.Stop());
  int damaged = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(data_ + "/segments")) {
    if (e.path().extension() != ".index") continue;
    if (damaged++ % 2 == 0) {
      std::filesystem::resize_file(e.path(), std::filesystem::file_size(e.path()) - 100);
    } else {
      std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(64);
      f << std::string(256, '\x7f');
    }
  }
  ASSERT_GE(damaged, 4);
  Start(no_merge);
  EXPECT_EQ(*client_->Count("c"), 2000u);
  CheckSearches([](int) { return true; }, 2000);
  WaitAllIndexed(false);
  CheckSearches([](int) { return true; }, 2000);
  ExpectVerifyClean(*client_);
}

// The index files of segment directories that /proc/<pid>/maps shows
// mapped into `pid`, including files replaced since they were mapped
// (listed with " (deleted)", which is cut off).
std::set<std::string> MappedIndexFiles(pid_t pid) {
  std::set<std::string> out;
  std::ifstream maps(absl::StrCat("/proc/", pid, "/maps"));
  std::string line;
  while (std::getline(maps, line)) {
    const size_t slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    if (absl::EndsWith(path, " (deleted)")) path.resize(path.size() - 10);
    if (absl::EndsWith(path, ".index")) out.insert(path);
  }
  return out;
}

// Each point "p<i>" of [0, n), read back with its vector, holds VectorOf(i).
void ExpectOwnVectors(client::Client& c, int n) {
  for (int first = 0; first < n; first += 500) {
    v1::GetPointsRequest req;
    req.set_collection("c");
    req.set_with_vectors(true);
    for (int i = first; i < std::min(n, first + 500); ++i) req.add_ids(absl::StrCat("p", i));
    auto r = c.GetPoints(req);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->points_size(), req.ids_size());
    for (const v1::Point& p : r->points()) {
      const auto want = VectorOf(std::stoi(p.id().substr(1)));
      const auto& got = p.vectors().at("v").values();
      ASSERT_EQ(got.size(), static_cast<int>(want.size())) << p.id();
      EXPECT_TRUE(std::equal(want.begin(), want.end(), got.begin())) << p.id();
    }
  }
}

// HNSW index files are used in place after a restart (mapped, not read
// into memory), and serve the same points and vectors. A mapped file
// damaged on disk is caught: while quiverd runs, verify reports it (the
// mapping shows the file as it is now, so verify checks what search
// reads); at the next start its checksum fails and the segment is rebuilt
// from RocksDB, so its damaged vectors are never served again. A file
// truncated while quiverd was down is rebuilt the same way.
TEST_F(SegmentsE2ETest, MappedHnswIndexFilesAreUsedInPlaceAndDamageIsCaught) {
  const std::vector<std::string> no_merge = {"--merge-target-mb", "0"};
  Start(no_merge);
  v1::CollectionSchema schema;
  *schema.add_vectors() = ::quiver::testing::VectorField("v", kDim);
  schema.mutable_vectors(0)->mutable_index()->set_type("HNSW");
  *schema.add_attributes() = ::quiver::testing::Attribute("n", v1::INT64);
  QUIVER_ASSERT_OK(client_->CreateCollection("c", schema));
  Upsert(0, 2000);
  WaitAllIndexed(false);
  // Built here: nothing is mapped yet.
  EXPECT_TRUE(MappedIndexFiles(server_.pid()).empty());
  QUIVER_ASSERT_OK(server_.Stop());

  std::vector<std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(data_ + "/segments")) {
    if (e.path().extension() == ".index") {
      files.push_back(std::filesystem::canonical(e.path()).string());
    }
  }
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 4u);

  Start(no_merge);
  WaitAllIndexed(false);
  EXPECT_EQ(MappedIndexFiles(server_.pid()), std::set<std::string>(files.begin(), files.end()));
  EXPECT_EQ(*client_->Count("c"), 2000u);
  ExpectOwnVectors(*client_, 2000);
  CheckSearches([](int) { return true; }, 2000);
  ExpectVerifyClean(*client_);

  // Damaged in place while mapped: the first record's vector overwritten.
  // hnswlib's records follow a 96-byte header: level-0 links (4 + 2*16*4
  // bytes), then the vector.
  {
    std::fstream f(files[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(96 + 4 + 2 * 16 * 4);
    const std::string garbage(kDim * sizeof(float), '\x55');
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  v1::VerifyCollectionRequest vreq;
  vreq.set_name("c");
  vreq.set_vector_sample_rows(0);  // every row
  auto found = client_->VerifyCollection(vreq);
  QUIVER_ASSERT_OK(found);
  const std::filesystem::path damaged(files[0]);
  const std::string where =
      (damaged.parent_path().filename() / damaged.filename()).string();  // "s<id>/f0.index"
  bool corrupt = false, mismatch = false;
  for (const auto& d : found->defects()) {
    corrupt = corrupt ||
              (d.kind() == v1::VerifyDefect::FILE_CORRUPT && absl::StrContains(d.detail(), where));
    mismatch = mismatch || d.kind() == v1::VerifyDefect::VECTOR_MISMATCH;
  }
  EXPECT_TRUE(corrupt) << found->DebugString();
  EXPECT_TRUE(mismatch) << found->DebugString();
  QUIVER_ASSERT_OK(server_.Stop());

  // And one cut short while quiverd is down.
  std::filesystem::resize_file(files[1], std::filesystem::file_size(files[1]) - 100);
  Start(no_merge);
  // Neither damaged file is mapped (their checksums fail before a mapping is
  // made); the segments are searched exactly meanwhile, then rebuilt.
  const std::set<std::string> mapped = MappedIndexFiles(server_.pid());
  EXPECT_EQ(mapped.count(files[0]), 0u);
  EXPECT_EQ(mapped.count(files[1]), 0u);
  EXPECT_EQ(mapped.count(files[2]), 1u);
  ExpectOwnVectors(*client_, 2000);
  CheckSearches([](int) { return true; }, 2000);
  WaitAllIndexed(false);
  ExpectOwnVectors(*client_, 2000);
  CheckSearches([](int) { return true; }, 2000);
  ExpectVerifyClean(*client_);
  // Rebuilt in memory (and written to new files), never mapped.
  EXPECT_EQ(MappedIndexFiles(server_.pid()).count(files[0]), 0u);
  EXPECT_EQ(MappedIndexFiles(server_.pid()).count(files[1]), 0u);

  // Loaded into memory instead when asked: nothing mapped.
  QUIVER_ASSERT_OK(server_.Stop());
  std::vector<std::string> no_mmap = no_merge;
  no_mmap.push_back("--index-mmap=false");
  Start(no_mmap);
  WaitAllIndexed(false);
  EXPECT_TRUE(MappedIndexFiles(server_.pid()).empty());
  ExpectOwnVectors(*client_, 2000);
  CheckSearches([](int) { return true; }, 2000);
}

// A byte flipped in a segment's MANIFEST (a DISK field, so rows are served
// from rerank tables the manifest lines up with RocksDB's rows): after a
// restart the damage is detected, the segment rebuilt from RocksDB, and
// every point is served with its own vector. Without a checksum a flipped
// internal id still parsed and one point was served another's vector.
TEST(ManifestDamageE2ETest, FlippedManifestByteRebuildsTheSegment) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  const std::string log = dir.path() + "/quiverd.log";
  QuiverdProcess server([&] {
    QuiverdOptions o;
    o.binary = QUIVERD_PATH;
    o.log_file = log;
    return o;
  }());
  const std::vector<std::string> args = {"--segment-max-rows", "2000", "--seal-idle-ms", "100"};
  QUIVER_ASSERT_OK(server.Start(data, args));
  auto manifests = [&] {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::recursive_directory_iterator(data + "/segments", ec)) {
      if (e.path().filename() == "MANIFEST") out.push_back(e.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  // Every segment indexed, and written (a MANIFEST each: files come after
  // the index is in memory).
  auto WaitIndexed = [&](client::Client& c, int segments) {
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
    for (;;) {
      auto info = c.GetCollection("c");
      QUIVER_ASSERT_OK(info);
      bool done = info->stats().segments_size() == segments;
      for (const auto& seg : info->stats().segments()) {
        done = done && seg.state() == v1::SegmentInfo::INDEXED;
      }
      if (done && manifests().size() >= static_cast<size_t>(segments)) return;
      ASSERT_LT(absl::Now(), give_up) << info->DebugString();
      absl::SleepFor(absl::Milliseconds(100));
    }
  };
  constexpr int kPoints = 5000;  // two sealed 2,000-row segments and a third
  {
    client::Client c(server.address());
    v1::CollectionSchema schema;
    *schema.add_vectors() = ::quiver::testing::VectorField("v", kDim);
    schema.mutable_vectors(0)->mutable_index()->set_type("IVF_SQ8");
    schema.mutable_vectors(0)->set_storage(v1::DISK);
    QUIVER_ASSERT_OK(c.CreateCollection("c", schema));
    for (int first = 0; first < kPoints; first += 500) {
      v1::UpsertPointsRequest req;
      req.set_collection("c");
      for (int i = first; i < first + 500; ++i) {
        v1::Point* p = req.add_points();
        p->set_id(absl::StrCat("p", i));
        auto v = VectorOf(i);
        (*p->mutable_vectors())["v"].mutable_values()->Add(v.begin(), v.end());
      }
      QUIVER_ASSERT_OK(c.Upsert(req));
    }
    WaitIndexed(c, 3);
  }
  QUIVER_ASSERT_OK(server.Stop());

  // Positions as fractions of the file: the frame, inside the list of
  // internal ids (most of a 2,000-row manifest), and the last byte.
  for (double where : {0.0, 0.3, 0.5, 0.55, 0.7, 1.0}) {
    SCOPED_TRACE(absl::StrCat("flip at ", where));
    const std::vector<std::string> files = manifests();
    ASSERT_GE(files.size(), 2u);
    const std::string& victim = files[static_cast<size_t>(where * 10) % files.size()];
    const auto size = std::filesystem::file_size(victim);
    const auto at = std::min<std::streamoff>(static_cast<std::streamoff>(where * size), size - 1);
    {
      std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
      f.seekg(at);
      char b = 0;
      f.read(&b, 1);
      b ^= 0x01;  // a low bit: an internal id becomes its neighbour's
      f.seekp(at);
      f.write(&b, 1);
    }
    const auto log_before = std::filesystem::exists(log) ? std::filesystem::file_size(log) : 0;
    QUIVER_ASSERT_OK(server.Start(data, args));
    client::Client c(server.address());
    v1::GetPointsRequest get;
    get.set_collection("c");
    get.set_with_vectors(true);
    for (int i = 0; i < kPoints; ++i) get.add_ids(absl::StrCat("p", i));
    auto got = c.GetPoints(get);
    QUIVER_ASSERT_OK(got);
    ASSERT_EQ(got->points_size(), kPoints);
    int wrong = 0;
    for (const v1::Point& p : got->points()) {
      const auto want = VectorOf(std::stoi(p.id().substr(1)));
      const auto& v = p.vectors().at("v").values();
      wrong += !std::equal(want.begin(), want.end(), v.begin(), v.end());
    }
    EXPECT_EQ(wrong, 0) << "points served with another point's vector";
    for (int i = 0; i < kPoints; i += 97) {
      v1::SearchRequest req;
      req.set_collection("c");
      req.set_k(5);
      auto v = VectorOf(i);
      req.add_vectors()->mutable_values()->Add(v.begin(), v.end());
      auto r = c.Search(req);
      QUIVER_ASSERT_OK(r);
      ASSERT_GT(r->results(0).hits_size(), 0);
      EXPECT_EQ(r->results(0).hits(0).id(), absl::StrCat("p", i));
    }
    // The rebuilt segment is indexed and written again before the next round.
    WaitIndexed(c, 3);
    ExpectVerifyClean(c);
    QUIVER_ASSERT_OK(server.Stop());
    std::ifstream in(log);
    in.seekg(static_cast<std::streamoff>(log_before));
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(text.find("rebuilding the segment from RocksDB"), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace quiver
