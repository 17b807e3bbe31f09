#include "index/hnsw_sq8_index.h"

#include <faiss/IndexHNSW.h>
#include <faiss/IndexScalarQuantizer.h>
#include <immintrin.h>

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "index/ivf_common.h"

namespace quiver::index {
namespace {

constexpr char kKind[] = "HNSW_SQ8";

faiss::MetricType MetricOf(Similarity sim) {
  return sim == Similarity::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
}

struct Cand {
  float distance;
  int32_t id;
};
struct NearerFirst {  // for a min-heap with std::*_heap
  bool operator()(const Cand& a, const Cand& b) const { return a.distance > b.distance; }
};
struct FartherFirst {  // for a max-heap
  bool operator()(const Cand& a, const Cand& b) const { return a.distance < b.distance; }
};

// Per-thread search state, as in hnsw_index.cc: a node is visited in this
// search iff visited[id] == tag; the tag changes every search.
struct SearchScratch {
  std::vector<uint16_t> visited;
  uint16_t tag = 0;
  std::vector<Cand> candidates;  // min-heap on distance
  std::vector<Cand> results;     // max-heap on distance, accepted only
  Sq8Query query;

  void Begin(size_t n) {
    if (visited.size() < n) visited.resize(n, 0);
    if (++tag == 0) {
      std::fill(visited.begin(), visited.end(), 0);
      tag = 1;
    }
    candidates.clear();
    results.clear();
  }
};
thread_local SearchScratch tls_scratch;

inline void Prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }

}  // namespace

HnswSq8Index::HnswSq8Index(IndexSpec spec, HnswOptions options)
    : spec_(std::move(spec)), options_(options) {}

HnswSq8Index::~HnswSq8Index() = default;

size_t HnswSq8Index::size() const { return n_; }

std::string HnswSq8Index::Describe() const {
  return absl::StrCat(kKind, "(M=", options_.m, ", ef_construction=", options_.ef_construction,
                      ")");
}

size_t HnswSq8Index::MemoryBytes() const {
  if (!index_) return 0;
  const faiss::HNSW& h = index_->hnsw;
  const auto* storage = static_cast<const faiss::IndexScalarQuantizer*>(index_->storage);
  return storage->codes.capacity() + storage->sq.trained.capacity() * sizeof(float) +
         h.neighbors.capacity() * sizeof(int32_t) + h.offsets.capacity() * sizeof(size_t) +
         h.levels.capacity() * sizeof(int) +
         h.cum_nneighbor_per_level.capacity() * sizeof(int) +
         h.assign_probas.capacity() * sizeof(double) + sq_.MemoryBytes();
}

absl::Status HnswSq8Index::Build(const float* vectors, size_t n, int threads,
                              const LabelFilter* rows) {
  if (n == 0) return absl::InvalidArgumentError("HNSW_SQ8: cannot build over 0 vectors");
  if (n >= static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(absl::StrCat("HNSW_SQ8: too many vectors (", n, ")"));
  }
  IndexSpec float_spec = spec_;
  float_spec.type = "HNSW";
  absl::StatusOr<HnswGraph> graph = BuildHnswGraph(float_spec, options_, vectors, n, threads, rows);
  if (!graph.ok()) return graph.status();
  try {
    auto index = std::make_unique<faiss::IndexHNSWSQ>(
        static_cast<int>(spec_.dim), faiss::ScalarQuantizer::QT_8bit,
        static_cast<int>(options_.m), MetricOf(spec_.similarity));
    auto* storage = dynamic_cast<faiss::IndexScalarQuantizer*>(index->storage);
    if (storage == nullptr) return absl::InternalError("HNSW_SQ8: unexpected FAISS storage");
    // Ranges over every vector that holds data: none of their codes clips
    // (a placeholder's may; it is not in the graph).
    std::vector<float> kept;
    size_t data_rows = 0;
    const float* train = ivf::DataRows(vectors, n, spec_.dim, rows, &kept, &data_rows);
    storage->sq.train(data_rows, train);
    kept = {};
    storage->is_trained = true;
    storage->codes.resize(n * storage->code_size);
    storage->sq.compute_codes(vectors, storage->codes.data(), n);
    storage->ntotal = static_cast<faiss::Index::idx_t>(n);

    faiss::HNSW& h = index->hnsw;
    // hnswlib draws levels without FAISS's cap (probability >= 1e-9):
    // extend FAISS's per-level tables if a node went higher.
    while (h.cum_nneighbor_per_level.size() < static_cast<size_t>(graph->max_level) + 2) {
      h.assign_probas.push_back(0.0);
      h.cum_nneighbor_per_level.push_back(h.cum_nneighbor_per_level.back() +
                                          static_cast<int>(options_.m));
    }
    h.levels = std::move(graph->levels);
    h.offsets = std::move(graph->offsets);
    h.neighbors = std::move(graph->neighbors);
    h.entry_point = static_cast<faiss::HNSW::storage_idx_t>(graph->entry_point);
    h.max_level = graph->max_level;
    h.efConstruction = static_cast<int>(options_.ef_construction);
    index->ntotal = static_cast<faiss::Index::idx_t>(n);
    index->is_trained = true;
    return Attach(std::move(index));
  } catch (const std::exception& e) {
    return ivf::FromException(e, kKind, absl::StrCat("build over ", n, " vectors"));
  }
}

