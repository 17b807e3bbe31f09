// search_bench: is exact search through gRPC at least 0.8x of in-process
// FAISS IndexFlatL2 on the same queries and threads?
//
// Loads the Fashion-MNIST training set (60,000 x 784, attribute "label")
// into a fresh quiverd (FLAT field, exact search) and into an in-process
// faiss::IndexFlatL2, then runs the same test-set queries (k = 10) through
// both, interleaved round by round (the order alternates), in these modes:
//   batched   `--batch` queries per request (per faiss search call), 1
//             client thread, `--batch-queries` queries in all;
//   single    one query per RPC (faiss: nq = 1 calls), N client threads
//             sharing `--single-queries` queries;
// each unfiltered and filtered (`label = 3`, ~10% of the points; FAISS gets
// SearchParameters with an IDSelectorBatch of the matching ids).
// OpenMP/BLAS threads are pinned to `--omp-threads` in this process (every
// thread) and passed to quiverd as --search-threads.
// Reports QPS (median over rounds), p50/p99 latency per call (pooled over
// rounds), recall@10 against exact ground truth (filtered ground truth for
// the filtered modes), and the ratio Quiver/FAISS (median of per-round
// ratios).
#include <omp.h>

#include <atomic>
#include <chrono>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <functional>
#include <map>
#include <numeric>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/common/driver.h"
#include "bench/common/ground_truth.h"
#include "bench/common/report.h"
#include "bench/common/sysinfo.h"
#include "bench/common/testkit.h"
#include "client/client.h"
#include "faiss/IndexFlat.h"
#include "faiss/impl/IDSelector.h"

