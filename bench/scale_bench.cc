// scale_bench: how do Quiver's HNSW through gRPC and one in-process hnswlib
// graph over the same points compare as n grows (60k, 250k, 1M), in ingest
// and build time, memory, restart time, QPS at recall@10 0.9 / 0.95 / 0.99
// and latency; at 784 dimensions and in the low-dimensional regime (128)?
//
// Data: the augmented Fashion-MNIST of disk_bench (common/scaled_fmnist.h:
// the 70,000 images minus the queries, then shifted noisy copies; the
// first 60,000 points are the training images), and its projection to
// `--dims` other than 784 by a fixed random rotation (FAISS
// RandomRotationMatrix, seeded). Queries: the first --queries t10k images
// (projected the same way). Ground truth: exact (FAISS IndexFlatL2 + double
// re-rank, cached).
//
// Per set and n, in this order:
//  1. hnswlib (same M, ef_construction, --build-threads threads) is built
//     in a child process (this binary re-run with --hnswlib-child) that maps
//     the points from a file, unmaps them after the build and reports its
//     own RSS: the RSS of a process holding just that index, which this
//     process (holding the data, the ground truth, gRPC) could not give.
//     The child saves the index; this process loads it (timed: hnswlib's
//     restart) for searching.
//  2. A fresh quiverd gets the points through UpsertPoints (one writer,
//     batches of --ingest-batch) into one HNSW collection; wait until every
//     segment is INDEXED; quiverd's RSS and the field's memory_bytes.
//  3. ef sweep, interleaved (systems alternate first), --rounds rounds:
//     single-query (1 client thread, one query per RPC / searchKnn call)
//     and batched (1 thread, --batch queries per Search RPC; hnswlib loops
//     searchKnn). QPS at each recall target is interpolated between the two
//     swept ef values around it. A no-op Search RPC of the single-query
//     size (common/noop_rpc.h) is timed before the sweep and after each ef:
//     single-query QPS is also judged against hnswlib plus that round trip.
//  4. Restart: SIGTERM, start on the same data, time to SERVING, to the
//     first answered search and to every segment INDEXED; then the same
//     after kill -9.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/common/driver.h"
#include "bench/common/ground_truth.h"
#include "bench/common/hnswlib_baseline.h"
#include "bench/common/noop_rpc.h"
#include "bench/common/quiverd_io.h"
#include "bench/common/report.h"
#include "bench/common/scaled_fmnist.h"
#include "bench/common/sysinfo.h"
#include "bench/common/testkit.h"
#include "client/client.h"

namespace quiver::bench {
namespace {

namespace fs = std::filesystem;

constexpr char kColl[] = "scale";
constexpr char kField[] = "image";
constexpr size_t kSourceDim = 784;  // Fashion-MNIST's 28 x 28

struct Args {
  std::vector<size_t> sizes = {60000, 250000, 1000000};
  std::vector<size_t> dims = {784, 128};
  size_t queries = 1000;
  size_t k = 10;
  int rounds = 3;
  size_t batch = 100;
  size_t ingest_batch = 1000;
  int hnsw_m = 16;
  int ef_construction = 200;
  std::vector<int> efs = {10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512};
  std::vector<double> recalls = {0.9, 0.95, 0.99};
  int build_threads = 2;
  int search_threads = 1;
  uint64_t seed = 42;  // augmentation (disk_bench's default)
  uint64_t projection_seed = 1234;
  double noise = 8.0;  // grey levels, as disk_bench
  bool restart = true;
  bool plot = true;
  std::string durability = "sync";
  std::string quiverd = QUIVERD_PATH;
  std::vector<std::string> quiverd_env;
  std::vector<std::string> quiverd_args;
  int merge_idle_s = 30;  // quiverd --merge-idle-s
  std::string out_dir;
  std::string tmp_dir;
  std::string cache_dir = QUIVER_BENCH_CACHE_DIR;
  std::string dataset_dir = kFashionDir;
  // --hnswlib-child: build one index from a file of floats, report, exit.
  std::string child_data, child_index, child_out;
  size_t child_n = 0, child_dim = 0;
};

// Targets of the issue, checked per set and n.
constexpr double kTargetRecall = 0.95;
constexpr double kMaxFieldMemoryRatio = 1.1;
constexpr double kMaxRssRatio = 1.3;
constexpr double kMinQpsRatio = 0.8;
constexpr double kMaxRestartBuildRatio = 0.05;
constexpr double kMaxFirstSearchAfterServingS = 1.0;

enum System { kQuiver = 0, kHnswlib = 1 };
constexpr const char* kSystemName[] = {"Quiver", "hnswlib"};
constexpr const char* kSystemKey[] = {"quiver", "hnswlib"};
constexpr const char* kModeKey[] = {"single", "batched"};

// ------------------------------------------------------------ hnswlib child

struct ChildResult {
  double build_s = NAN, save_s = NAN;
  int64_t rss_start_kb = -1, rss_kb = -1, hwm_kb = -1;
  size_t index_bytes = 0;
};

// The child: maps `child_n` x `child_dim` floats from `child_data`, builds
// hnswlib over them, unmaps them, and writes its RSS (now the index and the
// process alone) and build time to `child_out` as JSON.
int HnswlibChild(const Args& a) {
  const int64_t rss_start = ReadMemory().rss_kb;
  const size_t bytes = a.child_n * a.child_dim * sizeof(float);
  const int fd = open(a.child_data.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    std::fprintf(stderr, "hnswlib child: open %s: %s\n", a.child_data.c_str(),
                 std::strerror(errno));
    return 1;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) != bytes) {
    std::fprintf(stderr, "hnswlib child: %s is not %zu bytes\n", a.child_data.c_str(), bytes);
    return 1;
  }
  void* map = mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) {
    std::fprintf(stderr, "hnswlib child: mmap: %s\n", std::strerror(errno));
    return 1;
  }
  ChildResult r;
  hnswlib::L2Space space(a.child_dim);
  hnswlib::HierarchicalNSW<float> index(&space, a.child_n, static_cast<size_t>(a.hnsw_m),
                                        static_cast<size_t>(a.ef_construction));
  r.build_s =
      BuildHnswlib(index, static_cast<const float*>(map), a.child_n, a.child_dim, a.build_threads);
  munmap(map, bytes);
  close(fd);
  const MemoryInfo mem = ReadMemory();
  r.rss_kb = mem.rss_kb;
  r.hwm_kb = mem.hwm_kb;
  r.index_bytes = HnswlibIndexBytes(index);
  const double t0 = NowSeconds();
  index.saveIndex(a.child_index);
  r.save_s = NowSeconds() - t0;
  nlohmann::json j = {{"build_s", r.build_s}, {"save_s", r.save_s}, {"rss_start_kb", rss_start},
                      {"rss_kb", r.rss_kb},   {"hwm_kb", r.hwm_kb}, {"index_bytes", r.index_bytes}};
  std::ofstream out(a.child_out, std::ios::trunc);
  out << j.dump(2) << "\n";
  return out ? 0 : 1;
}

