// The pooled arenas UpsertPoints parses its requests on: a request of
// megabytes parses onto them whole, its blocks are kept once the call is
// done, the next call gets them back, and the pool keeps no more than its
// cap however many calls were in flight.
#include "server/arena_allocator.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "quiver/v1/points.grpc.pb.h"

namespace quiver::server {
namespace {

using Allocator = PooledArenaMessageAllocator<v1::UpsertPointsRequest, v1::UpsertPointsResponse>;

// 1000 points of 784 floats: about 3 MB, several blocks.
std::string LargeRequest() {
  v1::UpsertPointsRequest req;
  req.set_collection("c");
  for (int i = 0; i < 1000; ++i) {
    v1::Point* p = req.add_points();
    p->set_id("point-" + std::to_string(i));
    auto* values = (*p->mutable_vectors())["image"].mutable_values();
    for (int d = 0; d < 784; ++d) values->Add(static_cast<float>(i * 784 + d));
    (*p->mutable_attributes())["label"].set_int_value(i % 10);
  }
  return req.SerializeAsString();
}

TEST(ArenaBlockPoolTest, LargeRequestsParseOnPooledBlocksThatAreReused) {
  const std::string wire = LargeRequest();
  Allocator alloc;
  const size_t kept_before = ArenaBlockPool::Kept();
  grpc::MessageHolder<v1::UpsertPointsRequest, v1::UpsertPointsResponse>* h =
      alloc.AllocateMessages();
  ASSERT_TRUE(h->request()->ParseFromString(wire));
  ASSERT_EQ(h->request()->points_size(), 1000);
  EXPECT_EQ(h->request()->points(999).vectors().at("image").values(783), 999.0f * 784 + 783);
  EXPECT_NE(h->request()->GetArena(), nullptr);
  h->Release();
  const size_t kept = ArenaBlockPool::Kept();
  EXPECT_GE(kept, kept_before + 3) << "a 3 MB request's blocks were not kept";

  // The next call takes its blocks from the pool, and gives them back.
  h = alloc.AllocateMessages();
  ASSERT_TRUE(h->request()->ParseFromString(wire));
  EXPECT_LT(ArenaBlockPool::Kept(), kept);
  EXPECT_EQ(h->request()->points(0).id(), "point-0");
  h->Release();
  EXPECT_EQ(ArenaBlockPool::Kept(), kept);
}

TEST(ArenaBlockPoolTest, KeepsNoMoreThanItsCap) {
  const std::string wire = LargeRequest();
  Allocator alloc;
  // More calls in flight at once than the pool keeps blocks for.
  std::vector<grpc::MessageHolder<v1::UpsertPointsRequest, v1::UpsertPointsResponse>*> calls;
  for (int i = 0; i < 16; ++i) {
    calls.push_back(alloc.AllocateMessages());
    ASSERT_TRUE(calls.back()->request()->ParseFromString(wire));
  }
  for (auto* h : calls) h->Release();
  EXPECT_EQ(ArenaBlockPool::Kept(), ArenaBlockPool::kKeptBytes / ArenaBlockPool::kBlockBytes);
}

}  // namespace
}  // namespace quiver::server
