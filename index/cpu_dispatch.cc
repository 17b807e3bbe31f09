// The run-time choice between the kernel variants of index/kernels.h.
#include <atomic>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "index/kernels.h"

namespace quiver::index {
namespace {

template <class K>
constexpr KernelTable kTableOf{K::kIsa,         K::Dot,        K::L2Sqr,     K::U8I16Dot,
                               K::PqTablesL2,  K::PqTablesIp, K::ArgMin256};

constexpr int kUnset = -1;
// The Isa in use, or kUnset before the first choice.
std::atomic<int> g_isa{kUnset};

constexpr char kEnvVar[] = "QUIVER_CPU_FEATURES";

Isa Best() { return CpuHasAvx2() ? Isa::kAvx2 : Isa::kBaseline; }

// First use without SelectKernelsFromEnvironment (tests, benchmarks): the
// environment's choice, or the best this CPU runs if it names none this CPU
// can run (only quiverd reports a bad value).
int ChooseOnFirstUse() {
  absl::StatusOr<Isa> isa = ChooseIsa(std::getenv(kEnvVar));
  int expected = kUnset;
  const int want = static_cast<int>(isa.ok() ? *isa : Best());
  g_isa.compare_exchange_strong(expected, want, std::memory_order_relaxed);
  return g_isa.load(std::memory_order_relaxed);
}

}  // namespace

const char* IsaName(Isa isa) { return isa == Isa::kAvx2 ? "avx2+fma" : "baseline"; }

bool CpuHasAvx2() {
#if defined(__x86_64__)
  // libgcc's checks include the OS's XSAVE support for the YMM registers.
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

Isa ActiveIsa() {
  int isa = g_isa.load(std::memory_order_relaxed);
  if (isa == kUnset) [[unlikely]] isa = ChooseOnFirstUse();
  return static_cast<Isa>(isa);
}

const KernelTable& ActiveKernels() {
  return ActiveIsa() == Isa::kAvx2 ? kTableOf<Avx2Kernels> : kTableOf<BaselineKernels>;
}

absl::Status UseKernels(Isa isa) {
  if (isa == Isa::kAvx2 && !CpuHasAvx2()) {
    return absl::FailedPreconditionError("this CPU has no AVX2/FMA: the avx2 kernels cannot run");
  }
  g_isa.store(static_cast<int>(isa), std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::StatusOr<Isa> ChooseIsa(const char* value) {
  const std::string v = absl::AsciiStrToLower(value == nullptr ? "" : value);
  if (v.empty() || v == "auto") return Best();
  if (v == "baseline") return Isa::kBaseline;
  if (v == "avx2") {
    if (!CpuHasAvx2()) {
      return absl::FailedPreconditionError(
          absl::StrCat(kEnvVar, "=avx2, but this CPU has no AVX2/FMA"));
    }
    return Isa::kAvx2;
  }
  return absl::InvalidArgumentError(absl::StrCat(kEnvVar, "=", value,
                                                 ": expected auto, baseline or avx2"));
}

absl::StatusOr<std::string> SelectKernelsFromEnvironment() {
  const char* value = std::getenv(kEnvVar);
  absl::StatusOr<Isa> isa = ChooseIsa(value);
  if (!isa.ok()) return isa.status();
  if (absl::Status s = UseKernels(*isa); !s.ok()) return s;
  const bool forced = value != nullptr && *value != '\0' &&
                      absl::AsciiStrToLower(value) != "auto";
  return absl::StrCat(IsaName(*isa), forced ? absl::StrCat(" (", kEnvVar, "=", value, ")")
                                            : (CpuHasAvx2() ? " (CPU has AVX2 and FMA)"
                                                            : " (CPU has no AVX2/FMA)"));
}

}  // namespace quiver::index
