// muvera_tune: which MUVERA encoding parameters (index/muvera.h) give
// recall@10 >= 0.95 after exact MaxSim rerank at the least cost, measured
// as FDE dimensions x candidates reranked?
//
// In process, no server. Fashion-MNIST as multi-vector points
// (tests/common/fashion_patches.h: 16 vectors of 65 dims a point): the
// 60,000 training images are the documents, the first --queries test images
// the queries. Exact MaxSim (inner product) top-10 by brute force
// (index/maxsim.h) is the ground truth, cached under the build folder. For
// each setting: the FDE dimension; encode time per document and per query
// (1 thread); candidates = the top N documents by exact inner product of
// FDEs (a flat scan over all document FDEs, so only the encoding loses
// recall); recall@10 of exact MaxSim over those N candidates, for each N.
// Also measured: exact MaxSim speed (brute force and candidate rerank).
//
//   build-bench/bench/muvera_tune                 # all settings, 200 queries
//   build-bench/bench/muvera_tune --queries 50 --settings 20,4,16,0
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <cblas.h>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/common/maxsim_truth.h"
#include "bench/common/report.h"
#include "bench/common/sysinfo.h"
#include "bench/common/testkit.h"
#include "index/maxsim.h"
#include "index/muvera.h"
#include "index/topk.h"

