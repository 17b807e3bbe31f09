// HnswIndex's level-0 layout: after a build or a load, label i is node i,
// so hnswlib's block holds every label's vector at a fixed stride and a
// segment can read its rows there (shared_rows). Covered: builds with
// several threads, rows left out of the graph and held-out rows; a save
// and load; and a file in hnswlib's own insertion order (as written before
// renumbering existed, or by hnswlib itself), renumbered when loaded;
// a file used in place (LoadMapped): its rows are the file's pages, held
// as long as a segment reads them, and damage to it is reported, never read
// past.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "index/hnsw_index.h"
// hnswlib itself, to write a file in its own node order.
#include "index/hnswlib_wrapped.h"
#include "tests/common/test_util.h"

namespace quiver::index {
namespace {

using ::quiver::testing::TempDir;
using ::quiver::testing::StatusIs;

constexpr size_t kDim = 24;
constexpr size_t kN = 3000;

std::vector<float> RandomRows(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> v(n * kDim);
  for (float& x : v) x = g(rng);
  return v;
}

// Every 7th row holds no data (a placeholder): left out of the graph.
class EverySeventhOut final : public LabelFilter {
 public:
  bool Accept(uint32_t label) const override { return label % 7 != 3; }
};

IndexSpec Spec() {
  IndexSpec spec;
  spec.type = "HNSW";
  spec.dim = kDim;
  spec.similarity = Similarity::kL2;
  return spec;
}

// The index's shared rows are `want`'s rows 0..n-1; placeholders hold
// `want`'s row too when fill_placeholders (the build's input), else zeros.
void ExpectRowsAre(const HnswIndex& idx, const std::vector<float>& want, bool fill_placeholders) {
  const std::optional<SharedRows> rows = idx.shared_rows();
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->rows, kN);
  // One hnswlib record: level-0 links (count, 2M ids), vector, label.
  EXPECT_EQ(rows->stride * sizeof(float), 4 + 2 * 16 * 4 + kDim * 4 + 8);
  const std::vector<float> zeros(kDim, 0.0f);
  size_t wrong = 0;
  EverySeventhOut data;
  for (size_t i = 0; i < kN; ++i) {
    const float* expect = data.Accept(static_cast<uint32_t>(i)) || fill_placeholders
                              ? want.data() + i * kDim
                              : zeros.data();
    wrong += std::memcmp(rows->base + i * rows->stride, expect, kDim * sizeof(float)) != 0;
  }
  EXPECT_EQ(wrong, 0u);
}

// Searches every 5th row by its own vector; returns the top labels, and
// checks that no placeholder is ever returned and the row itself nearly
// always comes first.
std::vector<std::vector<uint64_t>> OwnVectorSearches(const HnswIndex& idx,
                                                     const std::vector<float>& rows) {
  std::vector<std::vector<uint64_t>> out;
  EverySeventhOut data;
  size_t first = 0, probes = 0;
  for (size_t i = 0; i < kN; i += 5) {
    if (!data.Accept(static_cast<uint32_t>(i))) continue;
    ++probes;
    TopK top(10);
    SearchParams p;
    p.ef = 64;
    EXPECT_TRUE(idx.Search(rows.data() + i * kDim, p, nullptr, &top).ok());
    std::vector<uint64_t> ids;
    for (const Neighbor& e : top.Take()) {
      ids.push_back(e.id);
      EXPECT_TRUE(data.Accept(static_cast<uint32_t>(e.id))) << "placeholder " << e.id;
    }
    first += !ids.empty() && ids[0] == i;
    out.push_back(std::move(ids));
  }
  EXPECT_GE(first, probes * 98 / 100);
  return out;
}

TEST(HnswLayoutTest, BuildNumbersNodesByLabel) {
  const std::vector<float> rows = RandomRows(kN, 1);
  HnswIndex idx(Spec(), HnswOptions{});
  EverySeventhOut data;
  std::vector<uint32_t> held;
  for (uint32_t i = 11; i < kN; i += 29) held.push_back(i);
  bool probed = false;
  QUIVER_ASSERT_OK(idx.BuildHoldingOut(rows.data(), kN, /*threads=*/4, &data, held,
                                       [&] { probed = true; }));
  EXPECT_TRUE(probed);
  EXPECT_EQ(idx.size(), kN);
  ExpectRowsAre(idx, rows, /*fill_placeholders=*/true);
  OwnVectorSearches(idx, rows);
}

TEST(HnswLayoutTest, SaveAndLoadKeepTheLayoutAndTheAnswers) {
  const std::vector<float> rows = RandomRows(kN, 2);
  HnswIndex built(Spec(), HnswOptions{});
  EverySeventhOut data;
  QUIVER_ASSERT_OK(built.Build(rows.data(), kN, /*threads=*/3, &data));
  TempDir dir;
  const std::string path = dir.path() + "/f.index";
  QUIVER_ASSERT_OK(built.Save(path));
  auto loaded = std::make_unique<HnswIndex>(Spec(), HnswOptions{});
  QUIVER_ASSERT_OK(loaded->Load(path));
  ExpectRowsAre(*loaded, rows, /*fill_placeholders=*/true);
  EXPECT_EQ(OwnVectorSearches(*loaded, rows), OwnVectorSearches(built, rows));
  EXPECT_EQ(loaded->MemoryBytes(), built.MemoryBytes());
  // The shared rows outlive the index that handed them out.
  const std::optional<SharedRows> kept = loaded->shared_rows();
  loaded.reset();
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(std::memcmp(kept->base + 5 * kept->stride, rows.data() + 5 * kDim,
                        kDim * sizeof(float)),
            0);
}

TEST(HnswLayoutTest, FileInInsertionOrderIsRenumberedWhenLoaded) {
  // As hnswlib itself (and Quiver before renumbering) writes it: nodes
  // numbered in insertion order, here the reverse of label order, and no
  // node for the placeholders.
  const std::vector<float> rows = RandomRows(kN, 3);
  TempDir dir;
  const std::string path = dir.path() + "/f.index";
  {
    hnswlib::L2Space space(kDim);
    hnswlib::HierarchicalNSW<float> h(&space, kN, 16, 200);
    EverySeventhOut data;
    for (size_t i = kN; i-- > 0;) {
      if (data.Accept(static_cast<uint32_t>(i))) h.addPoint(rows.data() + i * kDim, i);
    }
    h.saveIndex(path);
  }
  HnswIndex loaded(Spec(), HnswOptions{});
  QUIVER_ASSERT_OK(loaded.Load(path));
  EXPECT_EQ(loaded.size(), kN);
  ExpectRowsAre(loaded, rows, /*fill_placeholders=*/false);
  OwnVectorSearches(loaded, rows);
  // Saved again, it is in label order and loads as it is.
  const std::string again = dir.path() + "/g.index";
  QUIVER_ASSERT_OK(loaded.Save(again));
  HnswIndex reloaded(Spec(), HnswOptions{});
  QUIVER_ASSERT_OK(reloaded.Load(again));
  ExpectRowsAre(reloaded, rows, /*fill_placeholders=*/false);
  EXPECT_EQ(OwnVectorSearches(reloaded, rows), OwnVectorSearches(loaded, rows));
  // Used in place only once in label order: the old file is read (it has to
  // be renumbered), the new one mapped.
  HnswIndex old_mapped(Spec(), HnswOptions{});
  QUIVER_ASSERT_OK(old_mapped.LoadMapped(path));
  EXPECT_FALSE(old_mapped.mapped());
  ExpectRowsAre(old_mapped, rows, /*fill_placeholders=*/false);
  HnswIndex new_mapped(Spec(), HnswOptions{});
  QUIVER_ASSERT_OK(new_mapped.LoadMapped(again));
  EXPECT_TRUE(new_mapped.mapped());
  ExpectRowsAre(new_mapped, rows, /*fill_placeholders=*/false);
  EXPECT_EQ(OwnVectorSearches(new_mapped, rows), OwnVectorSearches(loaded, rows));
}

// The file /proc/self/maps names for the mapping holding `p`; empty if
// `p` is in no file mapping.
std::string MappedFile(const void* p) {
  std::ifstream maps("/proc/self/maps");
  const auto at = reinterpret_cast<uintptr_t>(p);
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long a = 0, b = 0;  // NOLINT(runtime/int): sscanf's %lx
    if (std::sscanf(line.c_str(), "%lx-%lx", &a, &b) != 2 || at < a || at >= b) continue;
    const size_t slash = line.find('/');
    return slash == std::string::npos ? "" : line.substr(slash);
  }
  return "";
}