// Runs this binary as the hnswlib child and waits for it. Dies on failure.
ChildResult RunHnswlibChild(const Args& args, const std::string& data, const std::string& index,
                            const std::string& out, size_t n, size_t dim) {
  // argv is built before fork: the parent has threads, so the child may
  // only make async-signal-safe calls until exec.
  std::vector<std::string> argv_s = {"scale_bench",
                                     "--hnswlib-child",
                                     data,
                                     "--child-index",
                                     index,
                                     "--child-out",
                                     out,
                                     "--child-n",
                                     std::to_string(n),
                                     "--child-dim",
                                     std::to_string(dim),
                                     "--M",
                                     std::to_string(args.hnsw_m),
                                     "--ef-construction",
                                     std::to_string(args.ef_construction),
                                     "--build-threads",
                                     std::to_string(args.build_threads)};
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = fork();
  if (pid < 0) Die("fork hnswlib child", absl::InternalError(std::strerror(errno)));
  if (pid == 0) {
    // Dies with us: an interrupted benchmark leaves no build running.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Die("hnswlib child", absl::InternalError(absl::StrCat("exit status ", status)));
  }
  std::ifstream in(out);
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) Die("hnswlib child", absl::DataLossError("unreadable " + out));
  ChildResult r;
  r.build_s = j.value("build_s", NAN);
  r.save_s = j.value("save_s", NAN);
  r.rss_start_kb = j.value("rss_start_kb", int64_t{-1});
  r.rss_kb = j.value("rss_kb", int64_t{-1});
  r.hwm_kb = j.value("hwm_kb", int64_t{-1});
  r.index_bytes = j.value("index_bytes", size_t{0});
  return r;
}

// ------------------------------------------------------------ results

// One system x mode x ef over the rounds.
struct Point {
  int ef = 0;
  std::vector<double> qps, recall, latency_ms, others;
  std::vector<double> server_cpu_us;  // quiverd's CPU per query, per round
  double Qps() const { return Median(qps); }
  double Recall() const {
    double s = 0;
    for (double r : recall) s += r;
    return recall.empty() ? NAN : s / static_cast<double>(recall.size());
  }
};

// QPS at a recall target, from a sweep in ascending ef.
struct AtRecall {
  double qps = NAN;                   // NaN: no swept ef reached the target
  int ef_below = 0;                   // the swept ef just under the target; 0: none
  int ef_reached = 0;                 // the first swept ef reaching it
  bool floor = false;                 // the smallest ef already reached it: its QPS, a lower bound
  double p50_ms = NAN, p99_ms = NAN;  // of the ef reaching it
};

// Log-QPS interpolated linearly in recall between the last ef under the
// target and the first reaching it: a sweep's grid would otherwise decide
// the ratio between two systems whose grids cross the target at different
// places.
AtRecall QpsAtRecall(const std::vector<Point>& pts, double target) {
  AtRecall a;
  for (size_t i = 0; i < pts.size(); ++i) {
    const double r1 = pts[i].Recall();
    if (!(r1 >= target)) continue;
    a.ef_reached = pts[i].ef;
    a.p50_ms = Percentile(pts[i].latency_ms, 50);
    a.p99_ms = Percentile(pts[i].latency_ms, 99);
    if (i == 0) {
      a.floor = true;
      a.qps = pts[0].Qps();
      return a;
    }
    a.ef_below = pts[i - 1].ef;
    const double r0 = pts[i - 1].Recall();
    const double t = (target - r0) / (r1 - r0);
    const double l0 = std::log(pts[i - 1].Qps()), l1 = std::log(pts[i].Qps());
    a.qps = std::exp(l0 + t * (l1 - l0));
    return a;
  }
  return a;
}

struct RestartTiming {
  bool done = false;
  bool kill9 = false;
  double stop_s = NAN;          // SIGTERM -> exited (clean stop only)
  double serving_s = NAN;       // kill / stop -> SERVING
  double first_search_s = NAN;  // kill / stop -> first search answered with k hits
  double indexed_s = NAN;       // kill / stop -> every segment INDEXED (and a search answered)
  double start_to_serving_s = NAN;
  bool indexed_at_first_search = false;
  double rss_mb = NAN;
  double file_mb = NAN;  // of rss_mb: mapped files (index files used in place)
  double peak_mb = NAN;  // VmHWM of the restarted process
  double recall = NAN;  // batched, at the ef reaching 0.95 before
  int recall_ef = 0;
  size_t rebuilt = 0;  // index builds logged after the start
  double FirstAfterServing() const { return first_search_s - serving_s; }
};

struct Cell {
  std::string set;  // "fmnist-aug-784", "fmnist-aug-rp128"
  size_t dim = 0, n = 0, nq = 0;
  double gt_s = 0;
  // hnswlib
  ChildResult hl;
  double hl_load_s = NAN;
  // Quiver
  double ingest_s = NAN, last_ack_to_indexed_s = NAN, first_write_to_indexed_s = NAN;
  std::vector<LoggedBuild> builds;
  // Sums over the logged builds: the graphs with their self-checks, and the
  // recall calibration (which hnswlib does not do) apart.
  double build_s = NAN, calibration_s = NAN;
  uint64_t field_memory = 0;
  SegmentsState segs;
  MemoryInfo rss_empty, rss_indexed, rss_swept;
  // sweep: points[system][mode], ascending ef
  std::array<std::array<std::vector<Point>, 2>, 2> points;
  double sweep_s = 0;
  RestartTiming clean, kill9;
  // A no-op unary Search RPC of the single-query size, per second (one
  // client thread), timed before the sweep and after each ef.
  std::vector<double> noop_rates;
  double NoopRate() const { return noop_rates.empty() ? NAN : Median(noop_rates); }
  nlohmann::json targets = nlohmann::json::array();
  AtRecall At(System s, int mode, double target) const {
    return QpsAtRecall(points[s][mode], target);
  }
};

std::string Mb(double bytes) { return Fixed(bytes / 1048576.0, 0); }
std::string MbKb(int64_t kb) { return kb < 0 ? "-" : Fixed(kb / 1024.0, 0); }
std::string Ratio(double a, double b) {
  return (b > 0 && !std::isnan(a)) ? Fixed(a / b, 2) + "x" : "-";
}
std::string SizeName(size_t n) {
  if (n % 1000000 == 0) return absl::StrCat(n / 1000000, "M");
  if (n % 1000 == 0) return absl::StrCat(n / 1000, "k");
  return absl::StrCat(n);
}
std::string SetName(size_t dim) {
  return dim == kSourceDim ? "fmnist-aug-784" : absl::StrCat("fmnist-aug-rp", dim);
}

// ------------------------------------------------------------ one cell

// The state of one set x n while it runs.
struct CellRun {
  const Args& args;
  const Matrix& base;
  const Matrix& queries;
  const GroundTruth& gt;
  const std::string& dir;  // this cell's temporary folder
  Cell& cell;
  size_t nq;
  std::unique_ptr<hnswlib::L2Space> space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> hnsw;
  std::unique_ptr<QuiverdProcess> srv;
  std::unique_ptr<client::Client> client;              // searches
  std::array<std::vector<v1::SearchRequest>, 2> reqs;  // [mode]
};