namespace quiver::bench {
namespace {

using idx_t = faiss::Index::idx_t;

constexpr char kCollection[] = "fmnist";
constexpr char kVectorField[] = "image";
constexpr char kLabel[] = "label";

struct Args {
  size_t rows = 60000;
  size_t batch = 100;
  size_t batch_queries = 1000;
  size_t single_queries = 300;
  std::vector<int> threads = {1, 2};
  int omp_threads = 1;
  int rounds = 3;
  size_t k = 10;
  int filter_label = 3;
  bool filtered = true;
  bool server_timing = false;
  std::string quiverd = QUIVERD_PATH;
  std::string tmp_dir;
  std::string dataset_dir = kFashionDir;
  std::string json_out;
  std::vector<std::string> quiverd_env;
};

struct Mode {
  std::string name;       // "batched" / "single"
  bool batched = false;
  bool filtered = false;
  int client_threads = 1;
  size_t nq = 0;          // queries per run
  size_t per_call = 1;    // queries per request / faiss call
  std::string Label() const {
    return absl::StrCat(name, batched ? absl::StrCat(" x", per_call) : "",
                        filtered ? " filtered" : "", ", ", client_threads, " client thr");
  }
};

struct Shared {
  const Args* args;
  const Matrix* base;
  const Matrix* queries;
  std::string filter_expr;
  faiss::IndexFlatL2* faiss_index;
  faiss::SearchParameters* faiss_filter;  // sel = IDSelectorBatch
  QuiverdProcess* server;
};

v1::SearchRequest MakeRequest(const Shared& sh, size_t first, size_t n, bool filtered) {
  v1::SearchRequest req;
  req.set_collection(kCollection);
  req.set_k(static_cast<uint32_t>(sh.args->k));
  if (filtered) req.set_filter(sh.filter_expr);
  for (size_t q = first; q < first + n; ++q) {
    req.add_vectors()->mutable_values()->Add(sh.queries->row(q),
                                             sh.queries->row(q) + sh.queries->dim);
  }
  return req;
}

Run RunQuiver(const Shared& sh, const Mode& m, const std::vector<v1::SearchRequest>& reqs,
              std::vector<std::unique_ptr<client::Client>>& clients) {
  const size_t k = sh.args->k;
  std::vector<absl::Status> errors(m.client_threads);
  const double srv0 = ProcessCpuSeconds(sh.server->pid());
  const double self0 = ProcessCpuSeconds();
  const double busy0 = MachineBusySeconds();
  Run run = Drive(reqs.size(), m.client_threads, m.nq, k,
                  [&](size_t c, int t, Run* out) {
                    auto resp = clients[t]->Search(reqs[c]);
                    if (!resp.ok()) {
                      errors[t] = resp.status();
                      return;
                    }
                    const size_t first = c * m.per_call;
                    for (int r = 0; r < resp->results_size(); ++r) {
                      const auto& hits = resp->results(r).hits();
                      for (int h = 0; h < hits.size() && static_cast<size_t>(h) < k; ++h) {
                        out->ids[(first + r) * k + h] = ParseId(hits[h].id());
                      }
                    }
                  });
  run.cpu_server_s = ProcessCpuSeconds(sh.server->pid()) - srv0;
  run.cpu_self_s = ProcessCpuSeconds() - self0;
  run.other_cores =
      (MachineBusySeconds() - busy0 - run.cpu_server_s - run.cpu_self_s) / run.seconds;
  for (const auto& e : errors) {
    if (!e.ok()) Die("Search", e);
  }
  return run;
}

Run RunFaiss(const Shared& sh, const Mode& m) {
  const size_t k = sh.args->k;
  const size_t calls = (m.nq + m.per_call - 1) / m.per_call;
  const int omp = sh.args->omp_threads;
  const double self0 = ProcessCpuSeconds();
  const double srv0 = ProcessCpuSeconds(sh.server->pid());
  const double busy0 = MachineBusySeconds();
  Run run = Drive(
      calls, m.client_threads, m.nq, k,
      [&](size_t c, int, Run* out) {
        const size_t first = c * m.per_call;
        const size_t n = std::min(m.per_call, m.nq - first);
        std::vector<float> dist(n * k);
        std::vector<idx_t> labels(n * k);
        sh.faiss_index->search(static_cast<idx_t>(n), sh.queries->row(first),
                               static_cast<idx_t>(k), dist.data(), labels.data(),
                               m.filtered ? sh.faiss_filter : nullptr);
        for (size_t i = 0; i < n * k; ++i) out->ids[first * k + i] = labels[i];
      },
      // OpenMP's thread count is a per-thread setting: pin it in each worker.
      [omp](int) { omp_set_num_threads(omp); });
  run.cpu_self_s = ProcessCpuSeconds() - self0;
  const double srv = ProcessCpuSeconds(sh.server->pid()) - srv0;  // idle quiverd
  run.other_cores = (MachineBusySeconds() - busy0 - run.cpu_self_s - srv) / run.seconds;
  return run;
}

int Main(int argc, char** argv) {
  Args args;
  args.tmp_dir = ExeDir() + "/bench_tmp";
  std::string threads_csv = "1,2";
  std::string cache_dir = QUIVER_BENCH_CACHE_DIR;
  bool no_filter = false;
  CLI::App app{"search_bench: exact search through gRPC vs in-process FAISS IndexFlatL2"};
  app.add_option("--rows", args.rows, "base rows (max 60000)");
  app.add_option("--batch", args.batch, "queries per batched request / faiss call");
  app.add_option("--batch-queries", args.batch_queries, "queries per batched run");
  app.add_option("--single-queries", args.single_queries, "queries per single-query run");
  app.add_option("--threads", threads_csv, "client thread counts for single-query RPCs");
  app.add_option("--omp-threads", args.omp_threads,
                 "OpenMP/BLAS threads (bench and quiverd --search-threads)");
  app.add_option("--rounds", args.rounds, "interleaved rounds");
  app.add_option("--k", args.k, "neighbours per query");
  app.add_option("--filter-label", args.filter_label, "filtered modes use `label = N`");
  app.add_flag("--no-filter", no_filter, "skip the filtered modes");
  app.add_flag("--server-timing", args.server_timing,
               "run quiverd at --log-level debug and report its own per-Search handler time "
               "(costs a log line per RPC)");
  app.add_option("--quiverd", args.quiverd, "quiverd binary");
  app.add_option("--quiverd-env", args.quiverd_env,
                 "extra NAME=value in quiverd's environment (repeatable), e.g. "
                 "OMP_NUM_THREADS=1");
  app.add_option("--tmp-dir", args.tmp_dir, "where quiverd's data dir goes");
  app.add_option("--cache-dir", cache_dir, "ground-truth cache folder");
  app.add_option("--dataset-dir", args.dataset_dir, "Fashion-MNIST IDX folder");
  app.add_option("--json", args.json_out, "JSON output (default <exe dir>/bench_results/)");
  CLI11_PARSE(app, argc, argv);
  args.filtered = !no_filter;
  args.threads.clear();
  for (absl::string_view t : absl::StrSplit(threads_csv, ',', absl::SkipEmpty())) {
    args.threads.push_back(std::stoi(std::string(t)));
  }
  std::filesystem::create_directories(args.tmp_dir);
  const size_t k = args.k;

  PinOmpThreads(args.omp_threads);
  nlohmann::json report = NewReport("search_bench", argc, argv);

  // ---- data and ground truth
  const size_t nq_max = std::max(args.batch_queries, args.single_queries);
  auto ds = LoadFashionMnist(args.dataset_dir, args.rows, nq_max);
  if (!ds.ok()) Die("load dataset", ds.status());
  const Matrix& base = ds->train;
  const Matrix& queries = ds->test;
  if (queries.n < nq_max) Die("queries", absl::InvalidArgumentError("not enough test rows"));
  std::vector<int64_t> subset;
  std::vector<bool> allowed(base.n, false);
  for (size_t i = 0; i < base.n; ++i) {
    if (ds->train_labels[i] == args.filter_label) {
      subset.push_back(static_cast<int64_t>(i));
      allowed[i] = true;
    }
  }
  const std::string key = absl::StrCat("fmnist-", base.n);
  auto gt = LoadOrComputeGroundTruth(key, base, queries, nq_max, k, {}, cache_dir);
  if (!gt.ok()) Die("ground truth", gt.status());
  GroundTruth gt_filtered;
  if (args.filtered) {
    auto g = LoadOrComputeGroundTruth(absl::StrCat(key, "-label", args.filter_label), base,
                                      queries, nq_max, k, subset, cache_dir);
    if (!g.ok()) Die("filtered ground truth", g.status());
    gt_filtered = *std::move(g);
  }

  // ---- FAISS
  faiss::IndexFlatL2 index(static_cast<int>(base.dim));
  index.add(static_cast<idx_t>(base.n), base.data.data());
  std::vector<idx_t> sel_ids(subset.begin(), subset.end());
  faiss::IDSelectorBatch selector(sel_ids.size(), sel_ids.data());
  faiss::SearchParameters filter_params;
  filter_params.sel = &selector;

  // ---- quiverd
  QuiverdOptions qo = BenchQuiverdOptions();
  qo.binary = args.quiverd;
  qo.durability = "async";  // loading is not what this measures
  qo.search_threads = args.omp_threads;
  qo.tmp_root = args.tmp_dir;
  qo.env = args.quiverd_env;
  qo.log_level = args.server_timing ? "debug" : "warn";
  auto server = QuiverdProcess::Launch(qo);
  if (!server.ok()) Die("start quiverd", server.status());
  std::unique_ptr<QuiverdProcess> srv = *std::move(server);
  double load_s = 0;
  {
    client::Client c(srv->address());
    v1::CollectionSchema schema;
    v1::VectorField* v = schema.add_vectors();
    v->set_name(kVectorField);
    v->set_dim(static_cast<uint32_t>(base.dim));
    v->set_metric(v1::L2);
    v->mutable_index()->set_type("FLAT");
    v1::AttributeField* a = schema.add_attributes();
    a->set_name(kLabel);
    a->set_type(v1::INT64);
    if (auto r = c.CreateCollection(kCollection, schema); !r.ok()) Die("CreateCollection", r.status());
    const double t0 = NowSeconds();
    for (size_t b = 0; b < base.n; b += 1000) {
      v1::UpsertPointsRequest req;
      req.set_collection(kCollection);
      for (size_t i = b; i < std::min(base.n, b + 1000); ++i) {
        v1::Point* p = req.add_points();
        p->set_id(std::to_string(i));
        (*p->mutable_vectors())[kVectorField].mutable_values()->Add(base.row(i),
                                                                    base.row(i) + base.dim);
        (*p->mutable_attributes())[kLabel].set_int_value(ds->train_labels[i]);
      }
      if (auto r = c.Upsert(req); !r.ok()) Die("Upsert", r.status());
    }
    load_s = NowSeconds() - t0;
    auto n = c.Count(kCollection);
    if (!n.ok() || *n != base.n) Die("Count", n.ok() ? absl::DataLossError("count") : n.status());
    if (args.filtered) {
      auto nf = c.Count(kCollection, absl::StrCat(kLabel, " = ", args.filter_label));
      if (!nf.ok() || *nf != subset.size()) {
        Die("Count filtered", nf.ok() ? absl::DataLossError("filtered count") : nf.status());
      }
    }
  }
  // A collection that stops changing is sealed and indexed in the background
  // (2 s idle); measure the steady state: every segment INDEXED and quiverd
  // idle.
  const double wait0 = NowSeconds();
  std::string segments_desc;
  {
    client::Client c(srv->address());
    for (;;) {
      auto info = c.GetCollection(kCollection);
      if (!info.ok()) Die("GetCollection", info.status());
      bool all_indexed = true;
      segments_desc.clear();
      for (const auto& seg : info->stats().segments()) {
        all_indexed &= seg.state() == v1::SegmentInfo::INDEXED;
        segments_desc += absl::StrCat(segments_desc.empty() ? "" : ", ", "#", seg.id(), " ",
                                      v1::SegmentInfo::State_Name(seg.state()), " ",
                                      seg.rows(), " rows");
      }
      if (all_indexed && !info->stats().segments().empty()) break;
      if (NowSeconds() - wait0 > 600) {
        Die("wait for indexes", absl::DeadlineExceededError(segments_desc));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    // Then until quiverd uses (almost) no CPU for two 0.5 s periods.
    for (int quiet = 0; quiet < 2 && NowSeconds() - wait0 < 600;) {
      const double c0 = ProcessCpuSeconds(srv->pid());
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      quiet = ProcessCpuSeconds(srv->pid()) - c0 < 0.03 ? quiet + 1 : 0;
    }
  }
  const double settle_s = NowSeconds() - wait0;
  const MemoryInfo mem_loaded = ReadMemory(srv->pid());

  Shared sh{&args, &base, &queries, absl::StrCat(kLabel, " = ", args.filter_label), &index,
            &filter_params, srv.get()};

  // ---- modes
  std::vector<Mode> modes;
  for (bool filtered : {false, true}) {
    if (filtered && !args.filtered) continue;
    modes.push_back({"batched", true, filtered, 1, args.batch_queries, args.batch});
    for (int t : args.threads) modes.push_back({"single", false, filtered, t, args.single_queries, 1});
  }

  int max_threads = 1;
  for (const Mode& m : modes) max_threads = std::max(max_threads, m.client_threads);
  std::vector<std::unique_ptr<client::Client>> clients;
  for (int t = 0; t < max_threads; ++t) {
    clients.push_back(std::make_unique<client::Client>(srv->address()));
    if (absl::Status h = clients.back()->Health(); !h.ok()) Die("health", h);
  }
  // Requests are built once, outside the clock.
  std::vector<std::vector<v1::SearchRequest>> requests(modes.size());
  for (size_t i = 0; i < modes.size(); ++i) {
    const Mode& m = modes[i];
    for (size_t first = 0; first < m.nq; first += m.per_call) {
      requests[i].push_back(MakeRequest(sh, first, std::min(m.per_call, m.nq - first), m.filtered));
    }
  }

  std::printf("search_bench: base %zu x %zu (Fashion-MNIST train), queries from t10k, k=%zu\n",
              base.n, base.dim, k);
  std::printf("  threads: OpenMP/BLAS %d in the bench (every thread) and quiverd "
              "--search-threads %d; client threads as listed; %u cores\n",
              args.omp_threads, args.omp_threads, std::thread::hardware_concurrency());
  std::printf("  BLAS: %s\n", BlasConfig().c_str());
  std::printf("  quiverd: %s, loaded in %.1f s (async), sealed/indexed and idle %.1f s later; "
              "RSS %.0f MB\n  segments: %s\n",
              args.quiverd.c_str(), load_s, settle_s, mem_loaded.rss_kb / 1024.0,
              segments_desc.c_str());
  if (args.filtered) {
    std::printf("  filter: `%s` matches %zu of %zu (%.1f%%); FAISS: IDSelectorBatch\n",
                sh.filter_expr.c_str(), subset.size(), base.n,
                100.0 * static_cast<double>(subset.size()) / static_cast<double>(base.n));
  }
  std::printf("  %d rounds, Quiver and FAISS alternate which goes first; load average %s\n\n",
              args.rounds, LoadAverage().c_str());
  std::fflush(stdout);

  // ---- warm-up (not counted): a little of every mode on both
  for (size_t i = 0; i < modes.size(); ++i) {
    Mode w = modes[i];
    w.nq = std::min(w.nq, w.batched ? w.per_call : size_t{20});
    std::vector<v1::SearchRequest> few(requests[i].begin(),
                                       requests[i].begin() + (w.nq + w.per_call - 1) / w.per_call);
    RunQuiver(sh, w, few, clients);
    RunFaiss(sh, w);
  }

  // ---- measured rounds
  std::vector<std::vector<Run>> quiver_runs(modes.size()), faiss_runs(modes.size());
  std::vector<std::vector<double>> server_ms(modes.size());
  for (int r = 0; r < args.rounds; ++r) {
    for (size_t i = 0; i < modes.size(); ++i) {
      const Mode& m = modes[i];
      const bool quiver_first = (r + i) % 2 == 0;
      for (int step = 0; step < 2; ++step) {
        const bool quiver = (step == 0) == quiver_first;
        Run run;
        if (quiver) {
          const size_t log_lines = args.server_timing ? CountLines(srv->log_path()) : 0;
          run = RunQuiver(sh, m, requests[i], clients);
          if (args.server_timing) {
            auto ms = RpcTimesFromLog(srv->log_path(), "Search", log_lines);
            server_ms[i].insert(server_ms[i].end(), ms.begin(), ms.end());
          }
          quiver_runs[i].push_back(std::move(run));
        } else {
          faiss_runs[i].push_back(RunFaiss(sh, m));
        }
        const Run& last = quiver ? quiver_runs[i].back() : faiss_runs[i].back();
        std::printf("  round %d  %-34s %-6s %8.1f QPS\n", r + 1, m.Label().c_str(),
                    quiver ? "quiver" : "faiss", static_cast<double>(m.nq) / last.seconds);
        std::fflush(stdout);
      }
    }
  }
  const MemoryInfo mem_end = ReadMemory(srv->pid());

  // ---- results
  Table table({"mode", "filter", "client thr", "omp thr", "Quiver QPS", "FAISS QPS",
               "Quiver/FAISS", ">= 0.8x?", "Quiver p50 ms", "Quiver p99 ms", "FAISS p50 ms",
               "FAISS p99 ms", "Quiver recall@10", "FAISS recall@10", "Quiver cores",
               "FAISS cores", "others' cores"});
  nlohmann::json results = nlohmann::json::array();
  std::vector<std::string> warnings;
  for (size_t i = 0; i < modes.size(); ++i) {
    const Mode& m = modes[i];
    const GroundTruth& g = m.filtered ? gt_filtered : *gt;
    const std::vector<bool> none;
    const std::vector<bool>& allow = m.filtered ? allowed : none;
    std::vector<double> qqps, fqps, ratios, qlat, flat, qcores, fcores, qrec, frec, others,
        srv_cores;
    for (size_t r = 0; r < quiver_runs[i].size(); ++r) {
      const Run& q = quiver_runs[i][r];
      const Run& f = faiss_runs[i][r];
      qqps.push_back(static_cast<double>(m.nq) / q.seconds);
      fqps.push_back(static_cast<double>(m.nq) / f.seconds);
      ratios.push_back(f.seconds / q.seconds);
      qlat.insert(qlat.end(), q.latency_ms.begin(), q.latency_ms.end());
      flat.insert(flat.end(), f.latency_ms.begin(), f.latency_ms.end());
      qcores.push_back((q.cpu_server_s + q.cpu_self_s) / q.seconds);
      fcores.push_back(f.cpu_self_s / f.seconds);
      others.push_back(q.other_cores);
      srv_cores.push_back(q.cpu_server_s / q.seconds);
      others.push_back(f.other_cores);
      qrec.push_back(MeanRecall(q, g, base, queries, m.nq, k, allow));
      frec.push_back(MeanRecall(f, g, base, queries, m.nq, k, allow));
    }
    const double ratio = Median(ratios);
    // quiverd may use at most client_threads x search_threads cores for
    // searching (plus a little for gRPC); more means the pin did not hold.
    const double allowed_cores = m.client_threads * args.omp_threads;
    if (Median(srv_cores) > allowed_cores * 1.15 + 0.1) {
      warnings.push_back(absl::StrCat(
          m.Label(), ": quiverd used ", Fixed(Median(srv_cores), 2), " cores, more than ",
          m.client_threads, " concurrent searches x --search-threads ", args.omp_threads,
          " allow; FAISS here used ", Fixed(Median(fcores), 2)));
    }
    table.AddRow({m.batched ? absl::StrCat("batched x", m.per_call) : "single",
                  m.filtered ? sh.filter_expr : "-", std::to_string(m.client_threads),
                  std::to_string(args.omp_threads), Fixed(Median(qqps), 1),
                  Fixed(Median(fqps), 1), Fixed(ratio, 2) + "x", ratio >= 0.8 ? "yes" : "NO",
                  Fixed(Percentile(qlat, 50), 2), Fixed(Percentile(qlat, 99), 2),
                  Fixed(Percentile(flat, 50), 2), Fixed(Percentile(flat, 99), 2),
                  Fixed(*std::min_element(qrec.begin(), qrec.end()), 4),
                  Fixed(*std::min_element(frec.begin(), frec.end()), 4),
                  Fixed(Median(qcores), 2), Fixed(Median(fcores), 2),
                  Fixed(std::max(0.0, Median(others)), 2)});
    nlohmann::json j = {{"mode", m.name},
                        {"batch", m.per_call},
                        {"filter", m.filtered ? sh.filter_expr : ""},
                        {"client_threads", m.client_threads},
                        {"omp_threads", args.omp_threads},
                        {"queries", m.nq},
                        {"quiver_qps", qqps},
                        {"faiss_qps", fqps},
                        {"quiver_qps_median", Median(qqps)},
                        {"faiss_qps_median", Median(fqps)},
                        {"ratio_per_round", ratios},
                        {"ratio", ratio},
                        {"quiver_p50_ms", Percentile(qlat, 50)},
                        {"quiver_p99_ms", Percentile(qlat, 99)},
                        {"faiss_p50_ms", Percentile(flat, 50)},
                        {"faiss_p99_ms", Percentile(flat, 99)},
                        {"quiver_recall_at_k", qrec},
                        {"faiss_recall_at_k", frec},
                        {"quiver_cores_busy", qcores},
                        {"faiss_cores_busy", fcores},
                        {"others_cores_busy", others},
                        {"quiverd_cores_busy", srv_cores}};
    if (!server_ms[i].empty()) {
      j["quiver_server_handler_p50_ms"] = Percentile(server_ms[i], 50);
      j["quiver_server_handler_mean_ms"] =
          std::accumulate(server_ms[i].begin(), server_ms[i].end(), 0.0) /
          static_cast<double>(server_ms[i].size());
    }
    results.push_back(j);
  }

  std::printf("\nQuestion: is exact search through gRPC at least 0.8x of in-process FAISS "
              "IndexFlatL2 on the same queries and threads?\n"
              "(QPS: median over rounds; ratio: median of per-round Quiver/FAISS QPS ratios; "
              "latency per call, pooled over rounds; recall: worst round; cores: CPU "
              "seconds / wall seconds, Quiver = quiverd + client process; others' cores: "
              "CPU used by other processes on the machine meanwhile, median)\n\n");
  std::ostringstream out;
  table.Print(out);
  std::printf("%s", out.str().c_str());
  for (const auto& w : warnings) std::printf("WARNING: %s\n", w.c_str());
  if (args.server_timing) {
    std::printf("\nquiverd's own Search handler time (debug log), vs client-observed p50:\n");
    for (size_t i = 0; i < modes.size(); ++i) {
      if (server_ms[i].empty()) continue;
      std::vector<double> qlat;
      for (const Run& q : quiver_runs[i]) qlat.insert(qlat.end(), q.latency_ms.begin(), q.latency_ms.end());
      std::printf("  %-36s server p50 %.2f ms, client p50 %.2f ms -> transport+client %.2f ms\n",
                  modes[i].Label().c_str(), Percentile(server_ms[i], 50), Percentile(qlat, 50),
                  Percentile(qlat, 50) - Percentile(server_ms[i], 50));
    }
  }
  std::printf("\nquiverd memory: RSS %.0f MB when settled, peak %.0f MB (raw vectors %.0f MB)\n",
              mem_loaded.rss_kb / 1024.0, mem_end.hwm_kb / 1024.0, base.bytes() / 1048576.0);

  report["config"] = {{"rows", base.n},
                      {"dim", base.dim},
                      {"k", k},
                      {"batch", args.batch},
                      {"batch_queries", args.batch_queries},
                      {"single_queries", args.single_queries},
                      {"client_threads", args.threads},
                      {"omp_threads", args.omp_threads},
                      {"quiverd_search_threads", args.omp_threads},
                      {"rounds", args.rounds},
                      {"filter", args.filtered ? sh.filter_expr : ""},
                      {"filter_matches", subset.size()},
                      {"quiverd", args.quiverd},
                      {"quiverd_env", args.quiverd_env},
                      {"quiverd_argv", srv->argv()},
                      {"load_seconds", load_s},
                      {"settle_seconds", settle_s},
                      {"segments", segments_desc}};
  report["quiverd_memory_mb"] = {{"rss_settled", mem_loaded.rss_kb / 1024.0},
                                 {"peak", mem_end.hwm_kb / 1024.0}};
  report["results"] = results;
  report["warnings"] = warnings;
  report["table"] = out.str();
  if (absl::Status st = srv->Stop(); !st.ok()) {
    std::fprintf(stderr, "search_bench: stopping quiverd: %s\n", st.ToString().c_str());
  }
  FinishReport(&report, args.json_out);
  return 0;
}

}  // namespace
}  // namespace quiver::bench

int main(int argc, char** argv) { return quiver::bench::Main(argc, argv); }
