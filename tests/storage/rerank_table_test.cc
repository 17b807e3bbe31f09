// Rerank tables: round trips (single- and multi-vector, page cache and
// O_DIRECT), batches deeper than the ring, and every way a table can be
// missing, stale, truncated or corrupt being reported, never served.
#include "storage/rerank_table.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <utility>

#include <zlib.h>

#include "tests/common/fault_file_system.h"
#include "tests/common/test_util.h"

namespace quiver::storage {
namespace {

using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;

constexpr uint32_t kDim = 37;  // records straddle 4 KiB blocks at odd places

struct Rows {
  std::vector<std::vector<float>> rows;  // each count * kDim floats
};

Rows RandomRows(size_t n, bool multi, uint32_t seed, uint32_t dim = kDim) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  Rows r;
  for (size_t i = 0; i < n; ++i) {
    const size_t count = multi ? 1 + rng() % 7 : 1;
    std::vector<float> v(count * dim);
    for (float& x : v) x = g(rng);
    r.rows.push_back(std::move(v));
  }
  return r;
}

void Write(const std::string& path, const Rows& r, bool multi, uint64_t seq = 42,
           uint32_t dim = kDim) {
  RerankTableWriter w(path, dim, seq, multi);
  for (const auto& row : r.rows) {
    ASSERT_TRUE(w.Add(row.data(), row.size() / dim).ok());
  }
  ASSERT_TRUE(w.Finish().ok());
}

RerankTableExpect Expect(const Rows& r, bool multi, uint64_t seq = 42, uint32_t dim = kDim) {
  return {dim, r.rows.size(), seq, multi};
}

class RerankTableTest : public ::testing::TestWithParam<std::tuple<bool, bool>> {
 protected:
  bool multi() const { return std::get<0>(GetParam()); }
  bool direct() const { return std::get<1>(GetParam()); }
  std::string Path() const { return dir_.path() + "/f0.rerank"; }
  TempDir dir_;
};

TEST_P(RerankTableTest, RoundTripInBatchesOfAnySize) {
  const Rows r = RandomRows(3000, multi(), 1);
  Write(Path(), r, multi());
  EXPECT_FALSE(std::filesystem::exists(Path() + ".tmp"));
  RerankTableOptions o;
  o.direct_io = direct();
  auto t = RerankTable::Open(Path(), Expect(r, multi()), o);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->rows(), 3000u);
  // Batches deeper than the ring, repeats, the first and last rows.
  std::mt19937 rng(7);
  for (size_t batch : {1, 10, 255, 256, 257, 1000}) {
    std::vector<uint64_t> ids;
    for (size_t i = 0; i < batch; ++i) ids.push_back(rng() % r.rows.size());
    ids[0] = 0;
    ids.back() = r.rows.size() - 1;
    std::vector<std::vector<float>> got;
    uint64_t reads = 0;
    ASSERT_TRUE((*t)->Read(ids, &got, &reads).ok());
    EXPECT_EQ(reads, batch);
    ASSERT_EQ(got.size(), batch);
    for (size_t i = 0; i < batch; ++i) {
      EXPECT_EQ((*t)->count(ids[i]), r.rows[ids[i]].size() / kDim);
      ASSERT_EQ(got[i], r.rows[ids[i]]) << "row " << ids[i];
    }
  }
  std::vector<std::vector<float>> got;
  EXPECT_THAT((*t)->Read({3000}, &got), StatusIs(absl::StatusCode::kInvalidArgument, "out of range"));

  // Batches in flight together on one thread (submitted while candidates
  // are still being found), waited for in the other order; a batch dropped
  // without waiting cleans up after its reads.
  auto a = (*t)->Submit({5, 6, 7});
  auto b = (*t)->Submit({2999, 0});
  auto dropped = (*t)->Submit({1, 2, 3});
  ASSERT_TRUE(a.ok() && b.ok() && dropped.ok());
  dropped->reset();
  std::vector<std::vector<float>> ga, gb;
  ASSERT_TRUE((*b)->Wait(&gb).ok());
  ASSERT_TRUE((*a)->Wait(&ga).ok());
  EXPECT_THAT((*a)->Wait(&ga), StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_EQ(ga.size(), 3u);
  EXPECT_EQ(ga[1], r.rows[6]);
  ASSERT_EQ(gb.size(), 2u);
  EXPECT_EQ(gb[0], r.rows[2999]);
  EXPECT_EQ(gb[1], r.rows[0]);

  // Records read in place (what a search reranks from), repeats included.
  const std::vector<uint64_t> ids = {17, 2999, 0, 17, 1234, 1};
  auto c = (*t)->Submit(ids);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Wait().ok());
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::vector<float>& want = r.rows[ids[i]];
    const float* rec = (*c)->record(i);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(rec) % alignof(float), 0u);
    EXPECT_TRUE(std::equal(want.begin(), want.end(), rec)) << "row " << ids[i];
  }
}