void BuildHnswlibBaseline(CellRun& r) {
  const Args& args = r.args;
  const std::string data = r.dir + "/base.f32", index = r.dir + "/hnswlib.bin",
                    out = r.dir + "/hnswlib.json";
  {
    std::ofstream f(data, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(r.base.data.data()),
            static_cast<std::streamsize>(r.base.bytes()));
    if (!f) Die("write " + data, absl::InternalError("short write"));
  }
  std::printf("  [hnswlib] building in a child process (M=%d, ef_construction=%d, %d threads)...\n",
              args.hnsw_m, args.ef_construction, args.build_threads);
  std::fflush(stdout);
  r.cell.hl = RunHnswlibChild(args, data, index, out, r.base.n, r.base.dim);
  fs::remove(data);
  r.space = std::make_unique<hnswlib::L2Space>(r.base.dim);
  const double t0 = NowSeconds();
  try {
    r.hnsw =
        std::make_unique<hnswlib::HierarchicalNSW<float>>(r.space.get(), index, false, r.base.n);
  } catch (const std::exception& e) {  // hnswlib throws on a bad file or without memory
    Die("hnswlib loadIndex " + index, absl::InternalError(e.what()));
  }
  r.cell.hl_load_s = NowSeconds() - t0;
  fs::remove(index);
  std::printf(
      "  [hnswlib] build %.1f s; child RSS %s MB (at start %s MB, peak %s MB with the "
      "data mapped); index %s MB; load from file %.2f s\n",
      r.cell.hl.build_s, MbKb(r.cell.hl.rss_kb).c_str(), MbKb(r.cell.hl.rss_start_kb).c_str(),
      MbKb(r.cell.hl.hwm_kb).c_str(), Mb(static_cast<double>(r.cell.hl.index_bytes)).c_str(),
      r.cell.hl_load_s);
  std::fflush(stdout);
}

QuiverdOptions ServerOptions(const Args& args, const std::string& dir) {
  QuiverdOptions qo = BenchQuiverdOptions();
  qo.binary = args.quiverd;
  qo.durability = args.durability;
  qo.search_threads = args.search_threads;
  qo.tmp_root = dir;
  qo.env = args.quiverd_env;
  qo.log_level = "info";  // index build times are logged at info
  // A 1M-point restart loads 16 segments: more than the usual minute.
  qo.start_timeout = absl::Minutes(30);
  qo.extra_args = {"--index-build-threads", std::to_string(args.build_threads),
                   "--index-build-workers", "1", "--merge-idle-s",
                   std::to_string(args.merge_idle_s)};
  qo.extra_args.insert(qo.extra_args.end(), args.quiverd_args.begin(), args.quiverd_args.end());
  return qo;
}

// Every segment INDEXED, polled every 20 ms: the ready time is part of
// what is measured.
double WaitAllIndexed(client::Client& c) { return WaitIndexedOrDie(c, {kColl}, 6 * 3600, 20); }

void IngestQuiver(CellRun& r) {
  const Args& args = r.args;
  Cell& cell = r.cell;
  auto srv = QuiverdProcess::Launch(ServerOptions(args, r.dir));
  if (!srv.ok()) Die("start quiverd", srv.status());
  r.srv = *std::move(srv);
  WaitQuiet(r.srv->pid(), 10);
  cell.rss_empty = ReadMemory(r.srv->pid());
  client::ClientOptions co;
  // Upserts wait (retry-after-ms) while index builds are behind; at 1M
  // that can be minutes.
  co.timeout = absl::Minutes(30);
  client::Client writer(r.srv->address(), co);
  v1::CollectionSchema schema;
  v1::VectorField* v = schema.add_vectors();
  v->set_name(kField);
  v->set_dim(static_cast<uint32_t>(r.base.dim));
  v->set_metric(v1::L2);
  v->mutable_index()->set_type("HNSW");
  (*v->mutable_index()->mutable_params())["M"] = std::to_string(args.hnsw_m);
  (*v->mutable_index()->mutable_params())["ef_construction"] = std::to_string(args.ef_construction);
  if (auto c = writer.CreateCollection(kColl, schema); !c.ok()) Die("CreateCollection", c.status());

  std::printf("  [Quiver] ingest %zu points, batches of %zu, 1 writer, --durability %s...\n",
              r.base.n, args.ingest_batch, args.durability.c_str());
  std::fflush(stdout);
  // Requests are built as they go (a prebuilt 1M-point set would hold
  // another copy of the data); building one is ~1 ms against an RPC of tens.
  const double t0 = NowSeconds();
  for (size_t b = 0; b < r.base.n; b += args.ingest_batch) {
    v1::UpsertPointsRequest req;
    req.set_collection(kColl);
    for (size_t i = b; i < std::min(r.base.n, b + args.ingest_batch); ++i) {
      v1::Point* p = req.add_points();
      p->set_id(std::to_string(i));
      (*p->mutable_vectors())[kField].mutable_values()->Add(r.base.row(i),
                                                            r.base.row(i) + r.base.dim);
    }
    if (auto u = writer.Upsert(req); !u.ok()) Die("Upsert", u.status());
  }
  const double t_ack = NowSeconds();
  cell.ingest_s = t_ack - t0;
  WaitAllIndexed(writer);
  // Then the merges by size (--merge-target-mb) that the sealed segments
  // start: quiverd is quiet once the last merged segment is built and
  // swapped in (a 250k-point merge builds for minutes), and stays quiet
  // past --merge-idle-s (after which writes count as paused and segments
  // of different sizes merge too).
  for (;;) {
    WaitQuiet(r.srv->pid(), 6 * 3600);
    const double cpu0 = ProcessCpuSeconds(r.srv->pid());
    std::this_thread::sleep_for(std::chrono::seconds(args.merge_idle_s + 5));
    if (ProcessCpuSeconds(r.srv->pid()) - cpu0 < 0.5) break;
  }
  const double t_indexed = NowSeconds();
  cell.last_ack_to_indexed_s = t_indexed - t_ack;
  cell.first_write_to_indexed_s = t_indexed - t0;
  cell.builds = LoggedBuilds(r.srv->log_path(), kColl);
  if (!cell.builds.empty()) {
    cell.build_s = cell.calibration_s = 0;
    for (const LoggedBuild& b : cell.builds) {
      cell.build_s += b.build_s + b.check_s;
      cell.calibration_s += b.calibration_s;
    }
  }
  WaitQuiet(r.srv->pid());
  cell.rss_indexed = ReadMemory(r.srv->pid());
  auto segs = Segments(writer, kColl);
  if (!segs.ok()) Die("GetCollection", segs.status());
  cell.segs = *std::move(segs);
  cell.field_memory = cell.segs.field_memory;
  if (cell.segs.rows != r.base.n) {
    Die("GetCollection", absl::DataLossError(absl::StrCat("segments hold ", cell.segs.rows,
                                                          " rows, sent ", r.base.n)));
  }
  std::printf(
      "  [Quiver] ingest %.2f s (%s vectors/s); last ack -> INDEXED %.2f s; %zu "
      "segments, %zu builds logged: %.2f s + %.2f s recall calibration; RSS %s MB; field "
      "memory %s MB\n",
      cell.ingest_s, Thousands(r.base.n / cell.ingest_s).c_str(), cell.last_ack_to_indexed_s,
      cell.segs.segments, cell.builds.size(), cell.build_s, cell.calibration_s,
      MbKb(cell.rss_indexed.rss_kb).c_str(), Mb(static_cast<double>(cell.field_memory)).c_str());
  std::fflush(stdout);
}

void SetEf(CellRun& r, System s, int ef) {
  if (s == kHnswlib) {
    r.hnsw->setEf(static_cast<size_t>(ef));  // never while threads search
    return;
  }
  for (auto& mode_reqs : r.reqs) {
    for (auto& q : mode_reqs) q.mutable_params()->set_ef(static_cast<uint32_t>(ef));
  }
}

