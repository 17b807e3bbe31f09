// SIGTERM while quiverd builds an index: the real server stops within a
// second or two, well inside `docker stop`'s 10 s (the build gives up
// instead of running to its end), with a graceful exit; after the restart
// every point is there and the index is built again.

#include <sys/types.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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

constexpr uint32_t kDim = 64;
constexpr int kPoints = 6000;

std::vector<float> VectorOf(int i) { return ::quiver::testing::GaussianVector(i, kDim, 3); }

class ShutdownE2ETest : public ::testing::Test {
 protected:
  v1::CollectionStats Stats() {
    auto info = client_->GetCollection("c");
    EXPECT_TRUE(info.ok()) << info.status();
    return info.ok() ? info->stats() : v1::CollectionStats();
  }
  bool AnySegment(v1::SegmentInfo::State state) {
    const v1::CollectionStats st = Stats();
    for (const auto& seg : st.segments()) {
      if (seg.state() == state) return true;
    }
    return false;
  }

  // Collection "c" with kPoints points whose HNSW build is slow on purpose
  // (many seconds on one thread), so tests can act while it runs.
  void CreateSlowCollection() {
    v1::CollectionSchema schema;
    *schema.add_vectors() = ::quiver::testing::VectorField("v", kDim);
    schema.mutable_vectors(0)->mutable_index()->set_type("HNSW");
    (*schema.mutable_vectors(0)->mutable_index()->mutable_params())["ef_construction"] = "1000";
    (*schema.mutable_vectors(0)->mutable_index()->mutable_params())["M"] = "48";
    QUIVER_ASSERT_OK(client_->CreateCollection("c", schema));
    for (int first = 0; first < kPoints; first += 500) {
      v1::UpsertPointsRequest req;
      req.set_collection("c");
      for (int i = first; i < first + 500; ++i) {
        v1::Point* p = req.add_points();
        p->set_id(absl::StrCat("p", i));
        auto v = VectorOf(i);
        (*p->mutable_vectors())["v"].mutable_values()->Add(v.begin(), v.end());
      }
      QUIVER_ASSERT_OK(client_->Upsert(req));
    }
  }

  TempDir dir_;
  std::string data_ = dir_.path() + "/data";
  QuiverdProcess server_{[] {
    QuiverdOptions o;
    o.log_level = "info";
    o.capture_log = true;
    o.stop_timeout = absl::Seconds(20);  // long enough to see a slow stop
    return o;
  }()};
  std::unique_ptr<client::Client> client_;
};

