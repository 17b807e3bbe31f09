// quiverd under requests that cost far more than they weigh: responses past
// --max-message-bytes (refused before they are built), inputs echoed in
// error messages (cut short), expensive filters next to cheap requests
// (which must not wait for them), and cancelled or expired requests (whose
// work must stop).
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/client.h"
#include "tests/common/server_fixture.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;

// The server's CPU time so far (user + system), from /proc.
double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream rest(all.substr(all.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The server's peak resident memory (VmHWM) in bytes.
int64_t PeakRss(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

class LimitsTest : public ::quiver::testing::ServerFixture {
 protected:
  // `n` points of vector field "v" (dim) with INT64 n = i and STRING s.
  void Load(const std::string& coll, uint32_t dim, int n, int batch = 5000) {
    for (int first = 0; first < n; first += batch) {
      v1::UpsertPointsRequest req;
      req.set_collection(coll);
      for (int i = first; i < std::min(n, first + batch); ++i) {
        v1::Point* p = req.add_points();
        p->set_id(absl::StrCat("p", i));
        auto* v = (*p->mutable_vectors())["v"].mutable_values();
        for (uint32_t d = 0; d < dim; ++d) v->Add(static_cast<float>((i * 7 + d) % 13));
        (*p->mutable_attributes())["n"].set_int_value(i);
        (*p->mutable_attributes())["s"].set_string_value(absl::StrCat("v", i % 100));
      }
      QUIVER_ASSERT_OK(client_->Upsert(req));
    }
  }

  void CreatePlain(const std::string& coll, uint32_t dim) {
    v1::CollectionSchema s;
    *s.add_vectors() = ::quiver::testing::VectorField("v", dim);
    *s.add_attributes() = ::quiver::testing::Attribute("n", v1::INT64);
    *s.add_attributes() = ::quiver::testing::Attribute("s", v1::STRING);
    QUIVER_ASSERT_OK(client_->CreateCollection(coll, s));
  }
};

// A filter of about `bytes` bytes that costs a comparison per OR-ed branch
// on every row, matching nothing: ~2,600 branches of a range AND-ed with a
// string inequality, which neither merge into an IN list nor dispatch on an
// equality; a few seconds of CPU over 100,000 rows.
std::string HeavyFilter(size_t bytes) {
  std::vector<std::string> parts;
  size_t size = 0;
  for (int i = 0; size < bytes; ++i) {
    parts.push_back(absl::StrCat("(n < ", -1 - i, " AND s != \"x\")"));
    size += parts.back().size() + 4;
  }
  return absl::StrJoin(parts, " OR ");
}

v1::SearchRequest OneQuery(const std::string& coll, uint32_t dim, uint32_t k) {
  v1::SearchRequest s;
  s.set_collection(coll);
  s.set_k(k);
  auto* v = s.add_vectors()->mutable_values();
  for (uint32_t d = 0; d < dim; ++d) v->Add(1.0f);
  return s;
}

// A search whose response would dwarf --max-message-bytes is refused with
// RESOURCE_EXHAUSTED naming the flag, before the response is built: the
// server's peak memory does not grow by the response's size.
TEST_F(LimitsTest, OversizedSearchAndGetAreRefusedBeforeTheyAreBuilt) {
  StartServer({"--max-message-bytes", "1048576"});
  constexpr uint32_t kDim = 8192;  // 32 KiB per vector
  CreatePlain("c", kDim);
  Load("c", kDim, 300, 20);  // 640 KiB per request, under the limit
  const int64_t rss_before = PeakRss(server_->pid());
  // 20 queries x 300 hits x 32 KiB: ~200 MB of response.
  v1::SearchRequest s = OneQuery("c", kDim, 300);
  for (int q = 1; q < 20; ++q) *s.add_vectors() = s.vectors(0);
  s.set_with_vectors(true);
  const auto r = client_->Search(s);
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kResourceExhausted, "--max-message-bytes=1048576"));
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kResourceExhausted, "20 result lists x 300 hits"));
  EXPECT_LT(PeakRss(server_->pid()) - rss_before, 64 << 20);

  v1::GetPointsRequest get;
  get.set_collection("c");
  for (int i = 0; i < 300; ++i) get.add_ids(absl::StrCat("p", i));
  get.set_with_vectors(true);
  EXPECT_THAT(client_->GetPoints(get),
              StatusIs(absl::StatusCode::kResourceExhausted, "300 points found"));
  EXPECT_LT(PeakRss(server_->pid()) - rss_before, 64 << 20);

  // The same without vectors is small and answered.
  s.set_with_vectors(false);
  auto ok = client_->Search(s);
  QUIVER_ASSERT_OK(ok);
  EXPECT_EQ(ok->results(0).hits_size(), 300);
  get.set_with_vectors(false);
  QUIVER_ASSERT_OK(client_->GetPoints(get));
}

