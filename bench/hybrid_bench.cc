// hybrid_bench: hybrid search over two vector fields of Fashion-MNIST, fused.
//
// Fields: `pixels`, the 784-d images (L2), and `pooled`, a 14x14 average
// pooling of them (196-d, COSINE): two views of one point on different
// distance scales, which is what fusion has to cope with. Both are HNSW.
//
// Measured, interleaved per round, one query per RPC over --threads client
// threads, for each ef in --efs:
//   - each field's own search (k = the per-field k), the reference latency;
//   - the hybrid search, RRF and WEIGHTED (k = 10 fused from per-field k).
// Quality: recall@10 of the fused list against the exact fused ranking (the
// same fusion applied to the exact per-field lists, computed in process with
// FAISS IndexFlat, whose batched QPS is printed as the baseline), counting
// ties. Targets (issue 5): recall >= 0.95 and fused latency <= 1.2x the
// slower field's own search. Curves go to bench_results/hybrid_bench.png.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "bench/common/driver.h"
#include "bench/common/report.h"
#include "bench/common/sysinfo.h"
#include "bench/common/testkit.h"
#include "client/client.h"
#include "faiss/IndexFlat.h"
#include "query/fusion.h"

namespace quiver::bench {
namespace {

struct Args {
  size_t rows = 60000;
  size_t queries = 300;
  size_t k = 10;
  size_t field_k = 50;
  int threads = 1;
  int rounds = 3;
  std::vector<int> efs = {16, 32, 64, 128};
  int build_threads = 2;
  std::string quiverd = QUIVERD_PATH;
  std::string tmp_dir = "/tmp";
  std::string dataset_dir = "/usr/share/datasets/fashion-mnist";
  std::string json_out;
};

Matrix Pool14(const Matrix& m) {
  Matrix out;
  out.n = m.n;
  out.dim = 196;
  out.data.resize(m.n * 196);
  for (size_t i = 0; i < m.n; ++i) {
    const float* img = m.row(i);
    float* dst = out.data.data() + i * 196;
    for (int r = 0; r < 14; ++r) {
      for (int c = 0; c < 14; ++c) {
        dst[r * 14 + c] = (img[(2 * r) * 28 + 2 * c] + img[(2 * r) * 28 + 2 * c + 1] +
                           img[(2 * r + 1) * 28 + 2 * c] + img[(2 * r + 1) * 28 + 2 * c + 1]) /
                          4;
      }
    }
  }
  return out;
}

Matrix Normalized(const Matrix& m) {
  Matrix out = m;
  for (size_t i = 0; i < m.n; ++i) {
    float* v = out.data.data() + i * m.dim;
    double s = 0;
    for (size_t j = 0; j < m.dim; ++j) s += double(v[j]) * v[j];
    const float inv = s > 0 ? static_cast<float>(1 / std::sqrt(s)) : 0;
    for (size_t j = 0; j < m.dim; ++j) v[j] *= inv;
  }
  return out;
}

// Exact per-field lists for every query, as Neighbors (distance lower is
// better: squared L2, or -cosine), via FAISS IndexFlat (batched, all cores).
std::vector<std::vector<index::Neighbor>> ExactLists(const Matrix& base, const Matrix& queries,
                                                     size_t nq, size_t k, bool ip,
                                                     double* qps) {
  std::unique_ptr<faiss::IndexFlat> idx;
  if (ip) idx = std::make_unique<faiss::IndexFlatIP>(base.dim);
  else idx = std::make_unique<faiss::IndexFlatL2>(base.dim);
  idx->add(static_cast<faiss::Index::idx_t>(base.n), base.data.data());
  std::vector<float> d(nq * k);
  std::vector<faiss::Index::idx_t> l(nq * k);
  const double t0 = NowSeconds();
  idx->search(static_cast<faiss::Index::idx_t>(nq), queries.data.data(), static_cast<faiss::Index::idx_t>(k),
              d.data(), l.data());
  *qps = nq / (NowSeconds() - t0);
  std::vector<std::vector<index::Neighbor>> out(nq);
  for (size_t q = 0; q < nq; ++q) {
    for (size_t j = 0; j < k; ++j) {
      if (l[q * k + j] < 0) continue;
      out[q].push_back({ip ? -d[q * k + j] : d[q * k + j], static_cast<uint64_t>(l[q * k + j])});
    }
  }
  return out;
}

struct Cell {
  std::vector<double> qps, p50, p99;
  double recall = -1;
  void Add(const Run& r, size_t calls) {
    qps.push_back(calls / r.seconds);
    p50.push_back(Percentile(r.latency_ms, 50));
    p99.push_back(Percentile(r.latency_ms, 99));
  }
  double Qps() const { return Median(qps); }
  double P50() const { return Median(p50); }
  double P99() const { return Median(p99); }
};

int Main(int argc, char** argv) {
  Args args;
  CLI::App app{"hybrid_bench: two-field hybrid search (RRF / weighted) vs each field alone"};
  app.add_option("--rows", args.rows, "base rows (max 60000)");
  app.add_option("--queries", args.queries, "queries (from t10k)");
  app.add_option("--field-k", args.field_k, "candidates per field");
  app.add_option("--threads", args.threads, "client threads, one query per RPC");
  app.add_option("--rounds", args.rounds, "interleaved rounds");
  app.add_option("--efs", args.efs, "HNSW ef values to sweep")->delimiter(',');
  app.add_option("--build-threads", args.build_threads, "quiverd --index-build-threads");
  app.add_option("--quiverd", args.quiverd, "quiverd binary");
  app.add_option("--tmp-dir", args.tmp_dir, "where quiverd's data dir goes");
  app.add_option("--dataset-dir", args.dataset_dir, "Fashion-MNIST IDX folder");
  app.add_option("--json", args.json_out, "JSON output (default <exe dir>/bench_results/)");
  CLI11_PARSE(app, argc, argv);
  const double t_start = NowSeconds();
  nlohmann::json report = NewReport("hybrid_bench", argc, argv);

  auto ds = LoadFashionMnist(args.dataset_dir, args.rows, args.queries);
  if (!ds.ok()) Die("load dataset", ds.status());
  const Matrix& pixels = ds->train;
  const Matrix pooled = Pool14(pixels);
  const size_t nq = std::min(args.queries, ds->test.n);
  const Matrix& qpixels = ds->test;
  const Matrix qpooled = Pool14(qpixels);
  const size_t k = args.k, fk = args.field_k;

  // Exact fused ranking: the exact per-field lists, fused like the server.
  double flat_qps_pixels = 0, flat_qps_pooled = 0;
  const auto exact_pixels = ExactLists(pixels, qpixels, nq, fk, false, &flat_qps_pixels);
  const auto exact_pooled =
      ExactLists(Normalized(pooled), Normalized(qpooled), nq, fk, true, &flat_qps_pooled);
  PinOmpThreads(1);
  auto exact_fused = [&](FusionKind kind, size_t q) {
    return Fuse(kind, {RankedList{exact_pixels[q], 1.0}, RankedList{exact_pooled[q], 1.0}},
                2 * fk);
  };

  std::printf("hybrid_bench: %zu points, fields pixels (784-d L2) + pooled (196-d COSINE, 14x14 "
              "average pooling), both HNSW(M=16, ef_construction=200); %zu queries, k=%zu fused "
              "from %zu per field, weights 1; %d client thread%s, one query per RPC, %d "
              "interleaved rounds; %u cores; load average %s\n",
              pixels.n, nq, k, fk, args.threads, args.threads == 1 ? "" : "s", args.rounds,
              std::thread::hardware_concurrency(), LoadAverage().c_str());
  std::printf("in-process FAISS IndexFlat (batched, all cores): pixels %.0f QPS, pooled %.0f "
              "QPS (the exact per-field lists)\n",
              flat_qps_pixels, flat_qps_pooled);
  std::fflush(stdout);

  QuiverdOptions qo = BenchQuiverdOptions();
  qo.binary = args.quiverd;
  qo.durability = "async";
  qo.tmp_root = args.tmp_dir;
  qo.extra_args = {"--index-build-threads", std::to_string(args.build_threads),
                   "--index-build-workers", "1"};
  auto started = QuiverdProcess::Launch(qo);
  if (!started.ok()) Die("start quiverd", started.status());
  std::unique_ptr<QuiverdProcess> srv = *std::move(started);
  client::Client admin(srv->address());
  v1::CollectionSchema schema;
  for (auto [name, dim, metric] : {std::tuple{"pixels", 784, v1::L2},
                                   std::tuple{"pooled", 196, v1::COSINE}}) {
    v1::VectorField* f = schema.add_vectors();
    f->set_name(name);
    f->set_dim(dim);
    f->set_metric(metric);
    f->mutable_index()->set_type("HNSW");
  }
  if (auto r = admin.CreateCollection("hy", schema); !r.ok()) Die("create", r.status());
  const double load_t0 = NowSeconds();
  for (size_t start = 0; start < pixels.n; start += 1000) {
    v1::UpsertPointsRequest up;
    up.set_collection("hy");
    for (size_t i = start; i < std::min(pixels.n, start + 1000); ++i) {
      v1::Point* p = up.add_points();
      p->set_id(std::to_string(i));
      (*p->mutable_vectors())["pixels"].mutable_values()->Add(pixels.row(i), pixels.row(i) + 784);
      (*p->mutable_vectors())["pooled"].mutable_values()->Add(pooled.row(i), pooled.row(i) + 196);
    }
    if (auto r = admin.Upsert(up); !r.ok()) Die("upsert", r.status());
  }
  WaitIndexedOrDie(admin, {"hy"}, 3600, 50);
  WaitQuiet(srv->pid());
  const double load_s = NowSeconds() - load_t0;

  std::vector<std::unique_ptr<client::Client>> clients;
  for (int t = 0; t < args.threads; ++t) {
    clients.push_back(std::make_unique<client::Client>(srv->address()));
  }
  enum Mode { kPixels, kPooled, kRrf, kWeighted, kModes };
  const char* kModeName[] = {"pixels alone", "pooled alone", "hybrid RRF", "hybrid WEIGHTED"};
  auto make = [&](Mode m, size_t q, int ef) {
    v1::SearchRequest req;
    req.set_collection("hy");
    if (m == kPixels || m == kPooled) {
      const bool pix = m == kPixels;
      req.set_field(pix ? "pixels" : "pooled");
      req.set_k(static_cast<uint32_t>(fk));
      const float* v = pix ? qpixels.row(q) : qpooled.row(q);
      req.add_vectors()->mutable_values()->Add(v, v + (pix ? 784 : 196));
      req.mutable_params()->set_ef(ef);
      return req;
    }
    req.set_k(static_cast<uint32_t>(k));
    req.set_fusion(m == kRrf ? v1::RRF : v1::WEIGHTED);
    for (bool pix : {true, false}) {
      v1::FieldQuery* fq = req.add_field_queries();
      fq->set_field(pix ? "pixels" : "pooled");
      fq->set_k(static_cast<uint32_t>(fk));
      const float* v = pix ? qpixels.row(q) : qpooled.row(q);
      fq->mutable_vector()->mutable_values()->Add(v, v + (pix ? 784 : 196));
      fq->mutable_params()->set_ef(ef);
    }
    return req;
  };

  std::vector<std::vector<Cell>> cells(args.efs.size(), std::vector<Cell>(kModes));
  const size_t per_round = std::max<size_t>(1, nq / args.rounds);
  for (int round = 0; round < args.rounds; ++round) {
    const size_t q0 = round * per_round;
    const size_t q1 = round + 1 == args.rounds ? nq : q0 + per_round;
    for (size_t ei = 0; ei < args.efs.size(); ++ei) {
      for (int m = 0; m < kModes; ++m) {
        std::vector<v1::SearchRequest> reqs;
        for (size_t q = q0; q < q1; ++q) reqs.push_back(make(Mode(m), q, args.efs[ei]));
        std::vector<v1::SearchResponse> resps(reqs.size());
        std::vector<absl::Status> errs(args.threads);
        Run run = Drive(reqs.size(), args.threads, 0, 0, [&](size_t c, int t, Run*) {
          auto r = clients[t]->Search(reqs[c]);
          if (!r.ok()) errs[t] = r.status();
          else resps[c] = *std::move(r);
        });
        for (const auto& e : errs) if (!e.ok()) Die(kModeName[m], e);
        cells[ei][m].Add(run, reqs.size());
        if (m < kRrf) continue;
        // Recall against the exact fused ranking, counting ties at the k-th.
        double hits = 0, total = 0;
        for (size_t i = 0; i < reqs.size(); ++i) {
          const auto truth = exact_fused(m == kRrf ? FusionKind::kRrf : FusionKind::kWeighted,
                                         q0 + i);
          std::map<uint64_t, double> score;
          for (const FusedHit& h : truth) score[h.id] = h.score;
          const double kth = truth.size() >= k ? truth[k - 1].score : 0;
          for (const v1::Hit& h : resps[i].results(0).hits()) {
            auto it = score.find(static_cast<uint64_t>(ParseId(h.id())));
            if (it != score.end() && it->second >= kth - 1e-9) ++hits;
          }
          total += std::min(k, truth.size());
        }
        Cell& cell = cells[ei][m];
        const double r = total > 0 ? hits / total : 1;
        cell.recall = cell.recall < 0 ? r : cell.recall;
        if (round > 0) {
          // Running mean over rounds, weighted by queries.
          const double prev_n = static_cast<double>(q0);
          cell.recall = (cell.recall * prev_n + r * (q1 - q0)) / (prev_n + (q1 - q0));
        }
      }
    }
  }

  std::ostringstream out;
  Table t({"ef", "search", "recall@10 (fused)", "QPS", "p50 ms", "p99 ms",
           "p50 / slower field"});
  nlohmann::json rows = nlohmann::json::array();
  for (size_t ei = 0; ei < args.efs.size(); ++ei) {
    const double slower = std::max(cells[ei][kPixels].P50(), cells[ei][kPooled].P50());
    for (int m = 0; m < kModes; ++m) {
      const Cell& c = cells[ei][m];
      t.AddRow({std::to_string(args.efs[ei]), kModeName[m],
                m >= kRrf ? Fixed(c.recall, 3) : "-", Thousands(c.Qps()), Fixed(c.P50(), 3),
                Fixed(c.P99(), 3), m >= kRrf ? Fixed(c.P50() / slower, 2) + "x" : "-"});
      rows.push_back({{"ef", args.efs[ei]}, {"mode", kModeName[m]}, {"recall", c.recall},
                      {"qps", c.Qps()}, {"p50_ms", c.P50()}, {"p99_ms", c.P99()},
                      {"p50_over_slower_field", m >= kRrf ? c.P50() / slower : 0.0}});
    }
  }
  t.Print(out);
  report["rows"] = rows;
  report["load_seconds"] = load_s;
  report["faiss_flat_qps"] = {{"pixels", flat_qps_pixels}, {"pooled", flat_qps_pooled}};

  const std::string stem = ResultsStem(args.json_out, "hybrid_bench");
  {
    std::ofstream dat(stem + ".dat");
    for (int m = 0; m < kModes; ++m) {
      dat << "# " << kModeName[m] << ": ef, QPS, recall, p50 ms\n";
      for (size_t ei = 0; ei < args.efs.size(); ++ei) {
        const Cell& c = cells[ei][m];
        dat << args.efs[ei] << " " << c.Qps() << " " << std::max(0.0, c.recall) << " " << c.P50()
            << "\n";
      }
      dat << "\n\n";
    }
    std::ofstream gp(stem + ".gp");
    gp << "set terminal pngcairo noenhanced size 1100,900 font 'DejaVu Sans,11'\n"
       << "set output '" << stem << ".png'\n"
       << "set multiplot layout 2,1 title \"hybrid search, Fashion-MNIST " << pixels.n
       << ": pixels 784-d L2 + pooled 196-d COSINE, HNSW, k=10 from " << fk
       << " per field\"\n"
       << "set grid\nset key outside right top box\nset lmargin 12\n"
       << "set title 'fused recall@10 vs QPS (points: ef " << args.efs.front() << ".."
       << args.efs.back() << ")'\nset xlabel 'recall@10 against the exact fused ranking'\n"
       << "set ylabel 'QPS'\n"
       << "plot '" << stem << ".dat' index 2 using 3:2 with linespoints pt 7 lw 2 title 'RRF', '"
       << stem << ".dat' index 3 using 3:2 with linespoints pt 5 lw 2 title 'WEIGHTED'\n"
       << "set title 'median latency vs ef'\nset xlabel 'ef'\nset ylabel 'p50 ms'\n"
       << "set logscale x 2\n"
       << "plot";
    for (int m = 0; m < kModes; ++m) {
      gp << (m ? "," : "") << " '" << stem << ".dat' index " << m
         << " using 1:4 with linespoints pt 7 lw 2 title '" << kModeName[m] << "'";
    }
    gp << "\n"
       << "unset multiplot\n";
  }
  const std::string png = RunGnuplot(stem, out);
  std::printf("\n%s", out.str().c_str());
  if (!png.empty()) std::printf("\ncurves: %s\n", png.c_str());
  std::printf("total %.0f s (load and index %.0f s); load average %s\n", NowSeconds() - t_start,
              load_s, LoadAverage().c_str());
  const std::string path = WriteReport(report, args.json_out);
  if (!path.empty()) std::printf("report: %s\n", path.c_str());
  return 0;
}

}  // namespace
}  // namespace quiver::bench

int main(int argc, char** argv) { return quiver::bench::Main(argc, argv); }
