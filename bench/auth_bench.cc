// auth_bench: what do API keys (and TLS) cost a search?
//
// Starts four quiverd processes on the same data -- no access control
// (clients sending no key, and sending one that is not checked),
// --api-keys-file (with --keys keys in the file, so the constant-time scan
// compares against all of them), and API keys plus TLS (certificates made
// with the openssl command) -- loads the same random vectors into each (an
// HNSW field, so a search is cheap and any per-request overhead shows) and
// runs the same single-query searches against each, one server at a time,
// in rounds whose order rotates. Reports the median QPS per setup, the
// median of the per-round ratios to the open server, p50/p99 latency, and
// quiverd's CPU time per search (from /proc; on a shared, loaded machine
// it varies far less than QPS, which waits on everything else running).
// Target (issue 12): API keys cost at most 3% of search QPS.
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/common/driver.h"
#include "bench/common/report.h"
#include "bench/common/sysinfo.h"
#include "bench/common/testkit.h"
#include "client/api_key.h"
#include "client/client.h"
#include "tests/common/pki.h"

namespace quiver::bench {
namespace {

constexpr char kCollection[] = "auth";

struct Args {
  size_t rows = 20000;
  uint32_t dim = 64;
  size_t queries = 2000;
  int threads = 2;
  int rounds = 7;
  int keys = 100;
  uint32_t k = 10;
  std::string json_out;
};

struct Setup {
  std::string name;
  std::unique_ptr<QuiverdProcess> server;
  client::ClientOptions opts;
  std::vector<double> qps;
  std::vector<double> cpu_us;  // quiverd's CPU time per search, per round
  std::vector<double> latency_ms;
};

void Load(client::Client& c, const Args& a) {
  v1::CollectionSchema schema;
  auto* f = schema.add_vectors();
  f->set_name("v");
  f->set_dim(a.dim);
  f->set_metric(v1::L2);
  f->mutable_index()->set_type("HNSW");
  auto created = c.CreateCollection(kCollection, schema);
  if (!created.ok()) Die("create", created.status());
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  for (size_t first = 0; first < a.rows; first += 1000) {
    v1::UpsertPointsRequest req;
    req.set_collection(kCollection);
    for (size_t i = first; i < std::min(a.rows, first + 1000); ++i) {
      v1::Point* p = req.add_points();
      p->set_id(std::to_string(i));
      auto* v = (*p->mutable_vectors())["v"].mutable_values();
      for (uint32_t d = 0; d < a.dim; ++d) v->Add(nd(rng));
    }
    auto up = c.Upsert(req);
    if (!up.ok()) Die("upsert", up.status());
  }
  WaitIndexedOrDie(c, {kCollection}, 600, 200);
}

}  // namespace

int Main(int argc, char** argv) {
  Args a;
  CLI::App app{"auth_bench: search QPS with and without API keys (and TLS)"};
  app.add_option("--rows", a.rows, "points")->capture_default_str();
  app.add_option("--dim", a.dim, "dimension")->capture_default_str();
  app.add_option("--queries", a.queries, "single-query RPCs per setup per round")
      ->capture_default_str();
  app.add_option("--threads", a.threads, "client threads")->capture_default_str();
  app.add_option("--rounds", a.rounds, "interleaved rounds")->capture_default_str();
  app.add_option("--keys", a.keys, "keys in the API keys file")->capture_default_str();
  app.add_option("--json", a.json_out, "JSON output (default <exe dir>/bench_results/)");
  CLI11_PARSE(app, argc, argv);

  const std::string dir = (std::filesystem::temp_directory_path() /
                           absl::StrCat("quiver-auth-bench-", getpid()))
                              .string();
  std::filesystem::create_directories(dir);
  const std::string key = "qk_bench-admin-key";
  {
    std::ofstream keys(dir + "/keys");
    for (int i = 1; i < a.keys; ++i) {
      keys << client::ApiKeySha256Hex(absl::StrCat("qk_other-", i)) << " read\n";
    }
    keys << client::ApiKeySha256Hex(key) << " admin\n";
  }
  if (absl::Status s = testing::MakeTestPki(dir, "bench"); !s.ok()) Die("openssl", s);

  // "key sent, not checked" separates what the extra header costs (its
  // transport) from what checking it costs.
  std::vector<Setup> setups(4);
  setups[0].name = "no auth";
  setups[1].name = "no auth, key sent";
  setups[1].opts.api_key = key;
  setups[2].name = absl::StrCat("API keys (", a.keys, " in file)");
  setups[2].opts.api_key = key;
  setups[3].name = "API keys + TLS";
  setups[3].opts.api_key = key;
  if (absl::Status s = client::LoadClientTls(dir + "/bench-ca.crt", "", "", &setups[3].opts);
      !s.ok()) {
    Die("client TLS", s);
  }
  const std::vector<std::vector<std::string>> extra = {
      {},
      {},
      {"--api-keys-file", dir + "/keys"},
      {"--api-keys-file", dir + "/keys", "--tls-cert", dir + "/bench-server.crt", "--tls-key",
       dir + "/bench-server.key"}};
  // Loaded and indexed once; every server then opens its own copy of that
  // data directory, so all search the same index files (separately built
  // HNSW graphs differ, and so would their search costs).
  QuiverdOptions o = BenchQuiverdOptions();
  o.wait_healthy = false;  // the health client speaks plaintext
  {
    QuiverdProcess loader(o);
    if (absl::Status s = loader.Start(dir + "/data", {}); !s.ok()) Die("start quiverd", s);
    client::Client c(loader.address());
    Load(c, a);
    if (absl::Status s = loader.Stop(); !s.ok()) Die("stop quiverd", s);
  }
  for (size_t i = 0; i < setups.size(); ++i) {
    const std::string data = absl::StrCat(dir, "/data", i);
    std::filesystem::copy(dir + "/data", data, std::filesystem::copy_options::recursive);
    setups[i].server = std::make_unique<QuiverdProcess>(o);
    if (absl::Status s = setups[i].server->Start(data, extra[i]); !s.ok()) {
      Die("start quiverd", s);
    }
    client::Client c(setups[i].server->address(), setups[i].opts);
    WaitIndexedOrDie(c, {kCollection}, 600, 200);
    WaitQuiet(setups[i].server->pid());
  }

  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  std::vector<v1::SearchRequest> reqs(a.queries);
  for (auto& r : reqs) {
    r.set_collection(kCollection);
    r.set_k(a.k);
    auto* v = r.add_vectors()->mutable_values();
    for (uint32_t d = 0; d < a.dim; ++d) v->Add(nd(rng));
  }
  // One client per setup and thread count, warmed up, so connection set-up
  // (and the TLS handshake) is outside the timed rounds.
  std::vector<std::unique_ptr<client::Client>> clients;
  for (Setup& s : setups) {
    clients.push_back(std::make_unique<client::Client>(s.server->address(), s.opts));
    for (int i = 0; i < 200; ++i) {
      auto r = clients.back()->Search(reqs[i % reqs.size()]);
      if (!r.ok()) Die("warm-up search " + s.name, r.status());
    }
  }
  std::vector<std::vector<double>> ratios(setups.size()), cpu_ratios(setups.size());
  for (int round = 0; round < a.rounds; ++round) {
    std::vector<double> qps(setups.size()), cpu(setups.size());
    for (size_t j = 0; j < setups.size(); ++j) {
      const size_t i = (j + round) % setups.size();
      std::atomic<bool> failed{false};
      const double cpu0 = ProcessCpuSeconds(setups[i].server->pid());
      Run run = Drive(a.queries, a.threads, 0, 0, [&](size_t c, int, Run*) {
        if (!clients[i]->Search(reqs[c]).ok()) failed = true;
      });
      if (failed) Die("search " + setups[i].name, absl::InternalError("a search failed"));
      qps[i] = static_cast<double>(a.queries) / run.seconds;
      cpu[i] = (ProcessCpuSeconds(setups[i].server->pid()) - cpu0) * 1e6 /
               static_cast<double>(a.queries);
      setups[i].qps.push_back(qps[i]);
      setups[i].cpu_us.push_back(cpu[i]);
      setups[i].latency_ms.insert(setups[i].latency_ms.end(), run.latency_ms.begin(),
                                  run.latency_ms.end());
    }
    for (size_t i = 0; i < setups.size(); ++i) {
      ratios[i].push_back(qps[i] / qps[0]);
      cpu_ratios[i].push_back(cpu[i] / cpu[0]);
    }
  }

  nlohmann::json report = NewReport("auth_bench", argc, argv);
  report["rows"] = a.rows;
  report["dim"] = a.dim;
  report["threads"] = a.threads;
  report["rounds"] = a.rounds;
  report["queries_per_round"] = a.queries;
  report["load_average"] = LoadAverage();
  Table table({"setup", "QPS (median)", "QPS vs no auth", "quiverd CPU us/search",
               "CPU vs no auth", "p50 ms", "p99 ms"});
  for (size_t i = 0; i < setups.size(); ++i) {
    const Setup& s = setups[i];
    const double ratio = Median(ratios[i]);
    table.AddRow({s.name, absl::StrFormat("%.0f", Median(s.qps)), absl::StrFormat("%.3f", ratio),
                  absl::StrFormat("%.1f", Median(s.cpu_us)),
                  absl::StrFormat("%.3f", Median(cpu_ratios[i])),
                  absl::StrFormat("%.3f", Percentile(s.latency_ms, 50)),
                  absl::StrFormat("%.3f", Percentile(s.latency_ms, 99))});
    report["setups"].push_back({{"name", s.name},
                                {"qps", s.qps},
                                {"qps_median", Median(s.qps)},
                                {"ratio_median", ratio},
                                {"cpu_us", s.cpu_us},
                                {"cpu_ratio_median", Median(cpu_ratios[i])},
                                {"p50_ms", Percentile(s.latency_ms, 50)},
                                {"p99_ms", Percentile(s.latency_ms, 99)}});
  }
  std::cout << absl::StrFormat(
      "auth_bench: %zu x %u-d HNSW, k=%u, %d client threads, %zu single-query searches per "
      "setup per round, %d rounds (order rotates); load average %s\n",
      a.rows, a.dim, a.k, a.threads, a.queries, a.rounds, LoadAverage());
  table.Print(std::cout);
  std::cout << "results: " << WriteReport(report, a.json_out) << "\n";
  for (Setup& s : setups) {
    if (absl::Status st = s.server->Stop(); !st.ok()) std::cerr << "stop: " << st << "\n";
  }
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace quiver::bench

int main(int argc, char** argv) { return quiver::bench::Main(argc, argv); }
