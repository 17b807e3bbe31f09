// late_bench: late-interaction (multi-vector, MaxSim) search through quiverd.
//
// Question: does MUVERA + exact MaxSim rerank reach recall@10 >= 0.95 at
// >= 10x the QPS of exact MaxSim, and with fewer candidates reranked than
// gathering candidates from an ANN index over every token vector (the
// PLAID/Milvus-style baseline the MUVERA paper compares against; the paper
// reports 2-5x fewer)?
//
// Data (bench/README.md Rules, tests/common/fashion_patches.h): the 60,000
// Fashion-MNIST training images as points of 16 vectors (7x7 patches + 0.5 x
// one-hot place, normalized, 65-d), the first --queries test images as query
// sets; MaxSim by inner product, k = 10. Ground truth: exact MaxSim top-10 by
// brute force in process (index/maxsim.h), cached under the build folder.
//
// Systems, measured in one run, one query set per RPC over --threads client
// threads, --rounds interleaved rounds (each round a slice of the queries,
// every mode on the same slice, the order of modes rotated per round):
//   - exact: SearchParams.exact (every point scored by exact MaxSim);
//   - MUVERA HNSW: the field's HNSW over the points' MUVERA encodings
//     (default encoding, 2,048 dims), k x refine_factor candidates reranked
//     by exact MaxSim, for each refine factor in --refine;
//   - MUVERA FLAT: the same with a FLAT index over the encodings (the
//     encoding's own recall, no graph loss), --flat-refine;
//   - tokens: candidates from an index over all 960,000 token vectors. Through
//     quiverd (candidates: TOKENS) when the server supports it, else (or with
//     --tokens both/inprocess) in process: hnswlib 0.6.2 (M=16,
//     ef_construction=200 as the server's HNSW), each of the 16 query
//     vectors' --token-k nearest tokens (ef = that k), mapped to their points,
//     the distinct points reranked by exact MaxSim (index/maxsim.h). The
//     in-process baseline pays no gRPC; label it so.
// Reported per mode: candidates reranked per query (from explain for quiverd:
// "reranked="; counted in process), recall@10 (returned ids re-scored in
// process, ties with the 10th count), QPS (median over rounds), x exact
// (median of per-round ratios to exact's QPS), p50/p99 latency, and the CPU
// other processes used meanwhile. Curves: bench_results/late_bench.png.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/common/driver.h"
#include "bench/common/hnswlib_baseline.h"
#include "bench/common/maxsim_truth.h"
#include "bench/common/report.h"
#include "bench/common/sysinfo.h"
#include "bench/common/testkit.h"
#include "client/client.h"
#include "index/maxsim.h"

