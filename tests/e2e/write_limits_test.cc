// quiverd's limits on load, end to end through the real binary: the cap
// on concurrent requests per method (--max-concurrent-requests,
// --method-concurrency), the memory budget for vector data
// (--memory-budget-mb), the memory one request may take
// (--max-request-memory-mb) and write backpressure behind index builds
// (--max-unindexed-rows). Each refusal: its code, a message naming the
// flag, nothing changed, and writes coming back.
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "quiver/v1/snapshots.grpc.pb.h"
#include "tests/common/server_fixture.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::StatusIs;

// The server's peak resident memory (VmHWM) in bytes.
int64_t PeakRss(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

v1::Point MakePoint(const std::string& id, uint32_t dim, int seed) {
  v1::Point p;
  p.set_id(id);
  auto* v = (*p.mutable_vectors())["v"].mutable_values();
  uint32_t x = static_cast<uint32_t>(seed) * 2654435761u + 1;
  for (uint32_t d = 0; d < dim; ++d) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    v->Add(static_cast<float>(x % 1000) / 1000.0f);
  }
  (*p.mutable_attributes())["n"].set_int_value(seed);
  (*p.mutable_attributes())["s"].set_string_value(absl::StrCat("v", seed % 100));
  return p;
}

v1::UpsertPointsRequest Batch(const std::string& coll, uint32_t dim, int first, int n) {
  v1::UpsertPointsRequest req;
  req.set_collection(coll);
  for (int i = first; i < first + n; ++i) *req.add_points() = MakePoint(absl::StrCat("p", i), dim, i);
  return req;
}

// ~2,600 OR-ed branches of a range and a string inequality, which neither
// merge into an IN list nor dispatch on an equality: seconds of filter
// work over 100,000 rows, matching nothing.
std::string HeavyFilter() {
  std::vector<std::string> parts;
  size_t size = 0;
  for (int i = 0; size < 60000; ++i) {
    parts.push_back(absl::StrCat("(n < ", -1 - i, " AND s != \"x\")"));
    size += parts.back().size() + 4;
  }
  return absl::StrJoin(parts, " OR ");
}

class WriteLimitsE2eTest : public ::quiver::testing::ServerFixture {
 protected:
  void Create(const std::string& name, uint32_t dim, const std::string& index = "FLAT",
              std::map<std::string, std::string> params = {}) {
    v1::CollectionSchema s;
    v1::VectorField f = ::quiver::testing::VectorField("v", dim);
    f.mutable_index()->set_type(index);
    f.mutable_index()->mutable_params()->insert(params.begin(), params.end());
    *s.add_vectors() = f;
    *s.add_attributes() = ::quiver::testing::Attribute("n", v1::INT64);
    *s.add_attributes() = ::quiver::testing::Attribute("s", v1::STRING);
    QUIVER_ASSERT_OK(client_->CreateCollection(name, s));
  }

  bool Has(const std::string& coll, const std::string& id) {
    v1::GetPointsRequest get;
    get.set_collection(coll);
    get.add_ids(id);
    auto got = client_->GetPoints(get);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() && got->points_size() == 1;
  }

  v1::SearchRequest OneQuery(const std::string& coll, uint32_t dim) {
    v1::SearchRequest s;
    s.set_collection(coll);
    s.set_k(5);
    *s.add_vectors() = MakePoint("q", dim, 7).vectors().at("v");
    return s;
  }
};