TEST_P(RerankTableTest, MissingStaleTruncatedOrCorruptIsReportedNotServed) {
  const Rows r = RandomRows(500, multi(), 2);
  RerankTableOptions o;
  o.direct_io = direct();
  EXPECT_THAT(RerankTable::Open(Path(), Expect(r, multi()), o),
              StatusIs(absl::StatusCode::kNotFound));
  Write(Path(), r, multi(), /*seq=*/42);
  ASSERT_TRUE(RerankTable::Open(Path(), Expect(r, multi()), o).ok());
  // Stale: another sequence number, row count or dimension.
  EXPECT_THAT(RerankTable::Open(Path(), Expect(r, multi(), 43), o),
              StatusIs(absl::StatusCode::kFailedPrecondition, "stale"));
  RerankTableExpect e = Expect(r, multi());
  e.rows = 499;
  EXPECT_THAT(RerankTable::Open(Path(), e, o), StatusIs(absl::StatusCode::kFailedPrecondition));
  e = Expect(r, multi());
  e.dim = kDim + 1;
  EXPECT_THAT(RerankTable::Open(Path(), e, o), StatusIs(absl::StatusCode::kFailedPrecondition));

  const auto size = std::filesystem::file_size(Path());
  auto flip = [&](uint64_t offset) {
    std::fstream f(Path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    f.read(&c, 1);
    c ^= 0x10;
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(&c, 1);
  };
  // A bit flipped in a vector, in the header, in the offsets (multi) or the
  // last byte: each one caught.
  for (uint64_t at : {uint64_t{4096 + 1234}, uint64_t{20}, size - 1}) {
    flip(at);
    EXPECT_THAT(RerankTable::Open(Path(), Expect(r, multi()), o),
                StatusIs(absl::StatusCode::kDataLoss))
        << "flip at " << at;
    flip(at);
    ASSERT_TRUE(RerankTable::Open(Path(), Expect(r, multi()), o).ok());
  }
  std::filesystem::resize_file(Path(), size - 5);
  EXPECT_THAT(RerankTable::Open(Path(), Expect(r, multi()), o),
              StatusIs(absl::StatusCode::kDataLoss, "size"));
  std::filesystem::resize_file(Path(), 100);
  EXPECT_THAT(RerankTable::Open(Path(), Expect(r, multi()), o),
              StatusIs(absl::StatusCode::kDataLoss, "truncated"));
  std::ofstream(Path(), std::ios::trunc) << std::string(8192, 'x');
  EXPECT_THAT(RerankTable::Open(Path(), Expect(r, multi()), o),
              StatusIs(absl::StatusCode::kDataLoss, "not a rerank table"));
}

// A writer that never finishes (a crash while writing) leaves no table.
TEST_P(RerankTableTest, UnfinishedWriteLeavesNoTable) {
  const Rows r = RandomRows(100, multi(), 3);
  {
    RerankTableWriter w(Path(), kDim, 1, multi());
    for (const auto& row : r.rows) ASSERT_TRUE(w.Add(row.data(), row.size() / kDim).ok());
  }
  EXPECT_FALSE(std::filesystem::exists(Path()));
  EXPECT_FALSE(std::filesystem::exists(Path() + ".tmp"));
}

TEST(RerankTableWriterTest, RowsHoldTheRightNumberOfVectors) {
  TempDir dir;
  const std::vector<float> v(2 * kDim, 1.0f);
  RerankTableWriter single(dir.path() + "/s", kDim, 1, false);
  EXPECT_THAT(single.Add(v.data(), 2), StatusIs(absl::StatusCode::kInvalidArgument));
  RerankTableWriter multi(dir.path() + "/m", kDim, 1, true);
  // An empty row is a segment's hole (a point gone before the table).
  EXPECT_TRUE(multi.Add(nullptr, 0).ok());
  EXPECT_TRUE(multi.Add(v.data(), 2).ok());
  EXPECT_TRUE(multi.Finish().ok());
  auto t = RerankTable::Open(dir.path() + "/m", {kDim, 2, 1, true});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->count(0), 0u);
  EXPECT_EQ((*t)->count(1), 2u);
  EXPECT_EQ((*t)->offset(1), 0u);
  EXPECT_THAT(multi.Finish(), StatusIs(absl::StatusCode::kFailedPrecondition));
  RerankTableWriter bad(dir.path() + "/no/such/dir/t", kDim, 1, false);
  EXPECT_THAT(bad.Add(v.data(), 1), StatusIs(absl::StatusCode::kNotFound, "create"));
}

