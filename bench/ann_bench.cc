// ann_bench: how do Quiver's HNSW and IVF_FLAT through gRPC compare, in
// recall@10 and QPS, with in-process hnswlib and FAISS on the same data,
// parameters and threads; can searches continue during ingest; how fast is a
// restart with persisted indexes versus a rebuild?
//
// On Fashion-MNIST (60,000 train images as the base, t10k queries, exact
// ground truth from the cache):
//  1. ingest into an HNSW collection (M=16, ef_construction=200) through
//     gRPC, batches of 1000, while a second client thread searches with
//     single-query RPCs; then wait until the segment is INDEXED. A second
//     collection (IVF_FLAT nlist=256) is loaded the same way, without the
//     searcher.
//  2./3. sweep ef (HNSW) and nprobe (IVF_FLAT) for Quiver and, interleaved
//     per parameter value and round, in-process hnswlib 0.6.2 (same flags),
//     FAISS IndexHNSWFlat and IndexIVFFlat: single-query calls from 2 client
//     threads and batched calls (100 queries) from 1 thread; OpenMP pinned to
//     1 thread in every search thread.
//  4. restart quiverd on the same data (indexes loaded from DATA_DIR/segments)
//     versus restart without DATA_DIR/segments (indexes rebuilt).
//  5. memory: quiverd RSS, index sizes.
// Also measured in the same run, for the targets of issue 3: a no-op unary
// RPC of the same size (callback server in this process) and one core's
// memory read bandwidth.
#include <immintrin.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <sstream>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/common/driver.h"
#include "bench/common/ground_truth.h"
#include "bench/common/hnswlib_baseline.h"
#include "bench/common/metrics_overhead.h"
#include "bench/common/noop_rpc.h"
#include "bench/common/quiverd_io.h"
#include "bench/common/report.h"
#include "bench/common/sysinfo.h"
#include "bench/common/testkit.h"
#include "client/client.h"
#include "faiss/IndexFlat.h"
#include "faiss/IndexHNSW.h"
#include "faiss/IndexIVFFlat.h"

namespace quiver::bench {
namespace {

using idx_t = faiss::Index::idx_t;

constexpr char kHnswColl[] = "fmnist_hnsw";
constexpr char kIvfColl[] = "fmnist_ivf";
constexpr char kField[] = "image";
constexpr char kLabel[] = "label";

struct Args {
  size_t rows = 60000;
  size_t queries = 2000;
  size_t batch = 100;        // queries per batched call
  size_t ingest_batch = 1000;
  size_t k = 10;
  int rounds = 3;
  int single_threads = 2;    // client threads for single-query calls
  int build_threads = 2;     // hnswlib/FAISS builds and quiverd --index-build-threads
  int search_threads = 1;    // quiverd --search-threads
  int hnsw_m = 16;
  int ef_construction = 200;
  int nlist = 256;
  std::vector<int> efs = {16, 32, 64, 128};
  std::vector<int> nprobes = {4, 8, 16, 32};
  double idle_window_s = 1.0;  // idle-latency window after the last write
  bool restart = true;
  std::string durability = "sync";
  std::string quiverd = QUIVERD_PATH;
  std::string tmp_dir;
  std::string cache_dir = QUIVER_BENCH_CACHE_DIR;
  std::string dataset_dir = kFashionDir;
  std::string json_out;
  std::vector<std::string> quiverd_env;
  // Only ingest the HNSW collection, then measure what metrics and the
  // recall audit cost searches (bench/common/metrics_overhead.h).
  bool metrics_overhead = false;
  int overhead_rounds = 40;
};

// ------------------------------------------------------------ helpers

// Drive with OpenMP pinned to 1 thread in every calling thread (a
// per-thread setting): FAISS must not start a team per query.
template <typename Call>
Run DrivePinned(size_t calls, int threads, size_t nq, size_t k, Call&& call) {
  return Drive(calls, threads, nq, k, std::forward<Call>(call),
               [](int) { omp_set_num_threads(1); });
}

v1::CollectionSchema MakeSchema(size_t dim, const std::string& type,
                                const std::map<std::string, std::string>& params) {
  v1::CollectionSchema schema;
  v1::VectorField* v = schema.add_vectors();
  v->set_name(kField);
  v->set_dim(static_cast<uint32_t>(dim));
  v->set_metric(v1::L2);
  v->mutable_index()->set_type(type);
  for (const auto& [key, val] : params) (*v->mutable_index()->mutable_params())[key] = val;
  v1::AttributeField* a = schema.add_attributes();
  a->set_name(kLabel);
  a->set_type(v1::INT64);
  return schema;
}

std::vector<v1::UpsertPointsRequest> MakeUpserts(const Matrix& base,
                                                 const std::vector<uint8_t>& labels,
                                                 size_t batch) {
  std::vector<v1::UpsertPointsRequest> out;
  for (size_t b = 0; b < base.n; b += batch) {
    v1::UpsertPointsRequest req;
    for (size_t i = b; i < std::min(base.n, b + batch); ++i) {
      v1::Point* p = req.add_points();
      p->set_id(std::to_string(i));
      (*p->mutable_vectors())[kField].mutable_values()->Add(base.row(i), base.row(i) + base.dim);
      (*p->mutable_attributes())[kLabel].set_int_value(labels[i]);
    }
    out.push_back(std::move(req));
  }
  return out;
}

// One core's memory read bandwidth: AVX2 sum over 1 GiB, best of 3, GB/s.
double MemoryReadGBs() {
  const size_t bytes = size_t{1} << 30;
  const size_t n = bytes / sizeof(float);
  float* buf = static_cast<float*>(std::aligned_alloc(64, bytes));
  for (size_t i = 0; i < n; ++i) buf[i] = static_cast<float>(i & 7);
  double best = 0;
  volatile float sink = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const double t0 = NowSeconds();
    __m256 a[8];
    for (auto& x : a) x = _mm256_setzero_ps();
    for (size_t i = 0; i < n; i += 64) {
      for (int j = 0; j < 8; ++j) a[j] = _mm256_add_ps(a[j], _mm256_load_ps(buf + i + 8 * j));
    }
    const double s = NowSeconds() - t0;
    for (int j = 1; j < 8; ++j) a[0] = _mm256_add_ps(a[0], a[j]);
    float lanes[8];
    _mm256_storeu_ps(lanes, a[0]);
    sink = sink + lanes[0];
    best = std::max(best, static_cast<double>(bytes) / s / 1e9);
  }
  std::free(buf);
  return best;
}

// ------------------------------------------------------------ systems

enum System { kQuiverHnsw, kHnswlib, kFaissHnsw, kQuiverIvf, kFaissIvf, kNumSystems };
const char* kSystemName[] = {"Quiver HNSW", "hnswlib", "FAISS HNSW", "Quiver IVF_FLAT",
                             "FAISS IVF-Flat"};
const char* kSystemKey[] = {"quiver_hnsw", "hnswlib", "faiss_hnsw", "quiver_ivf", "faiss_ivf"};

struct Mode {
  bool batched;
  int threads;
  size_t per_call;
  std::string Label() const {
    return batched ? absl::StrCat("batched x", per_call, ", ", threads, " thr")
                   : absl::StrCat("single, ", threads, " thr");
  }
};

struct Bench {
  const Args* args;
  const Matrix* base;
  const Matrix* queries;
  size_t nq;
  size_t k;
  hnswlib::HierarchicalNSW<float>* hnswlib_index;
  faiss::IndexHNSWFlat* faiss_hnsw;
  faiss::IndexIVFFlat* faiss_ivf;
  // Per Quiver system and mode (0 single, 1 batched): prepared requests.
  std::vector<v1::SearchRequest> reqs[2][2];
  std::vector<std::unique_ptr<client::Client>>* clients;
  pid_t server_pid = 0;

  // Runs one system and records how many cores other processes (not this
  // one, not quiverd) kept busy meanwhile: the noise on a shared machine.
  Run RunMeasured(System s, const Mode& m, size_t nq_run) {
    return MeasureOthers(server_pid, [&] { return RunSystem(s, m, nq_run); });
  }

  std::vector<v1::SearchRequest>& Requests(System s, bool batched) {
    return reqs[s == kQuiverIvf ? 1 : 0][batched ? 1 : 0];
  }

