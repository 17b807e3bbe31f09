// quiverd's choice of distance kernels (index/kernels.h) from the outside:
// the line it logs at start, QUIVER_CPU_FEATURES=baseline honoured (the
// server answers searches right on the baseline path, and the same data
// served with the default choice gives the same hits), and a bad value
// refused at start with one clear line.
#include <sys/wait.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "index/kernels.h"
#include "tests/common/quiverd_process.h"
#include "tests/common/random_vectors.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::QuiverdOptions;
using ::quiver::testing::QuiverdProcess;
using ::quiver::testing::TempDir;

constexpr uint32_t kDim = 40;
constexpr int kPoints = 1200;

std::vector<float> VectorOf(int i) { return ::quiver::testing::GaussianVector(i, kDim, 3); }

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// The log once it holds `line`, or as it is after 10 s. quiverd logs its
// kernel choice just after it starts serving (a refused start stays one
// line), so the line can come a moment after Start() sees it serve.
std::string LogWith(const std::string& path, const std::string& line) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  std::string log = ReadFile(path);
  while (log.find(line) == std::string::npos && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
    log = ReadFile(path);
  }
  return log;
}

QuiverdOptions Options(const std::string& data_dir, const std::string& features) {
  QuiverdOptions o;
  o.data_dir = data_dir;
  o.log_level = "info";
  o.capture_log = true;
  if (!features.empty()) o.env.push_back("QUIVER_CPU_FEATURES=" + features);
  // Small segments sealed fast, so searches go through built HNSW indexes.
  o.extra_args = {"--segment-max-rows", "400", "--seal-idle-ms", "100"};
  return o;
}

void Load(client::Client& c) {
  v1::CollectionSchema schema;
  *schema.add_vectors() = ::quiver::testing::VectorField("v", kDim);
  schema.mutable_vectors(0)->mutable_index()->set_type("HNSW");
  QUIVER_ASSERT_OK(c.CreateCollection("c", schema));
  v1::UpsertPointsRequest req;
  req.set_collection("c");
  for (int i = 0; i < kPoints; ++i) {
    v1::Point* p = req.add_points();
    p->set_id(absl::StrCat("p", i));
    const std::vector<float> v = VectorOf(i);
    (*p->mutable_vectors())["v"].mutable_values()->Add(v.begin(), v.end());
  }
  QUIVER_ASSERT_OK(c.Upsert(req));
}

void WaitIndexed(client::Client& c) {
  const absl::Time give_up = absl::Now() + absl::Seconds(120);
  for (;;) {
    auto info = c.GetCollection("c");
    ASSERT_TRUE(info.ok()) << info.status();
    bool done = info->stats().segments_size() >= kPoints / 400;
    for (const auto& seg : info->stats().segments()) {
      done = done && seg.state() == v1::SegmentInfo::INDEXED;
    }
    if (done) return;
    ASSERT_LT(absl::Now(), give_up) << info->stats().DebugString();
    absl::SleepFor(absl::Milliseconds(100));
  }
}

// Every 50th point's 10 nearest; each point finds itself first at 0.
std::vector<v1::SearchResult> Searches(client::Client& c) {
  std::vector<v1::SearchResult> out;
  for (int i = 0; i < kPoints; i += 50) {
    v1::SearchRequest req;
    req.set_collection("c");
    req.set_k(10);
    const std::vector<float> v = VectorOf(i);
    req.add_vectors()->mutable_values()->Add(v.begin(), v.end());
    auto r = c.Search(req);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return out;
    EXPECT_EQ(r->results(0).hits_size(), 10);
    if (r->results(0).hits_size() > 0) {
      EXPECT_EQ(r->results(0).hits(0).id(), absl::StrCat("p", i));
      EXPECT_NEAR(r->results(0).hits(0).score(), 0.0f, 1e-3);
    }
    out.push_back(r->results(0));
  }
  return out;
}

TEST(CpuFeaturesE2ETest, BaselineForcedAnswersAsTheDefault) {
  TempDir dir;
  const std::string data = dir.path() + "/data";
  std::vector<v1::SearchResult> on_baseline;
  {
    QuiverdProcess server(Options(data, "baseline"));
    QUIVER_ASSERT_OK(server.Start());
    const std::string want = "distance kernels: baseline (QUIVER_CPU_FEATURES=baseline)";
    const std::string log = LogWith(server.log_path(), want);
    EXPECT_NE(log.find(want), std::string::npos) << log;
    client::Client c(server.address());
    Load(c);
    WaitIndexed(c);
    on_baseline = Searches(c);
    QUIVER_ASSERT_OK(server.Stop());
  }
  // The same data and index files, served with the default choice.
  QuiverdProcess server(Options(data, ""));
  QUIVER_ASSERT_OK(server.Start());
  const std::string want = index::CpuHasAvx2() ? "distance kernels: avx2+fma (CPU has AVX2 and FMA)"
                                               : "distance kernels: baseline (CPU has no AVX2/FMA)";
  const std::string log = LogWith(server.log_path(), want);
  EXPECT_NE(log.find(want), std::string::npos) << log;
  client::Client c(server.address());
  WaitIndexed(c);
  const std::vector<v1::SearchResult> by_default = Searches(c);
  ASSERT_EQ(by_default.size(), on_baseline.size());
  for (size_t q = 0; q < by_default.size(); ++q) {
    ASSERT_EQ(by_default[q].hits_size(), on_baseline[q].hits_size());
    for (int h = 0; h < by_default[q].hits_size(); ++h) {
      EXPECT_EQ(by_default[q].hits(h).id(), on_baseline[q].hits(h).id()) << q << " " << h;
      EXPECT_NEAR(by_default[q].hits(h).score(), on_baseline[q].hits(h).score(),
                  1e-4 * (1 + std::abs(on_baseline[q].hits(h).score())));
    }
  }
  QUIVER_ASSERT_OK(server.Stop());
}

TEST(CpuFeaturesE2ETest, BadValueIsRefusedAtStart) {
  TempDir dir;
  QuiverdOptions o = Options(dir.path() + "/data", "sse9");
  o.start_timeout = absl::Seconds(20);
  QuiverdProcess server(o);
  EXPECT_FALSE(server.Start().ok());
  EXPECT_NE(ReadFile(server.log_path())
                .find("quiverd: QUIVER_CPU_FEATURES=sse9: expected auto, baseline or avx2"),
            std::string::npos)
      << ReadFile(server.log_path());
  ASSERT_TRUE(WIFEXITED(server.last_wait_status()));
  EXPECT_EQ(WEXITSTATUS(server.last_wait_status()), 2);
}

}  // namespace
}  // namespace quiver