namespace quiver::bench {
namespace {

using index::MaxSimQuery;
using index::MultiVectorDocs;
using index::MuveraEncoder;
using index::MuveraParams;
using testing::kPatchDim;
using testing::kPatchesPerImage;
using testing::kPatchSetFloats;

constexpr size_t kK = 10;
const std::vector<size_t> kCandidates = {100, 200, 500, 1000, 2000};

struct Args {
  size_t docs = 60000;
  size_t queries = 200;
  int threads = 2;
  std::string settings;  // "R,k,d,final[,nofill];..." overrides the list
  std::string cache_dir = QUIVER_BENCH_CACHE_DIR;
  std::string json_out;
};

using Truth = MaxSimTruth;

Truth LoadOrComputeTruth(const std::vector<float>& base, const MultiVectorDocs& docs,
                         const std::vector<float>& queries, size_t nq, const Args& args) {
  return LoadOrComputeMaxSimTruth("fmnist_patches", base, docs, queries, kPatchesPerImage, nq, kK,
                                  index::Similarity::kInnerProduct, args.cache_dir, args.threads);
}

// recall@10 as bench/README.md (Rules) counts it (ties with the 10th count).
double Recall(const Truth& t, size_t q, const std::vector<index::Neighbor>& returned) {
  return MaxSimRecall(t, q, returned);
}

struct Setting {
  MuveraParams params;
  std::string label() const {
    return absl::StrCat("R=", params.r_reps, " k=", params.k_sim, " d=", params.d_proj,
                        params.final_dim ? absl::StrCat(" final=", params.final_dim) : "",
                        params.fill_empty ? "" : " nofill");
  }
};

MuveraParams P(uint32_t r, uint32_t k, uint32_t d, uint32_t final_dim = 0, bool fill = true) {
  MuveraParams p;
  p.r_reps = r;
  p.k_sim = k;
  p.d_proj = d;
  p.final_dim = final_dim;
  p.fill_empty = fill;
  return p;
}

std::vector<Setting> DefaultSettings() {
  const bool kFill = true, kNoFill = false;
  return {
      // The numpy reference implementation's size, with and without
      // the paper's fill_empty.
      {P(20, 4, 16, 0, kFill)},
      {P(20, 4, 16, 0, kNoFill)},
      // Raw encodings of 1,280 to 10,240 dims.
      {P(10, 3, 16, 0, kNoFill)},
      {P(10, 4, 16, 0, kNoFill)},
      {P(20, 3, 16, 0, kNoFill)},
      {P(20, 4, 8, 0, kNoFill)},
      {P(10, 5, 8, 0, kNoFill)},
      {P(40, 3, 8, 0, kNoFill)},
      {P(5, 4, 65, 0, kNoFill)},  // no inner projection
      {P(20, 5, 16, 0, kNoFill)},
      {P(40, 4, 16, 0, kNoFill)},
      // More repetitions, Count-Sketched down to 1,024 - 4,096 dims.
      {P(20, 4, 16, 2048, kNoFill)},
      {P(40, 4, 16, 1024, kNoFill)},
      {P(40, 4, 16, 2048, kFill)},
      {P(40, 4, 16, 2048, kNoFill)},  // the defaults
      {P(40, 4, 16, 4096, kNoFill)},
      {P(40, 5, 8, 2048, kNoFill)},
      {P(80, 4, 8, 2048, kNoFill)},
      {P(60, 4, 16, 2048, kNoFill)},
  };
}

// "R,k,d,final[,nofill];..."
std::vector<Setting> ParseSettings(const std::string& text) {
  std::vector<Setting> out;
  for (absl::string_view one : absl::StrSplit(text, ';', absl::SkipEmpty())) {
    std::vector<std::string> f = absl::StrSplit(one, ',');
    if (f.size() < 4) {
      std::fprintf(stderr, "--settings: want R,k,d,final[,nofill], got %s\n",
                   std::string(one).c_str());
      std::exit(2);
    }
    out.push_back({P(std::stoul(f[0]), std::stoul(f[1]), std::stoul(f[2]), std::stoul(f[3]),
                     !(f.size() > 4 && f[4] == "nofill"))});
  }
  return out;
}

struct Result {
  size_t dim = 0;
  double encode_doc_us = 0, encode_query_us = 0, scan_s = 0;
  std::vector<double> recall;  // per kCandidates entry
};

// Documents encoded and scanned a chunk at a time, so no more than
// kChunk FDEs are held at once (60,000 x 10,240 floats would be 2.4 GB).
constexpr size_t kChunk = 4096;

Result Run(const Setting& s, const std::vector<float>& base, const MultiVectorDocs& docs,
           const std::vector<float>& queries, const Truth& truth, const Args& args) {
  Result res;
  absl::StatusOr<MuveraEncoder> made = MuveraEncoder::Create(kPatchDim, s.params);
  if (!made.ok()) Die(s.label(), made.status());
  const MuveraEncoder& enc = *made;
  const size_t dim = enc.output_dim();
  const size_t nq = truth.nq;
  res.dim = dim;

  // Encode times on one thread, the fastest of three passes (the machine is
  // shared): all queries, and the first 2,000 documents.
  std::vector<float> qfde(nq * dim);
  std::vector<float> chunk(kChunk * dim);
  const size_t timed = std::min<size_t>(2000, docs.n);
  res.encode_query_us = res.encode_doc_us = 1e30;
  for (int pass = 0; pass < 3; ++pass) {
    double t0 = NowSeconds();
    for (size_t q = 0; q < nq; ++q) {
      enc.EncodeQuery(queries.data() + q * kPatchSetFloats, kPatchesPerImage,
                      qfde.data() + q * dim);
    }
    res.encode_query_us = std::min(res.encode_query_us, (NowSeconds() - t0) * 1e6 / nq);
    t0 = NowSeconds();
    for (size_t i = 0; i < timed; ++i) {
      enc.EncodeDocument(base.data() + i * kPatchSetFloats, kPatchesPerImage,
                         chunk.data() + i * dim);
    }
    res.encode_doc_us = std::min(res.encode_doc_us, (NowSeconds() - t0) * 1e6 / timed);
  }

  const size_t max_n = std::min(kCandidates.back(), docs.n);
  std::vector<index::TopK> cands(nq, index::TopK(max_n));
  std::vector<float> scores(nq * kChunk);
  const double t0 = NowSeconds();
  for (size_t first = 0; first < docs.n; first += kChunk) {
    const size_t m = std::min(kChunk, docs.n - first);
#pragma omp parallel for schedule(static) num_threads(args.threads)
    for (size_t i = 0; i < m; ++i) {
      if (first + i < timed) continue;  // encoded above
      enc.EncodeDocument(base.data() + (first + i) * kPatchSetFloats, kPatchesPerImage,
                         chunk.data() + i * dim);
    }
    // scores (nq x m) = Q (nq x dim) * C^T (dim x m); BLAS on all threads.
    omp_set_num_threads(args.threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(nq),
                static_cast<int>(m), static_cast<int>(dim), 1.0f, qfde.data(),
                static_cast<int>(dim), chunk.data(), static_cast<int>(dim), 0.0f, scores.data(),
                static_cast<int>(m));
    omp_set_num_threads(1);
#pragma omp parallel for schedule(static) num_threads(args.threads)
    for (size_t q = 0; q < nq; ++q) {
      for (size_t i = 0; i < m; ++i) cands[q].Push(-scores[q * m + i], first + i);
    }
  }
  res.scan_s = NowSeconds() - t0;  // wall time, args.threads threads

  res.recall.assign(kCandidates.size(), 0.0);
  std::vector<std::vector<double>> per_query(nq, std::vector<double>(kCandidates.size()));
#pragma omp parallel for schedule(dynamic) num_threads(args.threads)
  for (size_t q = 0; q < nq; ++q) {
    const std::vector<index::Neighbor> c = cands[q].Take();  // best FDE score first
    std::vector<uint64_t> ids(c.size());
    for (size_t i = 0; i < c.size(); ++i) ids[i] = c[i].id;
    std::vector<float> exact(c.size());
    index::MaxSimScratch scratch;
    MaxSimQuery query{queries.data() + q * kPatchSetFloats, kPatchesPerImage, kPatchDim,
                      index::Similarity::kInnerProduct};
    index::MaxSimDistancesOf(query, docs, ids.data(), ids.size(), exact.data(), &scratch);
    for (size_t j = 0; j < kCandidates.size(); ++j) {
      index::TopK top(kK);
      for (size_t i = 0; i < std::min(kCandidates[j], ids.size()); ++i) top.Push(exact[i], ids[i]);
      per_query[q][j] = Recall(truth, q, top.Take());
    }
  }
  for (size_t q = 0; q < nq; ++q) {
    for (size_t j = 0; j < kCandidates.size(); ++j) res.recall[j] += per_query[q][j] / nq;
  }
  return res;
}

}  // namespace
}  // namespace quiver::bench

