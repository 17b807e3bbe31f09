#include "index/muvera.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include <cblas.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "index/omp_threads.h"
#include "base/truncate.h"

namespace quiver::index {
namespace {

// splitmix64 (Steele, Lea, Flood 2014): fixed arithmetic on uint64, so the
// stream for a seed is the same with every compiler and library.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1), 53 bits: exact in double.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n): the high word of a 64 x 64-bit product (Lemire).
  uint32_t Below(uint32_t n) {
    return static_cast<uint32_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  // Standard normal by Box-Muller; the second value of each pair is kept
  // for the next call, so the sequence depends only on the seed.
  double Gaussian() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = 1.0 - Uniform();  // (0, 1]: log stays finite
    const double u2 = Uniform();
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 2.0 * 3.14159265358979323846 * u2;
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }

 private:
  uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0;
};

// One independent stream per use of randomness, so adding a use (or
// changing one matrix's size) never shifts the numbers of another.
enum Stream : uint64_t { kHyperplanes = 1, kProjection = 2, kCountSketch = 3 };
SplitMix64 StreamFor(uint64_t seed, Stream s) {
  SplitMix64 mix(seed ^ (0x6a09e667f3bcc909ull * s));
  return SplitMix64(mix.Next());
}

constexpr uint32_t kMaxKSim = 10;
constexpr uint32_t kMaxReps = 256;
constexpr uint32_t kDefaultDProj = 16;
constexpr uint32_t kDefaultFinalDim = 2048;

absl::Status OutOfRange(absl::string_view name, absl::string_view range,
                        absl::string_view got) {
  return absl::InvalidArgumentError(
      absl::StrCat("encoding parameter ", name, " must be in ", range, ", got ", got));
}

absl::Status ParseUint(absl::string_view name, const std::string& text, uint64_t max,
                       absl::string_view range, uint64_t* out) {
  uint64_t v = 0;
  if (!absl::SimpleAtoi(text, &v) || v > max) {
    return OutOfRange(name, range, absl::StrCat("\"", TruncateForMessage(text), "\""));
  }
  *out = v;
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateMuveraParams(const MuveraParams& p, size_t dim) {
  if (dim == 0) return absl::InvalidArgumentError("MUVERA encoding: dim must be at least 1");
  if (p.k_sim > kMaxKSim) {
    return OutOfRange("k_sim", absl::StrCat("0..", kMaxKSim), absl::StrCat(p.k_sim));
  }
  if (p.r_reps < 1 || p.r_reps > kMaxReps) {
    return OutOfRange("r_reps", absl::StrCat("1..", kMaxReps), absl::StrCat(p.r_reps));
  }
  if (p.d_proj < 1 || p.d_proj > dim) {
    return OutOfRange("d_proj", absl::StrCat("1..", dim, " (the field's dim)"),
                      absl::StrCat(p.d_proj));
  }
  const size_t raw = size_t{p.r_reps} << p.k_sim;  // times d_proj below
  if (raw * p.d_proj > kMuveraMaxRawDim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "encoding parameters r_reps * 2^k_sim * d_proj must be at most ", kMuveraMaxRawDim,
        ", got ", p.r_reps, " * 2^", p.k_sim, " * ", p.d_proj, " = ", raw * p.d_proj));
  }
  const size_t raw_dim = raw * p.d_proj;
  if (p.final_dim > raw_dim || p.final_dim > kMuveraMaxOutputDim) {
    return OutOfRange("final_dim",
                      absl::StrCat("0..", std::min(raw_dim, kMuveraMaxOutputDim),
                                   " (0 = none; at most r_reps * 2^k_sim * d_proj and ",
                                   kMuveraMaxOutputDim, ")"),
                      absl::StrCat(p.final_dim));
  }
  if (p.final_dim == 0 && raw_dim > kMuveraMaxOutputDim) {
    return absl::InvalidArgumentError(absl::StrCat(
        "encoding parameters r_reps * 2^k_sim * d_proj = ", raw_dim, " exceed ",
        kMuveraMaxOutputDim, "; set final_dim to at most ", kMuveraMaxOutputDim));
  }
  // The encoder keeps a dim x (hyperplanes + projections) matrix: bound it
  // so a schema cannot ask for gigabytes (64 MiB of floats).
  const size_t columns = size_t{p.r_reps} * p.k_sim + (p.d_proj == dim ? 0 : size_t{p.r_reps} * p.d_proj);
  if (dim * columns > kMuveraMaxMatrixFloats) {
    return absl::InvalidArgumentError(absl::StrCat(
        "encoding parameters need a ", dim, " x ", columns,
        " random matrix (dim x r_reps * (k_sim + d_proj)), more than ", kMuveraMaxMatrixFloats,
        " floats; lower r_reps or d_proj"));
  }
  return absl::OkStatus();
}

