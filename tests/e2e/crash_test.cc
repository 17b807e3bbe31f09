// Durability: a stream of upserts, overwrites and deletes from several client
// threads, quiverd killed with SIGKILL mid-stream, restarted; every
// acknowledged write must be there, intact, and every acknowledged delete
// must stay deleted. Writes that were in flight at the kill may or may not
// have landed, but never partially.
#include <atomic>
#include <map>
#include <optional>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/mutex.h"
#include "client/client.h"
#include "tests/common/quiverd_process.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::QuiverdOptions;
using ::quiver::testing::QuiverdProcess;
using ::quiver::testing::TempDir;

constexpr uint32_t kDim = 32;

// A point's content is a function of (id number, version), so the check can
// tell exactly which write it came from. Integers below 2^24 are exact in
// float32, so the comparison can be exact.
float Value(int id, int version, uint32_t d) {
  return static_cast<float>((id * 131 + version * 7 + static_cast<int>(d)) % 1000003);
}

v1::Point MakePoint(int id, int version) {
  v1::Point p;
  p.set_id(absl::StrCat("k", id));
  auto* v = (*p.mutable_vectors())["v"].mutable_values();
  for (uint32_t d = 0; d < kDim; ++d) v->Add(Value(id, version, d));
  (*p.mutable_attributes())["version"].set_int_value(version);
  return p;
}

// What a client knows about one id: the last acknowledged state, and the
// state of a write in flight when the server died (if any).
struct Expect {
  std::optional<int> acked;     // version; nullopt = deleted or never written
  bool acked_known = false;     // false if the id was never acknowledged
  std::optional<std::optional<int>> in_flight;
};

class CrashTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