int main(int argc, char** argv) {
  using namespace quiver::bench;
  Args args;
  CLI::App app{"muvera_tune: MUVERA FDE parameters vs recall@10 after exact MaxSim rerank"};
  app.add_option("--docs", args.docs, "documents (training images, max 60000)");
  app.add_option("--queries", args.queries, "queries (test images)");
  app.add_option("--threads", args.threads, "threads for encoding all documents and scans");
  app.add_option("--settings", args.settings, "R,k_sim,d_proj,final_dim[,nofill];... to try");
  app.add_option("--cache-dir", args.cache_dir, "ground-truth cache folder");
  app.add_option("--json", args.json_out, "JSON output (default <exe dir>/bench_results/)");
  CLI11_PARSE(app, argc, argv);

  PinOmpThreads(1);
  nlohmann::json report = NewReport("muvera_tune", argc, argv);
  const PatchData patches = LoadPatchData(args.docs, args.queries);
  const std::vector<float>& base = patches.base;
  const std::vector<float>& queries = patches.queries;
  const size_t n = patches.n, nq = patches.nq;
  const MultiVectorDocs docs = patches.docs();
  std::printf("muvera_tune: %zu documents, %zu queries, 16 x 65 each; %s; load %s\n", n, nq,
              BlasConfig().c_str(), LoadAverage().c_str());

  // Exact MaxSim speed, 1 thread: brute force over every document, and a
  // 1,000-candidate rerank (random ids: rows gathered from all over).
  // Medians: the machine is shared.
  const size_t timed_q = std::min<size_t>(nq, 15);
  quiver::index::MaxSimScratch scratch;
  std::vector<double> times;
  for (size_t q = 0; q < timed_q; ++q) {
    MaxSimQuery query{queries.data() + q * kPatchSetFloats, kPatchesPerImage, kPatchDim,
                      quiver::index::Similarity::kInnerProduct};
    const double t0 = NowSeconds();
    quiver::index::MaxSimTopK(query, docs, kK, &scratch);
    times.push_back(NowSeconds() - t0);
  }
  const double brute_s = Median(times);
  std::mt19937_64 rng(7);
  std::vector<uint64_t> ids(1000);
  for (uint64_t& id : ids) id = rng() % n;
  std::vector<float> out(ids.size());
  times.clear();
  for (int r = 0; r < 200; ++r) {
    MaxSimQuery query{queries.data() + (r % nq) * kPatchSetFloats, kPatchesPerImage, kPatchDim,
                      quiver::index::Similarity::kInnerProduct};
    const double t0 = NowSeconds();
    quiver::index::MaxSimDistancesOf(query, docs, ids.data(), ids.size(), out.data(), &scratch);
    times.push_back(NowSeconds() - t0);
  }
  const double rerank_us = Median(times) * 1e6;
  Table speed({"exact MaxSim, 1 thread, 16 x 65 query", "value"});
  speed.AddRow({"brute force over all documents (median)",
                absl::StrCat(Fixed(brute_s * 1e3, 1), " ms/query = ", Fixed(1.0 / brute_s, 1),
                             " QPS")});
  speed.AddRow({"per 1,000 contiguous documents", Fixed(brute_s * 1e6 * 1000 / n, 0) + " us"});
  speed.AddRow({"rerank 1,000 scattered candidates (median)", Fixed(rerank_us, 0) + " us"});
  speed.Print(std::cout);
  std::cout << "\n";
  report["maxsim"] = {{"brute_force_ms", brute_s * 1e3},
                      {"us_per_1000_docs", brute_s * 1e6 * 1000 / n},
                      {"rerank_1000_us", rerank_us}};

  const double t0 = NowSeconds();
  const Truth truth = LoadOrComputeTruth(base, docs, queries, nq, args);
  std::fprintf(stderr, "ground truth ready in %.1f s\n", NowSeconds() - t0);

  const std::vector<Setting> settings =
      args.settings.empty() ? DefaultSettings() : ParseSettings(args.settings);
  std::vector<std::string> header = {"setting", "FDE dims", "enc us/doc", "enc us/query"};
  for (size_t c : kCandidates) header.push_back(absl::StrCat("R@10 N=", c));
  header.push_back("dims x N for 0.95");
  Table table(header);
  std::string best_label;
  double best_cost = 0;
  size_t best_n = 0;
  for (const Setting& s : settings) {
    const Result r = Run(s, base, docs, queries, truth, args);
    std::vector<std::string> row = {s.label(), Thousands(r.dim), Fixed(r.encode_doc_us, 1),
                                    Fixed(r.encode_query_us, 1)};
    double cost = 0;
    size_t n_needed = 0;
    for (size_t j = 0; j < kCandidates.size(); ++j) {
      row.push_back(Fixed(r.recall[j], 3));
      if (cost == 0 && r.recall[j] >= 0.95) {
        cost = static_cast<double>(r.dim) * kCandidates[j];
        n_needed = kCandidates[j];
      }
    }
    row.push_back(cost > 0 ? Fixed(cost / 1e6, 2) + "M" : "-");
    // Equal cost: fewer candidates wins, since each is a read from the
    // rerank table on disk (and an exact MaxSim) while FDE dims are scanned
    // in memory.
    if (cost > 0 && (best_cost == 0 || cost < best_cost ||
                     (cost == best_cost && n_needed < best_n))) {
      best_cost = cost;
      best_n = n_needed;
      best_label = s.label();
    }
    std::fprintf(stderr, "%s: done (%s)\n", s.label().c_str(), Fixed(r.recall[3], 3).c_str());
    table.AddRow(row);
    nlohmann::json j = {{"setting", s.label()},
                        {"r_reps", s.params.r_reps},
                        {"k_sim", s.params.k_sim},
                        {"d_proj", s.params.d_proj},
                        {"final_dim", s.params.final_dim},
                        {"fill_empty", s.params.fill_empty},
                        {"dim", r.dim},
                        {"encode_doc_us", r.encode_doc_us},
                        {"encode_query_us", r.encode_query_us},
                        {"encode_and_scan_s", r.scan_s},
                        {"candidates", kCandidates},
                        {"recall_at_10", r.recall}};
    report["settings"].push_back(j);
  }
  table.Print(std::cout);
  std::printf("\ncheapest (FDE dims x candidates) reaching recall@10 >= 0.95: %s\n",
              best_label.empty() ? "none" : best_label.c_str());
  report["cheapest"] = best_label;
  WriteReport(report, args.json_out);
  return 0;
}
