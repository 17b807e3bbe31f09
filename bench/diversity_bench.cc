// diversity_bench: what diversity-aware search (SearchRequest.diversity,
// maximal marginal relevance) buys and costs against plain search (issue 16).
//
// Fashion-MNIST: the 60,000 training images are the collection (one 784-d
// L2 HNSW field with the server's default parameters, the class label as
// an INT64 attribute), the first --queries test images the queries, k = 10.
// For every fetch_k in --fetch-k and lambda in --lambdas, and for the
// baselines plain k = 10, plain k = fetch_k (the candidates alone, as MMR
// fetches them) and plain k = 10 at the ef of that fetch (the same graph
// search, 10 hits), measured in the same run:
//   quality  distinct class labels in the top 10 (the training labels of
//            the hits), how many hits share the query's label, the mean
//            squared L2 distance of the 10 hits to the query against plain
//            k = 10's, and how many of plain k = 10's hits are kept;
//   cost     QPS, p50/p99 per call and quiverd's CPU per query, one query
//            per RPC from one client thread (and a batched mode: --slice
//            queries per RPC), the configurations interleaved per slice of
//            queries in an order that rotates and reverses, so that a noisy
//            neighbour hits them alike; ratios are medians of per-round
//            ratios.
// Outside the clock: lambda = 1 against plain search's order, MMR's own
// time from explain, and a cross-check of the server's picks against MMR
// recomputed here in double over the same exact candidates.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/common/driver.h"
#include "bench/common/report.h"
#include "bench/common/sysinfo.h"
#include "bench/common/testkit.h"
#include "client/client.h"