// The stream, kills and checks, for a collection whose field `v` is `field`.
void KillAndCheck(const std::string& data, const v1::VectorField& field,
                  const std::vector<std::string>& extra_args) {
  QuiverdOptions o;
  o.binary = QUIVERD_PATH;
  QuiverdProcess server(o);
  QUIVER_ASSERT_OK(server.Start(data, extra_args));
  {
    client::Client c(server.address());
    v1::CollectionSchema schema;
    *schema.add_vectors() = field;
    *schema.add_attributes() = ::quiver::testing::Attribute("version", v1::INT64);
    QUIVER_ASSERT_OK(c.CreateCollection("c", schema));
  }

  constexpr int kThreads = 3, kIdsPerThread = 400;
  Mutex mu;
  std::map<int, Expect> expect;  // guarded by mu

  for (int round = 0; round < 3; ++round) {
    std::atomic<bool> stop{false};
    std::atomic<int> acks{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        client::ClientOptions co;
        co.timeout = absl::Seconds(5);
        client::Client c(server.address(), co);
        std::mt19937 rng(round * 100 + t);
        int version = round * 1000000;
        while (!stop.load()) {
          // A batch of 10 ids from this thread's range: upserts, or a delete.
          const int base = t * kIdsPerThread + static_cast<int>(rng() % (kIdsPerThread - 10));
          const bool del = rng() % 4 == 0;
          ++version;
          {
            MutexLock l(&mu);
            for (int i = base; i < base + 10; ++i) {
              expect[i].in_flight = del ? std::optional<int>() : std::optional<int>(version);
            }
          }
          absl::Status s;
          if (del) {
            v1::DeletePointsRequest req;
            req.set_collection("c");
            for (int i = base; i < base + 10; ++i) req.add_ids(absl::StrCat("k", i));
            s = c.Delete(req).status();
          } else {
            v1::UpsertPointsRequest req;
            req.set_collection("c");
            for (int i = base; i < base + 10; ++i) *req.add_points() = MakePoint(i, version);
            s = c.Upsert(req).status();
          }
          if (!s.ok()) return;  // the server is gone; the write stays "in flight"
          MutexLock l(&mu);
          for (int i = base; i < base + 10; ++i) {
            Expect& e = expect[i];
            e.acked = *e.in_flight;
            e.acked_known = true;
            e.in_flight.reset();
          }
          ++acks;
        }
      });
    }
    // Let a few hundred writes be acknowledged, then crash mid-stream.
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
    while (acks.load() < 150 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
    ASSERT_GE(acks.load(), 150) << "server too slow to acknowledge writes";
    QUIVER_ASSERT_OK(server.Kill9());
    stop = true;
    for (auto& th : threads) th.join();

    QUIVER_ASSERT_OK(server.Start(data, extra_args));
    client::Client c(server.address());
    MutexLock l(&mu);
    v1::GetPointsRequest get;
    get.set_collection("c");
    get.set_with_vectors(true);
    for (const auto& [id, e] : expect) get.add_ids(absl::StrCat("k", id));
    auto got = c.GetPoints(get);
    QUIVER_ASSERT_OK(got);
    std::map<std::string, const v1::Point*> by_id;
    for (const auto& p : got->points()) by_id[p.id()] = &p;
    int checked = 0;
    for (auto& [id, e] : expect) {
      auto it = by_id.find(absl::StrCat("k", id));
      std::optional<int> found;
      if (it != by_id.end()) {
        found = static_cast<int>(it->second->attributes().at("version").int_value());
        const auto& v = it->second->vectors().at("v").values();
        ASSERT_EQ(v.size(), static_cast<int>(kDim));
        for (uint32_t d = 0; d < kDim; ++d) {
          ASSERT_EQ(v[d], Value(id, *found, d)) << "k" << id << " is torn";
        }
      }
      const bool matches_acked = e.acked_known ? found == e.acked : !found.has_value();
      const bool matches_in_flight = e.in_flight.has_value() && found == *e.in_flight;
      EXPECT_TRUE(matches_acked || matches_in_flight)
          << "k" << id << " round " << round << ": found "
          << (found ? absl::StrCat("version ", *found) : "nothing") << ", acknowledged "
          << (e.acked ? absl::StrCat("version ", *e.acked) : "absent");
      // From now on the recovered state is the truth.
      e.acked = found;
      e.acked_known = true;
      e.in_flight.reset();
      ++checked;
    }
    EXPECT_GT(checked, 0);
    // Every point is found by its own vector: searches read whatever the
    // restart rebuilt or reattached (for DISK, the rerank tables).
    int searched = 0;
    for (const auto& [id, p] : by_id) {
      if (++searched % 7 != 0) continue;
      // Different ids may hold the same content (Value repeats across
      // versions): the point must be among the hits, tied with the best.
      v1::SearchRequest req;
      req.set_collection("c");
      req.set_k(10);
      *req.add_vectors() = p->vectors().at("v");
      auto r = c.Search(req);
      QUIVER_ASSERT_OK(r);
      ASSERT_GE(r->results(0).hits_size(), 1);
      double norm = 0;
      for (float x : p->vectors().at("v").values()) norm += double(x) * x;
      const v1::Hit* own = nullptr;
      for (const v1::Hit& h : r->results(0).hits()) {
        if (h.id() == id) own = &h;
      }
      ASSERT_NE(own, nullptr) << id << " not found by its own vector, round " << round;
      EXPECT_LE(own->score(), r->results(0).hits(0).score() + 1e-5 * norm) << id;
    }
    // And what the restart rebuilt or reattached agrees with RocksDB.
    v1::VerifyCollectionRequest vreq;
    vreq.set_name("c");
    auto verified = c.VerifyCollection(vreq);
    QUIVER_ASSERT_OK(verified);
    EXPECT_EQ(verified->defects_total(), 0u) << "round " << round << ": "
                                             << verified->DebugString();
    EXPECT_GT(verified->rows_checked(), 0u);
  }
  QUIVER_ASSERT_OK(server.Stop());
}

TEST_F(CrashTest, AcknowledgedWritesSurviveKill9) {
  KillAndCheck(dir_.path() + "/data", ::quiver::testing::VectorField("v", kDim), {});
}

// DISK storage with small segments sealed often: kills land while rerank
// tables are being written, renamed and attached.
TEST_F(CrashTest, DiskFieldSurvivesKill9DuringTableWrites) {
  v1::VectorField f = ::quiver::testing::VectorField("v", kDim);
  f.mutable_index()->set_type("IVF_SQ8");
  f.set_storage(v1::DISK);
  KillAndCheck(dir_.path() + "/data", f, {"--segment-max-rows", "256", "--seal-idle-ms", "50"});
}

}  // namespace
}  // namespace quiver