  // Sets the per-sweep-point parameter (outside the clock; shared state of
  // the in-process indexes is never changed while threads search).
  void SetParam(System s, int param) {
    switch (s) {
      case kQuiverHnsw:
      case kQuiverIvf:
        for (int b = 0; b < 2; ++b) {
          for (auto& r : Requests(s, b == 1)) {
            r.mutable_params()->Clear();
            if (s == kQuiverHnsw) r.mutable_params()->set_ef(static_cast<uint32_t>(param));
            else r.mutable_params()->set_nprobe(static_cast<uint32_t>(param));
          }
        }
        break;
      case kHnswlib: hnswlib_index->setEf(static_cast<size_t>(param)); break;
      case kFaissHnsw: faiss_hnsw->hnsw.efSearch = param; break;
      case kFaissIvf: faiss_ivf->nprobe = static_cast<size_t>(param); break;
      default: break;
    }
  }

  Run RunSystem(System s, const Mode& m, size_t nq_run) {
    const size_t calls = (nq_run + m.per_call - 1) / m.per_call;
    if (s == kQuiverHnsw || s == kQuiverIvf) {
      const auto& reqs_s = Requests(s, m.batched);
      std::vector<absl::Status> errors(m.threads);
      Run run = DrivePinned(calls, m.threads, nq_run, k, [&](size_t c, int t, Run* out) {
        auto resp = (*clients)[t]->Search(reqs_s[c]);
        if (!resp.ok()) {
          errors[t] = resp.status();
          return;
        }
        HitIdsInto(*resp, c * m.per_call, k, out->ids.data());
      });
      for (const auto& e : errors) {
        if (!e.ok()) Die(kSystemName[s], e);
      }
      return run;
    }
    if (s == kHnswlib) {
      return DrivePinned(calls, m.threads, nq_run, k, [&](size_t c, int, Run* out) {
        const size_t first = c * m.per_call;
        const size_t last = std::min(nq_run, first + m.per_call);
        for (size_t q = first; q < last; ++q) {
          HnswlibSearchInto(*hnswlib_index, queries->row(q), k, out->ids.data() + q * k);
        }
      });
    }
    faiss::Index* index = s == kFaissHnsw ? static_cast<faiss::Index*>(faiss_hnsw)
                                          : static_cast<faiss::Index*>(faiss_ivf);
    return DrivePinned(calls, m.threads, nq_run, k, [&](size_t c, int, Run* out) {
      const size_t first = c * m.per_call;
      const size_t n = std::min(m.per_call, nq_run - first);
      thread_local std::vector<float> dist;
      thread_local std::vector<idx_t> labels;
      dist.resize(n * k);
      labels.resize(n * k);
      index->search(static_cast<idx_t>(n), queries->row(first), static_cast<idx_t>(k),
                    dist.data(), labels.data());
      for (size_t i = 0; i < n * k; ++i) out->ids[first * k + i] = labels[i];
    });
  }
};

struct Cell {  // one system x parameter x mode, over rounds
  std::vector<double> qps;
  std::vector<double> latency_ms;
  std::vector<double> recall;
  std::vector<double> others;  // other processes' cores per run
  double Qps() const { return Median(qps); }
  double Recall() const {
    return recall.empty() ? NAN
                          : std::accumulate(recall.begin(), recall.end(), 0.0) /
                                static_cast<double>(recall.size());
  }
};

std::string Ratio(double a, double b) { return b > 0 ? Fixed(a / b, 2) + "x" : "-"; }
std::string Mb(double bytes) { return Fixed(bytes / 1048576.0, 0); }

// ------------------------------------------------------------ phases
// Main runs them in order: ParseArgs, LoadData, StartServer, IngestHnsw
// (with a searcher; --metrics-overhead ends there), IngestIvf,
// BuildBaselines, StartNoopServer, PrepareSweep, Sweep, Restart, then the
// report: one function per table, DrawCurves, WriteJson.

struct Family {
  std::string name;
  std::string param;
  std::vector<int> values;
  std::vector<System> systems;
};

struct RestartResult {
  double stop_s = NAN, health_s = NAN, ready_s = NAN;
  double rss_mb = NAN;
  double recall_hnsw = NAN, recall_ivf = NAN;
  std::vector<double> log_builds;
  bool segments_dir_existed = false;
};

// One search of the searcher that runs during ingest.
struct Sample {
  double start;
  double ms;
  bool ok;
};

// Everything one run holds; phases fill it in order. Not movable (Bench
// points into it).
struct AnnRun {
  Args args;
  double run_t0 = 0;
  size_t k = 10;
  FashionMnist ds;
  size_t nq = 0;
  GroundTruth gt;
  const Matrix& base() const { return ds.train; }
  const Matrix& queries() const { return ds.test; }

  QuiverdOptions qo;
  std::unique_ptr<QuiverdProcess> srv;
  std::unique_ptr<client::Client> admin;
  std::vector<v1::UpsertPointsRequest> upserts;

  // 1. ingest
  std::vector<Sample> samples;
  std::string first_error;
  double ingest_s = 0, hnsw_ready_s = 0;
  std::vector<double> during_ms, idle_ms;
  size_t during_n = 0, errors_n = 0;
  std::vector<double> hnsw_log_build, ivf_log_build;
  double ivf_ingest_s = 0, ivf_ready_s = 0;
  MemoryInfo mem_indexed, mem_swept;
  SegmentsState hnsw_seg, ivf_seg;

  // 3. baselines (the quantizer outlives the IVF index that points to it)
  std::unique_ptr<hnswlib::L2Space> l2space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> hnswlib_index;
  std::unique_ptr<faiss::IndexHNSWFlat> faiss_hnsw;
  std::unique_ptr<faiss::IndexFlatL2> ivf_quantizer;
  std::unique_ptr<faiss::IndexIVFFlat> faiss_ivf;
  double hnswlib_build_s = 0, faiss_hnsw_build_s = 0, faiss_ivf_build_s = 0;
  size_t hnswlib_bytes = 0, faiss_hnsw_bytes = 0, faiss_ivf_bytes = 0;
  // Bytes an IVF search scans per query at each nprobe.
  std::map<int, double> ivf_scan_bytes;

  // Reference costs: memory bandwidth, a no-op RPC of the same size.
  double membw = 0;
  std::unique_ptr<NoopRpc> noop;
  std::vector<double> noop1, noopN;
  double noop1_rate = 0, noopN_rate = 0;

  // 2./3. sweep
  std::vector<std::unique_ptr<client::Client>> clients;
  std::unique_ptr<Bench> bench;
  Mode modes[2] = {};
  std::vector<Family> families;
  Run idle_indexed;
  // cells[system][param][mode]
  std::map<System, std::map<int, std::array<Cell, 2>>> cells;
  double sweep_s = 0;

  // 4. restart
  RestartResult warm, cold;
  std::vector<std::unique_ptr<QuiverdProcess>> restarted;

  std::ostringstream out;  // the tables, printed at the end
  nlohmann::json report;