namespace quiver::bench {
namespace {

using testing::kPatchDim;
using testing::kPatchesPerImage;
using testing::kPatchSetFloats;

constexpr size_t kK = 10;
constexpr char kField[] = "patches";

struct Args {
  size_t rows = 60000;
  size_t queries = 300;
  std::vector<int> threads = {1};
  int rounds = 3;
  std::vector<float> refine = {2, 5, 10, 20, 50, 100, 200};
  std::vector<float> flat_refine = {10, 50, 200};
  std::vector<float> token_refine = {1, 2, 4, 8, 16, 32};  // quiverd TOKENS: k x rf per vector
  std::vector<int> token_k = {10, 20, 40, 80, 160, 320};  // in-process: the same per vector
  std::string tokens = "auto";  // auto | server | inprocess | both | none
  int hnsw_m = 16;
  int ef_construction = 200;
  int build_threads = 2;
  int batch = 500;
  bool token_cache = true;
  std::string quiverd = QUIVERD_PATH;
  std::string tmp_dir = "/tmp";
  std::string cache_dir = QUIVER_BENCH_CACHE_DIR;
  std::string json_out;
};

enum Kind { kExact, kMuveraHnsw, kMuveraFlat, kTokensServer, kTokensLocal };
const char* kSeriesName[] = {"exact MaxSim", "MUVERA HNSW + rerank", "MUVERA FLAT + rerank",
                             "tokens HNSW + rerank (quiverd TOKENS)",
                             "tokens hnswlib + rerank (in-process)"};
const char* kSeriesKey[] = {"exact", "muvera_hnsw", "muvera_flat", "tokens_server",
                            "tokens_inprocess"};

struct Mode {
  Kind kind;
  double knob = 0;  // refine factor, or per-token k (in process)
  int threads = 1;  // client threads
  std::string knob_text() const {
    if (kind == kExact) return "-";
    if (kind == kTokensLocal) return absl::StrCat(static_cast<int>(knob), " tokens/vector");
    if (kind == kTokensServer) {
      return absl::StrCat("rf=", knob, " (", static_cast<int>(kK * knob), " tokens/vector)");
    }
    return absl::StrCat("rf=", knob, " (", static_cast<int>(kK * knob), " cand.)");
  }
};

struct Cell {
  std::vector<double> qps, ratio, other;
  std::vector<double> latency_ms;
  double recall_sum = 0, cand_sum = 0;
  size_t n = 0;
  double Qps() const { return Median(qps); }
  double Recall() const { return n ? recall_sum / n : 0; }
  double Cands() const { return n ? cand_sum / n : 0; }
};

// Per-query outcome of one call.
struct Answer {
  std::vector<uint64_t> ids;
  double candidates = 0;
};

// Candidates reranked per query: the rows going into the MaxSimRerank
// operator ("| actual: ... rows_in=N" under it); -1 if the explain has none.
double RerankedFromExplain(const std::string& text) {
  const size_t op = text.find("MaxSimRerank(");
  if (op == std::string::npos) return -1;
  const size_t at = text.find("rows_in=", op);
  if (at == std::string::npos) return -1;
  return std::strtod(text.c_str() + at + 8, nullptr);
}

// In-process token baseline: hnswlib over every token vector (label =
// point * 16 + j), per query vector its k' nearest tokens, distinct points,
// exact MaxSim rerank.
struct TokenIndex {
  std::unique_ptr<hnswlib::InnerProductSpace> space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> hnsw;
  double build_s = -1;
  bool loaded = false;
};

TokenIndex BuildTokenIndex(const std::vector<float>& base, size_t n, const Args& args) {
  TokenIndex t;
  t.space = std::make_unique<hnswlib::InnerProductSpace>(kPatchDim);
  const size_t tokens = n * kPatchesPerImage;
  const std::string path = absl::StrCat(
      args.cache_dir, "/late_tokens_hnswlib_M", args.hnsw_m, "_efc", args.ef_construction, "_",
      n, "_", FnvFloats(base.data(), base.size()), ".bin");
  if (args.token_cache && std::filesystem::exists(path)) {
    t.hnsw = std::make_unique<hnswlib::HierarchicalNSW<float>>(t.space.get(), path, false, tokens);
    if (t.hnsw->cur_element_count == tokens) {
      t.loaded = true;
      std::printf("    in-process token index: loaded %s\n", path.c_str());
      return t;
    }
  }
  t.hnsw = std::make_unique<hnswlib::HierarchicalNSW<float>>(t.space.get(), tokens, args.hnsw_m,
                                                             args.ef_construction);
  t.build_s = BuildHnswlib(*t.hnsw, base.data(), tokens, kPatchDim, args.build_threads);
  std::printf("    in-process token index: hnswlib M=%d ef_construction=%d over %zu vectors, "
              "%d threads: %.1f s\n",
              args.hnsw_m, args.ef_construction, tokens, args.build_threads, t.build_s);
  if (args.token_cache) {
    std::error_code ec;
    std::filesystem::create_directories(args.cache_dir, ec);
    t.hnsw->saveIndex(path);
  }
  return t;
}

// ------------------------------------------------------------ phases
// Main runs them in order: ParseArgs, LoadData (points, queries, ground
// truth), StartServer, CreateCollections, IngestAndIndex, BuildTokenBaseline,
// PlanModes, Sweep (warm-up, interleaved rounds, explain samples), then the
// report: PrintRows, the targets, DrawCurves, PrintSummary.

// Everything one run holds; phases fill it in order. Not movable: `docs`
// points into `data`.
struct LateRun {
  Args args;
  PatchData data;
  index::MultiVectorDocs docs;
  MaxSimTruth truth;
  QuiverdOptions qo;
  std::unique_ptr<QuiverdProcess> srv;
  std::unique_ptr<client::Client> admin;
  std::vector<std::string> colls;
  bool tokens_server = false, tokens_local = false;
  std::string tokens_server_note;
  double load_s = 0;
  TokenIndex tok;
  // Every mode at every thread count; exact_of[mi] is the exact mode at
  // the same thread count (the QPS ratios' denominator).
  std::vector<Mode> modes;
  std::vector<size_t> exact_of;
  int max_threads = 1;
  std::vector<std::unique_ptr<client::Client>> clients;
  std::vector<index::MaxSimScratch> scratch;  // per client thread (in process)
  std::vector<Cell> cells;
  std::vector<std::string> explain_samples;
  nlohmann::json report;
  std::ostringstream out;  // tables and targets, printed at the end

  LateRun() = default;
  LateRun(const LateRun&) = delete;
  LateRun& operator=(const LateRun&) = delete;

