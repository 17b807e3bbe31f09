#include "index/hnsw_sq8_index.h"

#include <faiss/IndexHNSW.h>
#include <faiss/IndexScalarQuantizer.h>

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "index/kernels.h"
#include "index/hnsw_walk.h"
#include "index/ivf_common.h"

namespace quiver::index {
namespace {

constexpr char kKind[] = "HNSW_SQ8";

faiss::MetricType MetricOf(Similarity sim) {
  return sim == Similarity::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
}

// FAISS's graph as hnsw::Walk reads it (hnsw_walk.h): node ids are labels;
// a node's slots on a level end at the first -1.
struct FaissGraph {
  static constexpr bool kPrefetchNext = false;  // short code rows
  const faiss::HNSW* h;
  const int32_t* neighbors;
  const size_t* offsets;
  size_t n;

  uint32_t EntryPoint() const { return static_cast<uint32_t>(h->entry_point); }
  int MaxLevel() const { return h->max_level; }
  size_t NodeCount() const { return n; }
  hnsw::Links Neighbors(uint32_t id, int level) const {
    const int* cum = h->cum_nneighbor_per_level.data();
    const int32_t* links = neighbors + offsets[id] + cum[level];
    const size_t slots = static_cast<size_t>(cum[level + 1] - cum[level]);
    size_t count = 0;
    while (count < slots && links[count] >= 0) ++count;
    // Ids before the first -1 are >= 0 (Attach checked them).
    return {reinterpret_cast<const uint32_t*>(links), count};
  }
  uint64_t Label(uint32_t id) const { return id; }
};

// Query-to-code distance estimates for hnsw::Walk, with kernel variant K.
template <bool kL2, class K>
struct CodeDistance {
  const Sq8Query* query;
  const uint8_t* codes;  // n * dim
  const float* norms;    // n (L2)
  size_t dim;
  const void* Data(uint32_t id) const { return codes + size_t{id} * dim; }
  float operator()(uint32_t id) const {
    const uint8_t* code = codes + size_t{id} * dim;
    return kL2 ? query->L2With<K>(code, norms[id]) : query->NegIpWith<K>(code);
  }
};

thread_local Sq8Query tls_query;

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
         h.assign_probas.capacity() * sizeof(double) + sq_.MemoryBytes() +
         norms_.capacity() * sizeof(float);
}

absl::Status HnswSq8Index::Build(const float* vectors, size_t n, int threads,
                              const LabelFilter* rows) {
  if (n == 0) return absl::InvalidArgumentError("HNSW_SQ8: cannot build over 0 vectors");
  if (n >= static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(absl::StrCat("HNSW_SQ8: too many vectors (", n, ")"));
  }
  IndexSpec float_spec = spec_;
  float_spec.type = "HNSW";
  absl::StatusOr<HnswGraph> graph =
      BuildHnswGraph(float_spec, options_, vectors, n, threads, rows, build_stop());
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
  norms_.assign(spec_.similarity == Similarity::kL2 ? n : 0, 0.0f);
  sq_.CodeNorms(storage->codes.data(), norms_.size(), norms_.data());
  codes_ = storage->codes.data();
  neighbors_ = h.neighbors.data();
  offsets_ = h.offsets.data();
  n_ = n;
  index_ = std::move(index);
  return absl::OkStatus();
}

absl::Status HnswSq8Index::Search(const float* query, const SearchParams& params,
                                  const LabelFilter* filter, TopK* out) const {
  if (!index_) return absl::FailedPreconditionError("HNSW_SQ8: index not built");
  const FaissGraph graph{&index_->hnsw, neighbors_, offsets_, n_};
  // The walk per kernel variant, chosen once per search (hnsw_index.cc).
  WithKernels([&](auto k) {
    hnsw::Search(graph, spec_.similarity, params, filter, out, [&](auto l2) {
      Sq8Query& q = tls_query;
      q.Prepare(query, sq_, spec_.similarity);
      return CodeDistance<decltype(l2)::value, decltype(k)>{&q, codes_, norms_.data(),
                                                            spec_.dim};
    });
  });
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
