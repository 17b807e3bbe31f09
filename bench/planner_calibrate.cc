// planner_calibrate: measures, on this machine, the unit costs the filter
// planner's cost model (query/planner.h, CostModel) is built from, and how
// far the model's estimates are from measured search times.
//
// In process (no gRPC, so only search work is timed): Fashion-MNIST 60k in
// one HNSW and one IVF_FLAT collection, a uniform indexed attribute `u` for
// chosen selectivities and the class label for correlated ones. For each
// selectivity and strategy it runs single-query searches with explain and
// reports per query: distance computations, filter checks, search time, ns
// per distance and per float, and the planner's own estimate next to the
// measurement. The defaults in CostModel come from this program's output.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <cstdio>
#include <map>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/common/sysinfo.h"
#include "bench/common/testkit.h"
#include "query/engine.h"

namespace quiver::bench {
namespace {

constexpr size_t kQueries = 200;

struct Measure {
  double distances = 0, checks = 0, search_us = 0, filter_us = 0;
  std::string strategy;
  std::string reason;
};

Measure Run(Engine& engine, const std::string& coll, const Matrix& queries,
            const std::string& filter, v1::FilterStrategy strategy, uint32_t ef = 0) {
  Measure m;
  for (size_t q = 0; q < kQueries; ++q) {
    v1::SearchRequest req;
    req.set_collection(coll);
    req.set_k(10);
    req.set_filter(filter);
    req.set_explain(true);
    req.mutable_params()->set_filter_strategy(strategy);
    req.mutable_params()->set_ef(ef);
    req.add_vectors()->mutable_values()->Add(queries.row(q), queries.row(q) + queries.dim);
    v1::SearchResponse resp;
    const absl::Status s = engine.Search(req, absl::InfiniteFuture(), &resp);
    if (!s.ok()) {
      std::fprintf(stderr, "search failed: %s\n", s.ToString().c_str());
      std::exit(1);
    }
    for (const auto& sp : resp.explain().segments()) {
      m.distances += sp.distances();
      m.checks += sp.filter_checks();
      m.search_us += sp.search_micros();
      m.filter_us += sp.filter_micros();
      m.strategy = sp.strategy();
      m.reason = sp.reason();
    }
  }
  m.distances /= kQueries;
  m.checks /= kQueries;
  m.search_us /= kQueries;
  m.filter_us /= kQueries;
  return m;
}

// "estimated us: pre_filter 1.0, filtered_index 2.0, post_filter 3.0" -> map.
std::map<std::string, double> Estimates(const std::string& reason) {
  std::map<std::string, double> out;
  static const std::regex re("([a-z_]+) ([0-9.]+)");
  for (auto it = std::sregex_iterator(reason.begin(), reason.end(), re);
       it != std::sregex_iterator(); ++it) {
    out[(*it)[1]] = std::stod((*it)[2]);
  }
  return out;
}

int Main() {
  auto data = LoadFashionMnist(kFashionDir, 60000, kQueries);
  if (!data.ok()) {
    std::fprintf(stderr, "%s\n", data.status().ToString().c_str());
    return 1;
  }
  const size_t n = data->train.n, dim = data->train.dim;
  std::printf("planner_calibrate: Fashion-MNIST %zu x %zu, %zu single queries per cell, "
              "k=10, in process, 1 search thread\n", n, dim, kQueries);
  const std::string dir = absl::StrCat("/tmp/quiver-calibrate-", getpid());
  EngineOptions o;
  o.data_dir = dir;
  o.builder.threads_per_build = 2;
  auto engine = Engine::Open(o);
  if (!engine.ok()) return 1;
  std::mt19937_64 rng(42);
  std::vector<int64_t> u(n);
  for (auto& x : u) x = static_cast<int64_t>(rng() % 1000000);
  for (const char* kind : {"HNSW", "IVF_FLAT"}) {
    v1::CreateCollectionRequest req;
    req.set_name(kind);
    auto* v = req.mutable_schema()->add_vectors();
    v->set_name("img");
    v->set_dim(static_cast<uint32_t>(dim));
    v->set_metric(v1::L2);
    v->mutable_index()->set_type(kind);
    for (const char* a : {"u", "label"}) {
      auto* at = req.mutable_schema()->add_attributes();
      at->set_name(a);
      at->set_type(v1::INT64);
      at->set_indexed(true);
    }
    v1::CreateCollectionResponse cr;
    if (!(*engine)->CreateCollection(req, &cr).ok()) return 1;
    for (size_t start = 0; start < n; start += 1000) {
      v1::UpsertPointsRequest up;
      up.set_collection(kind);
      for (size_t i = start; i < std::min(n, start + 1000); ++i) {
        v1::Point* p = up.add_points();
        p->set_id(std::to_string(i));
        (*p->mutable_vectors())["img"].mutable_values()->Add(data->train.row(i),
                                                            data->train.row(i) + dim);
        (*p->mutable_attributes())["u"].set_int_value(u[i]);
        (*p->mutable_attributes())["label"].set_int_value(data->train_labels[i]);
      }
      v1::UpsertPointsResponse ur;
      if (!(*engine)->Upsert(up, &ur).ok()) return 1;
    }
  }
  (*engine)->SealAndWaitForIndexes();

  // 1. Unfiltered HNSW: distance computations as a function of ef.
  std::printf("\nHNSW unfiltered: distances per query vs ef "
              "(model: graph_visits_scale * ef ^ graph_visits_exponent)\n");
  for (uint32_t ef : {16, 32, 64, 128, 256}) {
    const Measure m = Run(**engine, "HNSW", data->test, "", v1::FILTER_STRATEGY_AUTO, ef);
    std::printf("  ef %4u  distances %7.0f  search %7.1f us  %6.1f ns/distance\n", ef, m.distances,
                m.search_us, m.search_us * 1000 / m.distances);
  }

  // 2. Each strategy at each selectivity.
  const std::pair<const char*, const char*> filters[] = {
      {"u < 1000000", "100%"}, {"u < 500000", "50%"}, {"u < 200000", "20%"},
      {"u < 100000", "10%"},   {"u < 50000", "5%"},   {"u < 20000", "2%"},
      {"u < 10000", "1%"},     {"u < 1000", "0.1%"},  {"label = 3", "10% corr"},
      {"label IN (0, 1, 2, 3, 4)", "50% corr"}};
  const std::pair<v1::FilterStrategy, const char*> strategies[] = {
      {v1::PRE_FILTER, "pre_filter"}, {v1::FILTERED_INDEX, "filtered_index"},
      {v1::POST_FILTER, "post_filter"}};
  for (const char* kind : {"HNSW", "IVF_FLAT"}) {
    std::printf("\n%s: per query; est = the planner's estimate for that strategy\n", kind);
    std::printf("  %-26s %-9s %-15s %9s %9s %9s %9s %9s %8s %8s\n", "filter", "sel", "strategy",
                "distances", "checks", "search_us", "filter_us", "est_us", "ns/dist", "ns/float");
    for (const auto& [expr, sel] : filters) {
      const Measure planned = Run(**engine, kind, data->test, expr, v1::FILTER_STRATEGY_AUTO);
      const auto est = Estimates(planned.reason);
      for (const auto& [strategy, name] : strategies) {
        const Measure m = Run(**engine, kind, data->test, expr, strategy);
        const double per = m.distances > 0 ? m.search_us * 1000 / m.distances : 0;
        std::printf("  %-26s %-9s %-15s %9.0f %9.0f %9.1f %9.1f %9.1f %8.1f %8.3f\n", expr, sel,
                    name, m.distances, m.checks, m.search_us, m.filter_us,
                    est.count(name) ? est.at(name) : -1.0, per, per / dim);
      }
      std::printf("  %-26s %-9s AUTO chose %s\n", "", "", planned.strategy.c_str());
    }
  }
  engine->reset();
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace quiver::bench

int main() { return quiver::bench::Main(); }