TEST_F(ShutdownE2ETest, SigtermDuringIndexBuildStopsPromptlyAndRebuildsAfterRestart) {
  QUIVER_ASSERT_OK(server_.Start(data_, {"--seal-idle-ms", "100", "--index-build-threads", "1",
                                         "--shutdown-grace-seconds", "5"}));
  client_ = std::make_unique<client::Client>(server_.address());
  ASSERT_NO_FATAL_FAILURE(CreateSlowCollection());
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (!AnySegment(v1::SegmentInfo::BUILDING)) {
    ASSERT_LT(absl::Now(), give_up) << Stats().DebugString();
    absl::SleepFor(absl::Milliseconds(20));
  }
  absl::SleepFor(absl::Milliseconds(300));  // well into the build
  ASSERT_TRUE(AnySegment(v1::SegmentInfo::BUILDING)) << "the build ended too soon to test";

  client_.reset();
  const absl::Time stop_start = absl::Now();
  QUIVER_ASSERT_OK(server_.Stop());  // SIGTERM; OK means exit code 0, no SIGKILL
  const absl::Duration stop_time = absl::Now() - stop_start;
  EXPECT_LT(stop_time, absl::Seconds(3));
  const std::string log = ::quiver::testing::FileTail(server_.log_path(), 20000);
  EXPECT_NE(log.find("index build stopped"), std::string::npos) << log;
  EXPECT_NE(log.find("shutdown complete"), std::string::npos) << log;

  // After the restart the segment is built again, from the start.
  QUIVER_ASSERT_OK(server_.Start(data_, {"--seal-idle-ms", "100", "--index-build-threads", "1",
                                         "--shutdown-grace-seconds", "5"}));
  client_ = std::make_unique<client::Client>(server_.address());
  const absl::Time rebuild_start = absl::Now();
  for (;;) {
    v1::CollectionStats st = Stats();
    bool indexed = st.segments_size() > 0;
    for (const auto& seg : st.segments()) {
      indexed = indexed && seg.state() == v1::SegmentInfo::INDEXED;
    }
    if (indexed) break;
    ASSERT_LT(absl::Now(), rebuild_start + absl::Seconds(300)) << st.DebugString();
    absl::SleepFor(absl::Milliseconds(50));
  }
  const absl::Duration rebuild_time = absl::Now() - rebuild_start;
  // The stop was prompt because the build gave up, not because it was short.
  EXPECT_GT(rebuild_time, 2 * stop_time) << "rebuild " << rebuild_time << ", stop " << stop_time;
  auto count = client_->Count("c");
  QUIVER_ASSERT_OK(count);
  EXPECT_EQ(*count, static_cast<uint64_t>(kPoints));
  for (int i = 0; i < kPoints; i += 997) {
    v1::SearchRequest req;
    req.set_collection("c");
    req.set_k(1);
    auto v = VectorOf(i);
    req.add_vectors()->mutable_values()->Add(v.begin(), v.end());
    auto r = client_->Search(req);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->results(0).hits_size(), 1);
    EXPECT_EQ(r->results(0).hits(0).id(), absl::StrCat("p", i));
  }
  client_.reset();
  QUIVER_ASSERT_OK(server_.Stop());
}

// The nice value of each of quiverd's threads (/proc/PID/task/TID/stat,
// field 19).
std::vector<int> ThreadNices(pid_t pid) {
  std::vector<int> nices;
  const std::string dir = absl::StrCat("/proc/", pid, "/task");
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::ifstream in(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream fields(stat.substr(close + 2));
    std::string f;
    // After the name: state (3) ... priority (18), nice (19).
    for (int i = 3; i <= 19 && fields >> f; ++i) {
      if (i == 19) nices.push_back(std::stoi(f));
    }
  }
  return nices;
}

int CountNice(pid_t pid, int nice) {
  const std::vector<int> all = ThreadNices(pid);
  return static_cast<int>(std::count(all.begin(), all.end(), nice));
}

// Builds run behind searches: the builder's worker threads, and the threads
// a build starts, run at nice 10; the rest of quiverd at 0.
TEST_F(ShutdownE2ETest, IndexBuildsRunAtALowerPriority) {
  QUIVER_ASSERT_OK(server_.Start(data_, {"--seal-idle-ms", "100", "--index-build-threads", "3",
                                         "--shutdown-grace-seconds", "5"}));
  client_ = std::make_unique<client::Client>(server_.address());
  const pid_t pid = server_.pid();
  // Idle: the one worker (--index-build-workers 1).
  const absl::Time start = absl::Now();
  while (CountNice(pid, 10) != 1 && absl::Now() < start + absl::Seconds(10)) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(CountNice(pid, 10), 1);
  EXPECT_GT(CountNice(pid, 0), 5);  // gRPC, the commit thread, ...
  ASSERT_NO_FATAL_FAILURE(CreateSlowCollection());
  // Building on 3 threads: the worker and the 2 insert threads it starts.
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  int most = 0;
  while (most < 3 && absl::Now() < give_up) {
    most = std::max(most, CountNice(pid, 10));
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_GE(most, 3) << Stats().DebugString();
  const std::string log = ::quiver::testing::FileTail(server_.log_path(), 20000);
  EXPECT_NE(log.find("index builds use 3 threads at nice 10"), std::string::npos) << log;
  client_.reset();
  QUIVER_ASSERT_OK(server_.Stop());
}

}  // namespace
}  // namespace quiver