// One pass over `nq` queries from one client thread: single (one query per
// call) or batched (--batch per call).
Run RunSystem(CellRun& r, System s, int mode, size_t nq) {
  const size_t per_call = mode == 0 ? 1 : r.args.batch;
  const size_t calls = (nq + per_call - 1) / per_call;
  const size_t k = r.args.k;
  if (s == kQuiver) {
    absl::Status error;
    Run run = Drive(calls, 1, nq, k, [&](size_t c, int, Run* out) {
      auto resp = r.client->Search(r.reqs[mode][c]);
      if (!resp.ok()) {
        error = resp.status();
        return;
      }
      HitIdsInto(*resp, c * per_call, k, out->ids.data());
    });
    if (!error.ok()) Die("Search", error);
    return run;
  }
  return Drive(calls, 1, nq, k, [&](size_t c, int, Run* out) {
    for (size_t q = c * per_call; q < std::min(nq, (c + 1) * per_call); ++q) {
      HnswlibSearchInto(*r.hnsw, r.queries.row(q), k, out->ids.data() + q * k);
    }
  });
}

void Sweep(CellRun& r) {
  const Args& args = r.args;
  Cell& cell = r.cell;
  r.client = std::make_unique<client::Client>(r.srv->address());
  for (int mode = 0; mode < 2; ++mode) {
    r.reqs[mode] = MakeSearches(kColl, r.queries, r.nq, mode == 0 ? 1 : args.batch, args.k, kField);
  }
  // Warm-up: both systems, both modes, the first ef.
  for (System s : {kQuiver, kHnswlib}) {
    SetEf(r, s, args.efs.front());
    for (int mode = 0; mode < 2; ++mode) RunSystem(r, s, mode, std::min<size_t>(r.nq, 200));
  }
  NoopRpc noop(r.reqs[0], 1);
  cell.noop_rates.push_back(noop.Rate(1));
  const double top = *std::max_element(args.recalls.begin(), args.recalls.end());
  std::printf(
      "  [sweep] ef %s, %d rounds, %zu queries a run (stops once both systems reach "
      "recall %.2f in both modes)\n",
      absl::StrJoin(args.efs, ",").c_str(), args.rounds, r.nq, top);
  std::fflush(stdout);
  const double t0 = NowSeconds();
  for (size_t ei = 0; ei < args.efs.size(); ++ei) {
    const int ef = args.efs[ei];
    for (auto& per_system : cell.points) {
      for (auto& per_mode : per_system) per_mode.push_back(Point{ef, {}, {}, {}, {}, {}});
    }
    for (System s : {kQuiver, kHnswlib}) SetEf(r, s, ef);
    for (int round = 0; round < args.rounds; ++round) {
      for (int mode = 0; mode < 2; ++mode) {
        for (int j = 0; j < 2; ++j) {
          const System s = static_cast<System>((j + round + mode + static_cast<int>(ei)) % 2);
          Run run = MeasureOthers(r.srv->pid(), [&] { return RunSystem(r, s, mode, r.nq); });
          Point& p = cell.points[s][mode].back();
          p.qps.push_back(static_cast<double>(r.nq) / run.seconds);
          p.recall.push_back(MeanRecall(run, r.gt, r.base, r.queries, r.nq, args.k));
          p.latency_ms.insert(p.latency_ms.end(), run.latency_ms.begin(), run.latency_ms.end());
          p.others.push_back(run.other_cores);
          p.server_cpu_us.push_back(run.cpu_server_s * 1e6 / static_cast<double>(r.nq));
        }
      }
    }
    bool all_top = true;
    std::string line;
    for (System s : {kQuiver, kHnswlib}) {
      for (int mode = 0; mode < 2; ++mode) {
        const Point& p = cell.points[s][mode].back();
        all_top &= p.Recall() >= top;
        absl::StrAppend(&line, "  ", kSystemName[s], " ", kModeKey[mode], " ", Fixed(p.Recall(), 4),
                        " @ ", Thousands(p.Qps()), "/s");
      }
    }
    cell.noop_rates.push_back(noop.Rate(1));
    std::printf("    ef=%-4d%s  (no-op RPC %s/s)\n", ef, line.c_str(),
                Thousands(cell.noop_rates.back()).c_str());
    std::fflush(stdout);
    if (all_top) break;
  }
  cell.sweep_s = NowSeconds() - t0;
  cell.rss_swept = ReadMemory(r.srv->pid());
}

