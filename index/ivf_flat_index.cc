#include "index/ivf_flat_index.h"
#include "index/ivf_common.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_io.h>
#include <faiss/invlists/InvertedLists.h>
#include <omp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <new>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "index/distance.h"
#include "index/ivf_common.h"
#include "index/omp_threads.h"

namespace quiver::index {
namespace {

// FAISS warns below 39 training points per centroid (k-means degenerates).
constexpr size_t kMinPointsPerList = 39;

// libgomp is not instrumented for ThreadSanitizer: the joins of FAISS's
// OpenMP teams are invisible to it, and every later read of the lists would
// be reported as a race. Sanitized builds train and add on one thread.
#if defined(__SANITIZE_THREAD__)
constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr bool kThreadSanitizer = true;
#else
constexpr bool kThreadSanitizer = false;
#endif
#else
constexpr bool kThreadSanitizer = false;
#endif



struct Probe {
  float distance;
  uint32_t list;
  bool operator<(const Probe& o) const { return distance < o.distance; }
};
thread_local std::vector<Probe> tls_probes;

absl::Status FromException(const std::exception& e, const std::string& what) {
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("IVF_FLAT: out of memory: ", what));
  }
  return absl::InternalError(absl::StrCat("IVF_FLAT: ", what, ": ", e.what()));
}

}  // namespace

uint32_t EffectiveNlist(size_t n, uint32_t requested) {
  const size_t automatic = std::max<size_t>(1, std::llround(std::sqrt(static_cast<double>(n))));
  const size_t cap = std::max<size_t>(1, n / kMinPointsPerList);
  const size_t nlist = std::min<size_t>(requested != 0 ? requested : automatic, cap);
  return static_cast<uint32_t>(std::min<size_t>(nlist, IvfFlatOptions::kMaxNlist));
}

uint32_t DefaultNprobe(uint32_t nlist) { return std::min(nlist, std::max(8u, nlist / 32)); }

IvfFlatIndex::IvfFlatIndex(IndexSpec spec, IvfFlatOptions options)
    : spec_(std::move(spec)), options_(options) {}

IvfFlatIndex::~IvfFlatIndex() = default;

size_t IvfFlatIndex::size() const { return index_ ? static_cast<size_t>(index_->ntotal) : 0; }

std::string IvfFlatIndex::Describe() const {
  if (index_) return absl::StrCat("IVF_FLAT(nlist=", index_->nlist, ")");
  if (options_.nlist == 0) return "IVF_FLAT(nlist=auto)";
  return absl::StrCat("IVF_FLAT(nlist=", options_.nlist, ")");
}

size_t IvfFlatIndex::MemoryBytes() const {
  if (!index_) return 0;
  const size_t row = spec_.dim * sizeof(float);
  return static_cast<size_t>(index_->ntotal) * (row + sizeof(int64_t)) + index_->nlist * row +
         lists_.capacity() * sizeof(List);
}

absl::Status IvfFlatIndex::Build(const float* vectors, size_t n, int threads,
                              const LabelFilter* rows) {
  if (n == 0) return absl::InvalidArgumentError("IVF_FLAT: cannot build over 0 vectors");
  std::vector<float> kept;
  size_t m = 0;
  const float* train = ivf::DataRows(vectors, n, spec_.dim, rows, &kept, &m);
  if (m == 0) return absl::InvalidArgumentError("IVF_FLAT: no row holds data");
  const uint32_t nlist = EffectiveNlist(m, options_.nlist);
  const auto metric = spec_.similarity == Similarity::kL2 ? faiss::METRIC_L2
                                                          : faiss::METRIC_INNER_PRODUCT;
  ScopedOmpThreads omp_threads(kThreadSanitizer ? 1 : std::max(1, threads));
  try {
    std::unique_ptr<faiss::IndexFlat> quantizer;
    if (metric == faiss::METRIC_L2) {
      quantizer = std::make_unique<faiss::IndexFlatL2>(spec_.dim);
    } else {
      quantizer = std::make_unique<faiss::IndexFlatIP>(spec_.dim);
    }
    auto index = std::make_unique<faiss::IndexIVFFlat>(quantizer.get(), spec_.dim, nlist, metric);
    index->own_fields = true;
    quantizer.release();
    const auto count = static_cast<faiss::Index::idx_t>(n);
    if (nlist == 1) {
      // One list: its centroid is the mean (normalized for IP, as FAISS's
      // spherical k-means would make it); no k-means, and no FAISS warning
      // about too few training points for tiny segments.
      std::vector<float> mean(spec_.dim, 0.0f);
      for (size_t i = 0; i < m; ++i) {
        for (size_t j = 0; j < spec_.dim; ++j) mean[j] += train[i * spec_.dim + j];
      }
      for (float& x : mean) x /= static_cast<float>(m);
      if (metric == faiss::METRIC_INNER_PRODUCT) {
        const float norm = std::sqrt(NormSqr(mean.data(), spec_.dim));
        if (norm > 0) {
          for (float& x : mean) x /= norm;
        }
      }
      index->quantizer->add(1, mean.data());
      index->is_trained = true;
    } else {
      index->train(static_cast<faiss::Index::idx_t>(m), train);
    }
    index->add(count, vectors);  // labels 0..n-1
    return Attach(std::move(index));
  } catch (const std::exception& e) {
    return FromException(e, absl::StrCat("build over ", n, " vectors"));
  }
}

