#include "index/ivf_flat_index.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_io.h>
#include <faiss/invlists/InvertedLists.h>
#include <omp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "index/distance.h"
#include "index/ivf_common.h"
#include "index/ivf_search.h"
#include "index/omp_threads.h"

namespace quiver::index {
namespace {

constexpr char kKind[] = "IVF_FLAT";

// FAISS warns below 39 training points per centroid (k-means degenerates).
constexpr size_t kMinPointsPerList = 39;
// FAISS's k-means samples down to this many points per centroid
// (ClusteringParameters::max_points_per_centroid); more are never used.
constexpr size_t kMaxTrainPerList = 256;
// Rows gathered and added to the lists at a time.
constexpr size_t kAddBatch = 16384;

// The lists hold the rows themselves: a code is dim floats, scored exactly.
template <class Metric>
struct RowScanner {
  const float* query;
  size_t dim;
  void BeginList(const ivf::Probe&) {}
  float Score(const uint8_t* code, size_t) const {
    return Metric::Distance(query, reinterpret_cast<const float*>(code), dim);
  }
};

}  // namespace

uint32_t EffectiveNlist(size_t n, uint32_t requested) {
  const size_t automatic = std::max<size_t>(1, std::llround(std::sqrt(static_cast<double>(n))));
  const size_t cap = std::max<size_t>(1, n / kMinPointsPerList);
  const size_t nlist = std::min<size_t>(requested != 0 ? requested : automatic, cap);
  return static_cast<uint32_t>(std::min<size_t>(nlist, IvfFlatOptions::kMaxNlist));
}

uint32_t DefaultNprobe(uint32_t nlist) { return std::min(nlist, std::max(8u, nlist / 32)); }

struct IvfFlatIndex::Rows {
  std::unique_ptr<const faiss::IndexIVFFlat> index;
  std::unique_ptr<const float*[]> by_label;  // ntotal
};

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
  return static_cast<size_t>(index_->ntotal) * (row + sizeof(int64_t) + sizeof(float*)) +
         index_->nlist * row + lists_.capacity() * sizeof(ivf::CodeList);
}

absl::Status IvfFlatIndex::Build(const float* vectors, size_t n, int threads,
                              const LabelFilter* rows) {
  const size_t dim = spec_.dim;
  return BuildFromRows([vectors, dim](size_t i) { return vectors + i * dim; }, n, threads, rows,
                       {}, nullptr);
}

absl::Status IvfFlatIndex::BuildFromRows(const RowReader& row, size_t n, int threads,
                                         const LabelFilter* rows,
                                         const std::vector<uint32_t>& held_out,
                                         const std::function<void()>& probe) {
  if (!held_out.empty()) {
    return VectorIndex::BuildFromRows(row, n, threads, rows, held_out, probe);
  }
  if (n == 0) return absl::InvalidArgumentError("IVF_FLAT: cannot build over 0 vectors");
  const size_t dim = spec_.dim;
  size_t m = 0;
  for (size_t i = 0; i < n; ++i) m += rows == nullptr || rows->Test(static_cast<uint32_t>(i));
  if (m == 0) return absl::InvalidArgumentError("IVF_FLAT: no row holds data");
  const uint32_t nlist = EffectiveNlist(m, options_.nlist);
  // In order, so the gather below reads the rows front to back.
  const std::vector<uint32_t> sample = ivf::SampleDataRows(n, rows, kMaxTrainPerList * nlist);
  const auto metric = spec_.similarity == Similarity::kL2 ? faiss::METRIC_L2
                                                          : faiss::METRIC_INNER_PRODUCT;
  ScopedOmpThreads omp_threads(kThreadSanitizer ? 1 : std::max(1, threads));
  try {
    std::vector<float> train(sample.size() * dim);
    for (size_t i = 0; i < sample.size(); ++i) {
      std::memcpy(train.data() + i * dim, row(sample[i]), dim * sizeof(float));
    }
    std::unique_ptr<faiss::Index> quantizer(
        ivf::NewQuantizer(dim, spec_.similarity, nlist, train.data(), sample.size()));
    auto index = std::make_unique<faiss::IndexIVFFlat>(quantizer.get(), dim, nlist, metric);
    index->own_fields = true;
    quantizer.release();
    // One list: NewQuantizer's centroid is final, and FAISS's k-means would
    // warn about too few training points for tiny segments.
    if (nlist > 1) index->train(static_cast<faiss::Index::idx_t>(sample.size()), train.data());
    index->is_trained = true;
    train = std::vector<float>();
    // FAISS numbers what it adds from ntotal on: labels 0..n-1, in order.
    std::vector<float> batch(std::min(n, kAddBatch) * dim);
    for (size_t first = 0; first < n; first += kAddBatch) {
      if (build_stopped()) return BuildStoppedError(kKind);
      const size_t count = std::min(kAddBatch, n - first);
      for (size_t i = 0; i < count; ++i) {
        std::memcpy(batch.data() + i * dim, row(first + i), dim * sizeof(float));
      }
      index->add(static_cast<faiss::Index::idx_t>(count), batch.data());
    }
    if (probe != nullptr) probe();
    return Attach(std::move(index));
  } catch (const std::exception& e) {
    return ivf::FromException(e, kKind, absl::StrCat("build over ", n, " vectors"));
  }
}