  size_t n() const { return data.n; }
  size_t nq() const { return data.nq; }
  index::MaxSimQuery query_of(size_t q) const {
    return index::MaxSimQuery{data.queries.data() + q * kPatchSetFloats, kPatchesPerImage,
                              kPatchDim, index::Similarity::kInnerProduct};
  }
};

// Returns false (after CLI11 printed why, or help) when the run should end
// with `*exit_code`.
bool ParseArgs(int argc, char** argv, Args& args, int* exit_code) {
  CLI::App app{"late_bench: late-interaction search (MUVERA + rerank vs exact MaxSim vs tokens)"};
  app.add_option("--rows", args.rows, "points (training images, max 60000)");
  app.add_option("--queries", args.queries, "query sets (test images)");
  app.add_option("--threads", args.threads,
                 "client thread counts, one query set per RPC (each measured in the same rounds)")
      ->delimiter(',');
  app.add_option("--rounds", args.rounds, "interleaved rounds");
  app.add_option("--refine", args.refine, "refine factors, MUVERA HNSW")->delimiter(',');
  app.add_option("--flat-refine", args.flat_refine, "refine factors, MUVERA FLAT")
      ->delimiter(',');
  bool no_flat = false;
  app.add_flag("--no-flat", no_flat, "skip the FLAT-over-encodings collection");
  app.add_option("--token-refine", args.token_refine, "refine factors, quiverd TOKENS")
      ->delimiter(',');
  app.add_option("--token-k", args.token_k, "in-process tokens: neighbours per query vector")
      ->delimiter(',');
  app.add_option("--tokens", args.tokens, "token baseline: auto|server|inprocess|both|none")
      ->check(CLI::IsMember({"auto", "server", "inprocess", "both", "none"}));
  app.add_option("--hnsw-m", args.hnsw_m, "HNSW M (all indexes)");
  app.add_option("--ef-construction", args.ef_construction, "HNSW ef_construction (all)");
  app.add_option("--build-threads", args.build_threads,
                 "quiverd --index-build-threads and in-process build threads");
  app.add_flag("!--no-token-cache", args.token_cache,
               "rebuild the in-process token index instead of loading it from the cache");
  app.add_option("--quiverd", args.quiverd, "quiverd binary");
  app.add_option("--tmp-dir", args.tmp_dir, "where quiverd's data dir goes");
  app.add_option("--cache-dir", args.cache_dir, "ground truth / token index cache");
  app.add_option("--json", args.json_out, "JSON output (default <exe dir>/bench_results/)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    *exit_code = app.exit(e);
    return false;
  }
  if (no_flat) args.flat_refine.clear();
  return true;
}

// The patch sets and the exact MaxSim top-k of every query (cached).
void LoadData(LateRun& r) {
  r.data = LoadPatchData(r.args.rows, r.args.queries);
  r.docs = r.data.docs();
  std::printf("late_bench: %zu points x 16 vectors x 65 dims (Fashion-MNIST patch sets), %zu "
              "query sets, k=%zu, MaxSim by inner product; client threads %s, one query set per "
              "RPC, %d interleaved rounds; %u cores; %s; load average %s\n",
              r.n(), r.nq(), kK, absl::StrJoin(r.args.threads, ",").c_str(), r.args.rounds,
              std::thread::hardware_concurrency(), BlasConfig().c_str(), LoadAverage().c_str());
  std::printf("bench threads: OpenMP/BLAS 1 per thread (MaxSim pins BLAS to 1 per call)\n");
  std::fflush(stdout);
  const double t0 = NowSeconds();
  r.truth = LoadOrComputeMaxSimTruth("fmnist_patches", r.data.base, r.docs, r.data.queries,
                                     kPatchesPerImage, r.nq(), kK,
                                     index::Similarity::kInnerProduct, r.args.cache_dir, 2);
  std::printf("[1] ground truth (exact MaxSim brute force, 2 threads, cached): %.1f s\n",
              NowSeconds() - t0);
  std::fflush(stdout);
}

void StartServer(LateRun& r) {
  r.qo = BenchQuiverdOptions();
  r.qo.binary = r.args.quiverd;
  r.qo.durability = "async";
  r.qo.tmp_root = r.args.tmp_dir;
  r.qo.search_threads = 1;
  r.qo.log_level = "info";  // index build times are read from the log
  r.qo.env = {"OMP_NUM_THREADS=1"};
  r.qo.extra_args = {"--index-build-threads", std::to_string(r.args.build_threads),
                     "--index-build-workers", "1"};
  auto started = QuiverdProcess::Launch(r.qo);
  if (!started.ok()) Die("start quiverd", started.status());
  r.srv = *std::move(started);
  std::printf("quiverd: %s (env OMP_NUM_THREADS=1)\n",
              absl::StrJoin(r.srv->argv(), " ").c_str());
  r.admin = std::make_unique<client::Client>(r.srv->address());
}

v1::CollectionSchema MakeSchema(const Args& args, const std::string& index_type, bool tokens) {
  v1::CollectionSchema schema;
  v1::VectorField* f = schema.add_vectors();
  f->set_name(kField);
  f->set_dim(kPatchDim);
  f->set_metric(v1::IP);
  f->mutable_index()->set_type(index_type);
  if (index_type == "HNSW") {
    (*f->mutable_index()->mutable_params())["M"] = std::to_string(args.hnsw_m);
    (*f->mutable_index()->mutable_params())["ef_construction"] =
        std::to_string(args.ef_construction);
  }
  v1::MultiVectorOptions* mv = f->mutable_multi_vector();
  mv->set_max_vectors_per_point(kPatchesPerImage);
  if (tokens) mv->set_candidates(v1::MultiVectorOptions::TOKENS);
  return schema;
}

// mv_hnsw, mv_flat (unless --no-flat) and mv_tokens (when the server has
// TOKENS candidates and the token baseline asks for it); decides which token
// baselines run.
void CreateCollections(LateRun& r) {
  const Args& args = r.args;
  client::Client& admin = *r.admin;
  const std::map<std::string, std::string> coll_desc = {
      {"mv_hnsw", "HNSW over MUVERA encodings"},
      {"mv_flat", "FLAT over MUVERA encodings"},
      {"mv_tokens", "TOKENS: HNSW over every token vector"}};
  if (auto c = admin.CreateCollection("mv_hnsw", MakeSchema(args, "HNSW", false)); !c.ok()) {
    Die("create mv_hnsw", c.status());
  }
  r.colls.push_back("mv_hnsw");
  if (!args.flat_refine.empty()) {
    if (auto c = admin.CreateCollection("mv_flat", MakeSchema(args, "FLAT", false)); !c.ok()) {
      Die("create mv_flat", c.status());
    }
    r.colls.push_back("mv_flat");
  }
  if (args.tokens != "none" && args.tokens != "inprocess") {
    auto c = admin.CreateCollection("mv_tokens", MakeSchema(args, "HNSW", true));
    if (c.ok()) {
      r.tokens_server = true;
      r.colls.push_back("mv_tokens");
    } else if (args.tokens == "server") {
      Die("create mv_tokens (candidates TOKENS)", c.status());
    } else {
      r.tokens_server_note = c.status().ToString();
      std::printf("quiverd has no TOKENS candidates (%s): token baseline in process\n",
                  r.tokens_server_note.c_str());
    }
  }
  r.tokens_local = args.tokens == "inprocess" || args.tokens == "both" ||
                   (args.tokens == "auto" && !r.tokens_server);
  for (const std::string& c : r.colls) {
    auto info = admin.GetCollection(c);
    if (!info.ok()) Die("describe " + c, info.status());
    std::string params;
    const auto& stored = info->schema().vectors(0).multi_vector().encoding_params();
    for (const auto& [key, v] : std::map<std::string, std::string>(stored.begin(), stored.end())) {
      absl::StrAppend(&params, params.empty() ? "" : ",", key, "=", v);
    }
    std::printf("collection %s: %s; encoding params as stored: %s\n", c.c_str(),
                coll_desc.at(c).c_str(), params.c_str());
    r.report["collections"][c] = {{"what", coll_desc.at(c)}, {"encoding_params", params}};
  }
}

// The same points into every collection, --batch per request, then waits
// for every index; prints the build lines of quiverd's log and the segments.
void IngestAndIndex(LateRun& r) {
  client::Client& admin = *r.admin;
  const double t0 = NowSeconds();
  for (const std::string& c : r.colls) {
    const double c0 = NowSeconds();
    for (size_t start = 0; start < r.n(); start += r.args.batch) {
      v1::UpsertPointsRequest up;
      up.set_collection(c);
      for (size_t i = start; i < std::min(r.n(), start + r.args.batch); ++i) {
        v1::Point* p = up.add_points();
        p->set_id(std::to_string(i));
        v1::MultiVector& mv = (*p->mutable_multi_vectors())[kField];
        for (size_t j = 0; j < kPatchesPerImage; ++j) {
          const float* v = r.data.base.data() + i * kPatchSetFloats + j * kPatchDim;
          mv.add_vectors()->mutable_values()->Add(v, v + kPatchDim);
        }
      }
      if (auto u = admin.Upsert(up); !u.ok()) Die("upsert " + c, u.status());
    }
    std::printf("[2] ingest %s: %zu points in %.1f s\n", c.c_str(), r.n(), NowSeconds() - c0);
    std::fflush(stdout);
  }
  const double waited = WaitIndexedOrDie(admin, r.colls, 3600, 200);
  WaitQuiet(r.srv->pid());
  r.load_s = NowSeconds() - t0;
  std::printf("    all indexed %.1f s after the last write (builds one at a time, %d threads "
              "each); quiverd RSS %.0f MB\n",
              waited, r.args.build_threads, ReadMemory(r.srv->pid()).rss_kb / 1024.0);
  {
    std::ifstream log(r.srv->log_path());
    std::string line;
    while (std::getline(log, line)) {
      if (line.find(" built ") != std::string::npos) {
        std::printf("    quiverd log: %s\n", line.c_str());
        r.report["quiverd_build_log"].push_back(line);
      }
    }
  }
  for (const std::string& c : r.colls) {
    auto s = Segments(admin, c);
    if (s.ok()) {
      std::printf("    %s: %s; index memory %.0f MB\n", c.c_str(), s->desc.c_str(),
                  s->index_memory / 1e6);
      r.report["segments"][c] = {{"desc", s->desc}, {"index_memory", s->index_memory}};
    }
  }
  std::fflush(stdout);
}

void BuildTokenBaseline(LateRun& r) {
  if (!r.tokens_local) return;
  std::printf("[3] in-process token baseline (quiverd idle)...\n");
  std::fflush(stdout);
  r.tok = BuildTokenIndex(r.data.base, r.n(), r.args);
}

// The modes, their client connections and per-thread scratch.
void PlanModes(LateRun& r) {
  for (int th : r.args.threads) {
    r.max_threads = std::max(r.max_threads, th);
    const size_t exact = r.modes.size();
    r.modes.push_back({kExact, 0, th});
    for (float rf : r.args.refine) r.modes.push_back({kMuveraHnsw, rf, th});
    for (float rf : r.args.flat_refine) r.modes.push_back({kMuveraFlat, rf, th});
    if (r.tokens_server) {
      for (float rf : r.args.token_refine) r.modes.push_back({kTokensServer, rf, th});
    }
    if (r.tokens_local) {
      for (int kp : r.args.token_k) r.modes.push_back({kTokensLocal, double(kp), th});
    }
    r.exact_of.resize(r.modes.size(), exact);
  }
  for (int t = 0; t < r.max_threads; ++t) {
    r.clients.push_back(std::make_unique<client::Client>(r.srv->address()));
  }
  r.scratch.resize(r.max_threads);
  r.cells.resize(r.modes.size());
  r.explain_samples.resize(r.modes.size());
}

v1::SearchRequest MakeRequest(const LateRun& r, const Mode& m, size_t q) {
  v1::SearchRequest req;
  req.set_collection(m.kind == kMuveraFlat     ? "mv_flat"
                     : m.kind == kTokensServer ? "mv_tokens"
                                               : "mv_hnsw");
  req.set_field(kField);
  req.set_k(kK);
  req.set_explain(true);  // every mode, for the reranked count
  v1::MultiVector* mv = req.add_multi_vectors();
  for (size_t j = 0; j < kPatchesPerImage; ++j) {
    const float* v = r.data.queries.data() + q * kPatchSetFloats + j * kPatchDim;
    mv->add_vectors()->mutable_values()->Add(v, v + kPatchDim);
  }
  if (m.kind == kExact) req.mutable_params()->set_exact(true);
  else req.mutable_params()->set_refine_factor(static_cast<float>(m.knob));
  return req;
}

// The in-process token search of query q on client thread `thread`.
void LocalSearch(LateRun& r, const Mode& m, size_t q, int thread, Answer* out) {
  const size_t kp = static_cast<size_t>(m.knob);
  std::vector<uint64_t> cand;
  cand.reserve(kPatchesPerImage * kp);
  for (size_t j = 0; j < kPatchesPerImage; ++j) {
    auto pq = r.tok.hnsw->searchKnn(r.data.queries.data() + q * kPatchSetFloats + j * kPatchDim,
                                    kp);
    for (; !pq.empty(); pq.pop()) cand.push_back(pq.top().second / kPatchesPerImage);
  }
  std::sort(cand.begin(), cand.end());
  cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
  std::vector<float> dist(cand.size());
  index::MaxSimDistancesOf(r.query_of(q), r.docs, cand.data(), cand.size(), dist.data(),
                           &r.scratch[thread]);
  index::TopK top(kK);
  for (size_t i = 0; i < cand.size(); ++i) top.Push(dist[i], cand[i]);
  out->ids.clear();
  for (const index::Neighbor& nb : top.Take()) out->ids.push_back(nb.id);
  out->candidates = static_cast<double>(cand.size());
}

// Runs mode m over queries [q0, q1); returns the Run and fills answers.
Run RunMode(LateRun& r, const Mode& m, size_t q0, size_t q1, std::vector<Answer>* answers) {
  const size_t calls = q1 - q0;
  answers->assign(calls, Answer{});
  std::vector<v1::SearchRequest> reqs;
  if (m.kind != kTokensLocal) {
    for (size_t q = q0; q < q1; ++q) reqs.push_back(MakeRequest(r, m, q));
  } else {
    r.tok.hnsw->setEf(static_cast<size_t>(m.knob));  // never while threads search
  }
  std::vector<absl::Status> errs(m.threads);
  const pid_t pid = r.srv->pid();
  const double busy0 = MachineBusySeconds(/*include_irq=*/false);
  const double self0 = ProcessCpuSeconds();
  const double srv0 = ProcessCpuSeconds(pid);
  Run run = Drive(
      calls, m.threads, 0, 0,
      [&](size_t c, int t, Run*) {
        Answer& a = (*answers)[c];
        if (m.kind == kTokensLocal) {
          LocalSearch(r, m, q0 + c, t, &a);
          return;
        }
        auto res = r.clients[t]->Search(reqs[c]);
        if (!res.ok()) {
          errs[t] = res.status();
          return;
        }
        for (const v1::Hit& h : res->results(0).hits()) {
          a.ids.push_back(static_cast<uint64_t>(ParseId(h.id())));
        }
        a.candidates = m.kind == kExact ? static_cast<double>(r.n())
                                        : RerankedFromExplain(res->explain().text());
      },
      [](int) { PinOmpThreads(1); });
  const double used = (ProcessCpuSeconds() - self0) + (ProcessCpuSeconds(pid) - srv0);
  run.other_cores =
      std::max(0.0, (MachineBusySeconds(/*include_irq=*/false) - busy0 - used) / run.seconds);
  for (const auto& e : errs) {
    if (!e.ok()) {
      Die(absl::StrCat(kSeriesName[m.kind], " ", m.knob_text(), " ", m.threads, "t"), e);
    }
  }
  return run;
}

// Adds one mode's run over queries from q0 to its cell: QPS, latencies,
// and each answer re-scored with the truth's kernel for recall.
void Score(LateRun& r, const Run& run, size_t q0, const std::vector<Answer>& answers,
           index::MaxSimScratch* rescore, Cell& cell) {
  cell.qps.push_back(answers.size() / run.seconds);
  cell.other.push_back(run.other_cores);
  cell.latency_ms.insert(cell.latency_ms.end(), run.latency_ms.begin(), run.latency_ms.end());
  for (size_t c = 0; c < answers.size(); ++c) {
    const size_t q = q0 + c;
    std::vector<float> d(answers[c].ids.size());
    index::MaxSimDistancesOf(r.query_of(q), r.docs, answers[c].ids.data(), d.size(), d.data(),
                             rescore);
    std::vector<index::Neighbor> got;
    for (size_t i = 0; i < d.size(); ++i) got.push_back({d[i], answers[c].ids[i]});
    std::sort(got.begin(), got.end(), [](const index::Neighbor& a, const index::Neighbor& b) {
      return a.distance < b.distance;
    });
    cell.recall_sum += MaxSimRecall(r.truth, q, got);
    cell.cand_sum += answers[c].candidates;
    ++cell.n;
  }
}

// Warm-up, then --rounds rounds, each a slice of the queries with every mode
// (order rotated per round); then one explain text per mode (untimed).
void Sweep(LateRun& r) {
  // Warm-up: a few queries of every mode (page cache, gRPC channels).
  std::printf("[4] warm-up, then %d rounds x %zu modes...\n", r.args.rounds, r.modes.size());
  std::fflush(stdout);
  {
    std::vector<Answer> tmp;
    for (const Mode& m : r.modes) RunMode(r, m, 0, std::min<size_t>(r.nq(), 5), &tmp);
  }
  const size_t per_round = std::max<size_t>(1, r.nq() / r.args.rounds);
  index::MaxSimScratch rescore;
  for (int round = 0; round < r.args.rounds; ++round) {
    const size_t q0 = round * per_round;
    const size_t q1 = round + 1 == r.args.rounds ? r.nq() : q0 + per_round;
    if (q0 >= q1) break;
    std::vector<double> round_qps(r.modes.size());
    for (size_t i = 0; i < r.modes.size(); ++i) {
      const size_t mi = (i + round) % r.modes.size();  // rotated order
      const Mode& m = r.modes[mi];
      std::vector<Answer> answers;
      const Run run = RunMode(r, m, q0, q1, &answers);
      Score(r, run, q0, answers, &rescore, r.cells[mi]);
      round_qps[mi] = r.cells[mi].qps.back();
      std::fprintf(stderr, "round %d, %d thread(s), %s %s: %.1f QPS\n", round, m.threads,
                   kSeriesName[m.kind], m.knob_text().c_str(), round_qps[mi]);
    }
    for (size_t mi = 0; mi < r.modes.size(); ++mi) {
      r.cells[mi].ratio.push_back(round_qps[mi] / round_qps[r.exact_of[mi]]);
    }
  }
  for (size_t mi = 0; mi < r.modes.size(); ++mi) {
    if (r.modes[mi].kind == kTokensLocal || r.modes[mi].threads != r.args.threads[0]) continue;
    auto res = r.admin->Search(MakeRequest(r, r.modes[mi], 0));
    if (res.ok()) r.explain_samples[mi] = res->explain().text();
  }
}

// ------------------------------------------------------------ report

void PrintRows(LateRun& r) {
  Table t({"threads", "system", "knob", "candidates reranked", "recall@10", "QPS", "x exact",
           "p50 ms", "p99 ms", "other cores"});
  nlohmann::json rows = nlohmann::json::array();
  for (size_t mi = 0; mi < r.modes.size(); ++mi) {
    const Mode& m = r.modes[mi];
    const Cell& c = r.cells[mi];
    t.AddRow({std::to_string(m.threads), kSeriesName[m.kind], m.knob_text(),
              Thousands(c.Cands()), Fixed(c.Recall(), 3), Fixed(c.Qps(), 1),
              Fixed(Median(c.ratio), 1) + "x", Fixed(Percentile(c.latency_ms, 50), 2),
              Fixed(Percentile(c.latency_ms, 99), 2), Fixed(Median(c.other), 2)});
    rows.push_back({{"threads", m.threads},
                    {"system", kSeriesKey[m.kind]},
                    {"knob", m.knob},
                    {"candidates", c.Cands()},
                    {"recall", c.Recall()},
                    {"qps", c.Qps()},
                    {"qps_rounds", c.qps},
                    {"x_exact", Median(c.ratio)},
                    {"p50_ms", Percentile(c.latency_ms, 50)},
                    {"p99_ms", Percentile(c.latency_ms, 99)},
                    {"other_cores", Median(c.other)},
                    {"explain_sample", r.explain_samples[mi]}});
  }
  t.Print(r.out);
  r.report["rows"] = rows;
}

bool IsToken(Kind k) { return k == kTokensServer || k == kTokensLocal; }

// Target 1, per thread count: MUVERA HNSW + rerank reaches recall 0.95 at
// >= 10x exact; and the fastest setting of each other series reaching 0.95.
void TargetSpeed(LateRun& r, int th, nlohmann::json& targets) {
  std::ostringstream& out = r.out;
  std::map<int, int> fastest;  // kind -> mode index
  for (size_t mi = 0; mi < r.modes.size(); ++mi) {
    if (r.modes[mi].threads != th || r.cells[mi].Recall() < 0.95) continue;
    auto it = fastest.find(r.modes[mi].kind);
    if (it == fastest.end() || Median(r.cells[mi].ratio) > Median(r.cells[it->second].ratio)) {
      fastest[r.modes[mi].kind] = static_cast<int>(mi);
    }
  }
  const std::string name =
      absl::StrCat("target 1, ", th, " client thread", th == 1 ? "" : "s",
                   " (MUVERA HNSW + rerank recall@10 >= 0.95 at >= 10x exact MaxSim QPS): ");
  if (!fastest.count(kMuveraHnsw)) {
    out << name << "NOT MET: no refine factor reached 0.95\n";
    targets["muvera_10x"].push_back({{"threads", th}, {"met", false}});
  } else {
    const int best = fastest[kMuveraHnsw];
    const Cell& c = r.cells[best];
    const bool met = Median(c.ratio) >= 10;
    out << name << (met ? "MET" : "NOT MET") << ": " << r.modes[best].knob_text() << " recall "
        << Fixed(c.Recall(), 3) << " at " << Fixed(c.Qps(), 1) << " QPS = "
        << Fixed(Median(c.ratio), 1) << "x exact (" << Fixed(r.cells[r.exact_of[best]].Qps(), 1)
        << " QPS)\n";
    targets["muvera_10x"].push_back({{"threads", th}, {"met", met},
                                     {"knob", r.modes[best].knob}, {"recall", c.Recall()},
                                     {"qps", c.Qps()}, {"x_exact", Median(c.ratio)}});
  }
  for (const auto& [kind, mi] : fastest) {
    if (!IsToken(Kind(kind)) && kind != kMuveraFlat) continue;
    out << "  fastest " << kSeriesName[kind] << " reaching 0.95 at " << th << " thread(s): "
        << r.modes[mi].knob_text() << " recall " << Fixed(r.cells[mi].Recall(), 3) << " at "
        << Fixed(r.cells[mi].Qps(), 1) << " QPS = " << Fixed(Median(r.cells[mi].ratio), 1)
        << "x exact\n";
  }
}

// Candidates a series needs for `level` recall (at the first thread count;
// the counts do not depend on threads): where its recall curve crosses the
// level, interpolated linearly in log(candidates) between the measured
// points around it. -1: never reached; other negatives: <= the fewest
// measured (-c - 0.5).
double CandidatesNeeded(const LateRun& r, Kind kind, double level) {
  std::vector<std::pair<double, double>> pts;  // candidates, recall
  for (size_t mi = 0; mi < r.modes.size(); ++mi) {
    if (r.modes[mi].kind == kind && r.modes[mi].threads == r.args.threads[0]) {
      pts.push_back({r.cells[mi].Cands(), r.cells[mi].Recall()});
    }
  }
  std::sort(pts.begin(), pts.end());
  for (size_t i = 0; i < pts.size(); ++i) {
    if (pts[i].second < level) continue;
    if (i == 0) return -pts[0].first - 0.5;  // already there at the fewest measured: <=
    const auto [c0, r0] = pts[i - 1];
    const auto [c1, r1] = pts[i];
    const double f = r1 > r0 ? (level - r0) / (r1 - r0) : 1;
    return std::exp(std::log(c0) + f * (std::log(c1) - std::log(c0)));
  }
  return -1.0;
}

// Target 2: MUVERA reranks fewer candidates than the token baseline for the
// same recall.
void TargetCandidates(LateRun& r, nlohmann::json& targets) {
  std::ostringstream& out = r.out;
  for (Kind tk : {kTokensServer, kTokensLocal}) {
    if ((tk == kTokensServer && !r.tokens_server) || (tk == kTokensLocal && !r.tokens_local)) {
      continue;
    }
    for (double level : {0.80, 0.90, 0.95, 0.97}) {
      const double cm = CandidatesNeeded(r, kMuveraHnsw, level);
      const double ct = CandidatesNeeded(r, tk, level);
      auto show = [](double c) {
        return c == -1 ? std::string("not reached")
                       : c < 0 ? "<= " + Thousands(-c - 0.5) : Thousands(c);
      };
      out << "candidates for recall@10 " << Fixed(level, 2) << " (interpolated): MUVERA HNSW "
          << show(cm) << ", " << kSeriesName[tk] << " " << show(ct);
      if (cm > 0 && ct > 0) out << ": tokens / MUVERA = " << Fixed(ct / cm, 2) << "x";
      out << "\n";
      targets["candidates"].push_back({{"level", level}, {"tokens", kSeriesKey[tk]},
                                       {"muvera_hnsw", cm}, {"token_series", ct}});
    }
  }
  if (r.tokens_server || r.tokens_local) {
    const Kind tk = r.tokens_server ? kTokensServer : kTokensLocal;
    const double cm = CandidatesNeeded(r, kMuveraHnsw, 0.95);
    const double ct = CandidatesNeeded(r, tk, 0.95);
    auto val = [](double c) { return c < -1 ? -c - 0.5 : c; };
    const bool met = cm != -1 && (ct == -1 || val(cm) < val(ct));
    out << "target 2 (MUVERA fewer candidates than " << kSeriesName[tk]
        << " at recall@10 0.95; paper: 2-5x fewer): " << (met ? "MET" : "NOT MET");
    if (cm != -1 && ct != -1) {
      out << " (tokens / MUVERA " << (cm < 0 ? ">= " : "") << Fixed(val(ct) / val(cm), 2) << "x)";
    }
    out << "\n";
    targets["fewer_candidates_met"] = met;
  }
}

void ReportTargets(LateRun& r) {
  r.out << "\n";
  nlohmann::json targets;
  for (int th : r.args.threads) TargetSpeed(r, th, targets);
  TargetCandidates(r, targets);
  r.report["targets"] = targets;
  r.report["quiverd_argv"] = r.srv->argv();
  r.report["quiverd_env"] = r.qo.env;
  r.report["threads"] = r.args.threads;
  r.report["load_seconds"] = r.load_s;
  r.report["tokens_server"] = r.tokens_server;
  r.report["tokens_server_note"] = r.tokens_server_note;
  if (r.tokens_local) r.report["token_index_build_s"] = r.tok.build_s;
}

// Curves: one data block per (thread count, series); returns the PNG ("" if
// none).
std::string DrawCurves(LateRun& r) {
  const std::vector<int>& threads = r.args.threads;
  const std::string stem = ResultsStem(r.args.json_out, "late_bench");
  std::vector<std::pair<int, int>> blocks;  // threads, kind
  std::ofstream dat(stem + ".dat");
  for (int th : threads) {
    for (int kind = kExact; kind <= kTokensLocal; ++kind) {
      bool any = false;
      for (const Mode& m : r.modes) any |= m.kind == kind && m.threads == th;
      if (!any) continue;
      blocks.push_back({th, kind});
      dat << "# " << kSeriesName[kind] << ", " << th
          << " client thread(s): knob, candidates, recall, QPS\n";
      for (size_t mi = 0; mi < r.modes.size(); ++mi) {
        if (r.modes[mi].kind != kind || r.modes[mi].threads != th) continue;
        dat << r.modes[mi].knob << " " << r.cells[mi].Cands() << " " << r.cells[mi].Recall()
            << " " << r.cells[mi].Qps() << "\n";
      }
      dat << "\n\n";
    }
  }
  dat.close();
  const char* pt[] = {"9", "7", "5", "13", "11"};
  const char* color[] = {"#000000", "#0072b2", "#56b4e9", "#d55e00", "#e69f00"};
  auto style = [&](size_t b) {
    const auto [th, kind] = blocks[b];
    return absl::StrCat("with linespoints pt ", pt[kind], " ps 1.5 lw 2 lc rgb '", color[kind],
                        "' dt ", th == threads[0] ? 1 : 2, " title '", kSeriesName[kind],
                        threads.size() > 1 ? absl::StrCat(", ", th, "t") : "", "'");
  };
  {
    std::ofstream gp(stem + ".gp");
    gp << "set terminal pngcairo noenhanced size 1100,1000 font 'DejaVu Sans,11'\n"
       << "set output '" << stem << ".png'\n"
       << "set multiplot layout 2,1 title \"late interaction through quiverd: Fashion-MNIST "
       << r.n() << " points x 16 x 65-d patch sets, " << r.nq()
       << " query sets, k=10, MaxSim (IP), one query per RPC\"\n"
       << "set grid\nset key bottom left box opaque\nset lmargin 12\nset rmargin 3\n"
       << "set title 'recall@10 vs QPS (exact MaxSim: the point at recall 1; dashed: "
       << (threads.size() > 1 ? absl::StrCat(threads[1], " client threads") : "-") << ")'\n"
       << "set xlabel 'recall@10 against exact MaxSim'\nset ylabel 'QPS'\nset logscale y\n"
       << "plot";
    for (size_t b = 0; b < blocks.size(); ++b) {
      gp << (b ? "," : "") << " '" << stem << ".dat' index " << b << " using 3:4 " << style(b);
    }
    gp << "\nset title 'recall@10 vs candidates reranked by exact MaxSim per query'\n"
       << "set key bottom right box opaque\n"
       << "set xlabel 'candidates reranked per query (log)'\nset ylabel 'recall@10'\n"
       << "unset logscale y\nset logscale x\nset yrange [*:1.01]\n"
       << "plot";
    bool first = true;
    for (size_t b = 0; b < blocks.size(); ++b) {
      if (blocks[b].second == kExact || blocks[b].first != threads[0]) continue;
      gp << (first ? "" : ",") << " '" << stem << ".dat' index " << b << " using 2:3 "
         << style(b);
      first = false;
    }
    gp << "\nunset multiplot\n";
  }
  return RunGnuplot(stem, r.out);
}

// The tables and targets, the curves' path, one explain text, totals.
void PrintSummary(LateRun& r, const std::string& png, double t_start) {
  std::printf("\n%s", r.out.str().c_str());
  if (!png.empty()) std::printf("\ncurves: %s\n", png.c_str());
  // The explain of the first MUVERA HNSW setting reaching 0.95 (else the last).
  size_t shown = 0;
  for (size_t mi = 0; mi < r.modes.size(); ++mi) {
    if (r.modes[mi].kind != kMuveraHnsw || r.modes[mi].threads != r.args.threads[0]) continue;
    shown = mi;
    if (r.cells[mi].Recall() >= 0.95) break;
  }
  if (shown > 0) {
    std::printf("explain (query 0, %s %s):\n%s", kSeriesName[r.modes[shown].kind],
                r.modes[shown].knob_text().c_str(), r.explain_samples[shown].c_str());
  }
  std::printf("total %.0f s (ingest and index %.0f s); quiverd RSS %.0f MB; load average %s\n",
              NowSeconds() - t_start, r.load_s, ReadMemory(r.srv->pid()).rss_kb / 1024.0,
              LoadAverage().c_str());
}

int Main(int argc, char** argv) {
  LateRun r;
  if (int code = 0; !ParseArgs(argc, argv, r.args, &code)) return code;
  const double t_start = NowSeconds();
  PinOmpThreads(1);
  r.report = NewReport("late_bench", argc, argv);
  LoadData(r);
  StartServer(r);
  CreateCollections(r);
  IngestAndIndex(r);
  BuildTokenBaseline(r);
  PlanModes(r);
  Sweep(r);
  PrintRows(r);
  ReportTargets(r);
  const std::string png = DrawCurves(r);
  PrintSummary(r, png, t_start);
  const std::string path = WriteReport(r.report, r.args.json_out);
  if (!path.empty()) std::printf("report: %s\n", path.c_str());
  return 0;
}

}  // namespace
}  // namespace quiver::bench

int main(int argc, char** argv) { return quiver::bench::Main(argc, argv); }