TEST(HnswLayoutTest, MappedFileIsUsedInPlaceAndHeldByItsRows) {
  const std::vector<float> rows = RandomRows(kN, 4);
  HnswIndex built(Spec(), HnswOptions{});
  EverySeventhOut data;
  QUIVER_ASSERT_OK(built.Build(rows.data(), kN, /*threads=*/2, &data));
  TempDir dir;
  const std::string path = std::filesystem::canonical(dir.path()).string() + "/f.index";
  QUIVER_ASSERT_OK(built.Save(path));
  auto mapped = std::make_unique<HnswIndex>(Spec(), HnswOptions{});
  QUIVER_ASSERT_OK(mapped->LoadMapped(path));
  EXPECT_TRUE(mapped->mapped());
  ExpectRowsAre(*mapped, rows, /*fill_placeholders=*/true);
  EXPECT_EQ(OwnVectorSearches(*mapped, rows), OwnVectorSearches(built, rows));
  EXPECT_EQ(mapped->MemoryBytes(), built.MemoryBytes());
  // The rows are the file's pages, not a copy.
  std::optional<SharedRows> kept = mapped->shared_rows();
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(MappedFile(kept->base), path);
  // A segment reading them keeps the mapping after the index is gone; the
  // last holder unmaps it.
  mapped.reset();
  EXPECT_EQ(MappedFile(kept->base), path);
  EXPECT_EQ(std::memcmp(kept->base + 9 * kept->stride, rows.data() + 9 * kDim,
                        kDim * sizeof(float)),
            0);
  const float* const base = kept->base;
  kept.reset();
  EXPECT_EQ(MappedFile(base), "");
  // Loaded instead, nothing is mapped.
  HnswIndex loaded(Spec(), HnswOptions{});
  QUIVER_ASSERT_OK(loaded.Load(path));
  EXPECT_FALSE(loaded.mapped());
  EXPECT_EQ(MappedFile(loaded.shared_rows()->base), "");
}

TEST(HnswLayoutTest, MappedFileWithABadLinkIsRefused) {
  const std::vector<float> rows = RandomRows(kN, 5);
  HnswIndex built(Spec(), HnswOptions{});
  QUIVER_ASSERT_OK(built.Build(rows.data(), kN, /*threads=*/1));
  TempDir dir;
  const std::string path = dir.path() + "/f.index";
  QUIVER_ASSERT_OK(built.Save(path));
  // Node 17's first level-0 link (after the 96-byte header and the 4-byte
  // count) names a node that does not exist: a walk would read past the
  // block. Its checksum would be fine if the file had been written so.
  const size_t record = 4 + 2 * 16 * 4 + kDim * 4 + 8;
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(96 + 17 * record + 4));
    const uint32_t bad = kN + 5;
    f.write(reinterpret_cast<const char*>(&bad), sizeof(bad));
  }
  HnswIndex mapped(Spec(), HnswOptions{});
  EXPECT_THAT(mapped.LoadMapped(path), StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_FALSE(mapped.mapped());
  TopK out(10);
  EXPECT_THAT(mapped.Search(rows.data(), {}, nullptr, &out),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace quiver::index