// Stops quiverd (SIGTERM, or SIGKILL for `kill9`), starts it on the same
// data and times it to SERVING, to the first search answered with k hits
// and to every segment INDEXED; then its RSS and recall.
RestartTiming RestartOnce(CellRun& r, bool kill9, int recall_ef) {
  RestartTiming t;
  t.kill9 = kill9;
  const size_t builds_before = LoggedBuilds(r.srv->log_path(), kColl).size();
  r.client.reset();
  const double t0 = NowSeconds();
  if (kill9) {
    if (absl::Status s = r.srv->Kill9(); !s.ok()) Die("kill -9 quiverd", s);
  } else {
    if (absl::Status s = r.srv->Stop(); !s.ok()) Die("stop quiverd", s);
    t.stop_s = NowSeconds() - t0;
  }
  const double t_start = NowSeconds();
  if (absl::Status s = r.srv->Start(); !s.ok()) Die("restart quiverd", s);
  const double t_serving = NowSeconds();
  t.serving_s = t_serving - t0;
  t.start_to_serving_s = t_serving - t_start;
  client::ClientOptions co;
  co.timeout = absl::Seconds(30);
  client::Client c(r.srv->address(), co);
  v1::SearchRequest probe = MakeSearches(kColl, r.queries, 1, 1, r.args.k, kField)[0];
  probe.mutable_params()->set_ef(static_cast<uint32_t>(recall_ef));
  for (;;) {
    auto resp = c.Search(probe);
    if (resp.ok() && resp->results_size() == 1 &&
        resp->results(0).hits_size() == static_cast<int>(r.args.k)) {
      break;
    }
    if (NowSeconds() - t_serving > 600) Die("first search after restart", resp.status());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  t.first_search_s = NowSeconds() - t0;
  auto segs = Segments(c, kColl);
  t.indexed_at_first_search = segs.ok() && segs->all_indexed;
  WaitAllIndexed(c);
  t.indexed_s = std::max(NowSeconds() - t0, t.first_search_s);
  WaitQuiet(r.srv->pid());
  const MemoryInfo mem = ReadMemory(r.srv->pid());
  t.rss_mb = mem.rss_kb / 1024.0;
  t.file_mb = mem.file_kb / 1024.0;
  t.peak_mb = mem.hwm_kb / 1024.0;
  t.rebuilt = LoggedBuilds(r.srv->log_path(), kColl).size() - builds_before;
  r.client = std::make_unique<client::Client>(r.srv->address());
  SetEf(r, kQuiver, recall_ef);
  t.recall_ef = recall_ef;
  t.recall = MeanRecall(RunSystem(r, kQuiver, 1, r.nq), r.gt, r.base, r.queries, r.nq, r.args.k);
  t.done = true;
  const std::string exited = kill9 ? "" : absl::StrCat("exited after ", Fixed(t.stop_s, 2), " s; ");
  std::printf(
      "  [restart, %s] %sSERVING %.2f s, first search %.2f s, all INDEXED %.2f s after "
      "the signal; recall %.4f at ef=%d; %zu indexes rebuilt; RSS %.0f MB (%.0f MB of it "
      "mapped files), peak %.0f MB\n",
      kill9 ? "kill -9" : "SIGTERM", exited.c_str(), t.serving_s, t.first_search_s, t.indexed_s,
      t.recall, recall_ef, t.rebuilt, t.rss_mb, t.file_mb, t.peak_mb);
  std::fflush(stdout);
  return t;
}

// A QPS cell: "-" when not reached, "*" when the smallest ef already
// exceeded the recall.
std::string QpsCell(const AtRecall& a) {
  if (std::isnan(a.qps)) return "-";
  return Thousands(a.qps) + (a.floor ? "*" : "");
}

// The targets of the issue for one cell, as rows {target, measured, met}.
void CheckTargets(Cell& c) {
  auto add = [&](const std::string& what, double value, double limit, bool at_most,
                 const std::string& measured) {
    const bool known = !std::isnan(value);
    const bool met = known && (at_most ? value <= limit : value >= limit);
    c.targets.push_back({{"target", what},
                         {"value", known ? nlohmann::json(value) : nlohmann::json(nullptr)},
                         {"limit", limit},
                         {"measured", measured},
                         {"met", met}});
  };
  const double mem = static_cast<double>(c.field_memory) / static_cast<double>(c.hl.index_bytes);
  add("field memory_bytes <= 1.1x hnswlib index", mem, kMaxFieldMemoryRatio, true,
      Mb(static_cast<double>(c.field_memory)) + " / " + Mb(static_cast<double>(c.hl.index_bytes)) +
          " MB");
  const double rss = static_cast<double>(c.rss_indexed.rss_kb) / static_cast<double>(c.hl.rss_kb);
  add("quiverd RSS <= 1.3x hnswlib process RSS", c.hl.rss_kb > 0 ? rss : NAN, kMaxRssRatio, true,
      MbKb(c.rss_indexed.rss_kb) + " / " + MbKb(c.hl.rss_kb) + " MB");
  for (int mode = 0; mode < 2; ++mode) {
    const AtRecall q = c.At(kQuiver, mode, kTargetRecall), h = c.At(kHnswlib, mode, kTargetRecall);
    add(absl::StrCat(kModeKey[mode], " QPS at recall 0.95 >= 0.8x hnswlib"), q.qps / h.qps,
        kMinQpsRatio, false, QpsCell(q) + " / " + QpsCell(h));
  }
  {
    // What a search through gRPC can reach at best: hnswlib's time per
    // query plus one no-op round trip. The target above compares with an
    // in-process library that pays no round trip at all.
    const AtRecall q = c.At(kQuiver, 0, kTargetRecall), h = c.At(kHnswlib, 0, kTargetRecall);
    const double noop = c.NoopRate();
    const double bound = 1.0 / (1.0 / noop + 1.0 / h.qps);
    add("single QPS at recall 0.95 >= 0.8x 1/(1/no-op RPC + 1/hnswlib)", q.qps / bound,
        kMinQpsRatio, false,
        QpsCell(q) + " / " + Thousands(bound) + " (no-op " + Thousands(noop) + ")");
  }
  if (c.kill9.done) {
    add("restart (kill -9 -> INDEXED, search answered) / build <= 0.05x",
        c.kill9.indexed_s / c.build_s, kMaxRestartBuildRatio, true,
        Fixed(c.kill9.indexed_s, 2) + " / " + Fixed(c.build_s, 1) + " s");
    double worst = c.kill9.FirstAfterServing();
    if (c.clean.done) worst = std::max(worst, c.clean.FirstAfterServing());
    add("first search <= 1 s after SERVING", worst, kMaxFirstSearchAfterServingS, true,
        Fixed(worst, 3) + " s");
  }
}

// One set x n: baseline, Quiver, sweep, restarts. Leaves no process and no
// file behind.
Cell RunCell(const Args& args, const std::string& set, const Matrix& base, const Matrix& queries,
             const std::string& run_dir) {
  Cell cell;
  cell.set = set;
  cell.dim = base.dim;
  cell.n = base.n;
  cell.nq = queries.n;
  std::printf("\n[%s, n=%s] %zu x %zu (%.2f GB of float32)\n", set.c_str(),
              SizeName(base.n).c_str(), base.n, base.dim, base.bytes() / 1e9);
  std::fflush(stdout);
  const std::string dir = absl::StrCat(run_dir, "/", set, "-", base.n);
  fs::create_directories(dir);
  struct statfs sf {};
  if (statfs(dir.c_str(), &sf) == 0) {
    // base file + hnswlib file + quiverd (RocksDB, segment files, indexes).
    const double need = base.bytes() * 5.0 + 1e9;
    const double free_b = static_cast<double>(sf.f_bavail) * sf.f_bsize;
    if (free_b < need) {
      Die("disk space", absl::ResourceExhaustedError(
                            absl::StrCat(dir, " has ", Fixed(free_b / 1e9, 1),
                                         " GB free, needs about ", Fixed(need / 1e9, 1), " GB")));
    }
  }
  const double g0 = NowSeconds();
  auto gt = LoadOrComputeGroundTruth(
      absl::StrCat(set, "-", base.n, "-s", args.seed,
                   base.dim == kSourceDim ? "" : absl::StrCat("-p", args.projection_seed)),
      base, queries, queries.n, args.k, {}, args.cache_dir);
  if (!gt.ok()) Die("ground truth", gt.status());
  PinOmpThreads(1);
  cell.gt_s = NowSeconds() - g0;

  CellRun r{args, base, queries, *gt, dir, cell, queries.n, {}, {}, {}, {}, {}};
  BuildHnswlibBaseline(r);
  IngestQuiver(r);
  Sweep(r);
  r.hnsw.reset();  // the restarts measure quiverd alone
  if (args.restart) {
    const AtRecall at = cell.At(kQuiver, 1, kTargetRecall);
    const int ef = at.ef_reached > 0 ? at.ef_reached : args.efs.back();
    cell.clean = RestartOnce(r, false, ef);
    cell.kill9 = RestartOnce(r, true, ef);
  }
  r.client.reset();
  if (absl::Status s = r.srv->Stop(); !s.ok()) {
    std::fprintf(stderr, "scale_bench: stopping quiverd: %s\n", s.ToString().c_str());
  }
  r.srv.reset();  // removes its data
  std::error_code ec;
  fs::remove_all(dir, ec);
  CheckTargets(cell);
  return cell;
}

// ------------------------------------------------------------ report

void PrintMainTable(const Args& args, const std::vector<Cell>& cells, std::ostream& out) {
  out << "\n## Scale: Quiver HNSW through gRPC vs one in-process hnswlib graph (M=" << args.hnsw_m
      << ", ef_construction=" << args.ef_construction << ", k=" << args.k << ", "
      << (cells.empty() ? 0 : cells.front().nq) << " queries; QPS median of " << args.rounds
      << " interleaved rounds)\n\n";
  std::vector<std::string> header = {"set",     "n",       "system",    "ingest s", "build s",
                                     "calib s", "ready s", "memory MB", "RSS MB",   "restart s"};
  for (const char* m : {"1q", "batch"}) {
    for (double t : args.recalls) header.push_back(absl::StrCat("QPS ", m, " @", Fixed(t, 2)));
  }
  header.insert(header.end(), {"p50 ms", "p99 ms", "others' cores"});
  Table t(header);
  for (const Cell& c : cells) {
    for (System s : {kQuiver, kHnswlib}) {
      std::vector<std::string> row = {c.set, SizeName(c.n), kSystemName[s]};
      if (s == kQuiver) {
        row.insert(row.end(),
                   {Fixed(c.ingest_s, 2), Fixed(c.build_s, 2), Fixed(c.calibration_s, 2),
                    Fixed(c.first_write_to_indexed_s, 2), Mb(static_cast<double>(c.field_memory)),
                    MbKb(c.rss_indexed.rss_kb), Fixed(c.kill9.first_search_s, 2)});
      } else {
        row.insert(row.end(), {"-", Fixed(c.hl.build_s, 2), "-", Fixed(c.hl.build_s, 2),
                               Mb(static_cast<double>(c.hl.index_bytes)), MbKb(c.hl.rss_kb),
                               Fixed(c.hl_load_s, 2)});
      }
      for (int mode = 0; mode < 2; ++mode) {
        for (double target : args.recalls) row.push_back(QpsCell(c.At(s, mode, target)));
      }
      const AtRecall at = c.At(s, 0, kTargetRecall);
      std::vector<double> others;
      for (const auto& per_mode : c.points[s]) {
        for (const Point& p : per_mode)
          others.insert(others.end(), p.others.begin(), p.others.end());
      }
      row.insert(row.end(), {Fixed(at.p50_ms, 3), Fixed(at.p99_ms, 3), Fixed(Median(others), 2)});
      t.AddRow(row);
    }
  }
  t.Print(out);
  out << "\ningest: first UpsertPoints sent -> last acknowledged (1 writer, batches of "
      << args.ingest_batch << ", --durability " << args.durability
      << "). build: Quiver, the sum of the index builds quiverd logs (graph + self-check; one "
         "build worker with "
      << args.build_threads
      << " threads; with more than 65,536 points segments are sealed and built while ingest "
         "goes on); hnswlib, addPoint from "
      << args.build_threads
      << " threads. calib: quiverd's recall calibration of the same builds (for "
         "target_recall searches; hnswlib has none). ready: first write -> every segment INDEXED, "
         "merged by size and quiverd quiet (includes quiverd's --seal-idle-ms wait before "
         "the last segment is sealed, 1 s by default, and its --merge-idle-s wait before "
         "merging segments of different sizes, plus 5 s of quiet after it; hnswlib: its "
         "build). memory: "
         "Quiver, describe's memory_bytes of the field; hnswlib, its vectors and links. RSS: "
         "quiverd with the indexed collection; the hnswlib child process holding only its "
         "index (data unmapped). restart: Quiver, kill -9 -> first search answered with k "
         "hits; hnswlib, loadIndex from its file (page cache warm). QPS at recall@10 R: "
         "log-QPS interpolated linearly in recall between the swept ef under R and the first "
         "reaching R; * = the smallest swept ef already exceeds R (its QPS, a lower bound); - = "
         "no swept ef reached R. 1q: one client thread, one query per call; batch: one "
         "thread, "
      << args.batch
      << " queries per Search RPC (hnswlib: a loop of searchKnn). p50/p99: single-query "
         "latency per call at the first ef reaching recall 0.95. others' cores: CPU other "
         "processes used during the sweep (median; above ~0.2 the numbers are disturbed).\n";
}

void PrintTargetsTable(const std::vector<Cell>& cells, std::ostream& out, nlohmann::json* summary) {
  out << "\n## Targets (ratios from this run)\n\n";
  Table t({"set", "n", "target", "measured", "ratio / value", "met?"});
  int met = 0, total = 0;
  for (const Cell& c : cells) {
    for (const auto& tg : c.targets) {
      const bool ok = tg["met"].get<bool>();
      met += ok;
      ++total;
      const std::string v = tg["value"].is_null() ? "-" : Fixed(tg["value"].get<double>(), 3);
      t.AddRow({c.set, SizeName(c.n), tg["target"].get<std::string>(),
                tg["measured"].get<std::string>(), v, ok ? "met" : "NOT MET"});
    }
  }
  t.Print(out);
  out << "\ntargets met: " << met << " of " << total
      << " (QPS ratios at recall@10 0.95, interpolated as in the table above; restart: kill -9 "
         "-> every segment INDEXED and a search answered; build: the logged graph builds and "
         "self-checks, calibration left out; first search: the slower of the SIGTERM and kill -9 "
         "restarts)\n";
  *summary = {{"met", met}, {"total", total}};
}

void PrintRestartTable(const Args& args, const std::vector<Cell>& cells, std::ostream& out) {
  if (!args.restart) return;
  out << "\n## Restart (same data dir; every time from the SIGTERM or the kill)\n\n";
  Table t({"set", "n", "stop", "SIGTERM -> exit s", "-> SERVING s", "-> first search s",
           "SERVING -> first search s", "-> all INDEXED s", "INDEXED at first search",
           "indexes rebuilt", "recall (ef)", "RSS MB", "/ build s"});
  for (const Cell& c : cells) {
    for (const RestartTiming* rt : {&c.clean, &c.kill9}) {
      if (!rt->done) continue;
      t.AddRow({c.set, SizeName(c.n), rt->kill9 ? "kill -9" : "SIGTERM", Fixed(rt->stop_s, 2),
                Fixed(rt->serving_s, 2), Fixed(rt->first_search_s, 2),
                Fixed(rt->FirstAfterServing(), 3), Fixed(rt->indexed_s, 2),
                rt->indexed_at_first_search ? "yes" : "no", std::to_string(rt->rebuilt),
                Fixed(rt->recall, 4) + " (" + std::to_string(rt->recall_ef) + ")",
                Fixed(rt->rss_mb, 0), Ratio(rt->indexed_s, c.build_s)});
    }
  }
  t.Print(out);
}

void PrintMemoryTable(const std::vector<Cell>& cells, std::ostream& out) {
  out << "\n## Memory (MB = 2^20 bytes)\n\n";
  Table t({"set", "n", "raw vectors", "Quiver field", "hnswlib index", "field / index",
           "quiverd RSS empty", "quiverd RSS indexed", "after sweep / peak",
           "hnswlib process at start", "hnswlib process with index", "its peak (data mapped)",
           "RSS / RSS", "segments"});
  for (const Cell& c : cells) {
    const double raw = static_cast<double>(c.n * c.dim * sizeof(float));
    t.AddRow({c.set, SizeName(c.n), Mb(raw), Mb(static_cast<double>(c.field_memory)),
              Mb(static_cast<double>(c.hl.index_bytes)),
              Ratio(static_cast<double>(c.field_memory), static_cast<double>(c.hl.index_bytes)),
              MbKb(c.rss_empty.rss_kb), MbKb(c.rss_indexed.rss_kb),
              MbKb(c.rss_swept.rss_kb) + " / " + MbKb(c.rss_swept.hwm_kb), MbKb(c.hl.rss_start_kb),
              MbKb(c.hl.rss_kb), MbKb(c.hl.hwm_kb),
              Ratio(static_cast<double>(c.rss_indexed.rss_kb), static_cast<double>(c.hl.rss_kb)),
              std::to_string(c.segs.segments)});
  }
  t.Print(out);
}

nlohmann::json CellJson(const Args& args, const Cell& c) {
  nlohmann::json sweep = nlohmann::json::array();
  nlohmann::json at = nlohmann::json::object();
  for (System s : {kQuiver, kHnswlib}) {
    for (int mode = 0; mode < 2; ++mode) {
      for (const Point& p : c.points[s][mode]) {
        sweep.push_back({{"system", kSystemKey[s]},
                         {"mode", kModeKey[mode]},
                         {"ef", p.ef},
                         {"qps", p.Qps()},
                         {"qps_rounds", p.qps},
                         {"recall_at_10", p.Recall()},
                         {"p50_ms", Percentile(p.latency_ms, 50)},
                         {"p99_ms", Percentile(p.latency_ms, 99)},
                         {"others_cores", p.others},
                         // In hnswlib's runs: what quiverd did meanwhile in the
                         // background (e.g. the recall audit of earlier searches).
                         {"quiverd_cpu_us_per_query", p.server_cpu_us}});
      }
      for (double target : args.recalls) {
        const AtRecall a = c.At(s, mode, target);
        at[kSystemKey[s]][kModeKey[mode]][Fixed(target, 2)] = {
            {"qps", std::isnan(a.qps) ? nlohmann::json(nullptr) : nlohmann::json(a.qps)},
            {"ef_below", a.ef_below},
            {"ef_reached", a.ef_reached},
            {"floor", a.floor},
            {"p50_ms", std::isnan(a.p50_ms) ? nlohmann::json(nullptr) : nlohmann::json(a.p50_ms)},
            {"p99_ms", std::isnan(a.p99_ms) ? nlohmann::json(nullptr) : nlohmann::json(a.p99_ms)}};
      }
    }
  }
  auto restart = [](const RestartTiming& t) {
    if (!t.done) return nlohmann::json(nullptr);
    return nlohmann::json{
        {"stop_s", std::isnan(t.stop_s) ? nlohmann::json(nullptr) : nlohmann::json(t.stop_s)},
        {"serving_s", t.serving_s},
        {"start_to_serving_s", t.start_to_serving_s},
        {"first_search_s", t.first_search_s},
        {"first_search_after_serving_s", t.FirstAfterServing()},
        {"indexed_s", t.indexed_s},
        {"indexed_at_first_search", t.indexed_at_first_search},
        {"indexes_rebuilt", t.rebuilt},
        {"rss_mb", t.rss_mb},
        {"rss_file_mb", t.file_mb},
        {"peak_mb", t.peak_mb},
        {"recall", t.recall},
        {"recall_ef", t.recall_ef}};
  };
  nlohmann::json builds = nlohmann::json::array();
  for (const LoggedBuild& b : c.builds) {
    builds.push_back({{"segment", b.segment},
                      {"index", b.index},
                      {"build_s", b.build_s},
                      {"check_s", b.check_s},
                      {"calibration_s", b.calibration_s}});
  }
  return {
      {"set", c.set},
      {"dim", c.dim},
      {"n", c.n},
      {"ground_truth_s", c.gt_s},
      {"quiver",
       {{"ingest_s", c.ingest_s},
        {"last_ack_to_indexed_s", c.last_ack_to_indexed_s},
        {"first_write_to_indexed_s", c.first_write_to_indexed_s},
        // Sums of the logged builds: graphs + self-checks, and calibration.
        {"build_s", std::isnan(c.build_s) ? nlohmann::json(nullptr) : nlohmann::json(c.build_s)},
        {"calibration_s",
         std::isnan(c.calibration_s) ? nlohmann::json(nullptr) : nlohmann::json(c.calibration_s)},
        {"builds", builds},
        {"segments", c.segs.segments},
        {"segments_desc", c.segs.desc},
        {"field_memory_bytes", c.field_memory},
        {"rss_empty_kb", c.rss_empty.rss_kb},
        {"rss_indexed_kb", c.rss_indexed.rss_kb},
        {"rss_after_sweep_kb", c.rss_swept.rss_kb},
        {"peak_rss_kb", c.rss_swept.hwm_kb},
        {"restart_sigterm", restart(c.clean)},
        {"restart_kill9", restart(c.kill9)}}},
      {"hnswlib",
       {{"build_s", c.hl.build_s},
        {"save_s", c.hl.save_s},
        {"load_s", c.hl_load_s},
        {"index_bytes", c.hl.index_bytes},
        {"process_rss_start_kb", c.hl.rss_start_kb},
        {"process_rss_kb", c.hl.rss_kb},
        {"process_peak_rss_kb", c.hl.hwm_kb}}},
      {"sweep_s", c.sweep_s},
      {"noop_rpc_per_s", c.noop_rates},
      {"sweep", sweep},
      {"qps_at_recall", at},
      {"targets", c.targets}};
}

// Draws the PNG with bench/scale_plot.py (matplotlib); returns its path or
// "" with a note.
std::string Plot(const std::string& json_path, const std::string& png) {
  const std::string script = std::string(QUIVER_BENCH_SOURCE_DIR) + "/bench/scale_plot.py";
  const std::string cmd = "/usr/bin/python3 '" + script + "' '" + json_path + "' '" + png + "'";
  if (std::system(cmd.c_str()) != 0) {
    std::printf("(no PNG: `%s` failed; it needs python3-matplotlib)\n", cmd.c_str());
    return "";
  }
  return png;
}

// ------------------------------------------------------------ main

bool ParseArgs(int argc, char** argv, Args& args, int* exit_code) {
  CLI::App app{"scale_bench: Quiver HNSW (gRPC) vs one in-process hnswlib graph, 60k to 1M"};
  app.add_option("--sizes", args.sizes, "base sizes n")->delimiter(',');
  app.add_option("--dims", args.dims,
                 "sets: 784 = augmented Fashion-MNIST; any other = its random projection")
      ->delimiter(',');
  app.add_option("--queries", args.queries, "queries (the first t10k images)");
  app.add_option("--rounds", args.rounds, "interleaved rounds per ef");
  app.add_option("--batch", args.batch, "queries per batched call");
  app.add_option("--ingest-batch", args.ingest_batch, "points per UpsertPoints request");
  app.add_option("--M", args.hnsw_m, "HNSW M (both systems)");
  app.add_option("--ef-construction", args.ef_construction, "HNSW ef_construction (both)");
  app.add_option("--ef", args.efs, "search ef values, ascending")->delimiter(',');
  app.add_option("--recalls", args.recalls, "recall@10 targets for QPS")->delimiter(',');
  app.add_option("--build-threads", args.build_threads,
                 "hnswlib build threads and quiverd --index-build-threads");
  app.add_option("--search-threads", args.search_threads, "quiverd --search-threads");
  app.add_option("--seed", args.seed, "augmentation seed");
  app.add_option("--projection-seed", args.projection_seed, "random projection seed");
  app.add_option("--durability", args.durability, "quiverd --durability");
  bool no_restart = false, no_plot = false;
  app.add_flag("--no-restart", no_restart, "skip the restart measurements");
  app.add_flag("--no-plot", no_plot, "do not draw the PNG");
  app.add_option("--quiverd", args.quiverd, "quiverd binary");
  app.add_option("--quiverd-env", args.quiverd_env, "extra NAME=value for quiverd (repeatable)");
  app.add_option("--quiverd-arg", args.quiverd_args, "extra quiverd argument (repeatable)");
  app.add_option("--merge-idle-s", args.merge_idle_s,
                 "quiverd --merge-idle-s; the bench waits that long plus 5 s of quiet");
  app.add_option("--out", args.out_dir,
                 "folder for scale_bench.json and .png (default <exe dir>/bench_results)");
  app.add_option("--tmp-dir", args.tmp_dir,
                 "where data dirs and index files go (default <exe dir>/bench_tmp; not tmpfs)");
  app.add_option("--cache-dir", args.cache_dir, "ground-truth cache folder");
  app.add_option("--dataset-dir", args.dataset_dir, "Fashion-MNIST IDX folder");
  // The hnswlib child (RunHnswlibChild), not for users.
  app.add_option("--hnswlib-child", args.child_data)->group("");
  app.add_option("--child-index", args.child_index)->group("");
  app.add_option("--child-out", args.child_out)->group("");
  app.add_option("--child-n", args.child_n)->group("");
  app.add_option("--child-dim", args.child_dim)->group("");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *exit_code = app.exit(e);
    return false;
  }
  if (!args.child_data.empty()) return true;
  args.restart = !no_restart;
  args.plot = !no_plot;
  std::sort(args.efs.begin(), args.efs.end());
  std::sort(args.sizes.begin(), args.sizes.end());
  if (args.efs.empty() || args.sizes.empty() || args.dims.empty() || args.recalls.empty() ||
      args.queries == 0 || args.k == 0 || args.batch == 0 || args.rounds < 1) {
    std::fprintf(stderr,
                 "scale_bench: --ef, --sizes, --dims, --recalls, --queries, --batch and "
                 "--rounds must not be empty or 0\n");
    *exit_code = 2;
    return false;
  }
  if (args.efs.front() < static_cast<int>(args.k)) {
    std::fprintf(stderr, "scale_bench: every ef must be >= k (%zu)\n", args.k);
    *exit_code = 2;
    return false;
  }
  // The source dimension first: the projections are made from it.
  std::stable_partition(args.dims.begin(), args.dims.end(),
                        [](size_t d) { return d == kSourceDim; });
  if (args.out_dir.empty()) args.out_dir = ExeDir() + "/bench_results";
  if (args.tmp_dir.empty()) args.tmp_dir = ExeDir() + "/bench_tmp";
  return true;
}