  AnnRun() = default;
  AnnRun(const AnnRun&) = delete;
  AnnRun& operator=(const AnnRun&) = delete;
};

// Returns false (after CLI11 printed why, or help) when the run should end
// with `*exit_code`.
bool ParseArgs(int argc, char** argv, Args& args, int* exit_code) {
  args.tmp_dir = ExeDir() + "/bench_tmp";
  std::string efs_csv = "16,32,64,128", nprobes_csv = "4,8,16,32";
  bool no_restart = false;
  CLI::App app{"ann_bench: Quiver HNSW / IVF_FLAT through gRPC vs in-process hnswlib and FAISS"};
  app.add_option("--rows", args.rows, "base rows (max 60000)");
  app.add_option("--queries", args.queries, "queries per sweep point (from t10k)");
  app.add_option("--rounds", args.rounds, "interleaved rounds per sweep point");
  app.add_option("--batch", args.batch, "queries per batched call");
  app.add_option("--ingest-batch", args.ingest_batch, "points per UpsertPoints request");
  app.add_option("--single-threads", args.single_threads, "client threads, single-query calls");
  app.add_option("--build-threads", args.build_threads,
                 "hnswlib/FAISS build threads and quiverd --index-build-threads");
  app.add_option("--search-threads", args.search_threads, "quiverd --search-threads");
  app.add_option("--ef", efs_csv, "HNSW ef values");
  app.add_option("--nprobe", nprobes_csv, "IVF nprobe values");
  app.add_option("--nlist", args.nlist, "IVF lists");
  app.add_flag("--no-restart", no_restart, "skip the restart/rebuild measurement");
  app.add_option("--durability", args.durability, "quiverd --durability");
  app.add_option("--quiverd", args.quiverd, "quiverd binary");
  app.add_option("--quiverd-env", args.quiverd_env, "extra NAME=value for quiverd (repeatable)");
  app.add_option("--tmp-dir", args.tmp_dir, "where quiverd's data dir goes");
  app.add_option("--cache-dir", args.cache_dir, "ground-truth cache folder");
  app.add_option("--dataset-dir", args.dataset_dir, "Fashion-MNIST IDX folder");
  app.add_option("--json", args.json_out, "JSON output (default <exe dir>/bench_results/)");
  app.add_flag("--metrics-overhead", args.metrics_overhead,
               "only ingest the HNSW collection, then compare search QPS of quiverd with and "
               "without --metrics-listen (and the recall audit at its default rate)");
  app.add_option("--overhead-rounds", args.overhead_rounds, "rounds of --metrics-overhead");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *exit_code = app.exit(e);
    return false;
  }
  args.restart = !no_restart;
  auto parse_list = [](const std::string& csv) {
    std::vector<int> v;
    for (absl::string_view t : absl::StrSplit(csv, ',', absl::SkipEmpty())) {
      v.push_back(std::stoi(std::string(t)));
    }
    return v;
  };
  args.efs = parse_list(efs_csv);
  args.nprobes = parse_list(nprobes_csv);
  std::filesystem::create_directories(args.tmp_dir);
  return true;
}

// Fashion-MNIST and the exact top-k of the queries (cached).
void LoadData(AnnRun& r) {
  const Args& args = r.args;
  auto ds = LoadFashionMnist(args.dataset_dir, args.rows, args.queries);
  if (!ds.ok()) Die("load dataset", ds.status());
  r.ds = *std::move(ds);
  r.nq = std::min(args.queries, r.queries().n);
  auto gt = LoadOrComputeGroundTruth(absl::StrCat("fmnist-", r.base().n), r.base(), r.queries(),
                                     r.nq, r.k, {}, args.cache_dir);
  if (!gt.ok()) Die("ground truth", gt.status());
  r.gt = *std::move(gt);
  PinOmpThreads(1);

  std::printf("ann_bench: base %zu x %zu (Fashion-MNIST train), %zu queries from t10k, k=%zu, "
              "%d rounds per sweep point\n",
              r.base().n, r.base().dim, r.nq, r.k, args.rounds);
  std::printf("  threads: single-query %d client threads (Quiver: %d gRPC channels; baselines: "
              "%d std::threads, one query per call); batched: 1 thread, %zu queries per call\n",
              args.single_threads, args.single_threads, args.single_threads, args.batch);
  std::printf("           OpenMP 1 thread in every search thread; builds: hnswlib %d threads, "
              "FAISS OpenMP %d, quiverd --index-build-threads %d --index-build-workers 1; "
              "quiverd --search-threads %d; %u cores\n",
              args.build_threads, args.build_threads, args.build_threads, args.search_threads,
              std::thread::hardware_concurrency());
  std::printf("  BLAS: %s; load average %s\n\n", BlasConfig().c_str(), LoadAverage().c_str());
  std::fflush(stdout);
}

// quiverd with both collections created, and the upsert requests.
void StartServer(AnnRun& r) {
  const Args& args = r.args;
  r.qo = BenchQuiverdOptions();
  r.qo.binary = args.quiverd;
  r.qo.durability = args.durability;
  r.qo.search_threads = args.search_threads;
  r.qo.tmp_root = args.tmp_dir;
  r.qo.env = args.quiverd_env;
  r.qo.log_level = "info";  // index build times are logged at info
  r.qo.extra_args = {"--index-build-threads", std::to_string(args.build_threads),
                     "--index-build-workers", "1"};
  auto started = QuiverdProcess::Launch(r.qo);
  if (!started.ok()) Die("start quiverd", started.status());
  r.srv = *std::move(started);
  r.admin = std::make_unique<client::Client>(r.srv->address());

  r.upserts = MakeUpserts(r.base(), r.ds.train_labels, args.ingest_batch);
  const std::map<std::string, std::string> hnsw_params = {
      {"M", std::to_string(args.hnsw_m)}, {"ef_construction", std::to_string(args.ef_construction)}};
  const std::map<std::string, std::string> ivf_params = {{"nlist", std::to_string(args.nlist)}};
  if (auto c = r.admin->CreateCollection(kHnswColl, MakeSchema(r.base().dim, "HNSW", hnsw_params));
      !c.ok()) {
    Die("CreateCollection hnsw", c.status());
  }
  if (auto c = r.admin->CreateCollection(kIvfColl,
                                         MakeSchema(r.base().dim, "IVF_FLAT", ivf_params));
      !c.ok()) {
    Die("CreateCollection ivf", c.status());
  }
}