namespace quiver::bench {
namespace {

constexpr char kCollection[] = "fmnist_div";
constexpr char kField[] = "image";
constexpr char kLabel[] = "label";

struct Args {
  size_t rows = 60000;
  size_t queries = 1000;
  uint32_t k = 10;
  std::vector<double> lambdas = {1.0, 0.9, 0.7, 0.5, 0.3};
  std::vector<uint32_t> fetch_ks = {50, 100};
  int rounds = 5;
  size_t slice = 100;
  bool batched = true;
  size_t check_queries = 50;
  int build_threads = 2;
  int segment_max_rows = 0;  // 0: the server's default
  std::string quiverd = QUIVERD_PATH;
  std::string tmp_dir;
  std::string dataset_dir = kFashionDir;
  std::string json_out;
};

// HNSW searches with ef = max(k, kHnswDefaultEf): a fetch of fetch_k
// candidates searches wider than k = 10 once fetch_k passes it.
constexpr uint32_t kDefaultEf = 64;

// One row of the comparison: plain search with k hits (at the default ef,
// or at `ef`), or MMR picking `k` of fetch_k.
struct Config {
  bool mmr = false;
  uint32_t k = 10;
  uint32_t fetch_k = 0;  // MMR: candidates; plain: 0
  float lambda = 1;      // as the request carries it
  uint32_t ef = 0;       // 0: the index's default
  std::string Name() const {
    if (!mmr) return absl::StrCat("plain k=", k, ef ? absl::StrCat(" ef=", ef) : "");
    return absl::StrCat("MMR fetch_k=", fetch_k, " lambda=", Fixed(lambda, 1));
  }
};

double L2Sq(const float* a, const float* b, size_t dim) {
  double s = 0;
  for (size_t i = 0; i < dim; ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    s += d * d;
  }
  return s;
}

// MMR as the proto defines it, in double from the vectors themselves (L2:
// relevance and similarity are negated squared distances). `values[p][i]`
// is candidate i's value at pick p (NaN once taken), for explaining a
// disagreement.
std::vector<size_t> MmrInDouble(const float* query, const std::vector<int64_t>& cands,
                                const Matrix& base, size_t k, double lambda,
                                std::vector<std::vector<double>>* values) {
  const size_t n = cands.size();
  std::vector<double> rel(n);
  for (size_t i = 0; i < n; ++i) rel[i] = -L2Sq(query, base.row(cands[i]), base.dim);
  std::vector<double> nearest(n, -std::numeric_limits<double>::infinity());
  std::vector<bool> taken(n, false);
  std::vector<size_t> picked;
  values->clear();
  while (picked.size() < std::min(k, n)) {
    std::vector<double> v(n, std::nan(""));
    size_t best = n;
    for (size_t i = 0; i < n; ++i) {
      if (taken[i]) continue;
      v[i] = picked.empty() ? rel[i] : lambda * rel[i] - (1 - lambda) * nearest[i];
      if (best == n || v[i] > v[best]) best = i;
    }
    values->push_back(std::move(v));
    taken[best] = true;
    picked.push_back(best);
    for (size_t i = 0; i < n; ++i) {
      if (taken[i]) continue;
      nearest[i] = std::max(nearest[i],
                            -L2Sq(base.row(cands[i]), base.row(cands[best]), base.dim));
    }
  }
  return picked;
}

v1::SearchRequest MakeRequest(const Config& c, const Matrix& queries, size_t q0, size_t n,
                              bool exact = false) {
  v1::SearchRequest req;
  req.set_collection(kCollection);
  req.set_field(kField);
  req.set_k(c.k);
  for (size_t q = q0; q < q0 + n; ++q) {
    req.add_vectors()->mutable_values()->Add(queries.row(q), queries.row(q) + queries.dim);
  }
  if (c.mmr) {
    req.mutable_diversity()->set_lambda(c.lambda);
    req.mutable_diversity()->set_fetch_k(c.fetch_k);
  }
  if (exact) req.mutable_params()->set_exact(true);
  if (c.ef) req.mutable_params()->set_ef(c.ef);
  return req;
}

std::vector<int64_t> Ids(const v1::SearchResult& r) {
  std::vector<int64_t> ids;
  for (const v1::Hit& h : r.hits()) ids.push_back(ParseId(h.id()));
  return ids;
}

v1::SearchResponse SearchOrDie(client::Client& c, const v1::SearchRequest& req,
                               const std::string& what) {
  auto r = c.Search(req);
  if (!r.ok()) Die(what, r.status());
  return *std::move(r);
}

// MMR's own time in one explain text: the "time=...us" of the line after
// "MMR(". NaN when absent.
double MmrMicros(const std::string& text) {
  const size_t at = text.find("MMR(");
  if (at == std::string::npos) return std::nan("");
  const size_t t = text.find("time=", text.find('\n', at));
  if (t == std::string::npos) return std::nan("");
  return std::strtod(text.c_str() + t + 5, nullptr);
}

// Per configuration and mode: every round's seconds and every call's
// latency, the first round's ids for the quality figures, and how many
// queries' answers differed from them later.
struct Cell {
  std::vector<double> seconds;  // per round
  std::vector<double> latency_ms;
  double server_cpu_s = 0;  // quiverd's CPU over every measured slice
  size_t server_queries = 0;
  std::vector<std::vector<int64_t>> ids;  // per query, first round
  size_t changed = 0;                     // queries whose answer differed later
};

struct Quality {
  double labels = 0, same_label = 0, dist = 0, kept = 0, per_query_ratio = 0;
  size_t short_lists = 0;
};

int Main(int argc, char** argv) {
  Args args;
  args.tmp_dir = ExeDir() + "/bench_tmp";
  bool no_batched = false;
  CLI::App app{"diversity_bench: diversity-aware search (MMR) vs plain search on Fashion-MNIST"};
  app.add_option("--rows", args.rows, "base rows (max 60000)");
  app.add_option("--queries", args.queries, "queries (the first t10k images)");
  app.add_option("--lambdas", args.lambdas, "MMR lambdas")->delimiter(',');
  app.add_option("--fetch-k", args.fetch_ks, "MMR candidates (fetch_k)")->delimiter(',');
  app.add_option("--rounds", args.rounds, "interleaved rounds");
  app.add_option("--slice", args.slice,
                 "queries per interleaving slice; the batched mode sends a slice per RPC");
  app.add_flag("--no-batched", no_batched, "skip the batched mode");
  app.add_option("--check-queries", args.check_queries,
                 "queries for the exact cross-check and explain (outside the clock)");
  app.add_option("--build-threads", args.build_threads, "quiverd --index-build-threads");
  app.add_option("--segment-max-rows", args.segment_max_rows,
                 "quiverd --segment-max-rows (0: its default; smaller spreads the candidates "
                 "over several segments)");
  app.add_option("--quiverd", args.quiverd, "quiverd binary");
  app.add_option("--tmp-dir", args.tmp_dir, "where quiverd's data dir goes");
  app.add_option("--dataset-dir", args.dataset_dir, "Fashion-MNIST IDX folder");
  app.add_option("--json", args.json_out, "JSON output (default <exe dir>/bench_results/)");
  CLI11_PARSE(app, argc, argv);
  args.batched = !no_batched;
  for (double l : args.lambdas) {
    if (!(l >= 0 && l <= 1)) Die("--lambdas", absl::InvalidArgumentError("lambda in [0, 1]"));
  }
  for (uint32_t f : args.fetch_ks) {
    if (f < args.k) Die("--fetch-k", absl::InvalidArgumentError("fetch_k >= k"));
  }
  std::filesystem::create_directories(args.tmp_dir);
  const double t_start = NowSeconds();
  nlohmann::json report = NewReport("diversity_bench", argc, argv);
  const size_t k = args.k;

  auto ds = LoadFashionMnist(args.dataset_dir, args.rows, args.queries);
  if (!ds.ok()) Die("load dataset", ds.status());
  const Matrix& base = ds->train;
  const Matrix& queries = ds->test;
  const size_t nq = std::min(args.queries, queries.n);
  const size_t check_nq = std::min(args.check_queries, nq);
  const size_t slice = std::max<size_t>(1, std::min(args.slice, nq));

  // ---- quiverd, loaded and indexed
  QuiverdOptions qo = BenchQuiverdOptions();
  qo.binary = args.quiverd;
  qo.durability = "async";  // loading is not what this measures
  qo.tmp_root = args.tmp_dir;
  // OpenMP's thread count is per thread: the environment pins every thread.
  qo.env = {"OMP_NUM_THREADS=1"};
  // The recall audit re-runs a sample of searches exactly in the
  // background: quiverd CPU that no configuration asked for.
  qo.extra_args = {"--index-build-threads", std::to_string(args.build_threads),
                   "--index-build-workers", "1", "--recall-audit-rate", "0"};
  if (args.segment_max_rows > 0) {
    qo.extra_args.push_back("--segment-max-rows");
    qo.extra_args.push_back(std::to_string(args.segment_max_rows));
  }
  auto started = QuiverdProcess::Launch(qo);
  if (!started.ok()) Die("start quiverd", started.status());
  std::unique_ptr<QuiverdProcess> srv = *std::move(started);
  client::Client c(srv->address());
  {
    v1::CollectionSchema schema;
    v1::VectorField* f = schema.add_vectors();
    f->set_name(kField);
    f->set_dim(static_cast<uint32_t>(base.dim));
    f->set_metric(v1::L2);
    f->mutable_index()->set_type("HNSW");
    v1::AttributeField* a = schema.add_attributes();
    a->set_name(kLabel);
    a->set_type(v1::INT64);
    if (auto r = c.CreateCollection(kCollection, schema); !r.ok()) Die("create", r.status());
  }
  const double load_t0 = NowSeconds();
  for (size_t b = 0; b < base.n; b += 1000) {
    v1::UpsertPointsRequest up;
    up.set_collection(kCollection);
    for (size_t i = b; i < std::min(base.n, b + 1000); ++i) {
      v1::Point* p = up.add_points();
      p->set_id(std::to_string(i));
      (*p->mutable_vectors())[kField].mutable_values()->Add(base.row(i), base.row(i) + base.dim);
      (*p->mutable_attributes())[kLabel].set_int_value(ds->train_labels[i]);
    }
    if (auto r = c.Upsert(up); !r.ok()) Die("upsert", r.status());
  }
  const double upsert_s = NowSeconds() - load_t0;
  WaitIndexedOrDie(c, {kCollection}, 3600, 100);
  const double indexed_s = NowSeconds() - load_t0;
  WaitQuiet(srv->pid());
  if (auto n = c.Count(kCollection); !n.ok() || *n != base.n) {
    Die("Count", n.ok() ? absl::DataLossError("count differs") : n.status());
  }

  // ---- configurations: plain k=10, then per fetch_k the two baselines
  // (plain k=fetch_k: the fetch alone, returned; plain k=10 at the fetch's
  // ef: the same graph search, 10 hits returned) and MMR.
  std::vector<Config> configs = {{false, args.k, 0, 1, 0}};
  std::vector<size_t> plain_at, same_ef_at;  // per fetch_k: their rows
  for (uint32_t fk : args.fetch_ks) {
    plain_at.push_back(configs.size());
    configs.push_back({false, fk, 0, 1, 0});
    same_ef_at.push_back(configs.size());
    configs.push_back({false, args.k, 0, 1, std::max(fk, kDefaultEf)});
    for (double l : args.lambdas) {
      configs.push_back({true, args.k, fk, static_cast<float>(l), 0});
    }
  }
  auto fetch_index = [&](const Config& cf) {
    for (size_t i = 0; i < args.fetch_ks.size(); ++i) {
      if (args.fetch_ks[i] == cf.fetch_k) return i;
    }
    return size_t{0};
  };
  auto plain_of = [&](const Config& cf) { return plain_at[fetch_index(cf)]; };
  auto same_ef_of = [&](const Config& cf) { return same_ef_at[fetch_index(cf)]; };
  const size_t nc = configs.size();

  std::printf("diversity_bench: Fashion-MNIST %zu x %zu (HNSW, server defaults, L2), %zu "
              "queries, k=%u; lambdas %s, fetch_k %s; %d rounds interleaved per slice of %zu "
              "queries; 1 client thread; %u cores\n",
              base.n, base.dim, nq, args.k, absl::StrJoin(args.lambdas, ",").c_str(),
              absl::StrJoin(args.fetch_ks, ",").c_str(), args.rounds, slice,
              std::thread::hardware_concurrency());
  std::printf("quiverd: %s; upserts %.1f s, indexed %.1f s after the first write; load "
              "average %s\n",
              absl::StrJoin(srv->argv(), " ").c_str(), upsert_s, indexed_s,
              LoadAverage().c_str());
  std::fflush(stdout);

  // ---- cross-check outside the clock: the server's picks over exact
  // candidates against MMR recomputed here in double over the same ones.
  struct Mismatch {
    size_t query;
    uint32_t fetch_k;
    float lambda;
    size_t position;
    int64_t bench_id, server_id;
    double bench_value, server_value;  // at that pick, in double
  };
  std::vector<Mismatch> mismatches;
  size_t checks = 0, agreements = 0, label_errors = 0, candidate_diffs = 0;
  double worst_score_rel = 0;
  // An empty Diversity must mean lambda 0.5 over max(4k, 50) candidates.
  const uint32_t default_fetch = std::max<uint32_t>(4 * args.k, 50);
  size_t default_checks = 0, default_agreements = 0;
  for (size_t q = 0; q < check_nq; ++q) {
    {
      const std::vector<int64_t> cands = Ids(
          SearchOrDie(c, MakeRequest({false, default_fetch, 0, 1, 0}, queries, q, 1, true),
                      "exact plain").results(0));
      v1::SearchRequest req = MakeRequest({false, args.k, 0, 1, 0}, queries, q, 1, true);
      req.mutable_diversity();
      std::vector<std::vector<double>> values;
      std::vector<int64_t> mine;
      for (size_t i : MmrInDouble(queries.row(q), cands, base, k, 0.5, &values)) {
        mine.push_back(cands[i]);
      }
      ++default_checks;
      default_agreements += Ids(SearchOrDie(c, req, "default MMR").results(0)) == mine;
    }
    for (uint32_t fk : args.fetch_ks) {
      const v1::SearchResponse plain =
          SearchOrDie(c, MakeRequest({false, fk, 0, 1, 0}, queries, q, 1, true), "exact plain");
      const std::vector<int64_t> cands = Ids(plain.results(0));
      if (cands.size() != fk) ++candidate_diffs;
      for (double l : args.lambdas) {
        const Config cf{true, args.k, fk, static_cast<float>(l), 0};
        v1::SearchRequest req = MakeRequest(cf, queries, q, 1, true);
        req.add_output_attributes(kLabel);
        const v1::SearchResponse resp = SearchOrDie(c, req, "exact MMR");
        std::vector<std::vector<double>> values;
        const std::vector<size_t> mine =
            MmrInDouble(queries.row(q), cands, base, k, static_cast<double>(cf.lambda), &values);
        const auto& hits = resp.results(0).hits();
        ++checks;
        bool same = static_cast<size_t>(hits.size()) == mine.size();
        if (!same) {
          mismatches.push_back({q, fk, cf.lambda, std::min(mine.size(), size_t(hits.size())), -1,
                                -1, std::nan(""), std::nan("")});
        }
        for (int h = 0; h < hits.size(); ++h) {
          const int64_t id = ParseId(hits[h].id());
          if (id < 0 || static_cast<size_t>(id) >= base.n) {
            if (same) {
              mismatches.push_back({q, fk, cf.lambda, static_cast<size_t>(h), -1, id,
                                    std::nan(""), std::nan("")});
            }
            same = false;
            continue;
          }
          const auto at = hits[h].attributes().find(kLabel);
          if (at == hits[h].attributes().end() ||
              at->second.int_value() != ds->train_labels[id]) {
            ++label_errors;
          }
          const double d = L2Sq(queries.row(q), base.row(id), base.dim);
          worst_score_rel = std::max(worst_score_rel, std::abs(hits[h].score() - d) / d);
          if (!same || static_cast<size_t>(h) >= mine.size()) continue;
          if (cands[mine[h]] == id) continue;
          same = false;
          // The picks before agreed, so values[h] is the state the server was
          // in at this pick.
          const auto it = std::find(cands.begin(), cands.end(), id);
          mismatches.push_back(
              {q, fk, cf.lambda, static_cast<size_t>(h), cands[mine[h]], id,
               values[h][mine[h]],
               it == cands.end() ? std::nan("") : values[h][it - cands.begin()]});
        }
        if (same) ++agreements;
      }
    }
  }
  std::printf("cross-check (exact candidates, %zu queries x %zu fetch_k x %zu lambdas): %zu of "
              "%zu agree with MMR recomputed in double; label attribute wrong on %zu hits; hit "
              "scores vs squared distance in double: worst relative difference %.2e\n",
              check_nq, args.fetch_ks.size(), args.lambdas.size(), agreements, checks,
              label_errors, worst_score_rel);
  std::printf("defaults (empty Diversity = lambda 0.5, fetch_k %u): %zu of %zu agree\n",
              default_fetch, default_agreements, default_checks);
  for (size_t i = 0; i < mismatches.size() && i < 20; ++i) {
    const Mismatch& m = mismatches[i];
    std::printf("  mismatch: query %zu fetch_k %u lambda %.2f pick %zu: bench %lld (value "
                "%.6f), server %lld (value %.6f), difference %.3g\n",
                m.query, m.fetch_k, m.lambda, m.position + 1, static_cast<long long>(m.bench_id),
                m.bench_value, static_cast<long long>(m.server_id), m.server_value,
                m.bench_value - m.server_value);
  }
  std::fflush(stdout);

  // Explain, outside the clock: the server's time per config and MMR's own.
  std::vector<std::vector<double>> total_us(nc), mmr_us(nc);
  std::vector<std::string> explain_text(nc);
  std::vector<size_t> order(nc);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(42);
  for (size_t q = 0; q < check_nq; ++q) {
    // Shuffled per query: in a fixed rotation the MMR row that came right
    // after the plain ones showed up to 40% more MMR time than the others.
    std::shuffle(order.begin(), order.end(), rng);
    for (size_t ci : order) {
      v1::SearchRequest req = MakeRequest(configs[ci], queries, q, 1);
      req.set_explain(true);
      const v1::SearchResponse r = SearchOrDie(c, req, "explain");
      total_us[ci].push_back(r.explain().total_micros());
      if (configs[ci].mmr) mmr_us[ci].push_back(MmrMicros(r.explain().text()));
      if (q == 0) explain_text[ci] = r.explain().text();
    }
  }

  // ---- measured rounds
  std::vector<std::vector<v1::SearchRequest>> single(nc), batched(nc);
  const size_t nslices = (nq + slice - 1) / slice;
  for (size_t ci = 0; ci < nc; ++ci) {
    for (size_t q = 0; q < nq; ++q) single[ci].push_back(MakeRequest(configs[ci], queries, q, 1));
    for (size_t s = 0; s < nslices; ++s) {
      batched[ci].push_back(
          MakeRequest(configs[ci], queries, s * slice, std::min(slice, nq - s * slice)));
    }
  }
  const std::vector<std::string> mode_names =
      args.batched ? std::vector<std::string>{"single", "batched"}
                   : std::vector<std::string>{"single"};
  std::vector<std::vector<Cell>> cells(mode_names.size(), std::vector<Cell>(nc));
  std::vector<std::vector<double>> other_cores(mode_names.size());
  // One slice's calls of one configuration; the ids go to `cell` in the
  // first round and are compared with it after.
  auto run_slice = [&](size_t mode, size_t ci, size_t s, bool first_round, double* seconds) {
    Cell& cell = cells[mode][ci];
    const size_t q0 = s * slice, q1 = std::min(nq, q0 + slice);
    // /proc counts in 10 ms ticks, a slice takes tens of ms: summed over
    // every slice the rounding evens out.
    const double cpu0 = ProcessCpuSeconds(srv->pid());
    auto record = [&](size_t q, const v1::SearchResult& r) {
      std::vector<int64_t> ids = Ids(r);
      if (first_round) {
        cell.ids[q] = std::move(ids);
      } else if (ids != cell.ids[q]) {
        ++cell.changed;
      }
    };
    if (mode == 0) {
      for (size_t q = q0; q < q1; ++q) {
        const double t0 = NowSeconds();
        auto r = c.Search(single[ci][q]);
        const double dt = NowSeconds() - t0;
        if (!r.ok()) Die(configs[ci].Name(), r.status());
        *seconds += dt;
        cell.latency_ms.push_back(dt * 1e3);
        record(q, r->results(0));
      }
    } else {
      const double t0 = NowSeconds();
      auto r = c.Search(batched[ci][s]);
      const double dt = NowSeconds() - t0;
      if (!r.ok()) Die(configs[ci].Name(), r.status());
      *seconds += dt;
      cell.latency_ms.push_back(dt * 1e3);
      for (size_t q = q0; q < q1; ++q) record(q, r->results(static_cast<int>(q - q0)));
    }
    cell.server_cpu_s += ProcessCpuSeconds(srv->pid()) - cpu0;
    cell.server_queries += q1 - q0;
  };
  // Warm-up: one slice of everything.
  for (size_t mode = 0; mode < mode_names.size(); ++mode) {
    for (size_t ci = 0; ci < nc; ++ci) {
      cells[mode][ci].ids.resize(nq);
      double ignored = 0;
      run_slice(mode, ci, 0, true, &ignored);
      cells[mode][ci].latency_ms.clear();
      cells[mode][ci].server_cpu_s = 0;
      cells[mode][ci].server_queries = 0;
    }
  }
  for (int round = 0; round < args.rounds; ++round) {
    for (size_t mode = 0; mode < mode_names.size(); ++mode) {
      std::vector<double> secs(nc, 0);
      const double busy0 = MachineBusySeconds(false), self0 = ProcessCpuSeconds(),
                   srv0 = ProcessCpuSeconds(srv->pid()), wall0 = NowSeconds();
      for (size_t s = 0; s < nslices; ++s) {
        // Rotated per slice and reversed every other one: no configuration
        // keeps a place in the sequence.
        const size_t turn = round * nslices + s;
        for (size_t j = 0; j < nc; ++j) {
          size_t ci = (j + turn) % nc;
          if (turn % 2) ci = nc - 1 - ci;
          run_slice(mode, ci, s, round == 0, &secs[ci]);
        }
      }
      const double wall = NowSeconds() - wall0;
      other_cores[mode].push_back((MachineBusySeconds(false) - busy0 - (ProcessCpuSeconds() - self0) -
                                   (ProcessCpuSeconds(srv->pid()) - srv0)) /
                                  wall);
      for (size_t ci = 0; ci < nc; ++ci) cells[mode][ci].seconds.push_back(secs[ci]);
      std::printf("  round %d %-7s %.1f s, others' cores %.2f, load average %s\n", round + 1,
                  mode_names[mode].c_str(), wall, other_cores[mode].back(),
                  LoadAverage().c_str());
      std::fflush(stdout);
    }
  }

  // ---- quality, from the first round of single-query calls
  const std::vector<Cell>& sc = cells[0];
  auto quality = [&](size_t ci) {
    Quality qu;
    for (size_t q = 0; q < nq; ++q) {
      const std::vector<int64_t>& ids = sc[ci].ids[q];
      const std::vector<int64_t>& plain = sc[0].ids[q];
      const size_t n = std::min(k, ids.size());
      if (n < k) ++qu.short_lists;
      std::set<int> labels;
      double d = 0, dp = 0, same = 0, kept = 0;
      for (size_t j = 0; j < n; ++j) {
        labels.insert(ds->train_labels[ids[j]]);
        same += ds->train_labels[ids[j]] == ds->test_labels[q];
        d += L2Sq(queries.row(q), base.row(ids[j]), base.dim);
        kept += std::find(plain.begin(), plain.end(), ids[j]) != plain.end();
      }
      for (int64_t id : plain) dp += L2Sq(queries.row(q), base.row(id), base.dim);
      qu.labels += static_cast<double>(labels.size());
      qu.same_label += same / std::max<size_t>(1, n);
      qu.dist += d / std::max<size_t>(1, n);
      qu.kept += kept / static_cast<double>(k);
      qu.per_query_ratio += (d / std::max<size_t>(1, n)) / (dp / std::max<size_t>(1, plain.size()));
    }
    for (double* v : {&qu.labels, &qu.same_label, &qu.dist, &qu.kept, &qu.per_query_ratio}) {
      *v /= static_cast<double>(nq);
    }
    return qu;
  };
  std::vector<Quality> qual(nc);
  for (size_t ci = 0; ci < nc; ++ci) qual[ci] = quality(ci);
  // The ceiling MMR could reach: distinct labels among all the candidates.
  std::vector<double> cand_labels(args.fetch_ks.size(), 0);
  for (size_t i = 0; i < args.fetch_ks.size(); ++i) {
    for (size_t q = 0; q < nq; ++q) {
      std::set<int> labels;
      for (int64_t id : sc[plain_at[i]].ids[q]) labels.insert(ds->train_labels[id]);
      cand_labels[i] += static_cast<double>(labels.size()) / static_cast<double>(nq);
    }
  }
  // lambda = 1 must be the candidates' own order: plain k = fetch_k's first
  // k, and plain k = 10 at the same ef. Against plain k = 10 at the default
  // ef it differs only where the wider ef found another top 10.
  struct Lambda1 {
    uint32_t fetch_k;
    size_t vs_fetch = 0, vs_same_ef = 0, vs_plain = 0, same_set = 0;
  };
  std::vector<Lambda1> l1;
  for (size_t ci = 0; ci < nc; ++ci) {
    if (!configs[ci].mmr || configs[ci].lambda != 1.0f) continue;
    Lambda1 x{configs[ci].fetch_k};
    for (size_t q = 0; q < nq; ++q) {
      const std::vector<int64_t>& m = sc[ci].ids[q];
      std::vector<int64_t> head = sc[plain_of(configs[ci])].ids[q];
      head.resize(std::min(head.size(), k));
      if (m != head) ++x.vs_fetch;
      if (m != sc[same_ef_of(configs[ci])].ids[q]) ++x.vs_same_ef;
      if (m != sc[0].ids[q]) {
        ++x.vs_plain;
        std::set<int64_t> a(m.begin(), m.end()), b(sc[0].ids[q].begin(), sc[0].ids[q].end());
        if (a == b) ++x.same_set;
      }
    }
    l1.push_back(x);
  }

  // ---- cost: per-round QPS and ratios
  auto qps = [&](size_t mode, size_t ci, size_t r) {
    return static_cast<double>(nq) / cells[mode][ci].seconds[r];
  };
  auto median_ratio = [&](size_t mode, size_t a, size_t b) {
    std::vector<double> v;
    for (int r = 0; r < args.rounds; ++r) v.push_back(qps(mode, a, r) / qps(mode, b, r));
    return Median(v);
  };
  auto median_qps = [&](size_t mode, size_t ci) {
    std::vector<double> v;
    for (int r = 0; r < args.rounds; ++r) v.push_back(qps(mode, ci, r));
    return Median(v);
  };

  std::ostringstream out;
  out << "Quality (first round, single-query calls) and cost, one query per RPC, 1 client "
         "thread: QPS median over rounds, ratios median of per-round QPS ratios, latency "
         "pooled over rounds. \"vs plain\": mean squared L2 of the 10 hits over plain k=10's; "
         "\"kept\": share of plain k=10's hits returned. quiverd CPU us: its CPU time per "
         "query over all rounds (/proc); server us: explain's total (binding, gRPC and the "
         "response's hits not included) and MMR us: MMR's own time in it (median over "
      << check_nq << " queries).\n\n";
  auto row_name = [](const Config& cf) {
    return cf.mmr ? std::string("MMR") : cf.Name();
  };
  // The cost ratios against the baselines of an MMR row ("-" elsewhere).
  auto ratio_cells = [&](size_t mode, size_t ci) -> std::vector<std::string> {
    const Config& cf = configs[ci];
    return {ci == 0 ? "-" : Fixed(median_ratio(mode, ci, 0), 3),
            cf.mmr ? Fixed(median_ratio(mode, ci, plain_of(cf)), 3) : "-",
            cf.mmr ? Fixed(median_ratio(mode, ci, same_ef_of(cf)), 3) : "-"};
  };
  auto cpu_us = [&](size_t mode, size_t ci) {
    const Cell& cell = cells[mode][ci];
    return 1e6 * cell.server_cpu_s / static_cast<double>(std::max<size_t>(1, cell.server_queries));
  };
  Table t({"search", "fetch_k", "lambda", "distinct labels", "same label as query",
           "mean sq. L2", "vs plain", "kept", "QPS", "p50 ms", "p99 ms", "QPS vs plain k=10",
           "vs plain k=fetch_k", "vs plain k=10 same ef", "quiverd CPU us", "server us",
           "MMR us"});
  nlohmann::json rows = nlohmann::json::array();
  for (size_t ci = 0; ci < nc; ++ci) {
    const Config& cf = configs[ci];
    const Quality& qu = qual[ci];
    std::vector<std::string> row = {
        row_name(cf), cf.mmr ? std::to_string(cf.fetch_k) : "-",
        cf.mmr ? Fixed(cf.lambda, 1) : "-", Fixed(qu.labels, 2), Fixed(qu.same_label, 3),
        Thousands(qu.dist), Fixed(qu.dist / qual[0].dist, 3), Fixed(qu.kept, 3),
        Thousands(median_qps(0, ci)), Fixed(Percentile(sc[ci].latency_ms, 50), 3),
        Fixed(Percentile(sc[ci].latency_ms, 99), 3)};
    for (std::string& r : ratio_cells(0, ci)) row.push_back(std::move(r));
    row.push_back(Fixed(cpu_us(0, ci), 0));
    row.push_back(Fixed(Median(total_us[ci]), 0));
    row.push_back(cf.mmr ? Fixed(Median(mmr_us[ci]), 1) : "-");
    t.AddRow(std::move(row));
    nlohmann::json j = {{"search", cf.Name()},
                        {"mmr", cf.mmr},
                        {"k", cf.k},
                        {"fetch_k", cf.fetch_k},
                        {"lambda", cf.lambda},
                        {"ef", cf.ef},
                        {"distinct_labels", qu.labels},
                        {"share_of_query_label", qu.same_label},
                        {"mean_sq_l2", qu.dist},
                        {"mean_sq_l2_vs_plain", qu.dist / qual[0].dist},
                        {"mean_per_query_ratio_vs_plain", qu.per_query_ratio},
                        {"plain_top_k_kept", qu.kept},
                        {"short_lists", qu.short_lists},
                        {"server_explain_us", total_us[ci]},
                        {"mmr_explain_us", mmr_us[ci]},
                        {"explain_first_query", explain_text[ci]}};
    for (size_t mode = 0; mode < mode_names.size(); ++mode) {
      const Cell& cell = cells[mode][ci];
      std::vector<double> per_round;
      for (int r = 0; r < args.rounds; ++r) per_round.push_back(qps(mode, ci, r));
      j[mode_names[mode]] = {{"qps_per_round", per_round},
                             {"qps", median_qps(mode, ci)},
                             {"p50_ms", Percentile(cell.latency_ms, 50)},
                             {"p99_ms", Percentile(cell.latency_ms, 99)},
                             {"qps_vs_plain_k", median_ratio(mode, ci, 0)},
                             {"qps_vs_plain_fetch_k",
                              cf.mmr ? median_ratio(mode, ci, plain_of(cf)) : 0.0},
                             {"qps_vs_plain_k_same_ef",
                              cf.mmr ? median_ratio(mode, ci, same_ef_of(cf)) : 0.0},
                             {"quiverd_cpu_us_per_query", cpu_us(mode, ci)},
                             {"answers_changed_after_first_round", cell.changed}};
    }
    rows.push_back(j);
  }
  t.Print(out);
  if (args.batched) {
    out << "\nBatched: " << slice
        << " queries per RPC, 1 client thread (latency per RPC, quiverd CPU per query).\n\n";
    Table b({"search", "fetch_k", "lambda", "QPS", "p50 ms", "p99 ms", "QPS vs plain k=10",
             "vs plain k=fetch_k", "vs plain k=10 same ef", "quiverd CPU us"});
    for (size_t ci = 0; ci < nc; ++ci) {
      const Config& cf = configs[ci];
      const Cell& cell = cells[1][ci];
      std::vector<std::string> row = {
          row_name(cf), cf.mmr ? std::to_string(cf.fetch_k) : "-",
          cf.mmr ? Fixed(cf.lambda, 1) : "-", Thousands(median_qps(1, ci)),
          Fixed(Percentile(cell.latency_ms, 50), 2), Fixed(Percentile(cell.latency_ms, 99), 2)};
      for (std::string& r : ratio_cells(1, ci)) row.push_back(std::move(r));
      row.push_back(Fixed(cpu_us(1, ci), 0));
      b.AddRow(std::move(row));
    }
    b.Print(out);
  }
  out << "\n";
  for (size_t i = 0; i < args.fetch_ks.size(); ++i) {
    out << "distinct labels among all " << args.fetch_ks[i]
        << " candidates (the most MMR could reach): " << Fixed(cand_labels[i], 2) << "\n";
  }
  for (const Lambda1& x : l1) {
    out << "lambda=1, fetch_k=" << x.fetch_k << ": of " << nq << " queries, " << x.vs_fetch
        << " differ from plain k=" << x.fetch_k << "'s first " << k << " and " << x.vs_same_ef
        << " from plain k=" << k << " at ef=" << std::max(x.fetch_k, kDefaultEf)
        << " (both must be 0); " << x.vs_plain << " differ from plain k=" << k
        << " at the default ef=" << kDefaultEf << " (" << x.same_set
        << " of them only in order)\n";
  }
  size_t changed = 0;
  for (const auto& mode : cells) {
    for (const Cell& cell : mode) changed += cell.changed;
  }
  for (size_t ci = 0; args.batched && ci < nc; ++ci) {
    for (size_t q = 0; q < nq; ++q) changed += cells[1][ci].ids[q] != sc[ci].ids[q];
  }
  out << "answers that changed between rounds or modes: " << changed << "\n";
  out << "cross-check: " << agreements << " of " << checks
      << " exact-candidate MMR answers agree with MMR in double";
  if (!mismatches.empty()) out << " (" << mismatches.size() << " mismatches, above)";
  out << "; defaults " << default_agreements << " of " << default_checks << "\n";
  for (size_t mode = 0; mode < mode_names.size(); ++mode) {
    out << "others' cores during " << mode_names[mode] << " rounds: "
        << absl::StrJoin(other_cores[mode], ", ",
                         [](std::string* s, double v) { absl::StrAppend(s, Fixed(v, 2)); })
        << "\n";
  }
  std::printf("\n%s", out.str().c_str());
  std::printf("total %.0f s; load average %s\n", NowSeconds() - t_start, LoadAverage().c_str());

  nlohmann::json mm = nlohmann::json::array();
  for (const Mismatch& m : mismatches) {
    mm.push_back({{"query", m.query}, {"fetch_k", m.fetch_k}, {"lambda", m.lambda},
                  {"pick", m.position + 1}, {"bench_id", m.bench_id},
                  {"server_id", m.server_id}, {"bench_value", m.bench_value},
                  {"server_value", m.server_value}});
  }
  nlohmann::json l1j = nlohmann::json::array();
  for (size_t i = 0; i < l1.size(); ++i) {
    l1j.push_back({{"fetch_k", l1[i].fetch_k}, {"differ_from_plain_fetch_k_head", l1[i].vs_fetch},
                   {"differ_from_plain_k_same_ef", l1[i].vs_same_ef},
                   {"differ_from_plain_k", l1[i].vs_plain}, {"only_order", l1[i].same_set}});
  }
  report["config"] = {{"rows", base.n}, {"dim", base.dim}, {"queries", nq}, {"k", k},
                      {"lambdas", args.lambdas}, {"fetch_ks", args.fetch_ks},
                      {"rounds", args.rounds}, {"slice", slice}, {"check_queries", check_nq},
                      {"quiverd_argv", srv->argv()}, {"quiverd_env", qo.env},
                      {"segment_max_rows", args.segment_max_rows},
                      {"upsert_seconds", upsert_s}, {"indexed_seconds", indexed_s}};
  report["rows"] = rows;
  report["candidate_distinct_labels"] = cand_labels;
  report["lambda1"] = l1j;
  report["cross_check"] = {{"checks", checks}, {"agreements", agreements},
                           {"label_errors", label_errors},
                           {"short_candidate_lists", candidate_diffs},
                           {"worst_score_relative_difference", worst_score_rel},
                           {"default_checks", default_checks},
                           {"default_agreements", default_agreements},
                           {"mismatches", mm}};
  report["answers_changed"] = changed;
  report["others_cores"] = other_cores;
  report["table"] = out.str();
  if (absl::Status st = srv->Stop(); !st.ok()) {
    std::fprintf(stderr, "diversity_bench: stopping quiverd: %s\n", st.ToString().c_str());
  }
  FinishReport(&report, args.json_out);
  return 0;
}

}  // namespace
}  // namespace quiver::bench

int main(int argc, char** argv) { return quiver::bench::Main(argc, argv); }