// The rename into place is durable only once the directory is synced. When
// that sync fails the writer says so, and the caller never lists the table,
// so nothing may stay behind under its final name to be opened later.
TEST(RerankTableWriterTest, FailedDirectorySyncLeavesNoTable) {
  TempDir dir;
  auto fs = ::quiver::testing::FaultFileSystem::Create(dir.path() + "/trash");
  ::quiver::testing::FaultFileSystem::Fault f;
  f.op = ::quiver::testing::FaultFileSystem::Op::kSyncDir;
  f.err = EIO;
  f.path_contains = dir.path() + "/tables";
  QUIVER_ASSERT_OK(fs->CreateDirs(dir.path() + "/tables"));
  fs->Inject(f);
  const std::string path = dir.path() + "/tables/f0.rerank";
  const Rows r = RandomRows(20, /*multi=*/false, 5);
  RerankTableWriter w(*fs, path, kDim, 1, /*multi=*/false);
  for (const auto& row : r.rows) QUIVER_ASSERT_OK(w.Add(row.data(), 1));
  EXPECT_THAT(w.Finish(), StatusIs(absl::StatusCode::kInternal, "Input/output error"));
  EXPECT_EQ(fs->faults_fired(), 1);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  EXPECT_FALSE(RerankTable::Open(path, Expect(r, false, 1)).ok());
}

// Single-vector records are laid out so that one never straddles two 4 KiB
// blocks when it fits in one, and a larger one starts on a block: with
// O_DIRECT a candidate costs the fewest blocks the device can read. Where
// that would pad a record by more than a third, records stay packed.
TEST(RerankTableLayoutTest, SingleRecordsNeverStraddleABlock) {
  EXPECT_EQ(RerankTableWriter::RecordStride(784), 4096u);   // 3136 bytes
  EXPECT_EQ(RerankTableWriter::RecordStride(768), 4096u);   // 3072
  EXPECT_EQ(RerankTableWriter::RecordStride(1024), 4096u);  // exactly a block
  EXPECT_EQ(RerankTableWriter::RecordStride(128), 512u);
  EXPECT_EQ(RerankTableWriter::RecordStride(100), 512u);    // 400
  EXPECT_EQ(RerankTableWriter::RecordStride(1536), 8192u);  // 6144: two blocks
  EXPECT_EQ(RerankTableWriter::RecordStride(37), 148u);     // 256 would pad 73%
  EXPECT_EQ(RerankTableWriter::RecordStride(300), 1200u);   // 2048 would pad 71%
  EXPECT_EQ(RerankTableWriter::RecordStride(1100), 4400u);  // 8192 would pad 86%
  EXPECT_EQ(RerankTableWriter::RecordStride(1), 4u);

  TempDir dir;
  for (uint32_t dim : {784u, 100u, 1536u, 300u}) {
    SCOPED_TRACE(dim);
    const std::string path = dir.path() + "/t" + std::to_string(dim);
    const Rows r = RandomRows(300, /*multi=*/false, dim, dim);
    Write(path, r, /*multi=*/false, 7, dim);
    const uint64_t stride = RerankTableWriter::RecordStride(dim);
    EXPECT_EQ(std::filesystem::file_size(path), 4096 + r.rows.size() * stride);
    for (bool direct : {false, true}) {
      RerankTableOptions o;
      o.direct_io = direct;
      o.map = true;
      auto t = RerankTable::Open(path, Expect(r, false, 7, dim), o);
      ASSERT_TRUE(t.ok()) << t.status();
      EXPECT_EQ((*t)->stride() * sizeof(float), stride);
      for (uint64_t row = 0; row < r.rows.size(); ++row) {
        const uint64_t at = 4096 + row * stride;
        const uint64_t blocks = (at + dim * 4 + 4095) / 4096 - at / 4096;
        if (stride != dim * 4) {
          ASSERT_EQ(blocks, (dim * 4 + 4095) / 4096) << "row " << row;
        }
        const float* m = (*t)->mapped_row(row);
        ASSERT_EQ(reinterpret_cast<const char*>(m) -
                      reinterpret_cast<const char*>((*t)->mapped_vectors()),
                  static_cast<ptrdiff_t>(row * stride));
        ASSERT_TRUE(std::equal(r.rows[row].begin(), r.rows[row].end(), m)) << "row " << row;
      }
      std::vector<uint64_t> ids = {299, 0, 150, 1, 150};
      std::vector<std::vector<float>> got;
      ASSERT_TRUE((*t)->Read(ids, &got).ok());
      for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(got[i], r.rows[ids[i]]);
    }
  }
}

