#include "index/ivf_common.h"

#include <cstring>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <faiss/invlists/InvertedLists.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "index/distance.h"

namespace quiver::index::ivf {

absl::Status FromException(const std::exception& e, absl::string_view kind,
                           absl::string_view what) {
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(kind, ": out of memory: ", what));
  }
  return absl::InternalError(absl::StrCat(kind, ": ", what, ": ", e.what()));
}

const float* DataRows(const float* vectors, size_t n, size_t dim, const LabelFilter* rows,
                      std::vector<float>* storage, size_t* count) {
  size_t accepted = 0;
  for (size_t i = 0; i < n; ++i) accepted += rows == nullptr || rows->Test(static_cast<uint32_t>(i));
  *count = accepted;
  if (accepted == n) return vectors;
  storage->resize(accepted * dim);
  float* out = storage->data();
  for (size_t i = 0; i < n; ++i) {
    if (!rows->Test(static_cast<uint32_t>(i))) continue;
    std::memcpy(out, vectors + i * dim, dim * sizeof(float));
    out += dim;
  }
  return storage->data();
}

std::vector<uint32_t> SampleDataRows(size_t n, const LabelFilter* rows, size_t max) {
  std::vector<uint32_t> sample;
  for (size_t i = 0; i < n; ++i) {
    if (rows == nullptr || rows->Test(static_cast<uint32_t>(i))) {
      sample.push_back(static_cast<uint32_t>(i));
    }
  }
  if (sample.size() > max) {
    std::mt19937 rng(1234);
    std::shuffle(sample.begin(), sample.end(), rng);
    sample.resize(max);
    std::sort(sample.begin(), sample.end());
  }
  return sample;
}

faiss::Index* NewQuantizer(size_t dim, Similarity sim, size_t nlist, const float* vectors,
                           size_t n) {
  std::unique_ptr<faiss::IndexFlat> quantizer;
  if (sim == Similarity::kL2) {
    quantizer = std::make_unique<faiss::IndexFlatL2>(dim);
  } else {
    quantizer = std::make_unique<faiss::IndexFlatIP>(dim);
  }
  if (nlist == 1) {
    std::vector<double> sum(dim, 0.0);
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < dim; ++j) sum[j] += vectors[i * dim + j];
    }
    std::vector<float> mean(dim);
    for (size_t j = 0; j < dim; ++j) mean[j] = static_cast<float>(sum[j] / n);
    if (sim == Similarity::kInnerProduct) {
      const float norm = std::sqrt(NormSqr(mean.data(), dim));
      if (norm > 0) {
        for (float& m : mean) m /= norm;
      }
    }
    quantizer->add(1, mean.data());
  }
  return quantizer.release();
}

absl::StatusOr<std::vector<CodeList>> AttachLists(faiss::IndexIVF* index,
                                                  absl::string_view kind) {
  auto* invlists = dynamic_cast<faiss::ArrayInvertedLists*>(index->invlists);
  const auto* quantizer = dynamic_cast<const faiss::IndexFlat*>(index->quantizer);
  if (invlists == nullptr || quantizer == nullptr ||
      quantizer->ntotal != static_cast<faiss::Index::idx_t>(index->nlist) ||
      quantizer->d != index->d || invlists->code_size != index->code_size) {
    return absl::DataLossError(absl::StrCat(kind, ": unexpected FAISS index layout"));
  }
  std::vector<CodeList> lists(index->nlist);
  for (size_t l = 0; l < index->nlist; ++l) {
    invlists->codes[l].shrink_to_fit();
    invlists->ids[l].shrink_to_fit();
    lists[l].codes = invlists->codes[l].data();
    lists[l].ids = invlists->ids[l].data();
    lists[l].size = invlists->ids[l].size();
  }
  return lists;
}

size_t ListBytes(const faiss::IndexIVF& index) {
  const auto* invlists = dynamic_cast<const faiss::ArrayInvertedLists*>(index.invlists);
  if (invlists == nullptr) return 0;
  size_t bytes = 0;
  for (size_t l = 0; l < invlists->nlist; ++l) {
    bytes += invlists->codes[l].capacity() +
             invlists->ids[l].capacity() * sizeof(faiss::Index::idx_t);
  }
  return bytes + invlists->nlist * 2 * sizeof(std::vector<uint8_t>);
}

