// quiverd's Prometheus metrics (--metrics-listen) and recall audit
// (--recall-audit-rate), from the outside: a real quiverd on loopback,
// load through the C++ client, /metrics scraped over HTTP, the output
// checked by `promtool check metrics`, and a real Prometheus (Debian's
// prometheus binary, started here with its own config) scraping quiverd and
// answering a query through its HTTP API.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "client/client.h"
#include "quiver/v1/snapshots.grpc.pb.h"
#include "tests/common/http_get.h"
#include "tests/common/quiverd_process.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::HttpGet;
using ::quiver::testing::PickFreePort;
using ::quiver::testing::QuiverdOptions;
using ::quiver::testing::QuiverdProcess;
using ::quiver::testing::TempDir;

// Samples of the text exposition format: "name{labels}" -> value, with the
// labels in the order printed (prometheus-cpp sorts them by name).
using Samples = std::map<std::string, double>;

Samples Parse(const std::string& text) {
  Samples out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    if (sp == absl::string_view::npos) continue;
    double v = 0;
    const std::string value(line.substr(sp + 1));
    if (value == "+Inf") v = INFINITY;
    else if (!absl::SimpleAtod(value, &v)) continue;
    out[std::string(line.substr(0, sp))] = v;
  }
  return out;
}

std::optional<double> Get(const Samples& s, const std::string& key) {
  auto it = s.find(key);
  if (it == s.end()) return std::nullopt;
  return it->second;
}

// Runs a shell command; its exit status and output (stdout and stderr).
std::pair<int, std::string> RunShell(const std::string& cmd) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, ""};
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) out.append(buf, n);
  const int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