absl::Status IvfFlatIndex::Attach(std::unique_ptr<faiss::IndexIVFFlat> index) {
  const auto* quantizer = dynamic_cast<const faiss::IndexFlat*>(index->quantizer);
  const auto* invlists = dynamic_cast<const faiss::ArrayInvertedLists*>(index->invlists);
  if (quantizer == nullptr || invlists == nullptr ||
      quantizer->ntotal != static_cast<faiss::Index::idx_t>(index->nlist) ||
      quantizer->d != index->d || index->code_size != spec_.dim * sizeof(float)) {
    return absl::DataLossError("IVF_FLAT: unexpected FAISS index layout");
  }
  std::vector<List> lists(index->nlist);
  for (size_t l = 0; l < index->nlist; ++l) {
    lists[l].rows = reinterpret_cast<const float*>(invlists->get_codes(l));
    lists[l].ids = invlists->get_ids(l);
    lists[l].size = invlists->list_size(l);
  }
  centroids_ = quantizer->get_xb();
  lists_ = std::move(lists);
  index_ = std::move(index);
  return absl::OkStatus();
}

template <class Metric, bool kFiltered>
void IvfFlatIndex::Scan(const float* query, size_t nprobe, size_t min_accepted,
                        const LabelFilter* filter, TopK* out, SearchStats* stats) const {
  const size_t dim = spec_.dim;
  std::vector<Probe>& probes = tls_probes;
  probes.resize(lists_.size());
  for (size_t l = 0; l < lists_.size(); ++l) {
    probes[l] = {Metric::Distance(query, centroids_ + l * dim, dim), static_cast<uint32_t>(l)};
  }
  // Nearest lists first, so the top-k bound tightens early.
  // Nearest lists first; past nprobe only while a filter has let through
  // fewer than min_accepted rows.
  const size_t want = kFiltered ? min_accepted : 0;
  size_t sorted = want > 0 ? probes.size() : nprobe;
  std::partial_sort(probes.begin(), probes.begin() + sorted, probes.end());
  uint64_t scanned = 0;
  uint64_t distances = lists_.size();
  size_t accepted = 0;
  for (size_t p = 0; p < probes.size() && (p < nprobe || accepted < want); ++p) {
    const List& list = lists_[probes[p].list];
    scanned += list.size;
    for (size_t i = 0; i < list.size; ++i) {
      const auto label = static_cast<uint64_t>(list.ids[i]);
      if (kFiltered && !filter->Test(static_cast<uint32_t>(label))) continue;
      ++accepted;
      ++distances;
      out->Push(Metric::Distance(query, list.rows + i * dim, dim), label);
    }
  }
  if (stats != nullptr) {
    stats->distances += distances;
    if (kFiltered) stats->checks += scanned;
  }
}

absl::Status IvfFlatIndex::Search(const float* query, const SearchParams& params,
                                  const LabelFilter* filter, TopK* out) const {
  if (!index_) return absl::FailedPreconditionError("IVF_FLAT: index not built");
  const auto nlist = static_cast<uint32_t>(lists_.size());
  const size_t nprobe = std::min(nlist, params.nprobe != 0 ? params.nprobe : DefaultNprobe(nlist));
  const bool l2 = spec_.similarity == Similarity::kL2;
  if (filter == nullptr) {
    l2 ? Scan<L2Metric, false>(query, nprobe, 0, nullptr, out, params.stats)
       : Scan<IpMetric, false>(query, nprobe, 0, nullptr, out, params.stats);
  } else {
    l2 ? Scan<L2Metric, true>(query, nprobe, params.min_accepted, filter, out, params.stats)
       : Scan<IpMetric, true>(query, nprobe, params.min_accepted, filter, out, params.stats);
  }
  return absl::OkStatus();
}

absl::Status IvfFlatIndex::SaveTo(storage::WritableFile& out) const {
  if (!index_) return absl::FailedPreconditionError("IVF_FLAT: index not built");
  return ivf::Write(*index_, "IVF_FLAT", out);
}

absl::Status IvfFlatIndex::Load(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("IVF_FLAT: cannot open ", path));
  }
  std::unique_ptr<faiss::Index> raw;
  try {
    raw.reset(faiss::read_index(path.c_str()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat("IVF_FLAT: out of memory loading ", path));
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat("IVF_FLAT: cannot read ", path, ": ", e.what()));
  }
  auto* ivf = dynamic_cast<faiss::IndexIVFFlat*>(raw.get());
  const auto metric = spec_.similarity == Similarity::kL2 ? faiss::METRIC_L2
                                                          : faiss::METRIC_INNER_PRODUCT;
  if (ivf == nullptr || ivf->d != static_cast<int>(spec_.dim) || ivf->metric_type != metric ||
      ivf->ntotal <= 0 || ivf->nlist == 0) {
    return absl::DataLossError(
        absl::StrCat("IVF_FLAT: ", path, " is not an IVF_FLAT index of dim ", spec_.dim));
  }
  raw.release();
  std::unique_ptr<faiss::IndexIVFFlat> index(ivf);
  // Labels must be 0..n-1, each once: results name segment rows.
  const size_t n = static_cast<size_t>(index->ntotal);
  std::vector<bool> seen(n);
  size_t total = 0;
  for (size_t l = 0; l < index->nlist; ++l) {
    const size_t size = index->invlists->list_size(l);
    const faiss::Index::idx_t* ids = index->invlists->get_ids(l);
    for (size_t i = 0; i < size; ++i) {
      if (ids[i] < 0 || static_cast<size_t>(ids[i]) >= n || seen[ids[i]]) {
        return absl::DataLossError(absl::StrCat("IVF_FLAT: ", path, " has bad labels"));
      }
      seen[ids[i]] = true;
    }
    total += size;
  }
  if (total != n) return absl::DataLossError(absl::StrCat("IVF_FLAT: ", path, " has bad lists"));
  return Attach(std::move(index));
}

}  // namespace quiver::index