// Vector sets vary in size, so the estimate counts one vector per set; the
// response is also counted while it is filled and stops at the limit.
TEST_F(LimitsTest, VectorSetsPastTheLimitStopWhileFilling) {
  StartServer({"--max-message-bytes", "1048576"});
  constexpr uint32_t kDim = 64;
  v1::CollectionSchema schema;
  v1::VectorField f = ::quiver::testing::VectorField("m", kDim, v1::IP);
  f.mutable_multi_vector()->set_max_vectors_per_point(512);
  *schema.add_vectors() = f;
  QUIVER_ASSERT_OK(client_->CreateCollection("mv", schema));
  for (int i = 0; i < 30; ++i) {
    // One point per request: ~100 KiB, well under the 1 MiB limit.
    v1::UpsertPointsRequest up;
    up.set_collection("mv");
    v1::Point* p = up.add_points();
    p->set_id(absl::StrCat("m", i));
    v1::MultiVector& mv = (*p->mutable_multi_vectors())["m"];
    for (int j = 0; j < 400; ++j) {  // 400 x 64 floats: ~100 KiB per point
      auto* v = mv.add_vectors()->mutable_values();
      for (uint32_t d = 0; d < kDim; ++d) v->Add(static_cast<float>((i + j + d) % 5 + 1));
    }
    QUIVER_ASSERT_OK(client_->Upsert(up));
  }
  v1::SearchRequest s;
  s.set_collection("mv");
  s.set_k(30);
  s.set_with_vectors(true);
  auto* q = s.add_multi_vectors()->add_vectors()->mutable_values();
  for (uint32_t d = 0; d < kDim; ++d) q->Add(1.0f);
  EXPECT_THAT(client_->Search(s),
              StatusIs(absl::StatusCode::kResourceExhausted, "--max-message-bytes=1048576"));
  s.set_k(5);  // ~500 KiB: under the limit
  auto ok = client_->Search(s);
  QUIVER_ASSERT_OK(ok);
  EXPECT_EQ(ok->results(0).hits_size(), 5);
}

// A 60 KB identifier in a filter is echoed cut short: the client gets the
// INVALID_ARGUMENT (not its own RESOURCE_EXHAUSTED for an oversized
// trailer), saying that the name was cut and how long it was.
TEST_F(LimitsTest, ErrorMessagesEchoInputsCutShort) {
  StartServer();
  CreatePlain("c", 4);
  const std::string name(60000, 'a');
  const auto count = client_->Count("c", name + " = 1");
  EXPECT_THAT(count, StatusIs(absl::StatusCode::kInvalidArgument, "unknown attribute"));
  EXPECT_THAT(count, StatusIs(absl::StatusCode::kInvalidArgument, "60000 bytes, cut"));
  EXPECT_LT(count.status().message().size(), 1024u);

  const auto missing = client_->Count(name);  // a collection of that name
  EXPECT_THAT(missing, StatusIs(absl::StatusCode::kNotFound, "60000 bytes, cut"));
  EXPECT_LT(missing.status().message().size(), 1024u);

  v1::SearchRequest s = OneQuery("c", 4, 1);
  s.add_output_attributes(name);
  EXPECT_THAT(client_->Search(s), StatusIs(absl::StatusCode::kInvalidArgument, "bytes, cut"));
}