int Main(int argc, char** argv) {
  Args args;
  if (int code = 0; !ParseArgs(argc, argv, args, &code)) return code;
  if (!args.child_data.empty()) return HnswlibChild(args);
  const double t_start = NowSeconds();
  PinOmpThreads(1);
  nlohmann::json report = NewReport("scale_bench", argc, argv);
  fs::create_directories(args.out_dir);
  const std::string run_dir = absl::StrCat(args.tmp_dir, "/scale_bench-", getpid());
  fs::create_directories(run_dir);
  static std::string cleanup_dir = run_dir;
  std::atexit([] {
    if (std::getenv("QUIVER_BENCH_KEEP_TMP") == nullptr) {
      std::error_code ec;
      fs::remove_all(cleanup_dir, ec);
    }
  });

  auto ds = LoadFashionMnist(args.dataset_dir, 0, 0);
  if (!ds.ok()) Die("load dataset", ds.status());
  const size_t nq = std::min(args.queries, ds->test.n);
  Matrix queries784;
  queries784.n = nq;
  queries784.dim = ds->test.dim;
  queries784.data.assign(ds->test.data.begin(), ds->test.data.begin() + nq * ds->test.dim);
  const Matrix sources = AugmentSources(*ds, nq);
  *ds = {};

  std::printf(
      "scale_bench: sizes %s; sets %s; %zu queries (first t10k images), k=%zu; HNSW "
      "M=%d ef_construction=%d; ef %s; %d rounds\n",
      absl::StrJoin(args.sizes, ",").c_str(), absl::StrJoin(args.dims, ",").c_str(), nq, args.k,
      args.hnsw_m, args.ef_construction, absl::StrJoin(args.efs, ",").c_str(), args.rounds);
  std::printf(
      "  data: %zu source images (train + t10k minus the queries), then copies shifted "
      "by dx, dy in -2..2 (not both 0) with N(0, %.0f^2) noise, clamped to [0, 255], "
      "seed %llu; the first 60,000 points are the training images. Other dims: that "
      "set x FAISS RandomRotationMatrix(784, d) seed %llu (orthonormal rows), queries "
      "likewise\n",
      sources.n, args.noise, static_cast<unsigned long long>(args.seed),
      static_cast<unsigned long long>(args.projection_seed));
  std::printf(
      "  quiverd --search-threads %d --index-build-threads %d --index-build-workers 1 "
      "--durability %s%s%s; hnswlib 0.6.2 in process (-march=x86-64-v3); %u cores (%s); "
      "load average %s; temp %s\n",
      args.search_threads, args.build_threads, args.durability.c_str(),
      args.quiverd_args.empty() ? "" : " ", absl::StrJoin(args.quiverd_args, " ").c_str(),
      std::thread::hardware_concurrency(), CpuModel().c_str(), LoadAverage().c_str(),
      run_dir.c_str());
  std::fflush(stdout);

  std::vector<Cell> cells;
  for (size_t n : args.sizes) {
    Matrix base784 = Augment(sources, n, args.seed, args.noise);
    // Projections first, so the 784-d set can go as soon as its cell ends.
    std::map<size_t, std::pair<Matrix, Matrix>> projected;
    for (size_t dim : args.dims) {
      if (dim == kSourceDim) continue;
      projected[dim] = {RandomProjection(base784, dim, args.projection_seed),
                        RandomProjection(queries784, dim, args.projection_seed)};
    }
    for (size_t dim : args.dims) {
      if (dim == kSourceDim) {
        cells.push_back(RunCell(args, SetName(dim), base784, queries784, run_dir));
        base784 = {};
      } else {
        const auto& [base, queries] = projected.at(dim);
        cells.push_back(RunCell(args, SetName(dim), base, queries, run_dir));
      }
    }
  }

  std::ostringstream out;
  nlohmann::json summary;
  PrintMainTable(args, cells, out);
  PrintTargetsTable(cells, out, &summary);
  PrintRestartTable(args, cells, out);
  PrintMemoryTable(cells, out);
  std::printf("%s", out.str().c_str());

  const std::string json_path = args.out_dir + "/scale_bench.json";
  const std::string png = args.out_dir + "/scale_bench.png";
  nlohmann::json jc = nlohmann::json::array();
  for (const Cell& c : cells) jc.push_back(CellJson(args, c));
  report["config"] = {{"sizes", args.sizes},
                      {"dims", args.dims},
                      {"queries", nq},
                      {"k", args.k},
                      {"rounds", args.rounds},
                      {"batch", args.batch},
                      {"ingest_batch", args.ingest_batch},
                      {"M", args.hnsw_m},
                      {"ef_construction", args.ef_construction},
                      {"efs", args.efs},
                      {"recalls", args.recalls},
                      {"build_threads", args.build_threads},
                      {"search_threads", args.search_threads},
                      {"durability", args.durability},
                      {"seed", args.seed},
                      {"projection_seed", args.projection_seed},
                      {"noise", args.noise},
                      {"quiverd", args.quiverd},
                      {"quiverd_env", args.quiverd_env},
                      {"quiverd_args", args.quiverd_args}};
  report["cells"] = jc;
  report["targets_summary"] = summary;
  report["tables"] = out.str();
  report["png"] = args.plot ? png : "";
  report["seconds_total"] = NowSeconds() - t_start;
  FinishReport(&report, json_path);
  if (args.plot) {
    const std::string drawn = Plot(json_path, png);
    if (!drawn.empty()) std::printf("PNG: %s\n", drawn.c_str());
  }
  std::printf("total %.0f s; load average %s\n", NowSeconds() - t_start, LoadAverage().c_str());
  return 0;
}

}  // namespace
}  // namespace quiver::bench

int main(int argc, char** argv) { return quiver::bench::Main(argc, argv); }
