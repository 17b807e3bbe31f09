#include "index/ivf_sq8_index.h"

#include <faiss/IndexFlat.h>
#include <faiss/IndexScalarQuantizer.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "index/kernels.h"
#include "index/ivf_search.h"
#include "index/omp_threads.h"

namespace quiver::index {
namespace {

constexpr char kKind[] = "IVF_SQ8";

faiss::MetricType MetricOf(Similarity sim) {
  return sim == Similarity::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
}

// Scores the codes of every list against one prepared query; the codes are
// of the vectors, not residuals, so a list only brings its codes' norms.
template <bool kL2, class K>  // K: the kernel variant (kernels.h)
struct Sq8Scanner {
  const Sq8Query* query;
  const std::vector<float>* norms;   // every list's codes' norms, in list order
  const std::vector<size_t>* first;  // where each list's norms start
  const float* list_norms = nullptr;
  void BeginList(const ivf::Probe& p) {
    if (kL2) list_norms = norms->data() + (*first)[p.list];
  }
  float Score(const uint8_t* code, size_t i) const {
    return kL2 ? query->L2With<K>(code, list_norms[i]) : query->NegIpWith<K>(code);
  }
};

thread_local Sq8Query tls_query;

}  // namespace

IvfSq8Index::IvfSq8Index(IndexSpec spec, IvfSq8Options options)
    : spec_(std::move(spec)), options_(options) {}

IvfSq8Index::~IvfSq8Index() = default;

size_t IvfSq8Index::size() const { return index_ ? static_cast<size_t>(index_->ntotal) : 0; }

std::string IvfSq8Index::Describe() const {
  if (index_) return absl::StrCat(kKind, "(nlist=", index_->nlist, ")");
  if (options_.nlist == 0) return absl::StrCat(kKind, "(nlist=auto)");
  return absl::StrCat(kKind, "(nlist=", options_.nlist, ")");
}

size_t IvfSq8Index::MemoryBytes() const {
  if (!index_) return 0;
  return ivf::ListBytes(*index_) + index_->nlist * spec_.dim * sizeof(float) +
         index_->sq.trained.capacity() * sizeof(float) + sq_.MemoryBytes() +
         lists_.capacity() * sizeof(ivf::CodeList) + norms_.capacity() * sizeof(float) +
         norm_first_.capacity() * sizeof(size_t);
}

absl::Status IvfSq8Index::Build(const float* vectors, size_t n, int threads,
                              const LabelFilter* rows) {
  if (n == 0) return absl::InvalidArgumentError("IVF_SQ8: cannot build over 0 vectors");
  std::vector<float> kept;
  size_t m = 0;
  const float* train = ivf::DataRows(vectors, n, spec_.dim, rows, &kept, &m);
  if (m == 0) return absl::InvalidArgumentError("IVF_SQ8: no row holds data");
  const uint32_t nlist = EffectiveNlist(m, options_.nlist);
  ScopedOmpThreads omp_threads(kThreadSanitizer ? 1 : std::max(1, threads));
  try {
    std::unique_ptr<faiss::Index> quantizer(
        ivf::NewQuantizer(spec_.dim, spec_.similarity, nlist, train, m));
    auto index = std::make_unique<faiss::IndexIVFScalarQuantizer>(
        quantizer.get(), spec_.dim, nlist, faiss::ScalarQuantizer::QT_8bit,
        MetricOf(spec_.similarity), /*encode_residual=*/false);
    index->own_fields = true;
    quantizer.release();
    const auto count = static_cast<faiss::Index::idx_t>(n);
    // k-means, and ranges on a sample
    if (nlist > 1) index->train(static_cast<faiss::Index::idx_t>(m), train);
    // Ranges over every vector that holds data, so that none of their codes
    // clips (placeholders may clip: they are never returned).
    index->sq.train(m, train);
    index->is_trained = true;
    if (build_stopped()) return BuildStoppedError(kKind);  // between k-means and adding
    index->add(count, vectors);  // labels 0..n-1
    return Attach(std::move(index));
  } catch (const std::exception& e) {
    return ivf::FromException(e, kKind, absl::StrCat("build over ", n, " vectors"));
  }
}

absl::Status IvfSq8Index::Attach(std::unique_ptr<faiss::IndexIVFScalarQuantizer> index) {
  if (index->sq.qtype != faiss::ScalarQuantizer::QT_8bit || index->by_residual ||
      index->code_size != spec_.dim || index->sq.trained.size() != 2 * spec_.dim) {
    return absl::DataLossError("IVF_SQ8: unexpected FAISS index layout");
  }
  absl::StatusOr<std::vector<ivf::CodeList>> lists = ivf::AttachLists(index.get(), kKind);
  if (!lists.ok()) return lists.status();
  sq_ = Sq8Params::FromFaiss(index->sq.trained.data(), spec_.dim);
  centroids_ = dynamic_cast<const faiss::IndexFlat*>(index->quantizer)->get_xb();
  lists_ = std::move(*lists);
  norms_.clear();
  norm_first_.clear();
  if (spec_.similarity == Similarity::kL2) {
    size_t total = 0;
    for (const ivf::CodeList& list : lists_) total += list.size;
    norms_.resize(total);
    size_t at = 0;
    for (const ivf::CodeList& list : lists_) {
      norm_first_.push_back(at);
      sq_.CodeNorms(list.codes, list.size, norms_.data() + at);
      at += list.size;
    }
  }
  index_ = std::move(index);
  return absl::OkStatus();
}

absl::Status IvfSq8Index::Search(const float* query, const SearchParams& params,
                                 const LabelFilter* filter, TopK* out) const {
  if (!index_) return absl::FailedPreconditionError("IVF_SQ8: index not built");
  const ivf::ListsView view{&lists_, spec_.dim, centroids_, spec_.dim, spec_.similarity};
  WithKernels([&](auto k) {
    ivf::Search(view, query, params, filter, out, [&](auto l2) {
      Sq8Query& q = tls_query;
      q.Prepare(query, sq_, spec_.similarity);
      return Sq8Scanner<decltype(l2)::value, decltype(k)>{&q, &norms_, &norm_first_};
    });
  });
  return absl::OkStatus();
}

absl::Status IvfSq8Index::SaveTo(storage::WritableFile& out) const {
  if (!index_) return absl::FailedPreconditionError("IVF_SQ8: index not built");
  return ivf::Write(*index_, kKind, out);
}

absl::Status IvfSq8Index::Load(const std::string& path) {
  absl::StatusOr<std::unique_ptr<faiss::Index>> raw = ivf::Read(kKind, path);
  if (!raw.ok()) return raw.status();
  auto* ivf = dynamic_cast<faiss::IndexIVFScalarQuantizer*>(raw->get());
  if (ivf == nullptr || ivf->d != static_cast<int>(spec_.dim) ||
      ivf->metric_type != MetricOf(spec_.similarity) || ivf->ntotal <= 0 || ivf->nlist == 0) {
    return absl::DataLossError(
        absl::StrCat("IVF_SQ8: ", path, " is not an IVF_SQ8 index of dim ", spec_.dim));
  }
  raw->release();
  std::unique_ptr<faiss::IndexIVFScalarQuantizer> index(ivf);
  if (absl::Status s = ivf::CheckLabels(*index, kKind, path); !s.ok()) return s;
  return Attach(std::move(index));
}

}  // namespace quiver::index