absl::Status IvfFlatIndex::Attach(std::unique_ptr<faiss::IndexIVFFlat> index) {
  if (index->code_size != spec_.dim * sizeof(float)) {
    return absl::DataLossError("IVF_FLAT: unexpected FAISS index layout");
  }
  absl::StatusOr<std::vector<ivf::CodeList>> lists = ivf::AttachLists(index.get(), kKind);
  if (!lists.ok()) return lists.status();
  // Labels are 0..ntotal-1, each once (Build adds them so; Load checked).
  auto rows = std::make_shared<Rows>();
  const auto n = static_cast<size_t>(index->ntotal);
  rows->by_label.reset(new (std::nothrow) const float*[n]());
  if (rows->by_label == nullptr) {
    return absl::ResourceExhaustedError("IVF_FLAT: out of memory indexing the rows by label");
  }
  for (const ivf::CodeList& l : *lists) {
    for (size_t j = 0; j < l.size; ++j) {
      const auto label = static_cast<size_t>(l.ids[j]);
      if (label >= n || rows->by_label[label] != nullptr) {
        return absl::DataLossError("IVF_FLAT: labels are not 0..n-1, each once");
      }
      rows->by_label[label] = reinterpret_cast<const float*>(l.codes + j * index->code_size);
    }
  }
  centroids_ = dynamic_cast<const faiss::IndexFlat*>(index->quantizer)->get_xb();
  lists_ = std::move(*lists);
  index_ = index.get();
  rows->index = std::move(index);
  rows_ = std::move(rows);
  return absl::OkStatus();
}

std::optional<SharedRows> IvfFlatIndex::shared_rows() const {
  if (rows_ == nullptr) return std::nullopt;
  SharedRows s;
  s.stride = spec_.dim;
  s.rows = static_cast<size_t>(index_->ntotal);
  s.row_ptr = rows_->by_label.get();
  s.owner = rows_;
  return s;
}

absl::Status IvfFlatIndex::Search(const float* query, const SearchParams& params,
                                  const LabelFilter* filter, TopK* out) const {
  if (!index_) return absl::FailedPreconditionError("IVF_FLAT: index not built");
  const size_t dim = spec_.dim;
  const ivf::ListsView view{&lists_, dim * sizeof(float), centroids_, dim, spec_.similarity};
  WithKernels([&](auto k) {
    using K = decltype(k);
    ivf::Search(view, query, params, filter, out, [&](auto l2) {
      if constexpr (decltype(l2)::value) {
        return RowScanner<L2MetricOf<K>>{query, dim};
      } else {
        return RowScanner<IpMetricOf<K>>{query, dim};
      }
    });
  });
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
  if (absl::Status s = ivf::CheckLabels(*index, kKind, path); !s.ok()) return s;
  return Attach(std::move(index));
}

}  // namespace quiver::index
