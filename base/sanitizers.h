// Whether this build is instrumented by a sanitizer, for the few places
// that must act differently under one, as constants usable in plain `if`s.
// Abseil's config does the detection (gcc's __SANITIZE_* macros, clang's
// __has_feature).
#ifndef QUIVER_BASE_SANITIZERS_H_
#define QUIVER_BASE_SANITIZERS_H_

#include "absl/base/config.h"

namespace quiver {

#ifdef ABSL_HAVE_THREAD_SANITIZER
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif

#ifdef ABSL_HAVE_ADDRESS_SANITIZER
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif

}  // namespace quiver

#endif  // QUIVER_BASE_SANITIZERS_H_