constexpr uint32_t kDim = 16;
constexpr int kPoints = 2000;

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    metrics_port_ = PickFreePort();
    ASSERT_NE(metrics_port_, 0);
    QuiverdOptions o;
    o.capture_log = true;
    o.extra_args = {"--metrics-listen", absl::StrCat("127.0.0.1:", metrics_port_),
                    "--recall-audit-rate", "1", "--recall-audit-cpu", "0.5",
                    "--seal-idle-ms", "100"};
    server_ = std::make_unique<QuiverdProcess>(o);
    QUIVER_ASSERT_OK(server_->Start());
    client_ = std::make_unique<client::Client>(server_->address());
  }

  // `n` random points in collection `name` (HNSW, L2), all indexed on return.
  void CreateAndLoad(const std::string& name, int n) {
    v1::CollectionSchema s;
    v1::VectorField f = ::quiver::testing::VectorField("v", kDim);
    f.mutable_index()->set_type("HNSW");
    *s.add_vectors() = f;
    QUIVER_ASSERT_OK(client_->CreateCollection(name, s));
    std::mt19937 rng(7);
    std::normal_distribution<float> g;
    v1::UpsertPointsRequest req;
    req.set_collection(name);
    for (int i = 0; i < n; ++i) {
      v1::Point* p = req.add_points();
      p->set_id(absl::StrCat("p", i));
      auto* v = (*p->mutable_vectors())["v"].mutable_values();
      for (uint32_t d = 0; d < kDim; ++d) v->Add(g(rng));
    }
    QUIVER_ASSERT_OK(client_->Upsert(req));
    const absl::Time until = absl::Now() + absl::Seconds(120);
    for (;;) {
      absl::StatusOr<v1::CollectionInfo> info = client_->GetCollection(name);
      QUIVER_ASSERT_OK(info);
      bool indexed = info->stats().segments_size() > 0;
      for (const auto& seg : info->stats().segments()) {
        indexed = indexed && seg.state() == v1::SegmentInfo::INDEXED;
      }
      if (indexed) break;
      ASSERT_LT(absl::Now(), until) << "segments not indexed";
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  v1::SearchRequest Query(const std::string& name, int seed, bool exact = false) {
    std::mt19937 rng(1000 + seed);
    std::normal_distribution<float> g;
    v1::SearchRequest req;
    req.set_collection(name);
    req.set_field("v");
    req.set_k(10);
    auto* v = req.add_vectors()->mutable_values();
    for (uint32_t d = 0; d < kDim; ++d) v->Add(g(rng));
    if (exact) req.mutable_params()->set_exact(true);
    return req;
  }

  Samples Scrape() {
    absl::StatusOr<std::string> body = HttpGet(metrics_port_, "/metrics");
    EXPECT_TRUE(body.ok()) << body.status();
    last_text_ = body.ok() ? *body : "";
    return Parse(last_text_);
  }

  int metrics_port_ = 0;
  std::unique_ptr<QuiverdProcess> server_;
  std::unique_ptr<client::Client> client_;
  std::string last_text_;
};

TEST_F(MetricsTest, CountsMoveWithTheLoadAndPromtoolAcceptsThem) {
  CreateAndLoad("m", kPoints);
  ASSERT_NO_FATAL_FAILURE(CreateAndLoad("gone", 50));
  constexpr int kSearches = 40;
  // Every other search asks for a recall instead of using the default ef.
  for (int i = 0; i < kSearches; ++i) {
    v1::SearchRequest req = Query("m", i);
    if (i % 2 == 1) req.mutable_params()->set_target_recall(0.95f);
    QUIVER_ASSERT_OK(client_->Search(req));
  }
  EXPECT_FALSE(client_->Search(Query("nope", 0)).ok());
  v1::DeletePointsRequest del;
  del.set_collection("m");
  for (int i = 0; i < 100; ++i) del.add_ids(absl::StrCat("p", i));
  QUIVER_ASSERT_OK(client_->Delete(del));

  // Every sampled search is audited or, when the queue was full, dropped,
  // or skipped while audits paused for their CPU budget (half a core here:
  // an audit over 2,000 points is far shorter than a search's round trip,
  // so few are). The audit thread runs at SCHED_IDLE: on a busy machine it
  // waits.
  Samples s;
  const std::string audited_key = R"(quiver_recall_audit_searches_total{collection="m",field="v"})";
  const absl::Time until = absl::Now() + absl::Seconds(180);
  for (;;) {
    s = Scrape();
    const double done = Get(s, audited_key).value_or(0) +
                        Get(s, "quiver_recall_audit_dropped_total").value_or(0) +
                        Get(s, "quiver_recall_audit_skipped_total").value_or(0) +
                        Get(s, "quiver_recall_audit_failed_total").value_or(0);
    if (done >= kSearches) break;
    ASSERT_LT(absl::Now(), until) << "audits did not finish: " << done;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(Get(s, "quiver_recall_audit_failed_total"), 0);
  EXPECT_EQ(Get(s, "quiver_recall_audit_rate"), 1);
  EXPECT_EQ(Get(s, "quiver_recall_audit_cpu_share"), 0.5);
  EXPECT_TRUE(Get(s, "quiver_recall_audit_skipped_total").has_value()) << last_text_;
  const double audited = *Get(s, audited_key);
  EXPECT_GE(audited, 1);
  const std::optional<double> recall = Get(s, R"(quiver_recall_audit{collection="m",field="v"})");
  ASSERT_TRUE(recall.has_value()) << last_text_;
  // HNSW with its default ef over 2,000 points finds nearly all of the top 10.
  EXPECT_GE(*recall, 0.9);
  EXPECT_LE(*recall, 1.0);

  // The API reports the same audit.
  absl::StatusOr<v1::CollectionInfo> info = client_->GetCollection("m");
  QUIVER_ASSERT_OK(info);
  EXPECT_EQ(static_cast<double>(info->stats().vectors(0).recall_audit_searches()), audited);
  EXPECT_DOUBLE_EQ(info->stats().vectors(0).recall_audit(), *recall);

  // The searches that asked for a recall: the target they asked for beside
  // what they achieved, in the metrics and the API alike.
  const std::optional<double> targeted =
      Get(s, R"(quiver_recall_audit_target_searches_total{collection="m",field="v"})");
  ASSERT_TRUE(targeted.has_value()) << last_text_;
  EXPECT_GE(*targeted, 1);
  EXPECT_LE(*targeted, audited);
  EXPECT_NEAR(*Get(s, R"(quiver_recall_audit_target{collection="m",field="v"})"), 0.95, 1e-6);
  const std::optional<double> achieved =
      Get(s, R"(quiver_recall_audit_target_achieved{collection="m",field="v"})");
  ASSERT_TRUE(achieved.has_value());
  EXPECT_GE(*achieved, 0.85);
  EXPECT_LE(*achieved, 1.0);
  EXPECT_EQ(static_cast<double>(info->stats().vectors(0).recall_audit_target_searches()),
            *targeted);
  EXPECT_DOUBLE_EQ(info->stats().vectors(0).recall_audit_target_achieved(), *achieved);

  // RPCs by method and code.
  EXPECT_EQ(Get(s, R"(quiver_rpc_requests_total{code="OK",method="Search"})"), kSearches);
  EXPECT_EQ(Get(s, R"(quiver_rpc_requests_total{code="NOT_FOUND",method="Search"})"), 1);
  EXPECT_EQ(Get(s, R"(quiver_rpc_duration_seconds_count{code="OK",method="Search"})"), kSearches);
  EXPECT_EQ(Get(s, R"(quiver_rpc_requests_total{code="OK",method="UpsertPoints"})"), 2);
  EXPECT_EQ(Get(s, R"(quiver_rpc_in_flight{method="Search"})"), 0);
  EXPECT_GT(Get(s, R"(quiver_rpc_request_bytes_total{code="OK",method="UpsertPoints"})")
                .value_or(0),
            kPoints * kDim * 4);
  EXPECT_GT(Get(s, R"(quiver_rpc_response_bytes_total{code="OK",method="Search"})").value_or(0),
            kSearches * 10 * 3);

  // Collections and fields.
  EXPECT_EQ(Get(s, R"(quiver_collection_points{collection="m"})"), kPoints - 100);
  EXPECT_EQ(Get(s, R"(quiver_collection_deleted_points{collection="m"})"), 100);
  EXPECT_EQ(Get(s, R"(quiver_collection_compaction_debt_rows{collection="m"})"), 100);
  EXPECT_GT(Get(s, R"(quiver_collection_compaction_debt_bytes{collection="m"})").value_or(0), 0);
  EXPECT_GE(Get(s, R"(quiver_collection_segments{collection="m",state="indexed"})").value_or(0),
            1);
  EXPECT_EQ(Get(s, R"(quiver_collection_segments{collection="m",state="growing"})"), 0);
  EXPECT_GT(Get(s, R"(quiver_field_memory_bytes{collection="m",field="v"})").value_or(0),
            kPoints * kDim * 4);
  EXPECT_GE(Get(s, R"(quiver_index_builds_total{collection="m",field="v"})").value_or(0), 1);
  EXPECT_GT(Get(s, R"(quiver_index_build_seconds_total{collection="m",field="v"})").value_or(0),
            0);
  EXPECT_EQ(Get(s, R"(quiver_index_build_pending_segments{collection="m",field="v"})"), 0);
  EXPECT_EQ(Get(s, R"(quiver_collection_points{collection="gone"})"), 50);
  EXPECT_EQ(Get(s, "quiver_collections"), 2);

  // Planner, RocksDB, process.
  // The plain searches go through the index; those asking for a recall may
  // scan a segment this small exactly instead (cheaper, recall 1).
  EXPECT_GE(Get(s, R"(quiver_planner_segment_searches_total{strategy="index"})").value_or(0),
            kSearches / 2);
  EXPECT_GE(Get(s, R"(quiver_planner_segment_searches_total{strategy="index"})").value_or(0) +
                Get(s, R"(quiver_planner_segment_searches_total{strategy="exact_scan"})")
                    .value_or(0),
            kSearches);
  EXPECT_GT(Get(s, "quiver_rocksdb_wal_bytes_total").value_or(0), kPoints * kDim * 4);
  EXPECT_GE(Get(s, "quiver_rocksdb_wal_syncs_total").value_or(0), 1);
  EXPECT_TRUE(Get(s, "quiver_rocksdb_pending_compaction_bytes").has_value());
  EXPECT_GT(Get(s, "quiver_rocksdb_block_cache_capacity_bytes").value_or(0), 0);
  EXPECT_TRUE(Get(s, "quiver_rocksdb_write_stall_seconds_total").has_value());
  EXPECT_GT(Get(s, "process_resident_memory_bytes").value_or(0), 1 << 20);
  EXPECT_GT(Get(s, "process_open_fds").value_or(0), 3);
  EXPECT_GT(Get(s, "process_threads").value_or(0), 2);

  // Exact searches are not audited.
  for (int i = 0; i < 5; ++i) QUIVER_ASSERT_OK(client_->Search(Query("m", i, /*exact=*/true)));
  absl::SleepFor(absl::Milliseconds(300));
  s = Scrape();
  EXPECT_EQ(Get(s, audited_key), audited);
  EXPECT_EQ(Get(s, R"(quiver_rpc_requests_total{code="OK",method="Search"})"), kSearches + 5);

  // A dropped collection leaves the output.
  QUIVER_ASSERT_OK(client_->DropCollection("gone"));
  s = Scrape();
  EXPECT_EQ(last_text_.find("collection=\"gone\""), std::string::npos);
  EXPECT_EQ(Get(s, "quiver_collections"), 1);

  // promtool, Prometheus's own checker, accepts the output.
  if (RunShell("command -v promtool").first != 0) GTEST_SKIP() << "promtool is not installed";
  TempDir tmp;
  const std::string file = tmp.path() + "/metrics.txt";
  std::ofstream(file) << last_text_;
  const auto [code, out] = RunShell(absl::StrCat("promtool check metrics < ", file));
  EXPECT_EQ(code, 0) << out;
}

// A child process, SIGTERM'd and reaped when the object goes away.
class Child {
 public:
  explicit Child(std::vector<std::string> argv, const std::string& log) {
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = freopen(log.c_str(), "w", stdout);
      (void)f;
      dup2(STDOUT_FILENO, STDERR_FILENO);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      usleep(100000);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool started() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
};

TEST_F(MetricsTest, PrometheusScrapesQuiverd) {
  const std::string prometheus = "/usr/bin/prometheus";
  if (access(prometheus.c_str(), X_OK) != 0) {
    GTEST_SKIP() << "Prometheus is not installed (" << prometheus
                 << "); deploy/install-deps.sh installs Debian's prometheus package";
  }
  CreateAndLoad("m", 500);
  for (int i = 0; i < 10; ++i) QUIVER_ASSERT_OK(client_->Search(Query("m", i)));

  TempDir tmp;
  const int web_port = PickFreePort();
  ASSERT_NE(web_port, 0);
  const std::string config = tmp.path() + "/prometheus.yml";
  std::ofstream(config) << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                        << "scrape_configs:\n  - job_name: quiverd\n    static_configs:\n"
                        << "      - targets: ['127.0.0.1:" << metrics_port_ << "']\n";
  const std::string log = tmp.path() + "/prometheus.log";
  Child child({prometheus, "--config.file=" + config, "--storage.tsdb.path=" + tmp.path() + "/tsdb",
               absl::StrCat("--web.listen-address=127.0.0.1:", web_port)},
              log);
  ASSERT_TRUE(child.started());

  // The query goes through Prometheus's HTTP API; the value arrives once
  // Prometheus is up and has scraped quiverd.
  const std::string query = "/api/v1/query?query=quiver_collection_points%7Bcollection%3D%22m%22%7D";
  const absl::Time until = absl::Now() + absl::Seconds(90);
  std::string last;
  for (;;) {
    absl::StatusOr<std::string> body = HttpGet(web_port, query);
    if (body.ok()) {
      last = *body;
      // {"status":"success","data":{"resultType":"vector","result":[{"metric":{...},
      //  "value":[1700000000.123,"500"]}]}}
      if (last.find("\"job\":\"quiverd\"") != std::string::npos &&
          last.find(",\"500\"]") != std::string::npos) {
        break;
      }
    } else {
      last = std::string(body.status().message());
    }
    ASSERT_LT(absl::Now(), until) << "Prometheus did not report the value; last answer: "
                                  << last << "\nlog: " << ::quiver::testing::FileTail(log);
    absl::SleepFor(absl::Milliseconds(250));
  }
  EXPECT_NE(last.find("\"status\":\"success\""), std::string::npos) << last;

  // A counter that Prometheus reads back as it moved.
  const std::string searches =
      "/api/v1/query?query=quiver_rpc_requests_total%7Bmethod%3D%22Search%22%2Ccode%3D%22OK%22%7D";
  const absl::Time until2 = absl::Now() + absl::Seconds(60);
  for (;;) {
    absl::StatusOr<std::string> body = HttpGet(web_port, searches);
    if (body.ok() && body->find(",\"10\"]") != std::string::npos) break;
    ASSERT_LT(absl::Now(), until2) << (body.ok() ? *body : body.status().ToString());
    absl::SleepFor(absl::Milliseconds(250));
  }
}

// SnapshotService's RPCs have their series like the other services'.
TEST_F(MetricsTest, SnapshotRpcsAreCounted) {
  auto stub = v1::SnapshotService::NewStub(client_->channel());
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    v1::ListSnapshotsResponse resp;
    ASSERT_TRUE(stub->ListSnapshots(&ctx, {}, &resp).ok());
  }
  {
    grpc::ClientContext ctx;
    v1::DeleteSnapshotRequest req;
    req.set_name("no-such-snapshot");
    v1::DeleteSnapshotResponse resp;
    EXPECT_EQ(stub->DeleteSnapshot(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    v1::DownloadSnapshotRequest req;
    req.set_name("no-such-snapshot");
    auto reader = stub->DownloadSnapshot(&ctx, req);
    v1::DownloadSnapshotResponse chunk;
    while (reader->Read(&chunk)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  const Samples s = Scrape();
  EXPECT_EQ(Get(s, R"(quiver_rpc_requests_total{code="OK",method="ListSnapshots"})"), 2)
      << last_text_;
  EXPECT_EQ(Get(s, R"(quiver_rpc_requests_total{code="NOT_FOUND",method="DeleteSnapshot"})"), 1);
  EXPECT_EQ(Get(s, R"(quiver_rpc_requests_total{code="NOT_FOUND",method="DownloadSnapshot"})"),
            1);
  EXPECT_EQ(Get(s, R"(quiver_rpc_in_flight{method="DownloadSnapshot"})"), 0);
}

TEST(MetricsFlagsTest, BadMetricsAddressIsRefusedAtStart) {
  QuiverdOptions o;
  o.capture_log = true;
  // --allow-insecure: a non-loopback metrics address is refused before it is
  // parsed otherwise (server/auth.h CheckExposure).
  o.extra_args = {"--metrics-listen", "no-port-here", "--allow-insecure"};
  o.start_timeout = absl::Seconds(20);
  QuiverdProcess server(o);
  const absl::Status s = server.Start();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(std::string(s.message()).find("is not HOST:PORT"), std::string::npos) << s;
}

}  // namespace
}  // namespace quiver
