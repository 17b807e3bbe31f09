#include "index/ivf_pq_index.h"

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/invlists/InvertedLists.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <random>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "index/ivf_search.h"
#include "index/kernels.h"
#include "index/omp_threads.h"

namespace quiver::index {
namespace {

constexpr char kKind[] = "IVF_PQ";
constexpr size_t kKsub = 256;  // centroids per sub-quantizer (nbits 8)
// Codebooks train on at most this many residuals per centroid (16,384):
// ample for 256 centroids in 8-16 dimensions (FAISS's default is 256).
constexpr size_t kMaxTrainPerCentroid = 64;

faiss::MetricType MetricOf(Similarity sim) {
  return sim == Similarity::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
}

// The sum of one code's m table entries (table: m x 256). Four chains of
// scalar loads; an AVX2 gather of 8 entries measured slower (see header).
inline float AdcSum(const float* table, const uint8_t* code, size_t m) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t j = 0;
  for (; j + 4 <= m; j += 4) {
    s0 += table[j * kKsub + code[j]];
    s1 += table[(j + 1) * kKsub + code[j + 1]];
    s2 += table[(j + 2) * kKsub + code[j + 2]];
    s3 += table[(j + 3) * kKsub + code[j + 3]];
  }
  for (; j < m; ++j) s0 += table[j * kKsub + code[j]];
  return (s0 + s1) + (s2 + s3);
}

// Runs fn(i) for i in [0, count) on up to `threads` threads (the calling one
// included), OpenMP pinned to 1 in each. The first exception is rethrown
// after all have stopped.
template <class Fn>
void ParallelFor(size_t count, int threads, Fn fn) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::exception_ptr error;
  auto work = [&] {
    ScopedOmpThreads one(1);
    try {
      for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < count;) fn(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu);
      if (!error) error = std::current_exception();
      next.store(count);
    }
  };
  std::vector<std::thread> pool;
  const size_t workers = std::clamp<size_t>(threads < 1 ? 1 : threads, 1, std::max<size_t>(count, 1));
  for (size_t t = 1; t < workers; ++t) {
    try {
      pool.emplace_back(work);
    } catch (const std::system_error&) {
      break;  // fewer threads; this one still works
    }
  }
  work();
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

// The codebook dimension-major: out[(j * dsub + s) * 256 + k] = C_j[k][s].
std::vector<float> Transpose(const float* centroids, size_t m, size_t dsub) {
  std::vector<float> out(m * dsub * kKsub);
  for (size_t j = 0; j < m; ++j) {
    for (size_t k = 0; k < kKsub; ++k) {
      const float* c = centroids + (j * kKsub + k) * dsub;
      for (size_t s = 0; s < dsub; ++s) out[(j * dsub + s) * kKsub + k] = c[s];
    }
  }
  return out;
}

// Lloyd's k-means of `n` points of `dsub` dimensions (n >= 256) into 256
// centroids, written to `centroids` (256 x dsub): random distinct points as
// the start, kKmeansIterations rounds, and an empty cluster takes half of a
// large one (its centroid nudged both ways), as FAISS's Clustering does.
// Ours rather than faiss::Clustering: FAISS's runs Debian's baseline x86-64
// build and BLAS calls tiny (8-d) products; see the header for the figures.
constexpr int kKmeansIterations = 25;
void KMeans256(const float* x, size_t n, size_t dsub, uint32_t seed, float* centroids) {
  std::mt19937 rng(seed);
  std::vector<uint32_t> perm(n);
  for (size_t i = 0; i < n; ++i) perm[i] = static_cast<uint32_t>(i);
  for (size_t k = 0; k < kKsub; ++k) {
    std::swap(perm[k], perm[k + rng() % (n - k)]);
    std::copy(x + size_t{perm[k]} * dsub, x + size_t{perm[k] + 1} * dsub, centroids + k * dsub);
  }
  std::vector<float> ct(dsub * kKsub), table(kKsub), sums(kKsub * dsub);
  std::vector<size_t> counts(kKsub);
  const KernelTable& kernels = ActiveKernels();
  for (int iter = 0; iter < kKmeansIterations; ++iter) {
    for (size_t k = 0; k < kKsub; ++k) {
      for (size_t s = 0; s < dsub; ++s) ct[s * kKsub + k] = centroids[k * dsub + s];
    }
    std::fill(sums.begin(), sums.end(), 0.0f);
    std::fill(counts.begin(), counts.end(), 0);
    for (size_t i = 0; i < n; ++i) {
      const float* p = x + i * dsub;
      kernels.pq_tables_l2(p, ct.data(), 1, dsub, table.data());
      const size_t k = kernels.argmin256(table.data());
      ++counts[k];
      for (size_t s = 0; s < dsub; ++s) sums[k * dsub + s] += p[s];
    }
    for (size_t k = 0; k < kKsub; ++k) {
      if (counts[k] == 0) continue;
      for (size_t s = 0; s < dsub; ++s) {
        centroids[k * dsub + s] = sums[k * dsub + s] / static_cast<float>(counts[k]);
      }
    }
    for (size_t k = 0; k < kKsub; ++k) {
      if (counts[k] != 0) continue;
      // Split a cluster chosen with probability proportional to its size - 1.
      size_t big = 0;
      for (;; big = (big + 1) % kKsub) {
        const double p = (counts[big] - 1.0) / static_cast<double>(n - kKsub);
        if (counts[big] > 1 && std::uniform_real_distribution<double>(0, 1)(rng) < p) break;
      }
      constexpr float kEps = 1.0f / 1024;
      for (size_t s = 0; s < dsub; ++s) {
        const float c = centroids[big * dsub + s];
        centroids[k * dsub + s] = c * (s % 2 == 0 ? 1 + kEps : 1 - kEps);
        centroids[big * dsub + s] = c * (s % 2 == 0 ? 1 - kEps : 1 + kEps);
      }
      counts[k] = counts[big] / 2;
      counts[big] -= counts[k];
    }
  }
}