// Header fields (RerankHeader in rerank_table.cc) a test rewrites, with the
// header checksum made again, as a writer of that version would have.
void RewriteHeader(const std::string& path, uint32_t version, uint32_t record_stride) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  char h[72];
  f.read(h, sizeof(h));
  std::memcpy(h + 8, &version, 4);
  std::memcpy(h + 68, &record_stride, 4);
  auto crc = crc32_z(0, Z_NULL, 0);
  crc = crc32_z(crc, reinterpret_cast<const Bytef*>(h), 64);
  if (version >= 2) crc = crc32_z(crc, reinterpret_cast<const Bytef*>(h + 68), 4);
  const auto crc32 = static_cast<uint32_t>(crc);
  std::memcpy(h + 64, &crc32, 4);
  f.seekp(0);
  f.write(h, sizeof(h));
}

// Tables written before records were spaced (format version 1: packed, no
// stride in the header) are read as they are, not rebuilt; a version-2
// header with an impossible stride is damage, never served.
TEST(RerankTableLayoutTest, VersionOneTablesAreReadAndBadStridesRefused) {
  TempDir dir;
  const std::string path = dir.path() + "/t";
  const Rows r = RandomRows(200, /*multi=*/false, 9);
  Write(path, r, /*multi=*/false, 42);  // kDim: packed, as version 1 wrote it
  RewriteHeader(path, 1, 0);
  for (bool direct : {false, true}) {
    RerankTableOptions o;
    o.direct_io = direct;
    o.map = true;
    auto t = RerankTable::Open(path, Expect(r, false), o);
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ((*t)->stride(), kDim);
    std::vector<std::vector<float>> got;
    ASSERT_TRUE((*t)->Read({199, 0, 77}, &got).ok());
    EXPECT_EQ(got[0], r.rows[199]);
    EXPECT_EQ(got[2], r.rows[77]);
    EXPECT_TRUE(std::equal(r.rows[123].begin(), r.rows[123].end(), (*t)->mapped_row(123)));
  }
  // Version 1 never had a stride; version 2 needs one that fits the file.
  for (auto [version, stride] : {std::pair<uint32_t, uint32_t>{1, kDim * 4}, {2, kDim * 4 - 4},
                                 {2, 0}, {2, kDim * 4 + 2}, {2, kDim * 4 + 4}, {3, kDim * 4}}) {
    RewriteHeader(path, version, stride);
    EXPECT_THAT(RerankTable::Open(path, Expect(r, false)), StatusIs(absl::StatusCode::kDataLoss))
        << "version " << version << " stride " << stride;
  }
  RewriteHeader(path, 2, kDim * 4);
  EXPECT_TRUE(RerankTable::Open(path, Expect(r, false)).ok());
}

INSTANTIATE_TEST_SUITE_P(Modes, RerankTableTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "Multi" : "Single") +
                                  (std::get<1>(info.param) ? "Direct" : "Cached");
                         });

}  // namespace
}  // namespace quiver::storage
