#include "index/flat_index.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <new>

#include "absl/strings/str_cat.h"
#include "index/distance.h"
#include "index/omp_threads.h"

namespace quiver::index {
namespace {

// Rows per ScanBlock call: bounds the mask and the BLAS scratch (16 KiB).
constexpr size_t kBlockRows = 4096;

constexpr char kMagic[8] = {'Q', 'V', 'F', 'L', 'A', 'T', '0', '1'};

struct FileHeader {
  char magic[8];
  uint32_t dim;
  uint32_t similarity;  // Similarity as an integer
  uint64_t n;
  uint64_t reserved;
};
static_assert(sizeof(FileHeader) == 32);


// Per-thread scratch, reused so a search allocates nothing once warm.
struct Scratch {
  std::vector<uint8_t> mask;
  std::vector<float> blas;
};
thread_local Scratch tls_scratch;

std::vector<float> Norms(const std::vector<float>& rows, size_t dim) {
  std::vector<float> norms(rows.size() / dim);
  for (size_t i = 0; i < norms.size(); ++i) norms[i] = NormSqr(rows.data() + i * dim, dim);
  return norms;
}

}  // namespace

FlatIndex::FlatIndex(IndexSpec spec) : spec_(std::move(spec)) {}

// An exact scan has no structure for a placeholder row to shape: `rows`
// is not needed (searches never accept such rows).
absl::Status FlatIndex::Build(const float* vectors, size_t n, int /*threads*/,
                              const LabelFilter* /*rows*/) {
  if (n == 0) return absl::InvalidArgumentError("FLAT: cannot build over 0 vectors");
  try {
    std::vector<float> rows(vectors, vectors + n * spec_.dim);
    std::vector<float> norms = Norms(rows, spec_.dim);
    rows_ = std::move(rows);
    norms_ = std::move(norms);
    n_ = n;
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat("FLAT: cannot allocate ", n, " x ", spec_.dim, " floats"));
  }
  return absl::OkStatus();
}

absl::Status FlatIndex::Search(const float* query, const SearchParams& params,
                               const LabelFilter* filter, TopK* out) const {
  if (n_ == 0) return absl::FailedPreconditionError("FLAT: index not built");
  const size_t dim = spec_.dim;
  const float qnorm = spec_.similarity == Similarity::kL2 ? NormSqr(query, dim) : 0.0f;
  const QueryBatch batch{query, &qnorm, 1, dim, spec_.similarity};
  ScopedOmpThreads one_thread(1);
  Scratch& s = tls_scratch;
  uint64_t distances = 0;
  for (size_t start = 0; start < n_; start += kBlockRows) {
    Block b;
    b.n = std::min(kBlockRows, n_ - start);
    b.rows = rows_.data() + start * dim;
    b.norms_sqr = norms_.data() + start;
    b.first_id = start;
    if (filter != nullptr) {
      s.mask.resize(b.n);
      size_t passing = 0;
      for (size_t i = 0; i < b.n; ++i) {
        const bool keep = filter->Test(static_cast<uint32_t>(start + i));
        s.mask[i] = keep;
        passing += keep;
      }
      b.mask = s.mask.data();
      b.passing = passing;
    }
    distances += b.mask != nullptr ? b.passing : b.n;
    ScanBlock(batch, b, out, &s.blas);
  }
  if (params.stats != nullptr) {
    params.stats->distances += distances;
    if (filter != nullptr) params.stats->checks += n_;
  }
  return absl::OkStatus();
}

absl::Status FlatIndex::SaveTo(storage::WritableFile& out) const {
  if (n_ == 0) return absl::FailedPreconditionError("FLAT: index not built");
  FileHeader h{};
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.dim = spec_.dim;
  h.similarity = static_cast<uint32_t>(spec_.similarity);
  h.n = n_;
  absl::Status s = out.Append(absl::string_view(reinterpret_cast<const char*>(&h), sizeof(h)));
  if (!s.ok()) return s;
  return out.Append(absl::string_view(reinterpret_cast<const char*>(rows_.data()),
                                      rows_.size() * sizeof(float)));
}

absl::Status FlatIndex::Load(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return absl::NotFoundError(absl::StrCat("FLAT: cannot open ", path));
  const auto file_size = static_cast<uint64_t>(f.tellg());
  f.seekg(0);
  FileHeader h{};
  if (file_size < sizeof(h) || !f.read(reinterpret_cast<char*>(&h), sizeof(h)) ||
      std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0) {
    return absl::DataLossError(absl::StrCat("FLAT: ", path, " is not a FLAT index file"));
  }
  if (h.dim != spec_.dim || h.similarity != static_cast<uint32_t>(spec_.similarity)) {
    return absl::DataLossError(absl::StrCat("FLAT: ", path, " has dim ", h.dim, " similarity ",
                                            h.similarity, ", expected dim ", spec_.dim));
  }
  const uint64_t payload = file_size - sizeof(h);
  if (h.n == 0 || payload % (uint64_t{h.dim} * sizeof(float)) != 0 ||
      payload / (uint64_t{h.dim} * sizeof(float)) != h.n) {
    return absl::DataLossError(absl::StrCat("FLAT: ", path, " is truncated or corrupt (",
                                            file_size, " bytes for ", h.n, " vectors)"));
  }
  try {
    std::vector<float> rows(h.n * h.dim);
    if (!f.read(reinterpret_cast<char*>(rows.data()),
                static_cast<std::streamsize>(rows.size() * sizeof(float)))) {
      return absl::DataLossError(absl::StrCat("FLAT: short read from ", path));
    }
    std::vector<float> norms = Norms(rows, h.dim);
    rows_ = std::move(rows);
    norms_ = std::move(norms);
    n_ = h.n;
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat("FLAT: cannot allocate for ", path));
  }
  return absl::OkStatus();
}

size_t FlatIndex::MemoryBytes() const {
  return rows_.capacity() * sizeof(float) + norms_.capacity() * sizeof(float);
}

}  // namespace quiver::index