absl::StatusOr<MuveraParams> ParseMuveraParams(
    const std::map<std::string, std::string>& params, size_t dim) {
  MuveraParams p;
  p.d_proj = static_cast<uint32_t>(std::min<size_t>(kDefaultDProj, dim));
  bool final_dim_given = false;
  constexpr uint64_t kU32 = std::numeric_limits<uint32_t>::max();
  for (const auto& [name, text] : params) {
    uint64_t v = 0;
    if (name == "k_sim") {
      if (auto s = ParseUint(name, text, kMaxKSim, absl::StrCat("0..", kMaxKSim), &v); !s.ok()) {
        return s;
      }
      p.k_sim = static_cast<uint32_t>(v);
    } else if (name == "r_reps") {
      if (auto s = ParseUint(name, text, kMaxReps, absl::StrCat("1..", kMaxReps), &v); !s.ok()) {
        return s;
      }
      p.r_reps = static_cast<uint32_t>(v);
    } else if (name == "d_proj") {
      if (auto s = ParseUint(name, text, kU32, absl::StrCat("1..", dim, " (the field's dim)"), &v);
          !s.ok()) {
        return s;
      }
      p.d_proj = static_cast<uint32_t>(v);
    } else if (name == "final_dim") {
      if (auto s = ParseUint(name, text, kU32, "0..r_reps * 2^k_sim * d_proj (0 = none)", &v);
          !s.ok()) {
        return s;
      }
      p.final_dim = static_cast<uint32_t>(v);
      final_dim_given = true;
    } else if (name == "seed") {
      if (auto s = ParseUint(name, text, std::numeric_limits<uint64_t>::max(),
                             "0..18446744073709551615", &v);
          !s.ok()) {
        return s;
      }
      p.seed = v;
    } else if (name == "fill_empty") {
      if (text == "true" || text == "1") {
        p.fill_empty = true;
      } else if (text == "false" || text == "0") {
        p.fill_empty = false;
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "encoding parameter fill_empty must be true, false, 1 or 0, got \"",
            TruncateForMessage(text), "\""));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown encoding parameter \"", TruncateForMessage(name),
          "\" (MUVERA takes k_sim, d_proj, r_reps, fill_empty, final_dim, seed)"));
    }
  }
  if (!final_dim_given) {
    // Only shorten: a small raw encoding (few repetitions or partitions)
    // is kept as it is.
    const uint64_t raw = (uint64_t{p.r_reps} << p.k_sim) * p.d_proj;
    p.final_dim = raw > kDefaultFinalDim ? kDefaultFinalDim : 0;
  }
  if (absl::Status s = ValidateMuveraParams(p, dim); !s.ok()) return s;
  return p;
}

std::map<std::string, std::string> MuveraParamsToMap(const MuveraParams& p) {
  return {{"k_sim", absl::StrCat(p.k_sim)},
          {"d_proj", absl::StrCat(p.d_proj)},
          {"r_reps", absl::StrCat(p.r_reps)},
          {"fill_empty", p.fill_empty ? "true" : "false"},
          {"final_dim", absl::StrCat(p.final_dim)},
          {"seed", absl::StrCat(p.seed)}};
}

absl::StatusOr<MuveraEncoder> MuveraEncoder::Create(size_t dim, const MuveraParams& params) {
  if (absl::Status s = ValidateMuveraParams(params, dim); !s.ok()) return s;
  MuveraEncoder e;
  e.params_ = params;
  e.dim_ = dim;
  e.partitions_ = size_t{1} << params.k_sim;
  e.raw_dim_ = params.r_reps * e.partitions_ * params.d_proj;
  e.output_dim_ = params.final_dim > 0 ? params.final_dim : e.raw_dim_;
  e.identity_ = params.d_proj == dim;

  const size_t hash_cols = size_t{params.r_reps} * params.k_sim;
  const size_t proj_cols = e.identity_ ? 0 : size_t{params.r_reps} * params.d_proj;
  e.columns_ = hash_cols + proj_cols;
  e.matrix_.assign(dim * e.columns_, 0.0f);
  // Column by column, coordinates in order: the numbers a seed gives do not
  // depend on how the matrix is laid out.
  SplitMix64 hyper = StreamFor(params.seed, kHyperplanes);
  for (size_t c = 0; c < hash_cols; ++c) {
    for (size_t i = 0; i < dim; ++i) {
      e.matrix_[i * e.columns_ + c] = static_cast<float>(hyper.Gaussian());
    }
  }
  SplitMix64 proj = StreamFor(params.seed, kProjection);
  const float scale = 1.0f / std::sqrt(static_cast<float>(params.d_proj));
  for (size_t c = 0; c < proj_cols; ++c) {
    for (size_t i = 0; i < dim; i += 64) {
      const uint64_t bits = proj.Next();
      for (size_t b = 0; b < 64 && i + b < dim; ++b) {
        e.matrix_[(i + b) * e.columns_ + hash_cols + c] = (bits >> b) & 1 ? scale : -scale;
      }
    }
  }
  if (params.final_dim > 0) {
    SplitMix64 sketch = StreamFor(params.seed, kCountSketch);
    e.bucket_.resize(e.raw_dim_);
    e.sign_.resize(e.raw_dim_);
    for (size_t j = 0; j < e.raw_dim_; ++j) {
      e.bucket_[j] = sketch.Below(params.final_dim);
      e.sign_[j] = sketch.Next() >> 63 ? 1.0f : -1.0f;
    }
  }
  return e;
}