struct Scratch {
  std::vector<float> table;     // m * 256
  std::vector<float> residual;  // dim
};
thread_local Scratch tls_scratch;

// L2: a table per probed list, of the query's residual from its centroid.
struct L2Scanner {
  const float* query;
  const float* centroids;
  const float* codebook_t;
  size_t dim, m, dsub;
  Scratch* scratch;
  decltype(&baseline::PqTablesL2) tables;  // the kernel variant in use

  void BeginList(const ivf::Probe& p) {
    const float* c = centroids + size_t{p.list} * dim;
    float* r = scratch->residual.data();
    for (size_t d = 0; d < dim; ++d) r[d] = query[d] - c[d];
    tables(r, codebook_t, m, dsub, scratch->table.data());
  }
  float Score(const uint8_t* code, size_t) const { return AdcSum(scratch->table.data(), code, m); }
};

// IP: -<q, c + r> = -<q, c> - sum_j <q_j, C_j[code_j]>; the table is the
// query's, built once; -<q, c> is the list's coarse distance.
struct IpScanner {
  size_t m;
  const float* table;
  float list_distance = 0;

  void BeginList(const ivf::Probe& p) { list_distance = p.distance; }
  float Score(const uint8_t* code, size_t) const {
    return list_distance - AdcSum(table, code, m);
  }
};

}  // namespace

uint32_t DefaultPqM(uint32_t dim) {
  for (uint32_t dsub = 8; dsub <= 16; ++dsub) {
    if (dim % dsub == 0) return dim / dsub;
  }
  uint32_t best = dim, best_gap = ~0u;  // as dsub
  for (uint32_t dsub = 1; dsub <= dim; ++dsub) {
    if (dim % dsub != 0) continue;
    const uint32_t gap = dsub < 8 ? 8 - dsub : dsub - 16;
    if (gap < best_gap) {
      best = dsub;
      best_gap = gap;
    }
  }
  return dim / best;
}

IvfPqIndex::IvfPqIndex(IndexSpec spec, IvfPqOptions options)
    : spec_(std::move(spec)), options_([&] {
        if (options.m == 0) options.m = DefaultPqM(spec_.dim);
        return options;
      }()) {}

IvfPqIndex::~IvfPqIndex() = default;

size_t IvfPqIndex::size() const { return index_ ? static_cast<size_t>(index_->ntotal) : 0; }

std::string IvfPqIndex::Describe() const {
  if (index_) return absl::StrCat(kKind, "(nlist=", index_->nlist, ", m=", options_.m, ")");
  if (options_.nlist == 0) return absl::StrCat(kKind, "(nlist=auto, m=", options_.m, ")");
  return absl::StrCat(kKind, "(nlist=", options_.nlist, ", m=", options_.m, ")");
}

size_t IvfPqIndex::MemoryBytes() const {
  if (!index_) return 0;
  // pq.centroids (and FAISS's derived tables) are emptied by Attach; counted
  // all the same, so that the figure stays true if that changes.
  const faiss::ProductQuantizer& pq = index_->pq;
  return ivf::ListBytes(*index_) + index_->nlist * spec_.dim * sizeof(float) +
         (pq.centroids.capacity() + pq.transposed_centroids.capacity() +
          pq.centroids_sq_lengths.capacity() + index_->precomputed_table.size() +
          codebook_t_.capacity()) *
             sizeof(float) +
         lists_.capacity() * sizeof(ivf::CodeList);
}

