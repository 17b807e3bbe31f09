// Once writes pause, the engine flushes RocksDB's memtables: they would
// otherwise keep a copy of the latest writes (vectors, the operation log)
// in memory until later writes filled them. Nothing acknowledged may be
// lost by it, across a restart.
#include <random>
#include <string>

#include "query/engine.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::TempDir;
using ::quiver::testing::VectorField;

constexpr uint32_t kDim = 256;
constexpr size_t kPoints = 12000;  // 12 MB of vectors, past the flush threshold (8 MiB)
// Empty memtables take a little memory of their own.
constexpr uint64_t kFlushedBelow = 4u << 20;

std::unique_ptr<Engine> Open(const std::string& dir) {
  EngineOptions o;
  o.data_dir = dir;
  o.seal_idle = absl::Milliseconds(100);
  auto e = Engine::Open(o);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *std::move(e) : nullptr;
}

uint64_t Count(Engine& e) {
  v1::CountPointsRequest req;
  req.set_collection("c");
  v1::CountPointsResponse resp;
  EXPECT_TRUE(e.CountPoints(req, &resp).ok());
  return resp.count();
}

TEST(IdleFlushTest, MemtablesAreFlushedOnceWritesPause) {
  TempDir dir;
  std::unique_ptr<Engine> engine = Open(dir.path());
  ASSERT_NE(engine, nullptr);
  v1::CreateCollectionRequest create;
  create.set_name("c");
  *create.mutable_schema()->add_vectors() = VectorField("v", kDim);
  v1::CreateCollectionResponse cresp;
  QUIVER_ASSERT_OK(engine->CreateCollection(create, &cresp));
  std::mt19937 rng(3);
  std::normal_distribution<float> g;
  for (size_t first = 0; first < kPoints; first += 1000) {
    v1::UpsertPointsRequest up;
    up.set_collection("c");
    for (size_t i = first; i < first + 1000; ++i) {
      v1::Point* p = up.add_points();
      p->set_id(std::to_string(i));
      auto* values = (*p->mutable_vectors())["v"].mutable_values();
      for (uint32_t j = 0; j < kDim; ++j) values->Add(g(rng));
    }
    v1::UpsertPointsResponse resp;
    QUIVER_ASSERT_OK(engine->Upsert(up, &resp));
  }
  const uint64_t before = engine->store().Stats().memtable_bytes;
  EXPECT_GE(before, uint64_t{kPoints} * kDim * sizeof(float));
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  uint64_t now = before;
  while ((now = engine->store().Stats().memtable_bytes) >= kFlushedBelow &&
         absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_LT(now, kFlushedBelow) << "memtables held " << before << " bytes";
  EXPECT_EQ(Count(*engine), kPoints);
  engine.reset();
  engine = Open(dir.path());
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(Count(*engine), kPoints);
}

}  // namespace
}  // namespace quiver