void MuveraEncoder::EncodeDocument(const float* vectors, size_t n, float* out) const {
  Encode(vectors, n, /*document=*/true, out);
}

void MuveraEncoder::EncodeQuery(const float* vectors, size_t n, float* out) const {
  Encode(vectors, n, /*document=*/false, out);
}

void MuveraEncoder::Encode(const float* vectors, size_t n, bool document, float* out) const {
  // Per thread, so a shared encoder needs no lock and steady-state encoding
  // allocates nothing.
  thread_local std::vector<float> t_products;
  thread_local std::vector<float> t_raw;
  thread_local std::vector<uint32_t> t_codes;
  thread_local std::vector<uint32_t> t_counts;

  const MuveraParams& p = params_;
  float* raw = out;
  if (p.final_dim > 0) {
    t_raw.resize(raw_dim_);
    raw = t_raw.data();
  }
  std::memset(raw, 0, raw_dim_ * sizeof(float));
  if (n > 0 && columns_ > 0) {
    // One product gives every vector's hyperplane sides and projections:
    // products (n x columns) = vectors (n x dim) * matrix (dim x columns).
    // On one thread: OpenBLAS would split even a 16-vector set's product
    // across threads, and on a busy machine waiting for the second thread
    // made encoding ~20x slower; callers parallelize across points instead.
    ScopedOmpThreads one_thread(1);
    t_products.resize(n * columns_);
    float* products = t_products.data();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(n),
                static_cast<int>(columns_), static_cast<int>(dim_), 1.0f, vectors,
                static_cast<int>(dim_), matrix_.data(), static_cast<int>(columns_), 0.0f, products,
                static_cast<int>(columns_));
  }
  if (n > 0) {
    const float* prod = t_products.data();
    t_codes.resize(n);
    t_counts.resize(partitions_);
    uint32_t* codes = t_codes.data();
    uint32_t* counts = t_counts.data();
    const size_t d = p.d_proj;
    const size_t k = p.k_sim;
    const size_t proj_first = size_t{p.r_reps} * k;
    for (size_t r = 0; r < p.r_reps; ++r) {
      float* blocks = raw + r * partitions_ * d;
      auto projected = [&](size_t i) {
        return identity_ ? vectors + i * dim_ : prod + i * columns_ + proj_first + r * d;
      };
      std::memset(counts, 0, partitions_ * sizeof(uint32_t));
      for (size_t i = 0; i < n; ++i) {
        const float* side = prod + i * columns_ + r * k;
        uint32_t code = 0;
        for (size_t b = 0; b < k; ++b) code |= uint32_t{side[b] > 0.0f} << b;
        codes[i] = code;
        ++counts[code];
        float* block = blocks + code * d;
        const float* x = projected(i);
        for (size_t c = 0; c < d; ++c) block[c] += x[c];
      }
      if (!document) continue;
      for (size_t part = 0; part < partitions_; ++part) {
        float* block = blocks + part * d;
        if (counts[part] > 1) {
          const float inv = 1.0f / static_cast<float>(counts[part]);
          for (size_t c = 0; c < d; ++c) block[c] *= inv;
        } else if (counts[part] == 0 && p.fill_empty) {
          size_t best = 0;
          int best_distance = std::numeric_limits<int>::max();
          for (size_t i = 0; i < n; ++i) {
            const int distance = std::popcount(codes[i] ^ static_cast<uint32_t>(part));
            if (distance < best_distance) {
              best_distance = distance;
              best = i;
            }
          }
          std::memcpy(block, projected(best), d * sizeof(float));
        }
      }
    }
  }
  if (p.final_dim > 0) {
    std::memset(out, 0, size_t{p.final_dim} * sizeof(float));
    for (size_t j = 0; j < raw_dim_; ++j) out[bucket_[j]] += sign_[j] * raw[j];
  }
}

}  // namespace quiver::index