// A search whose deadline passes stops working: the server's CPU time stops
// growing right after the client got DEADLINE_EXCEEDED, though the filter
// alone would keep a core busy for seconds.
TEST_F(LimitsTest, ExpiredSearchStopsBurningCpu) {
  // One segment, never sealed meanwhile: no background work to measure.
  StartServer({"--segment-max-rows", "200000", "--seal-idle-ms", "86400000"});
  CreatePlain("c", 4);
  Load("c", 4, 100000);
  v1::SearchRequest s = OneQuery("c", 4, 10);
  s.set_filter(HeavyFilter(60000));
  auto stub = v1::SearchService::NewStub(client_->channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  v1::SearchResponse resp;
  EXPECT_THAT(client::FromGrpc(stub->Search(&ctx, s, &resp)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  // A stopped request is done within ~100 ms; give it a generous second.
  absl::SleepFor(absl::Seconds(1));
  const double cpu0 = CpuSeconds(server_->pid());
  absl::SleepFor(absl::Seconds(2));
  const double burned = CpuSeconds(server_->pid()) - cpu0;
  EXPECT_LT(burned, 0.5) << "the expired search kept running";
  // And the server still answers.
  EXPECT_EQ(*client_->Count("c"), 100000u);
}

// While expensive filtered searches run (more of them than cores), a plain
// count and a get answer at once instead of queueing behind them; the
// expensive ones, cancelled by their clients, stop.
TEST_F(LimitsTest, CheapRequestsAreNotStarvedByExpensiveOnes) {
  // One segment, never sealed meanwhile: no background work to measure.
  StartServer({"--segment-max-rows", "200000", "--seal-idle-ms", "86400000"});
  CreatePlain("c", 4);
  Load("c", 4, 100000);
  v1::SearchRequest heavy = OneQuery("c", 4, 10);
  heavy.set_filter(HeavyFilter(60000));
  constexpr int kHeavy = 6;
  std::vector<std::unique_ptr<grpc::ClientContext>> ctxs;
  for (int i = 0; i < kHeavy; ++i) ctxs.push_back(std::make_unique<grpc::ClientContext>());
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  auto stub = v1::SearchService::NewStub(client_->channel());
  for (int i = 0; i < kHeavy; ++i) {
    threads.emplace_back([&, i] {
      v1::SearchResponse resp;
      (void)stub->Search(ctxs[i].get(), heavy, &resp);
      finished.fetch_add(1);
    });
  }
  absl::SleepFor(absl::Milliseconds(500));  // let them start
  const absl::Time t0 = absl::Now();
  const auto count = client_->Count("c");
  v1::GetPointsRequest get;
  get.set_collection("c");
  get.add_ids("p7");
  const auto got = client_->GetPoints(get);
  const absl::Duration took = absl::Now() - t0;
  const int done_meanwhile = finished.load();
  for (auto& c : ctxs) c->TryCancel();
  for (auto& t : threads) t.join();
  QUIVER_ASSERT_OK(count);
  EXPECT_EQ(*count, 100000u);
  QUIVER_ASSERT_OK(got);
  EXPECT_EQ(got->points_size(), 1);
  // Six searches of seconds of CPU each on (at most) a few cores: a count
  // queued behind them would wait many seconds.
  EXPECT_LT(took, absl::Seconds(3));
  EXPECT_EQ(done_meanwhile, 0) << "the heavy searches were not heavy enough to test this";
  // The cancelled ones stop: CPU stops growing.
  absl::SleepFor(absl::Seconds(1));
  const double cpu0 = CpuSeconds(server_->pid());
  absl::SleepFor(absl::Seconds(2));
  EXPECT_LT(CpuSeconds(server_->pid()) - cpu0, 0.5) << "cancelled searches kept running";
}

}  // namespace
}  // namespace quiver