absl::Status IvfPqIndex::Build(const float* vectors, size_t n, int threads,
                              const LabelFilter* rows) {
  if (n == 0) return absl::InvalidArgumentError("IVF_PQ: cannot build over 0 vectors");
  std::vector<float> kept;
  size_t data_rows = 0;
  const float* train = ivf::DataRows(vectors, n, spec_.dim, rows, &kept, &data_rows);
  if (data_rows == 0) return absl::InvalidArgumentError("IVF_PQ: no row holds data");
  const uint32_t nlist = EffectiveNlist(data_rows, options_.nlist);
  const size_t dim = spec_.dim, m = options_.m, dsub = dim / m;
  const faiss::MetricType metric = MetricOf(spec_.similarity);
  threads = std::max(1, threads);
  ScopedOmpThreads omp_threads(kThreadSanitizer ? 1 : threads);
  try {
    std::unique_ptr<faiss::Index> quantizer(
        ivf::NewQuantizer(dim, spec_.similarity, nlist, train, data_rows));
    auto index = std::make_unique<faiss::IndexIVFPQ>(quantizer.get(), dim, nlist, m, 8, metric);
    index->own_fields = true;
    quantizer.release();
    index->use_precomputed_table = -1;  // see header: it would outweigh the codes
    const auto count = static_cast<faiss::Index::idx_t>(n);
    if (nlist > 1) index->train_q1(data_rows, train, false, metric);  // FAISS k-means
    if (build_stopped()) return BuildStoppedError(kKind);
    std::vector<faiss::Index::idx_t> assign(n);
    index->quantizer->assign(count, vectors, assign.data());
    const float* centroids = dynamic_cast<const faiss::IndexFlat*>(index->quantizer)->get_xb();

    // Codebooks from the residuals of at most kMaxTrainPerCentroid * 256
    // vectors that hold data (a fixed-seed sample).
    const std::vector<uint32_t> sample =
        ivf::SampleDataRows(n, rows, kMaxTrainPerCentroid * kKsub);
    const size_t ns = sample.size();
    std::vector<float> residuals(ns * dim);
    for (size_t i = 0; i < ns; ++i) {
      const float* x = vectors + size_t{sample[i]} * dim;
      const float* c = centroids + assign[sample[i]] * dim;
      for (size_t d = 0; d < dim; ++d) residuals[i * dim + d] = x[d] - c[d];
    }
    faiss::ProductQuantizer& pq = index->pq;
    if (ns >= kKsub) {
      ParallelFor(m, threads, [&](size_t j) {
        std::vector<float> slice(ns * dsub);
        for (size_t i = 0; i < ns; ++i) {
          std::copy(residuals.data() + i * dim + j * dsub,
                    residuals.data() + i * dim + (j + 1) * dsub, slice.data() + i * dsub);
        }
        KMeans256(slice.data(), ns, dsub, static_cast<uint32_t>(1234 + j), pq.get_centroids(j, 0));
      });
    } else {
      // Too few vectors for 256 centroids per sub-space: the residual
      // sub-vectors themselves are the codebook (repeated to fill it), so
      // every code is exact.
      for (size_t j = 0; j < m; ++j) {
        for (size_t k = 0; k < kKsub; ++k) {
          const float* src = residuals.data() + (k % ns) * dim + j * dsub;
          std::copy(src, src + dsub, pq.get_centroids(j, k));
        }
      }
    }
    residuals = {};
    index->is_trained = true;
    std::vector<float> codebook_t = Transpose(pq.centroids.data(), m, dsub);

    // Encode every vector's residual: the nearest centroid per sub-space.
    std::vector<uint8_t> codes(n * m);
    constexpr size_t kBlock = 256;
    const KernelTable& kernels = ActiveKernels();
    ParallelFor((n + kBlock - 1) / kBlock, threads, [&](size_t b) {
      std::vector<float> r(dim), table(m * kKsub);
      for (size_t i = b * kBlock; i < std::min(n, (b + 1) * kBlock); ++i) {
        const float* x = vectors + i * dim;
        const float* c = centroids + assign[i] * dim;
        for (size_t d = 0; d < dim; ++d) r[d] = x[d] - c[d];
        kernels.pq_tables_l2(r.data(), codebook_t.data(), m, dsub, table.data());
        for (size_t j = 0; j < m; ++j) {
          codes[i * m + j] = kernels.argmin256(table.data() + j * kKsub);
        }
      }
    });
    auto* invlists = dynamic_cast<faiss::ArrayInvertedLists*>(index->invlists);
    if (invlists == nullptr) return absl::InternalError("IVF_PQ: unexpected FAISS lists");
    std::vector<size_t> sizes(nlist);
    for (size_t i = 0; i < n; ++i) ++sizes[assign[i]];
    for (size_t l = 0; l < nlist; ++l) {
      invlists->codes[l].reserve(sizes[l] * m);
      invlists->ids[l].reserve(sizes[l]);
    }
    for (size_t i = 0; i < n; ++i) {
      invlists->add_entry(assign[i], static_cast<faiss::Index::idx_t>(i), codes.data() + i * m);
    }
    index->ntotal = count;
    return Attach(std::move(index));
  } catch (const std::exception& e) {
    return ivf::FromException(e, kKind, absl::StrCat("build over ", n, " vectors"));
  }
}