absl::Status CheckLabels(const faiss::IndexIVF& index, absl::string_view kind,
                         const std::string& path) {
  // Labels must be 0..n-1, each once: results name segment rows.
  const size_t n = static_cast<size_t>(index.ntotal);
  std::vector<bool> seen(n);
  size_t total = 0;
  for (size_t l = 0; l < index.nlist; ++l) {
    const size_t size = index.invlists->list_size(l);
    const faiss::Index::idx_t* ids = index.invlists->get_ids(l);
    for (size_t i = 0; i < size; ++i) {
      if (ids[i] < 0 || static_cast<size_t>(ids[i]) >= n || seen[ids[i]]) {
        return absl::DataLossError(absl::StrCat(kind, ": ", path, " has bad labels"));
      }
      seen[ids[i]] = true;
    }
    total += size;
  }
  if (total != n) return absl::DataLossError(absl::StrCat(kind, ": ", path, " has bad lists"));
  return absl::OkStatus();
}

namespace {

// FAISS writes many small items; they are gathered here and handed to the
// file a megabyte at a time. The first failed append stops the writing:
// FAISS sees a short write and throws, and Write reports the file's error.
class FileWriter final : public faiss::IOWriter {
 public:
  explicit FileWriter(storage::WritableFile& out) : out_(out) { name = out.path(); }

  size_t operator()(const void* ptr, size_t size, size_t nitems) override {
    if (!status_.ok()) return 0;
    buf_.append(static_cast<const char*>(ptr), size * nitems);
    if (buf_.size() >= kFlushBytes && !Flush().ok()) return 0;
    return nitems;
  }

  absl::Status Flush() {
    if (status_.ok() && !buf_.empty()) status_ = out_.Append(buf_);
    buf_.clear();
    return status_;
  }
  const absl::Status& status() const { return status_; }

 private:
  static constexpr size_t kFlushBytes = 1 << 20;
  storage::WritableFile& out_;
  std::string buf_;
  absl::Status status_;
};

}  // namespace

absl::Status Write(const faiss::Index& index, absl::string_view kind, storage::WritableFile& out) {
  FileWriter writer(out);
  try {
    faiss::write_index(&index, &writer);
  } catch (const std::exception& e) {
    if (!writer.status().ok()) return writer.status();
    return FromException(e, kind, absl::StrCat("cannot write ", out.path()));
  }
  return writer.Flush();
}

absl::StatusOr<std::unique_ptr<faiss::Index>> Read(absl::string_view kind,
                                                   const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(kind, ": cannot open ", path));
  }
  try {
    return std::unique_ptr<faiss::Index>(
        faiss::read_index(path.c_str(), faiss::IO_FLAG_SKIP_PRECOMPUTE_TABLE));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(kind, ": out of memory loading ", path));
  } catch (const std::exception& e) {
    return absl::DataLossError(absl::StrCat(kind, ": cannot read ", path, ": ", e.what()));
  }
}

std::vector<Probe>& RankLists(const float* query, const float* centroids, size_t nlist,
                              size_t dim, Similarity sim, size_t sorted) {
  thread_local std::vector<Probe> probes;
  probes.resize(nlist);
  const KernelTable& k = ActiveKernels();
  if (sim == Similarity::kL2) {
    for (size_t l = 0; l < nlist; ++l) {
      probes[l] = {k.l2sqr(query, centroids + l * dim, dim), static_cast<uint32_t>(l)};
    }
  } else {
    for (size_t l = 0; l < nlist; ++l) {
      probes[l] = {-k.dot(query, centroids + l * dim, dim), static_cast<uint32_t>(l)};
    }
  }
  sorted = std::min(sorted, nlist);
  std::partial_sort(probes.begin(), probes.begin() + sorted, probes.end());
  return probes;
}

}  // namespace quiver::index::ivf