// 1. The HNSW collection's ingest while a client thread searches (and for
// --idle-window after the last write); r.samples gets every search.
void IngestWhileSearching(AnnRun& r, double* ingest_t0, double* ingest_end) {
  auto probe = MakeSearches(kHnswColl, r.queries(), r.nq, 1, r.k);
  for (auto& q : probe) q.mutable_params()->set_ef(64);
  client::Client writer(r.srv->address()), searcher(r.srv->address());
  if (!writer.Health().ok() || !searcher.Health().ok()) Die("health", absl::UnavailableError(""));
  std::atomic<bool> stop{false};
  std::thread search_thread([&] {
    omp_set_num_threads(1);
    r.samples.reserve(100000);
    for (size_t i = 0; !stop.load(); ++i) {
      const double t0 = NowSeconds();
      auto resp = searcher.Search(probe[i % probe.size()]);
      const double t1 = NowSeconds();
      r.samples.push_back({t0, (t1 - t0) * 1e3, resp.ok()});
      if (!resp.ok() && r.first_error.empty()) r.first_error = resp.status().ToString();
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // searcher running
  *ingest_t0 = NowSeconds();
  for (auto& req : r.upserts) {
    req.set_collection(kHnswColl);
    if (auto u = writer.Upsert(req); !u.ok()) Die("Upsert", u.status());
  }
  *ingest_end = NowSeconds();
  // Idle reference: the same searches for a while after the last write,
  // before the segment is sealed (--seal-idle-ms, 1 s by default).
  std::this_thread::sleep_for(std::chrono::duration<double>(r.args.idle_window_s));
  stop = true;
  search_thread.join();
}

// --metrics-overhead: what metrics and the recall audit cost searches, on
// the HNSW collection just loaded; the run ends with it.
int MetricsOverheadRun(AnnRun& r) {
  if (absl::Status s = r.srv->Stop(); !s.ok()) Die("stop quiverd", s);
  std::printf("[M] metrics overhead: HNSW ef=64, single-query searches, %d client threads\n",
              r.args.single_threads);
  std::fflush(stdout);
  std::vector<v1::SearchRequest> reqs = MakeSearches(kHnswColl, r.queries(), r.nq, 1, r.k);
  for (auto& q : reqs) q.mutable_params()->set_ef(64);
  MetricsOverheadOptions mo;
  mo.rounds = r.args.overhead_rounds;
  mo.threads = r.args.single_threads;
  r.report["metrics_overhead"] =
      MeasureMetricsOverhead(r.qo, r.srv->data_dir(), {kHnswColl}, reqs, mo);
  r.report["seconds_total"] = NowSeconds() - r.run_t0;
  const std::string path = WriteReport(r.report, r.args.json_out);
  if (!path.empty()) std::printf("JSON: %s\n", path.c_str());
  return 0;
}

// Returns false when --metrics-overhead ran instead (it stops quiverd).
bool IngestHnsw(AnnRun& r) {
  std::printf("[1] ingest %zu points into %s while a client thread searches...\n", r.base().n,
              kHnswColl);
  std::fflush(stdout);
  double ingest_t0 = 0, ingest_end = 0;
  IngestWhileSearching(r, &ingest_t0, &ingest_end);
  r.ingest_s = ingest_end - ingest_t0;
  WaitIndexedOrDie(*r.admin, {kHnswColl}, 900, 20);
  if (r.args.metrics_overhead) return false;
  r.hnsw_ready_s = NowSeconds() - ingest_end;  // from the last write's ack
  for (const Sample& s : r.samples) {
    if (!s.ok) ++r.errors_n;
    if (s.start >= ingest_t0 && s.start + s.ms / 1e3 <= ingest_end) {
      ++r.during_n;
      if (s.ok) r.during_ms.push_back(s.ms);
    } else if (s.start >= ingest_end && s.ok) {
      r.idle_ms.push_back(s.ms);
    }
  }
  r.hnsw_log_build = BuildTimesFromLog(r.srv->log_path(), kHnswColl);
  std::printf("    ingest %.1f s, %zu searches during it (%zu errors), index ready %.1f s after "
              "the last write (quiverd log: build %s s)\n",
              r.ingest_s, r.during_n, r.errors_n, r.hnsw_ready_s,
              r.hnsw_log_build.empty() ? "?" : Fixed(r.hnsw_log_build.back(), 1).c_str());
  std::fflush(stdout);
  return true;
}

// 1b. The IVF collection: same ingest, no searcher; then both collections'
// segments and quiverd's memory.
void IngestIvf(AnnRun& r) {
  std::printf("[1b] ingest %zu points into %s...\n", r.base().n, kIvfColl);
  std::fflush(stdout);
  {
    client::Client writer(r.srv->address());
    const double t0 = NowSeconds();
    for (auto& req : r.upserts) {
      req.set_collection(kIvfColl);
      if (auto u = writer.Upsert(req); !u.ok()) Die("Upsert ivf", u.status());
    }
    const double t1 = NowSeconds();
    r.ivf_ingest_s = t1 - t0;
    WaitIndexedOrDie(*r.admin, {kIvfColl}, 900, 20);
    r.ivf_ready_s = NowSeconds() - t1;
  }
  r.upserts.clear();
  r.upserts.shrink_to_fit();
  r.ivf_log_build = BuildTimesFromLog(r.srv->log_path(), kIvfColl);
  WaitQuiet(r.srv->pid());
  r.mem_indexed = ReadMemory(r.srv->pid());
  auto hnsw_seg = Segments(*r.admin, kHnswColl);
  auto ivf_seg = Segments(*r.admin, kIvfColl);
  if (!hnsw_seg.ok() || !ivf_seg.ok()) Die("GetCollection", absl::InternalError("segments"));
  r.hnsw_seg = *std::move(hnsw_seg);
  r.ivf_seg = *std::move(ivf_seg);
  std::printf("    ingest %.1f s, index ready %.1f s after the last write; segments: %s | %s\n",
              r.ivf_ingest_s, r.ivf_ready_s, r.hnsw_seg.desc.c_str(), r.ivf_seg.desc.c_str());
  std::printf("    quiverd RSS %.0f MB\n", r.mem_indexed.rss_kb / 1024.0);
  std::fflush(stdout);
}

// 3. hnswlib, FAISS HNSW and FAISS IVF-Flat built in process; their sizes,
// and the bytes an IVF search scans per query at each nprobe (FAISS's lists;
// used as the estimate for Quiver's too: same k-means, same data).
void BuildBaselines(AnnRun& r) {
  const Args& args = r.args;
  const Matrix& base = r.base();
  std::printf("[3] building baselines in-process (%d threads each)...\n", args.build_threads);
  std::fflush(stdout);
  r.l2space = std::make_unique<hnswlib::L2Space>(base.dim);
  r.hnswlib_index = std::make_unique<hnswlib::HierarchicalNSW<float>>(
      r.l2space.get(), base.n, args.hnsw_m, args.ef_construction);
  {
    r.hnswlib_build_s =
        BuildHnswlib(*r.hnswlib_index, base.data.data(), base.n, base.dim, args.build_threads);
    std::printf("    hnswlib: %.1f s\n", r.hnswlib_build_s);
    std::fflush(stdout);
  }
  r.faiss_hnsw = std::make_unique<faiss::IndexHNSWFlat>(static_cast<int>(base.dim), args.hnsw_m);
  r.faiss_hnsw->hnsw.efConstruction = args.ef_construction;
  {
    omp_set_num_threads(args.build_threads);
    const double t0 = NowSeconds();
    r.faiss_hnsw->add(static_cast<idx_t>(base.n), base.data.data());
    r.faiss_hnsw_build_s = NowSeconds() - t0;
    omp_set_num_threads(1);
    std::printf("    FAISS HNSW: %.1f s\n", r.faiss_hnsw_build_s);
    std::fflush(stdout);
  }
  r.ivf_quantizer = std::make_unique<faiss::IndexFlatL2>(static_cast<int>(base.dim));
  r.faiss_ivf = std::make_unique<faiss::IndexIVFFlat>(r.ivf_quantizer.get(), base.dim,
                                                      static_cast<size_t>(args.nlist));
  {
    omp_set_num_threads(args.build_threads);
    const double t0 = NowSeconds();
    r.faiss_ivf->train(static_cast<idx_t>(base.n), base.data.data());
    r.faiss_ivf->add(static_cast<idx_t>(base.n), base.data.data());
    r.faiss_ivf_build_s = NowSeconds() - t0;
    omp_set_num_threads(1);
    std::printf("    FAISS IVF-Flat: %.1f s (train + add)\n", r.faiss_ivf_build_s);
    std::fflush(stdout);
  }
  // Index sizes from their structures.
  r.hnswlib_bytes = HnswlibIndexBytes(*r.hnswlib_index);
  const faiss::IndexHNSWFlat& fh = *r.faiss_hnsw;
  r.faiss_hnsw_bytes = static_cast<size_t>(fh.ntotal) * base.dim * sizeof(float) +
                       fh.hnsw.neighbors.size() * sizeof(faiss::HNSW::storage_idx_t) +
                       fh.hnsw.offsets.size() * sizeof(size_t) +
                       fh.hnsw.levels.size() * sizeof(int);
  const faiss::IndexIVFFlat& fi = *r.faiss_ivf;
  r.faiss_ivf_bytes = static_cast<size_t>(args.nlist) * base.dim * sizeof(float);
  for (size_t l = 0; l < fi.nlist; ++l) {
    r.faiss_ivf_bytes += fi.invlists->list_size(l) * (fi.code_size + sizeof(idx_t));
  }
  for (int np : args.nprobes) {
    const size_t p = std::min<size_t>(np, fi.nlist);
    std::vector<float> d(r.nq * p);
    std::vector<idx_t> l(r.nq * p);
    r.ivf_quantizer->search(static_cast<idx_t>(r.nq), r.queries().data.data(),
                            static_cast<idx_t>(p), d.data(), l.data());
    double rows = 0;
    for (idx_t x : l) rows += x >= 0 ? static_cast<double>(fi.invlists->list_size(x)) : 0;
    r.ivf_scan_bytes[np] = rows / static_cast<double>(r.nq) * base.dim * sizeof(float);
  }
}

// Reference costs: one core's memory read bandwidth, and a callback server
// in this process whose no-op Search is timed around the sweep.
void StartNoopServer(AnnRun& r) {
  r.membw = MemoryReadGBs();
  r.noop = std::make_unique<NoopRpc>(MakeSearches("noop", r.queries(), r.nq, 1, r.k),
                                     std::max(2, r.args.single_threads));
}

// The sweep's clients, requests and modes; the idle latency of the indexed
// collection, same call as during ingest (1 client thread, one query per
// RPC, ef=64).
void PrepareSweep(AnnRun& r) {
  const Args& args = r.args;
  for (int t = 0; t < std::max(1, args.single_threads); ++t) {
    r.clients.push_back(std::make_unique<client::Client>(r.srv->address()));
    if (absl::Status h = r.clients.back()->Health(); !h.ok()) Die("health", h);
  }
  r.bench = std::make_unique<Bench>(Bench{&r.args, &r.base(), &r.queries(), r.nq, r.k,
                                          r.hnswlib_index.get(), r.faiss_hnsw.get(),
                                          r.faiss_ivf.get(), {}, &r.clients, r.srv->pid()});
  for (int b = 0; b < 2; ++b) {
    const size_t per_call = b ? args.batch : 1;
    r.bench->reqs[0][b] = MakeSearches(kHnswColl, r.queries(), r.nq, per_call, r.k);
    r.bench->reqs[1][b] = MakeSearches(kIvfColl, r.queries(), r.nq, per_call, r.k);
  }
  r.modes[0] = {false, args.single_threads, 1};
  r.modes[1] = {true, 1, args.batch};
  r.bench->SetParam(kQuiverHnsw, 64);
  r.bench->RunSystem(kQuiverHnsw, {false, 1, 1}, std::min<size_t>(r.nq, 200));  // warm-up
  r.idle_indexed = r.bench->RunSystem(kQuiverHnsw, {false, 1, 1}, r.nq);
  r.families = {{"HNSW", "ef", args.efs, {kQuiverHnsw, kHnswlib, kFaissHnsw}},
                {"IVF_FLAT", "nprobe", args.nprobes, {kQuiverIvf, kFaissIvf}}};
}

// One family's parameter value: every round, both modes, every system (who
// goes first rotates).
void SweepPoint(AnnRun& r, const Family& f, size_t pi) {
  const int param = f.values[pi];
  for (int round = 0; round < r.args.rounds; ++round) {
    for (int mi = 0; mi < 2; ++mi) {
      const Mode& m = r.modes[mi];
      const size_t ns = f.systems.size();
      for (size_t j = 0; j < ns; ++j) {
        const System s = f.systems[(j + round + pi + mi) % ns];
        r.bench->SetParam(s, param);
        Run run = r.bench->RunMeasured(s, m, r.nq);
        Cell& cell = r.cells[s][param][mi];
        cell.others.push_back(run.other_cores);
        cell.qps.push_back(static_cast<double>(r.nq) / run.seconds);
        cell.latency_ms.insert(cell.latency_ms.end(), run.latency_ms.begin(),
                               run.latency_ms.end());
        cell.recall.push_back(MeanRecall(run, r.gt, r.base(), r.queries(), r.nq, r.k));
        std::printf("  %-8s %s=%-4d round %d  %-20s %-16s %9.1f QPS  recall %.4f  "
                    "others' cores %.2f\n",
                    f.name.c_str(), f.param.c_str(), param, round + 1, m.Label().c_str(),
                    kSystemName[s], cell.qps.back(), cell.recall.back(), run.other_cores);
        std::fflush(stdout);
      }
    }
  }
}

// 2./3. Every family and parameter, with no-op RPC rates between families.
void Sweep(AnnRun& r) {
  std::printf("[2/3] sweep (each line: one run of %zu queries)\n", r.nq);
  std::fflush(stdout);
  // Warm-up: a few calls of every system and mode.
  for (const Family& f : r.families) {
    for (System s : f.systems) {
      r.bench->SetParam(s, f.values.front());
      for (const Mode& m : r.modes) r.bench->RunSystem(s, m, std::min<size_t>(r.nq, 200));
    }
  }
  r.noop1.push_back(r.noop->Rate(1));
  r.noopN.push_back(r.noop->Rate(r.args.single_threads));
  const double sweep_t0 = NowSeconds();
  for (const Family& f : r.families) {
    for (size_t pi = 0; pi < f.values.size(); ++pi) SweepPoint(r, f, pi);
    r.noop1.push_back(r.noop->Rate(1));
    r.noopN.push_back(r.noop->Rate(r.args.single_threads));
  }
  r.sweep_s = NowSeconds() - sweep_t0;
  r.noop1_rate = Median(r.noop1);
  r.noopN_rate = Median(r.noopN);
  r.noop.reset();
  r.mem_swept = ReadMemory(r.srv->pid());
}

// Stops `running`, optionally removes DATA_DIR/segments, starts quiverd on
// the same data and times it until both collections are INDEXED and answer
// a search; then their recall (ef=64 / nprobe=16, batched).
void RestartOnce(AnnRun& r, bool wipe_segments, RestartResult* out, QuiverdProcess* running) {
  const std::string data_dir = r.srv->data_dir();
  double t0 = NowSeconds();
  if (absl::Status st = running->Stop(); !st.ok()) Die("stop quiverd", st);
  out->stop_s = NowSeconds() - t0;
  const std::string seg_dir = data_dir + "/segments";
  out->segments_dir_existed = std::filesystem::exists(seg_dir);
  if (wipe_segments) std::filesystem::remove_all(seg_dir);
  QuiverdOptions ro = r.qo;
  ro.data_dir = data_dir;
  t0 = NowSeconds();
  auto p = QuiverdProcess::Launch(ro);
  if (!p.ok()) Die("restart quiverd", p.status());
  out->health_s = NowSeconds() - t0;
  client::Client c((*p)->address());
  WaitIndexedOrDie(c, {kHnswColl, kIvfColl}, 900, 5);
  // ...and answers a search on each collection.
  for (const char* coll : {kHnswColl, kIvfColl}) {
    for (;;) {
      auto req = MakeSearches(coll, r.queries(), 1, 1, r.k)[0];
      auto resp = c.Search(req);
      if (resp.ok() && resp->results_size() == 1 &&
          resp->results(0).hits_size() == static_cast<int>(r.k)) {
        break;
      }
      if (NowSeconds() - t0 > 900) Die("search after restart", resp.status());
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  out->ready_s = NowSeconds() - t0;
  WaitQuiet((*p)->pid());
  out->rss_mb = ReadMemory((*p)->pid()).rss_kb / 1024.0;
  out->log_builds = BuildTimesFromLog((*p)->log_path(), kHnswColl);
  for (double x : BuildTimesFromLog((*p)->log_path(), kIvfColl)) out->log_builds.push_back(x);
  // Same answers as before? recall at ef=64 / nprobe=16, batched.
  r.clients.clear();
  r.clients.push_back(std::make_unique<client::Client>((*p)->address()));
  r.clients.push_back(std::make_unique<client::Client>((*p)->address()));
  r.bench->SetParam(kQuiverHnsw, 64);
  out->recall_hnsw = MeanRecall(r.bench->RunSystem(kQuiverHnsw, r.modes[1], r.nq), r.gt,
                                r.base(), r.queries(), r.nq, r.k);
  r.bench->SetParam(kQuiverIvf, 16);
  out->recall_ivf = MeanRecall(r.bench->RunSystem(kQuiverIvf, r.modes[1], r.nq), r.gt, r.base(),
                               r.queries(), r.nq, r.k);
  r.clients.clear();
  r.restarted.push_back(*std::move(p));
}

// 4. Restart with persisted indexes, then without DATA_DIR/segments.
void Restart(AnnRun& r) {
  if (!r.args.restart) return;
  std::printf("[4] restart with persisted indexes, then without DATA_DIR/segments...\n");
  std::fflush(stdout);
  r.clients.clear();
  RestartOnce(r, false, &r.warm, r.srv.get());
  std::printf("    persisted indexes: ready in %.2f s\n", r.warm.ready_s);
  std::fflush(stdout);
  RestartOnce(r, true, &r.cold, r.restarted.back().get());
  std::printf("    rebuilt indexes:   ready in %.2f s\n", r.cold.ready_s);
  std::fflush(stdout);
  if (absl::Status st = r.restarted.back()->Stop(); !st.ok()) {
    std::fprintf(stderr, "ann_bench: stopping quiverd: %s\n", st.ToString().c_str());
  }
}

// ========================================================== tables

double LastOrNan(const std::vector<double>& v) { return v.empty() ? NAN : v.back(); }

void TableIngest(AnnRun& r) {
  const Args& args = r.args;
  const size_t n = r.base().n;
  const double p99_during = Percentile(r.during_ms, 99), p99_idle = Percentile(r.idle_ms, 99);
  const double hnsw_build_log = LastOrNan(r.hnsw_log_build);
  r.out << "\n## 1. Can searches continue during ingest? (" << n << " points, batches of "
        << args.ingest_batch << ", 1 writer thread, --durability " << args.durability
        << "; 1 searcher thread, one query per RPC, k=10, ef=64)\n\n";
  Table t({"what", "value"});
  t.AddRow({"ingest into HNSW collection (searcher running)",
            Fixed(r.ingest_s, 2) + " s, " + Thousands(n / r.ingest_s) + " vectors/s"});
  t.AddRow({"searches served during ingest", Thousands(static_cast<double>(r.during_n)) + " (" +
                                                 Fixed(r.during_n / r.ingest_s, 1) + "/s)"});
  t.AddRow({"search errors", std::to_string(r.errors_n) +
                                 (r.first_error.empty() ? "" : " (" + r.first_error + ")")});
  t.AddRow({"search p50 / p99 during ingest (growing segment, exact)",
            Fixed(Percentile(r.during_ms, 50), 2) + " / " + Fixed(p99_during, 2) + " ms"});
  t.AddRow({absl::StrCat("search p50 / p99 idle, ", Fixed(args.idle_window_s, 1),
                         " s after the last write (", n, " rows, growing, exact; ",
                         r.idle_ms.size(), " calls)"),
            Fixed(Percentile(r.idle_ms, 50), 2) + " / " + Fixed(p99_idle, 2) + " ms"});
  t.AddRow({"p99 during ingest / idle p99 (target <= 3x)", Ratio(p99_during, p99_idle)});
  t.AddRow({"search p50 / p99 idle, indexed (HNSW ef=64)",
            Fixed(Percentile(r.idle_indexed.latency_ms, 50), 2) + " / " +
                Fixed(Percentile(r.idle_indexed.latency_ms, 99), 2) + " ms"});
  t.AddRow({"HNSW: last write -> INDEXED (incl. the --seal-idle-ms wait)",
            Fixed(r.hnsw_ready_s, 2) + " s"});
  t.AddRow({"HNSW: build time in quiverd's log (2 threads)", Fixed(hnsw_build_log, 2) + " s"});
  t.AddRow({"IVF_FLAT: ingest (no searcher)",
            Fixed(r.ivf_ingest_s, 2) + " s, " + Thousands(n / r.ivf_ingest_s) + " vectors/s"});
  t.AddRow({"IVF_FLAT: last write -> INDEXED / build in log",
            Fixed(r.ivf_ready_s, 2) + " s / " + Fixed(LastOrNan(r.ivf_log_build), 2) + " s"});
  t.AddRow({absl::StrCat("hnswlib build, in-process, ", args.build_threads, " threads"),
            Fixed(r.hnswlib_build_s, 2) + " s"});
  t.AddRow({absl::StrCat("FAISS HNSW build, in-process, ", args.build_threads, " threads"),
            Fixed(r.faiss_hnsw_build_s, 2) + " s"});
  t.AddRow({absl::StrCat("FAISS IVF-Flat train + add, ", args.build_threads, " threads"),
            Fixed(r.faiss_ivf_build_s, 2) + " s"});
  t.AddRow({"Quiver HNSW import + build / hnswlib build (target <= 1.3x)",
            Ratio(r.ingest_s + r.hnsw_ready_s, r.hnswlib_build_s) +
                " (without the seal-idle wait: " +
                Ratio(r.ingest_s + hnsw_build_log, r.hnswlib_build_s) + ")"});
  t.AddRow({"segments", r.hnsw_seg.desc + " | " + r.ivf_seg.desc});
  t.Print(r.out);
}

void TableSweep(AnnRun& r) {
  const Args& args = r.args;
  nlohmann::json sweep = nlohmann::json::array();
  r.out << "\n## 2/3. recall@10 and QPS, Quiver through gRPC vs in-process baselines (" << r.nq
        << " queries; QPS median of " << args.rounds
        << " interleaved rounds; latency per call, pooled; single: " << args.single_threads
        << " client threads, 1 query per call; batched: 1 thread, " << args.batch
        << " queries per call; OpenMP 1 per thread; quiverd --search-threads "
        << args.search_threads << ")\n\n";
  Table t({"index", "param", "system", "single recall", "single QPS", "p50 ms", "p99 ms",
           "vs base", "batched recall", "batched QPS", "p50 ms/call", "vs base", "others' cores"});
  for (const Family& f : r.families) {
    for (int param : f.values) {
      for (System s : f.systems) {
        const auto& c = r.cells[s][param];
        // Quiver rows compare with the in-process baseline of the same kind
        // (hnswlib for HNSW, FAISS for IVF_FLAT).
        const System ref = s == kQuiverHnsw ? kHnswlib : s == kQuiverIvf ? kFaissIvf : s;
        const auto& rc = r.cells[ref][param];
        std::vector<double> others = c[0].others;
        others.insert(others.end(), c[1].others.begin(), c[1].others.end());
        t.AddRow({f.name, absl::StrCat(f.param, "=", param), kSystemName[s],
                  Fixed(c[0].Recall(), 4), Fixed(c[0].Qps(), 0),
                  Fixed(Percentile(c[0].latency_ms, 50), 3),
                  Fixed(Percentile(c[0].latency_ms, 99), 3),
                  ref == s ? "" : Ratio(c[0].Qps(), rc[0].Qps()), Fixed(c[1].Recall(), 4),
                  Fixed(c[1].Qps(), 0), Fixed(Percentile(c[1].latency_ms, 50), 2),
                  ref == s ? "" : Ratio(c[1].Qps(), rc[1].Qps()), Fixed(Median(others), 2)});
        for (int mi = 0; mi < 2; ++mi) {
          sweep.push_back({{"index", f.name},
                           {"param", f.param},
                           {"value", param},
                           {"system", kSystemKey[s]},
                           {"mode", mi ? "batched" : "single"},
                           {"client_threads", r.modes[mi].threads},
                           {"queries_per_call", r.modes[mi].per_call},
                           {"qps_rounds", c[mi].qps},
                           {"qps", c[mi].Qps()},
                           {"recall_at_10", c[mi].Recall()},
                           {"p50_ms", Percentile(c[mi].latency_ms, 50)},
                           {"p99_ms", Percentile(c[mi].latency_ms, 99)},
                           {"others_cores", c[mi].others}});
        }
      }
    }
  }
  t.Print(r.out);
  r.out << "(vs base: Quiver HNSW / hnswlib, Quiver IVF_FLAT / FAISS IVF-Flat, same parameter "
           "and mode. others' cores: CPU other processes on the machine used meanwhile, median "
           "over the row's runs; above ~0.2 the numbers are disturbed. No-op RPC of the same size, callback server in the bench process: "
        << Thousands(r.noop1_rate) << "/s with 1 client thread, " << Thousands(r.noopN_rate)
        << "/s with " << args.single_threads << ".)\n";
  r.report["sweep"] = sweep;
}

// Targets of issue 3 that compare Quiver with the baselines in the sweep.
void SweepTargets(AnnRun& r, const std::function<void(const std::string&, const std::string&,
                                                       bool, double)>& add) {
  auto& cells = r.cells;
  // Lowest parameter where Quiver's batched recall reaches 0.95.
  auto first_at = [&](System s, const std::vector<int>& values) {
    for (int v : values) {
      if (cells[s][v][1].Recall() >= 0.95) return v;
    }
    return values.back();
  };
  const int ef = first_at(kQuiverHnsw, r.args.efs);
  const double rh = cells[kQuiverHnsw][ef][1].Qps() / cells[kHnswlib][ef][1].Qps();
  add(absl::StrCat("HNSW batched >= 0.9x hnswlib at recall >= 0.95 (ef=", ef, ", recall ",
                   Fixed(cells[kQuiverHnsw][ef][1].Recall(), 3), " vs ",
                   Fixed(cells[kHnswlib][ef][1].Recall(), 3), ")"),
      Ratio(cells[kQuiverHnsw][ef][1].Qps(), cells[kHnswlib][ef][1].Qps()), rh >= 0.9, rh);
  const double rf = cells[kQuiverHnsw][ef][1].Qps() / cells[kFaissHnsw][ef][1].Qps();
  add(absl::StrCat("HNSW batched ahead of FAISS HNSW (ef=", ef, ")"),
      Ratio(cells[kQuiverHnsw][ef][1].Qps(), cells[kFaissHnsw][ef][1].Qps()), rf > 1.0, rf);
  const double inproc = cells[kHnswlib][ef][0].Qps();
  const double bound = 1.0 / (1.0 / r.noopN_rate + 1.0 / inproc);
  const double q = cells[kQuiverHnsw][ef][0].Qps();
  add(absl::StrCat("HNSW single-query >= 0.8 x 1/(1/noop + 1/hnswlib) (ef=", ef, ": noop ",
                   Thousands(r.noopN_rate), "/s, hnswlib ", Thousands(inproc), "/s -> ",
                   Thousands(bound), "/s)"),
      Thousands(q) + "/s = " + Ratio(q, bound) + " of bound", q >= 0.8 * bound, q / bound);

  const int np = first_at(kQuiverIvf, r.args.nprobes);
  const double ri = cells[kQuiverIvf][np][1].Qps() / cells[kFaissIvf][np][1].Qps();
  add(absl::StrCat("IVF_FLAT batched >= 2x FAISS IVF-Flat (nprobe=", np, ", recall ",
                   Fixed(cells[kQuiverIvf][np][1].Recall(), 3), " vs ",
                   Fixed(cells[kFaissIvf][np][1].Recall(), 3), ")"),
      Ratio(cells[kQuiverIvf][np][1].Qps(), cells[kFaissIvf][np][1].Qps()), ri >= 2.0, ri);
  const double gbs = cells[kQuiverIvf][np][1].Qps() * r.ivf_scan_bytes[np] / 1e9;
  const double fgbs = cells[kFaissIvf][np][1].Qps() * r.ivf_scan_bytes[np] / 1e9;
  add(absl::StrCat("IVF_FLAT list scan >= 0.5x one core's read bandwidth (", Fixed(r.membw, 1),
                   " GB/s; ", Fixed(r.ivf_scan_bytes[np] / 1e6, 1),
                   " MB/query est. from FAISS's lists; FAISS ", Fixed(fgbs, 2), " GB/s)"),
      Fixed(gbs, 2) + " GB/s = " + Ratio(gbs, r.membw), gbs >= 0.5 * r.membw, gbs / r.membw);
}

void TableTargets(AnnRun& r) {
  nlohmann::json targets = nlohmann::json::array();
  r.out << "\n## Targets of issue 3 (ratios from this run)\n\n";
  Table t({"target", "measured", "met?"});
  auto add = [&](const std::string& what, const std::string& measured, bool ok, double value) {
    t.AddRow({what, measured, ok ? "yes" : "NO"});
    targets.push_back({{"target", what}, {"measured", measured}, {"met", ok}, {"value", value}});
  };
  SweepTargets(r, add);
  const double ri = (r.ingest_s + r.hnsw_ready_s) / r.hnswlib_build_s;
  add("import + index build <= 1.3x hnswlib build (2 threads)",
      Fixed(r.ingest_s, 1) + " + " + Fixed(r.hnsw_ready_s, 1) + " s vs " +
          Fixed(r.hnswlib_build_s, 1) + " s = " + Fixed(ri, 2) + "x",
      ri <= 1.3, ri);
  add("a few large sealed segments",
      absl::StrCat(r.hnsw_seg.segments, " + ", r.ivf_seg.segments, " segment(s)"),
      r.hnsw_seg.segments <= 2 && r.ivf_seg.segments <= 2,
      static_cast<double>(r.hnsw_seg.segments + r.ivf_seg.segments));
  if (r.args.restart) {
    const double rr = r.warm.ready_s / r.cold.ready_s;
    add("restart with persisted indexes <= 0.1x rebuild",
        Fixed(r.warm.ready_s, 2) + " s vs " + Fixed(r.cold.ready_s, 2) + " s = " +
            Fixed(rr, 3) + "x",
        rr <= 0.1, rr);
  }
  const double p99_during = Percentile(r.during_ms, 99), p99_idle = Percentile(r.idle_ms, 99);
  const double rp = p99_during / p99_idle;
  add("p99 search latency while importing <= 3x idle p99",
      Fixed(p99_during, 1) + " vs " + Fixed(p99_idle, 1) + " ms = " + Fixed(rp, 2) + "x",
      rp <= 3.0, rp);
  add("search errors during ingest = 0", std::to_string(r.errors_n), r.errors_n == 0,
      static_cast<double>(r.errors_n));
  t.Print(r.out);
  r.report["targets"] = targets;
}

void TableRestart(AnnRun& r) {
  if (!r.args.restart) return;
  r.out << "\n## 4. Restart: persisted indexes vs rebuild (both collections; time from start "
           "to all segments INDEXED and a search answered on each)\n\n";
  Table t({"start", "SIGTERM -> exit s", "start -> healthy s", "start -> ready s",
           "builds in log", "recall HNSW ef=64", "recall IVF nprobe=16", "RSS MB"});
  auto row = [&](const char* name, const RestartResult& rr) {
    std::vector<std::string> b;
    for (double x : rr.log_builds) b.push_back(Fixed(x, 1) + " s");
    t.AddRow({name, Fixed(rr.stop_s, 2), Fixed(rr.health_s, 2), Fixed(rr.ready_s, 2),
              b.empty() ? "none" : absl::StrJoin(b, " + "), Fixed(rr.recall_hnsw, 4),
              Fixed(rr.recall_ivf, 4), Fixed(rr.rss_mb, 0)});
  };
  row("with DATA_DIR/segments (indexes loaded)", r.warm);
  row("without DATA_DIR/segments (rebuilt)", r.cold);
  t.Print(r.out);
  r.out << "persisted / rebuild: " << Fixed(r.warm.ready_s / r.cold.ready_s, 3)
        << "x (target <= 0.1x)"
        << (r.warm.segments_dir_existed ? "" : "; WARNING: DATA_DIR/segments did not exist")
        << "\n";
}

void TableMemory(AnnRun& r) {
  const Matrix& base = r.base();
  r.out << "\n## 5. Memory (raw vectors: " << Mb(static_cast<double>(base.bytes()))
        << " MB per copy)\n\n";
  Table t({"what", "MB"});
  t.AddRow({absl::StrCat("quiverd RSS, both collections indexed (2 x ", base.n,
                         " vectors + HNSW + IVF)"),
            Fixed(r.mem_indexed.rss_kb / 1024.0, 0)});
  t.AddRow({"quiverd RSS after the sweep / peak",
            Fixed(r.mem_swept.rss_kb / 1024.0, 0) + " / " + Fixed(r.mem_swept.hwm_kb / 1024.0, 0)});
  if (r.args.restart) {
    t.AddRow({"quiverd RSS after restart (loaded) / after rebuild",
              Fixed(r.warm.rss_mb, 0) + " / " + Fixed(r.cold.rss_mb, 0)});
  }
  // GetCollection's per-segment field memory: the index's (which holds the
  // one copy of the vectors: HNSW's level-0 block, IVF_FLAT's lists) plus
  // the segment's norms and bookkeeping; "/ raw" is that over the vectors'
  // floats (1.0 would be the vectors alone).
  const double seg_vectors = static_cast<double>(base.bytes());
  t.AddRow({"Quiver HNSW field in memory (GetCollection) / raw / index file",
            Mb(r.hnsw_seg.index_memory) + " / " + Fixed(r.hnsw_seg.index_memory / seg_vectors, 2) +
                "x / " + Mb(r.hnsw_seg.index_disk)});
  t.AddRow({"Quiver IVF_FLAT field in memory / raw / index file",
            Mb(r.ivf_seg.index_memory) + " / " + Fixed(r.ivf_seg.index_memory / seg_vectors, 2) +
                "x / " + Mb(r.ivf_seg.index_disk)});
  t.AddRow({"hnswlib index (vectors + links), in-process", Mb(r.hnswlib_bytes)});
  t.AddRow({"FAISS IndexHNSWFlat (vectors + links)", Mb(r.faiss_hnsw_bytes)});
  t.AddRow({"FAISS IndexIVFFlat (lists + ids + centroids)", Mb(r.faiss_ivf_bytes)});
  t.Print(r.out);
}

// Curves: recall vs QPS, single-query and batched; returns the PNG ("" if
// none).
std::string DrawCurves(AnnRun& r) {
  const Args& args = r.args;
  const std::string stem = ResultsStem(args.json_out, "ann_bench");
  std::ofstream dat(stem + ".dat");
  const System order[] = {kQuiverHnsw, kHnswlib, kFaissHnsw, kQuiverIvf, kFaissIvf};
  for (int mi = 0; mi < 2; ++mi) {
    for (System s : order) {
      const Family& f = s == kQuiverIvf || s == kFaissIvf ? r.families[1] : r.families[0];
      dat << "# " << kSystemName[s] << " " << (mi ? "batched" : "single") << "\n";
      for (int v : f.values) {
        dat << Fixed(r.cells[s][v][mi].Recall(), 5) << " " << Fixed(r.cells[s][v][mi].Qps(), 1)
            << " " << f.param << "=" << v << "\n";
      }
      dat << "\n\n";
    }
  }
  dat.close();
  std::ofstream gp(stem + ".gp");
  gp << "set terminal pngcairo noenhanced size 1500,620 font 'DejaVu Sans,11'\n"
     << "set output '" << stem << ".png'\n"
     << "set multiplot layout 1,2 title 'Fashion-MNIST " << r.base().n << " x " << r.base().dim
     << ", k=" << r.k << ", " << r.nq << " queries: Quiver through gRPC vs in-process baselines ("
     << std::thread::hardware_concurrency() << " cores); every curve: ef "
     << absl::StrJoin(args.efs, ",") << " / nprobe " << absl::StrJoin(args.nprobes, ",")
     << " from left to right'\n"
     << "set logscale y\nset grid xtics ytics mytics\n"
     << "set xlabel 'recall@10'\nset ylabel 'queries per second (log scale)'\n"
     << "set key bottom left box opaque\nset xrange [*:1.0]\n";
  const char* styles[] = {"lc rgb '#d62728' pt 7 lw 2", "lc rgb '#1f77b4' pt 5 lw 2",
                          "lc rgb '#2ca02c' pt 9 lw 2", "lc rgb '#ff7f0e' pt 7 lw 2 dt 2",
                          "lc rgb '#9467bd' pt 5 lw 2 dt 2"};
  for (int mi = 0; mi < 2; ++mi) {
    gp << "set title '"
       << (mi ? absl::StrCat("batched: ", args.batch, " queries per call, 1 client thread")
              : absl::StrCat("single query per call, ", args.single_threads, " client threads"))
       << "'\nplot ";
    for (int si = 0; si < 5; ++si) {
      const int block = mi * 5 + si;
      const bool quiver = order[si] == kQuiverHnsw || order[si] == kQuiverIvf;
      gp << (si ? ", \\\n     " : "") << "'" << stem << ".dat' index " << block
         << " using 1:2 with linespoints " << styles[si] << " title '" << kSystemName[order[si]]
         << (quiver ? " (gRPC)" : "") << "'";
      // Parameter labels on Quiver's points only (the baselines use the
      // same values, in the same order along each curve).
      if (quiver) {
        gp << ", '' index " << block << " using 1:2:3 with labels offset 0,0.9 font ',8' notitle";
      }
    }
    gp << "\n";
  }
  gp << "unset multiplot\n";
  gp.close();
  return RunGnuplot(stem, r.out);
}

void WriteJson(AnnRun& r, const std::string& png) {
  const Args& args = r.args;
  const Matrix& base = r.base();
  nlohmann::json& report = r.report;
  report["config"] = {{"rows", base.n},
                      {"dim", base.dim},
                      {"queries", r.nq},
                      {"k", r.k},
                      {"rounds", args.rounds},
                      {"batch", args.batch},
                      {"ingest_batch", args.ingest_batch},
                      {"single_client_threads", args.single_threads},
                      {"build_threads", args.build_threads},
                      {"quiverd_search_threads", args.search_threads},
                      {"omp_threads_per_search_thread", 1},
                      {"hnsw", {{"M", args.hnsw_m}, {"ef_construction", args.ef_construction}}},
                      {"nlist", args.nlist},
                      {"efs", args.efs},
                      {"nprobes", args.nprobes},
                      {"durability", args.durability},
                      {"quiverd_argv", r.srv->argv()},
                      {"quiverd_env", args.quiverd_env}};
  report["ingest"] = {{"seconds", r.ingest_s},
                      {"vectors_per_s", base.n / r.ingest_s},
                      {"searches_during", r.during_n},
                      {"errors", r.errors_n},
                      {"first_error", r.first_error},
                      {"p50_ms_during", Percentile(r.during_ms, 50)},
                      {"p99_ms_during", Percentile(r.during_ms, 99)},
                      {"p50_ms_idle_growing", Percentile(r.idle_ms, 50)},
                      {"p99_ms_idle_growing", Percentile(r.idle_ms, 99)},
                      {"idle_growing_calls", r.idle_ms.size()},
                      {"p50_ms_idle_indexed", Percentile(r.idle_indexed.latency_ms, 50)},
                      {"p99_ms_idle_indexed", Percentile(r.idle_indexed.latency_ms, 99)},
                      {"hnsw_last_write_to_indexed_s", r.hnsw_ready_s},
                      {"hnsw_build_log_s", LastOrNan(r.hnsw_log_build)},
                      {"ivf_ingest_s", r.ivf_ingest_s},
                      {"ivf_last_write_to_indexed_s", r.ivf_ready_s},
                      {"ivf_build_log_s", LastOrNan(r.ivf_log_build)},
                      {"segments", {r.hnsw_seg.desc, r.ivf_seg.desc}}};
  report["baseline_builds_s"] = {{"hnswlib", r.hnswlib_build_s},
                                 {"faiss_hnsw", r.faiss_hnsw_build_s},
                                 {"faiss_ivf", r.faiss_ivf_build_s}};
  report["noop_rpc_per_s"] = {
      {"1_thread", r.noop1}, {"n_threads", r.noopN}, {"n", args.single_threads}};
  report["memory_read_gb_s"] = r.membw;
  nlohmann::json scan_bytes = nlohmann::json::object();
  for (const auto& [np, b] : r.ivf_scan_bytes) scan_bytes[std::to_string(np)] = b;
  report["ivf_scan_bytes_per_query_est"] = scan_bytes;
  if (args.restart) {
    auto rj = [](const RestartResult& rr) {
      return nlohmann::json{{"stop_s", rr.stop_s},
                            {"health_s", rr.health_s},
                            {"ready_s", rr.ready_s},
                            {"rss_mb", rr.rss_mb},
                            {"recall_hnsw_ef64", rr.recall_hnsw},
                            {"recall_ivf_nprobe16", rr.recall_ivf},
                            {"log_builds_s", rr.log_builds}};
    };
    report["restart"] = {{"persisted", rj(r.warm)}, {"rebuild", rj(r.cold)},
                         {"ratio", r.warm.ready_s / r.cold.ready_s}};
  }
  report["memory_mb"] = {{"quiverd_rss_indexed", r.mem_indexed.rss_kb / 1024.0},
                         {"quiverd_rss_after_sweep", r.mem_swept.rss_kb / 1024.0},
                         {"quiverd_peak", r.mem_swept.hwm_kb / 1024.0},
                         {"quiver_hnsw_index", r.hnsw_seg.index_memory / 1048576.0},
                         {"quiver_ivf_index", r.ivf_seg.index_memory / 1048576.0},
                         {"hnswlib_index", r.hnswlib_bytes / 1048576.0},
                         {"faiss_hnsw_index", r.faiss_hnsw_bytes / 1048576.0},
                         {"faiss_ivf_index", r.faiss_ivf_bytes / 1048576.0}};
  report["tables"] = r.out.str();
  report["png"] = png;
  report["seconds_total"] = NowSeconds() - r.run_t0;
  FinishReport(&report, args.json_out);
}

int Main(int argc, char** argv) {
  AnnRun r;
  if (int code = 0; !ParseArgs(argc, argv, r.args, &code)) return code;
  r.k = r.args.k;
  r.run_t0 = NowSeconds();
  PinOmpThreads(1);
  r.report = NewReport("ann_bench", argc, argv);
  LoadData(r);
  StartServer(r);
  if (!IngestHnsw(r)) return MetricsOverheadRun(r);
  IngestIvf(r);
  BuildBaselines(r);
  StartNoopServer(r);
  PrepareSweep(r);
  Sweep(r);
  Restart(r);

  TableIngest(r);
  TableSweep(r);
  TableTargets(r);
  TableRestart(r);
  TableMemory(r);
  const std::string png = DrawCurves(r);
  std::printf("%s", r.out.str().c_str());
  if (!png.empty()) std::printf("\nrecall-QPS curves: %s\n", png.c_str());
  std::printf("total %.0f s (sweep %.0f s); load average %s\n", NowSeconds() - r.run_t0,
              r.sweep_s, LoadAverage().c_str());
  WriteJson(r, png);
  return 0;
}

}  // namespace
}  // namespace quiver::bench

int main(int argc, char** argv) { return quiver::bench::Main(argc, argv); }