absl::Status IvfPqIndex::Attach(std::unique_ptr<faiss::IndexIVFPQ> index) {
  faiss::ProductQuantizer& pq = index->pq;
  if (!index->by_residual || pq.M != options_.m || pq.nbits != 8 || pq.ksub != kKsub ||
      pq.dsub * pq.M != spec_.dim || index->code_size != pq.M ||
      pq.centroids.size() != kKsub * spec_.dim) {
    return absl::DataLossError("IVF_PQ: unexpected FAISS index layout");
  }
  absl::StatusOr<std::vector<ivf::CodeList>> lists = ivf::AttachLists(index.get(), kKind);
  if (!lists.ok()) return lists.status();
  index->use_precomputed_table = -1;
  index->precomputed_table.resize(0);
  // Search reads the dimension-major copy only; Save rebuilds FAISS's.
  codebook_t_ = Transpose(pq.centroids.data(), pq.M, pq.dsub);
  std::vector<float>().swap(pq.centroids);
  std::vector<float>().swap(pq.transposed_centroids);
  std::vector<float>().swap(pq.centroids_sq_lengths);
  centroids_ = dynamic_cast<const faiss::IndexFlat*>(index->quantizer)->get_xb();
  lists_ = std::move(*lists);
  index_ = std::move(index);
  return absl::OkStatus();
}

absl::Status IvfPqIndex::Search(const float* query, const SearchParams& params,
                                const LabelFilter* filter, TopK* out) const {
  if (!index_) return absl::FailedPreconditionError("IVF_PQ: index not built");
  const size_t dim = spec_.dim, m = options_.m, dsub = dim / m;
  const ivf::ListsView view{&lists_, m, centroids_, dim, spec_.similarity};
  const KernelTable& kernels = ActiveKernels();
  ivf::Search(view, query, params, filter, out, [&](auto l2) {
    Scratch& scratch = tls_scratch;
    scratch.table.resize(m * kKsub);
    if constexpr (decltype(l2)::value) {
      scratch.residual.resize(dim);
      return L2Scanner{query, centroids_, codebook_t_.data(), dim, m, dsub, &scratch,
                       kernels.pq_tables_l2};
    } else {
      kernels.pq_tables_ip(query, codebook_t_.data(), m, dsub, scratch.table.data());
      return IpScanner{m, scratch.table.data()};
    }
  });
  return absl::OkStatus();
}

absl::Status IvfPqIndex::SaveTo(storage::WritableFile& out) const {
  if (!index_) return absl::FailedPreconditionError("IVF_PQ: index not built");
  // index_ holds no row-major codebook (Attach); write a shell that borrows
  // its quantizer and lists and carries one rebuilt from codebook_t_.
  try {
    faiss::IndexIVFPQ shell(index_->quantizer, spec_.dim, index_->nlist, options_.m, 8,
                            index_->metric_type);
    shell.own_fields = false;
    shell.replace_invlists(index_->invlists, /*own=*/false);
    shell.ntotal = index_->ntotal;
    shell.is_trained = true;
    const size_t dsub = spec_.dim / options_.m;
    for (size_t d = 0; d < spec_.dim; ++d) {
      for (size_t k = 0; k < kKsub; ++k) {
        shell.pq.get_centroids(d / dsub, k)[d % dsub] = codebook_t_[d * kKsub + k];
      }
    }
    return ivf::Write(shell, kKind, out);
  } catch (const std::exception& e) {
    return ivf::FromException(e, kKind, absl::StrCat("cannot write ", out.path()));
  }
}

absl::Status IvfPqIndex::Load(const std::string& path) {
  absl::StatusOr<std::unique_ptr<faiss::Index>> raw = ivf::Read(kKind, path);
  if (!raw.ok()) return raw.status();
  auto* ivf = dynamic_cast<faiss::IndexIVFPQ*>(raw->get());
  if (ivf == nullptr || ivf->d != static_cast<int>(spec_.dim) ||
      ivf->metric_type != MetricOf(spec_.similarity) || ivf->ntotal <= 0 || ivf->nlist == 0) {
    return absl::DataLossError(
        absl::StrCat("IVF_PQ: ", path, " is not an IVF_PQ index of dim ", spec_.dim));
  }
  raw->release();
  std::unique_ptr<faiss::IndexIVFPQ> index(ivf);
  if (absl::Status s = ivf::CheckLabels(*index, kKind, path); !s.ok()) return s;
  return Attach(std::move(index));
}

}  // namespace quiver::index