absl::Status HnswSq8Index::Attach(std::unique_ptr<faiss::IndexHNSWSQ> index) {
  const auto* storage = dynamic_cast<const faiss::IndexScalarQuantizer*>(index->storage);
  const faiss::HNSW& h = index->hnsw;
  const size_t dim = spec_.dim, m = options_.m;
  if (storage == nullptr || storage->sq.qtype != faiss::ScalarQuantizer::QT_8bit ||
      storage->d != index->d || storage->code_size != dim ||
      storage->sq.trained.size() != 2 * dim || index->ntotal <= 0 ||
      storage->ntotal != index->ntotal ||
      storage->codes.size() != static_cast<size_t>(storage->ntotal) * dim) {
    return absl::DataLossError("HNSW_SQ8: unexpected FAISS index layout");
  }
  // The graph must be one search can walk without bounds checks: M as
  // configured, offsets matching levels, links and the entry point in range.
  const size_t n = static_cast<size_t>(index->ntotal);
  const std::vector<int>& cum = h.cum_nneighbor_per_level;
  if (cum.size() < 2 || cum[0] != 0 || static_cast<size_t>(cum[1]) != 2 * m ||
      h.levels.size() != n || h.offsets.size() != n + 1 || h.offsets[0] != 0 ||
      h.offsets[n] != h.neighbors.size() || h.max_level < 0 ||
      static_cast<size_t>(h.max_level) + 1 >= cum.size() || h.entry_point < 0 ||
      static_cast<size_t>(h.entry_point) >= n || h.levels[h.entry_point] != h.max_level + 1) {
    return absl::DataLossError("HNSW_SQ8: inconsistent graph header");
  }
  for (size_t l = 2; l < cum.size(); ++l) {
    if (static_cast<size_t>(cum[l] - cum[l - 1]) != m) {
      return absl::DataLossError("HNSW_SQ8: unexpected neighbours per level");
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (h.levels[i] < 1 || h.levels[i] > h.max_level + 1 ||
        h.offsets[i + 1] - h.offsets[i] != static_cast<size_t>(cum[h.levels[i]])) {
      return absl::DataLossError(absl::StrCat("HNSW_SQ8: bad level or offsets at node ", i));
    }
    for (int level = 0; level < h.levels[i]; ++level) {
      for (size_t s = h.offsets[i] + cum[level]; s < h.offsets[i] + cum[level + 1]; ++s) {
        const int32_t v = h.neighbors[s];
        if (v < -1 || (v >= 0 && (static_cast<size_t>(v) >= n || h.levels[v] <= level))) {
          return absl::DataLossError(absl::StrCat("HNSW_SQ8: link out of range at node ", i));
        }
      }
    }
  }
  sq_ = Sq8Params::FromFaiss(storage->sq.trained.data(), dim);
  codes_ = storage->codes.data();
  neighbors_ = h.neighbors.data();
  offsets_ = h.offsets.data();
  n_ = n;
  index_ = std::move(index);
  return absl::OkStatus();
}

template <bool kL2, bool kFiltered>
void HnswSq8Index::SearchGraph(const float* query, size_t ef, const LabelFilter* filter,
                               TopK* out, SearchStats* stats) const {
  const size_t dim = spec_.dim;
  const faiss::HNSW& h = index_->hnsw;
  const int* cum = h.cum_nneighbor_per_level.data();
  SearchScratch& s = tls_scratch;
  s.query.Prepare(query, sq_, spec_.similarity);
  const Sq8Query& q = s.query;
  uint64_t distances = 0;
  uint64_t checks = 0;
  auto code = [&](int32_t id) { return codes_ + static_cast<size_t>(id) * dim; };
  auto distance = [&](int32_t id) {
    ++distances;
    return kL2 ? q.L2(code(id)) : q.NegIp(code(id));
  };

  // 1. Greedy descent through the upper levels.
  int32_t cur = h.entry_point;
  float cur_dist = distance(cur);
  for (int level = h.max_level; level > 0; --level) {
    bool changed = true;
    while (changed) {
      changed = false;
      const int32_t* links = neighbors_ + offsets_[cur] + cum[level];
      const int32_t* end = neighbors_ + offsets_[cur] + cum[level + 1];
      for (; links < end && *links >= 0; ++links) {
        const float d = distance(*links);
        if (d < cur_dist) {
          cur_dist = d;
          cur = *links;
          changed = true;
        }
      }
    }
  }

  // 2. Best-first search on level 0; rejected labels are walked through.
  s.Begin(n_);
  uint16_t* const visited = s.visited.data();
  const uint16_t tag = s.tag;
  std::vector<Cand>& candidates = s.candidates;
  std::vector<Cand>& results = s.results;
  auto accept = [&](int32_t id) {
    if constexpr (!kFiltered) return true;
    ++checks;
    return filter->Test(static_cast<uint32_t>(id));
  };
  float bound = std::numeric_limits<float>::infinity();  // worst accepted, once ef held
  visited[cur] = tag;
  candidates.push_back({cur_dist, cur});
  if (accept(cur)) {
    results.push_back({cur_dist, cur});
    if (results.size() >= ef) bound = results.front().distance;
  }
  const size_t slots0 = static_cast<size_t>(cum[1]);
  while (!candidates.empty()) {
    const Cand c = candidates.front();
    if (c.distance > bound) break;
    std::pop_heap(candidates.begin(), candidates.end(), NearerFirst());
    candidates.pop_back();

    const int32_t* links = neighbors_ + offsets_[c.id];
    size_t count = 0;
    while (count < slots0 && links[count] >= 0) ++count;
    for (size_t j = 0; j < count; ++j) {
      Prefetch(visited + links[j]);
      Prefetch(code(links[j]));
    }
    for (size_t j = 0; j < count; ++j) {
      const int32_t id = links[j];
      if (visited[id] == tag) continue;
      visited[id] = tag;
      const float d = distance(id);
      if (d >= bound) continue;
      candidates.push_back({d, id});
      std::push_heap(candidates.begin(), candidates.end(), NearerFirst());
      if (!accept(id)) continue;
      results.push_back({d, id});
      std::push_heap(results.begin(), results.end(), FartherFirst());
      if (results.size() > ef) {
        std::pop_heap(results.begin(), results.end(), FartherFirst());
        results.pop_back();
      }
      if (results.size() >= ef) bound = results.front().distance;
    }
  }
  for (const Cand& r : results) out->Push(r.distance, static_cast<uint64_t>(r.id));
  if (stats != nullptr) {
    stats->distances += distances;
    stats->checks += checks;
  }
}

absl::Status HnswSq8Index::Search(const float* query, const SearchParams& params,
                                  const LabelFilter* filter, TopK* out) const {
  if (!index_) return absl::FailedPreconditionError("HNSW_SQ8: index not built");
  const size_t k = out->k();
  if (k == 0) return absl::OkStatus();
  const size_t ef = std::max<size_t>(k, params.ef != 0 ? params.ef : kHnswDefaultEf);
  const bool l2 = spec_.similarity == Similarity::kL2;
  if (filter == nullptr) {
    l2 ? SearchGraph<true, false>(query, ef, nullptr, out, params.stats)
       : SearchGraph<false, false>(query, ef, nullptr, out, params.stats);
  } else {
    l2 ? SearchGraph<true, true>(query, ef, filter, out, params.stats)
       : SearchGraph<false, true>(query, ef, filter, out, params.stats);
  }
  return absl::OkStatus();
}

absl::Status HnswSq8Index::SaveTo(storage::WritableFile& out) const {
  if (!index_) return absl::FailedPreconditionError("HNSW_SQ8: index not built");
  return ivf::Write(*index_, kKind, out);
}

absl::Status HnswSq8Index::Load(const std::string& path) {
  absl::StatusOr<std::unique_ptr<faiss::Index>> raw = ivf::Read(kKind, path);
  if (!raw.ok()) return raw.status();
  auto* hnsw = dynamic_cast<faiss::IndexHNSWSQ*>(raw->get());
  if (hnsw == nullptr || hnsw->d != static_cast<int>(spec_.dim) ||
      hnsw->metric_type != MetricOf(spec_.similarity)) {
    return absl::DataLossError(
        absl::StrCat("HNSW_SQ8: ", path, " is not an HNSW_SQ8 index of dim ", spec_.dim));
  }
  raw->release();
  std::unique_ptr<faiss::IndexHNSWSQ> index(hnsw);
  if (absl::Status s = Attach(std::move(index)); !s.ok()) {
    return absl::DataLossError(absl::StrCat(s.message(), " in ", path));
  }
  return absl::OkStatus();
}

}  // namespace quiver::index
