// The hot numeric kernels of index/ (float distances, SQ8 code distances,
// PQ distance tables) in two variants, and the choice between them at run
// time by CPU features, so one binary built for baseline x86-64 runs on any
// x86-64 CPU and still uses AVX2/FMA where the CPU has them.
//
// index/kernels.cc is compiled twice (see the top-level CMakeLists.txt):
// into namespace `baseline` with the build's flags (SSE2 on x86-64), and
// into namespace `avx2` with -mavx2 -mfma. Nothing else in the binary is
// compiled for AVX2. Hot loops pick a variant once per search, never per
// distance: either as a type (WithKernels(fn) calls fn(Avx2Kernels{}) or
// fn(BaselineKernels{}), and a loop templated on it calls that variant's
// functions directly, e.g. the HNSW walk), or as a table of function
// pointers (ActiveKernels()) fetched before the loop.
//
// The choice is made once, on first use or when quiverd starts
// (SelectKernelsFromEnvironment): AVX2+FMA if the CPU (and OS) support
// them, unless the environment variable QUIVER_CPU_FEATURES says
// "baseline". Tests switch with UseKernels.
//
// Thread-safety: the kernels are pure functions; the choice is one atomic
// word, read with relaxed loads. Switching while searches run is allowed
// but each search keeps the variant it started with. Errors: only the
// selection functions report them (absl::Status); kernels never fail.
#ifndef QUIVER_INDEX_KERNELS_H_
#define QUIVER_INDEX_KERNELS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace quiver::index {

// The kernel functions, declared once per variant namespace.
//   Dot, L2Sqr: over two arrays of dim floats.
//   U8I16Dot: sum_j w_j * c_j over 16-bit weights and 8-bit codes, exact
//     (index/sq8.h prepares w from a query); both variants give the same
//     integer.
//   PqTablesL2 / PqTablesIp: table[j * 256 + k] = sum over the dsub
//     dimensions d of sub-space j of (x[d] - C[d][k])^2, or x[d] * C[d][k],
//     codebook_t dimension-major (codebook_t[(j * dsub + d) * 256 + k]).
//   ArgMin256: the index of the smallest of 256 floats (the first on a tie).
#define QUIVER_INDEX_KERNEL_DECLARATIONS                                                       \
  float Dot(const float* a, const float* b, size_t dim);                                      \
  float L2Sqr(const float* a, const float* b, size_t dim);                                    \
  int64_t U8I16Dot(const int16_t* w, const uint8_t* code, size_t dim);                        \
  void PqTablesL2(const float* x, const float* codebook_t, size_t m, size_t dsub, float* table); \
  void PqTablesIp(const float* x, const float* codebook_t, size_t m, size_t dsub, float* table); \
  uint8_t ArgMin256(const float* t);
namespace baseline {
QUIVER_INDEX_KERNEL_DECLARATIONS
}  // namespace baseline
namespace avx2 {
QUIVER_INDEX_KERNEL_DECLARATIONS
}  // namespace avx2
#undef QUIVER_INDEX_KERNEL_DECLARATIONS

enum class Isa { kBaseline, kAvx2 };

// One variant as a type: K::L2Sqr(a, b, dim) is a direct call.
template <Isa kIsaValue>
struct KernelsOf;
#define QUIVER_INDEX_KERNEL_SET(isa_value, ns)           \
  template <>                                            \
  struct KernelsOf<isa_value> {                          \
    static constexpr Isa kIsa = isa_value;               \
    static constexpr auto Dot = &ns::Dot;                \
    static constexpr auto L2Sqr = &ns::L2Sqr;            \
    static constexpr auto U8I16Dot = &ns::U8I16Dot;      \
    static constexpr auto PqTablesL2 = &ns::PqTablesL2;  \
    static constexpr auto PqTablesIp = &ns::PqTablesIp;  \
    static constexpr auto ArgMin256 = &ns::ArgMin256;    \
  };
QUIVER_INDEX_KERNEL_SET(Isa::kBaseline, baseline)
QUIVER_INDEX_KERNEL_SET(Isa::kAvx2, avx2)
#undef QUIVER_INDEX_KERNEL_SET
using BaselineKernels = KernelsOf<Isa::kBaseline>;
using Avx2Kernels = KernelsOf<Isa::kAvx2>;

// One variant as a table of function pointers.
struct KernelTable {
  Isa isa;
  decltype(&baseline::Dot) dot;
  decltype(&baseline::L2Sqr) l2sqr;
  decltype(&baseline::U8I16Dot) u8i16_dot;
  decltype(&baseline::PqTablesL2) pq_tables_l2;
  decltype(&baseline::PqTablesIp) pq_tables_ip;
  decltype(&baseline::ArgMin256) argmin256;
};

// "avx2+fma" or "baseline".
const char* IsaName(Isa isa);
// Whether this CPU and OS can run the avx2 variant (AVX2 and FMA, with the
// OS saving the YMM registers). Always false off x86-64.
bool CpuHasAvx2();

// The variant in use (chosen on first call if nothing chose before).
Isa ActiveIsa();
const KernelTable& ActiveKernels();

// Calls fn(Avx2Kernels{}) or fn(BaselineKernels{}), whichever is in use.
template <class Fn>
decltype(auto) WithKernels(Fn&& fn) {
  return ActiveIsa() == Isa::kAvx2 ? fn(Avx2Kernels{}) : fn(BaselineKernels{});
}

// Uses `isa` from now on. FAILED_PRECONDITION (and nothing changes) for
// kAvx2 on a CPU without it.
absl::Status UseKernels(Isa isa);

// The choice for QUIVER_CPU_FEATURES = `value`: unset (nullptr), "" or
// "auto": the best this CPU runs; "baseline"; "avx2" (FAILED_PRECONDITION
// on a CPU without AVX2/FMA). Anything else is INVALID_ARGUMENT.
absl::StatusOr<Isa> ChooseIsa(const char* value);
// Reads QUIVER_CPU_FEATURES, applies the choice (UseKernels) and returns
// a line for the log, e.g. "avx2+fma (CPU has AVX2 and FMA)". Errors as
// ChooseIsa, and then nothing changes. quiverd calls it once at start.
absl::StatusOr<std::string> SelectKernelsFromEnvironment();

}  // namespace quiver::index

#endif  // QUIVER_INDEX_KERNELS_H_