// Two heavy searches hold Search's two slots: a third search is refused at
// once, naming the flag, while other methods go on; once they end,
// searches are answered again.
TEST_F(WriteLimitsE2eTest, MethodConcurrencyCapRefusesTheExcessAtOnce) {
  StartServer({"--segment-max-rows", "200000", "--seal-idle-ms", "86400000",
               "--method-concurrency", "Search=2"});
  constexpr uint32_t kDim = 4;
  Create("c", kDim);
  for (int first = 0; first < 100000; first += 5000) {
    QUIVER_ASSERT_OK(client_->Upsert(Batch("c", kDim, first, 5000)));
  }
  v1::SearchRequest heavy = OneQuery("c", kDim);
  heavy.set_filter(HeavyFilter());
  auto stub = v1::SearchService::NewStub(client_->channel());
  grpc::ClientContext ctx[2];
  std::vector<std::thread> threads;
  std::atomic<int> finished{0};
  grpc::Status heavy_status[2];
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      v1::SearchResponse resp;
      heavy_status[i] = stub->Search(&ctx[i], heavy, &resp);
      finished.fetch_add(1);
    });
  }
  absl::SleepFor(absl::Milliseconds(400));
  const absl::Time t0 = absl::Now();
  const auto third = client_->Search(OneQuery("c", kDim));
  const absl::Duration took = absl::Now() - t0;
  const auto count = client_->Count("c");
  const int done_meanwhile = finished.load();
  for (auto& c : ctx) c.TryCancel();
  for (auto& t : threads) t.join();
  ASSERT_EQ(done_meanwhile, 0) << "the heavy searches ended too soon to test this: "
                               << heavy_status[0].error_message();
  EXPECT_THAT(third, StatusIs(absl::StatusCode::kResourceExhausted,
                              "too many concurrent Search requests"));
  EXPECT_THAT(third, StatusIs(absl::StatusCode::kResourceExhausted,
                              "--method-concurrency=Search=2"));
  EXPECT_LT(took, absl::Seconds(1)) << "refused, but not at once";
  QUIVER_ASSERT_OK(count);
  EXPECT_EQ(*count, 100000u);
  // The cancelled searches give their slots back.
  absl::StatusOr<v1::SearchResponse> again;
  for (int i = 0; i < 50; ++i) {
    again = client_->Search(OneQuery("c", kDim));
    if (again.ok()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  QUIVER_ASSERT_OK(again);
  EXPECT_EQ(again->results(0).hits_size(), 5);
}

// SnapshotService's methods are known to --method-concurrency and capped
// like the others: an open restore stream holds RestoreSnapshot's one slot.
TEST_F(WriteLimitsE2eTest, SnapshotMethodsAreCappedToo) {
  StartServer({"--method-concurrency", "RestoreSnapshot=1,DownloadSnapshot=2"});
  auto stub = v1::SnapshotService::NewStub(client_->channel());
  grpc::ClientContext held;
  v1::RestoreSnapshotResponse held_resp;
  auto writer = stub->RestoreSnapshot(&held, &held_resp);
  v1::RestoreSnapshotRequest first;
  first.set_new_collection("r");
  ASSERT_TRUE(writer->Write(first));
  grpc::Status second;
  const absl::Time until = absl::Now() + absl::Seconds(10);
  do {
    grpc::ClientContext ctx;
    v1::RestoreSnapshotResponse resp;
    auto w = stub->RestoreSnapshot(&ctx, &resp);
    w->WritesDone();
    second = w->Finish();
  } while (second.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED && absl::Now() < until);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << second.error_message();
  EXPECT_NE(second.error_message().find("--method-concurrency=RestoreSnapshot=1"),
            std::string::npos)
      << second.error_message();
  QUIVER_ASSERT_OK(client_->ListCollections());  // other methods go on
  held.TryCancel();
  (void)writer->Finish();
  // The slot comes back: a restore gets past the cap (and fails on its
  // content: it names no snapshot and uploads nothing).
  grpc::Status again;
  for (int i = 0; i < 50; ++i) {
    grpc::ClientContext ctx;
    v1::RestoreSnapshotResponse resp;
    auto w = stub->RestoreSnapshot(&ctx, &resp);
    // Refused at the cap, the call ends before the client writes (Write
    // then returns false); Finish has the status either way.
    (void)w->Write(first);
    w->WritesDone();
    again = w->Finish();
    if (again.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_NE(again.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << again.error_message();
}

// Upserts past --memory-budget-mb are refused (in every collection) and
// change nothing; reads, deletes and drops go on, and a drop brings writes
// back. The server never comes near an OOM kill.
TEST_F(WriteLimitsE2eTest, MemoryBudgetRefusesUpsertsUntilADropFreesMemory) {
  StartServer({"--memory-budget-mb", "24"});
  constexpr uint32_t kDim = 256;  // ~1 KiB per row
  Create("a", kDim);
  Create("b", kDim);
  int next = 0;
  absl::Status refused;
  for (int i = 0; i < 200; ++i) {
    refused = client_->Upsert(Batch("a", kDim, next, 1000)).status();
    if (!refused.ok()) break;
    next += 1000;
  }
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kResourceExhausted, "--memory-budget-mb=24"));
  EXPECT_GT(next, 5000);
  EXPECT_LE(next, 24000);
  EXPECT_FALSE(Has("a", absl::StrCat("p", next)));
  EXPECT_EQ(*client_->Count("a"), static_cast<uint64_t>(next));
  // The budget is the server's: another collection is refused too (after
  // at most a batch or two: a fresh measure counts a growing segment by
  // whole chunks, the account by rows).
  int b_rows = 0;
  absl::Status b;
  for (int i = 0; i < 3 && b.ok(); ++i) {
    b = client_->Upsert(Batch("b", kDim, b_rows, 1000)).status();
    if (b.ok()) b_rows += 1000;
  }
  EXPECT_THAT(b, StatusIs(absl::StatusCode::kResourceExhausted, "--memory-budget-mb=24"));
  EXPECT_EQ(*client_->Count("b"), static_cast<uint64_t>(b_rows));
  EXPECT_EQ(*client_->Count("a"), static_cast<uint64_t>(next));
  QUIVER_ASSERT_OK(client_->Health());
  auto found = client_->Search(OneQuery("a", kDim));
  QUIVER_ASSERT_OK(found);
  EXPECT_EQ(found->results(0).hits_size(), 5);

  v1::DeletePointsRequest del;
  del.set_collection("a");
  del.add_ids("p1");
  QUIVER_ASSERT_OK(client_->Delete(del));
  QUIVER_ASSERT_OK(client_->DropCollection("a"));
  QUIVER_ASSERT_OK(client_->Upsert(Batch("b", kDim, b_rows, 1000)));
  EXPECT_EQ(*client_->Count("b"), static_cast<uint64_t>(b_rows + 1000));
}

// A request that would take far more memory to run than it weighs is
// refused before the work starts: the server's peak memory does not grow.
TEST_F(WriteLimitsE2eTest, RequestMemoryIsRefusedBeforeTheWorkStarts) {
  StartServer({"--max-request-memory-mb", "64"});
  v1::CollectionSchema schema;
  v1::VectorField f = ::quiver::testing::VectorField("m", 4, v1::IP);
  f.mutable_multi_vector()->set_max_vectors_per_point(16);
  *schema.add_vectors() = f;
  QUIVER_ASSERT_OK(client_->CreateCollection("m", schema));
  auto batch = [](int n) {
    v1::UpsertPointsRequest req;
    req.set_collection("m");
    for (int i = 0; i < n; ++i) {
      v1::Point* p = req.add_points();
      p->set_id(absl::StrCat("m", i));
      auto* v = (*p->mutable_multi_vectors())["m"].add_vectors()->mutable_values();
      for (int d = 0; d < 4; ++d) v->Add(static_cast<float>(1 + (i + d) % 3));
    }
    return req;
  };
  QUIVER_ASSERT_OK(client_->Upsert(batch(500)));
  const int64_t rss_before = PeakRss(server_->pid());
  // ~1.6 MB on the wire, 30,000 encodings of 2,048 floats to bind.
  EXPECT_THAT(client_->Upsert(batch(30000)),
              StatusIs(absl::StatusCode::kResourceExhausted, "--max-request-memory-mb=64"));
  EXPECT_EQ(*client_->Count("m"), 500u);
  // 1,024 query sets x 65,536 candidates each.
  v1::SearchRequest search;
  search.set_collection("m");
  search.set_k(64);
  search.mutable_params()->set_refine_factor(1024);
  for (int q = 0; q < 1024; ++q) {
    auto* v = search.add_multi_vectors()->add_vectors()->mutable_values();
    for (int d = 0; d < 4; ++d) v->Add(1.0f);
  }
  EXPECT_THAT(client_->Search(search),
              StatusIs(absl::StatusCode::kResourceExhausted, "--max-request-memory-mb=64"));
  EXPECT_LT(PeakRss(server_->pid()) - rss_before, 64 << 20);
  search.set_k(5);
  search.mutable_params()->set_refine_factor(0);
  auto ok = client_->Search(search);
  QUIVER_ASSERT_OK(ok);
  EXPECT_EQ(ok->results_size(), 1024);
}

// While index builds fall behind a fast importer, its upserts are first
// slowed and then refused with UNAVAILABLE, a retry hint and the flag's
// name; searches go on meanwhile, and once the builds catch up writes are
// accepted again without anyone intervening.
TEST_F(WriteLimitsE2eTest, WriteBackpressureSlowsThenRefusesThenRecovers) {
  StartServer({"--segment-max-rows", "2000", "--max-unindexed-rows", "5000",
               "--max-write-delay-ms", "300", "--index-build-workers", "1",
               "--index-build-threads", "1"});
  constexpr uint32_t kDim = 256;
  // Slow builds: about a second or more per 2,000-row segment.
  Create("c", kDim, "HNSW", {{"M", "48"}, {"ef_construction", "1000"}});
  auto stub = v1::PointService::NewStub(client_->channel());
  int next = 0;
  absl::Duration slowest_ok;
  grpc::Status refused;
  std::string retry_after;
  for (int i = 0; i < 400; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::UpsertPointsResponse resp;
    const absl::Time t0 = absl::Now();
    grpc::Status s = stub->UpsertPoints(&ctx, Batch("c", kDim, next, 500), &resp);
    const absl::Duration took = absl::Now() - t0;
    if (!s.ok()) {
      refused = s;
      auto it = ctx.GetServerTrailingMetadata().find("retry-after-ms");
      if (it != ctx.GetServerTrailingMetadata().end()) {
        retry_after = std::string(it->second.data(), it->second.size());
      }
      break;
    }
    slowest_ok = std::max(slowest_ok, took);
    next += 500;
  }
  ASSERT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
  EXPECT_THAT(refused.error_message(), ::testing::HasSubstr("--max-unindexed-rows=5000"));
  EXPECT_THAT(refused.error_message(), ::testing::HasSubstr("retry in about"));
  ASSERT_FALSE(retry_after.empty()) << "no retry-after-ms trailer";
  EXPECT_GE(std::stoll(retry_after), 100);
  // Between half the limit and the limit (4,000 rows waiting) writes were
  // held back: 300 ms x 0.6.
  EXPECT_GE(slowest_ok, absl::Milliseconds(150));
  // Nothing of the refused batch is there; everything acknowledged is.
  EXPECT_EQ(*client_->Count("c"), static_cast<uint64_t>(next));
  EXPECT_FALSE(Has("c", absl::StrCat("p", next)));
  EXPECT_TRUE(Has("c", absl::StrCat("p", next - 1)));
  auto found = client_->Search(OneQuery("c", kDim));
  QUIVER_ASSERT_OK(found);
  EXPECT_EQ(found->results(0).hits_size(), 5);

  // The builds catch up on their own; retried as the hint says, the write
  // goes through.
  absl::Status again;
  for (int i = 0; i < 120; ++i) {
    again = client_->Upsert(Batch("c", kDim, next, 500)).status();
    if (again.ok() || again.code() != absl::StatusCode::kUnavailable) break;
    absl::SleepFor(absl::Milliseconds(500));
  }
  QUIVER_ASSERT_OK(again);
  EXPECT_EQ(*client_->Count("c"), static_cast<uint64_t>(next + 500));
}

}  // namespace
}  // namespace quiver
