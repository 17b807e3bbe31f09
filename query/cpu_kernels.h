// quiverd's handle on index/'s run-time choice of kernel variants
// (index/kernels.h: AVX2/FMA or baseline), for server/, which may not
// include index/ itself. Nothing here owns state; errors as the function
// it forwards to.
#ifndef QUIVER_QUERY_CPU_KERNELS_H_
#define QUIVER_QUERY_CPU_KERNELS_H_

#include <string>

#include "absl/status/statusor.h"
#include "index/kernels.h"

namespace quiver {

// Applies QUIVER_CPU_FEATURES (auto, baseline or avx2) once at start and
// returns the line to log; INVALID_ARGUMENT / FAILED_PRECONDITION for a
// value this CPU cannot honour. See index::SelectKernelsFromEnvironment.
inline absl::StatusOr<std::string> SelectCpuKernels() {
  return index::SelectKernelsFromEnvironment();
}

}  // namespace quiver

#endif  // QUIVER_QUERY_CPU_KERNELS_H_
