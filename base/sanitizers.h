// Whether this build is instrumented by a sanitizer, for the few places
// that must act differently under one. gcc defines __SANITIZE_ADDRESS__ /
// __SANITIZE_THREAD__; clang answers __has_feature (and, when new enough,
// defines the same macros).
#ifndef QUIVER_BASE_SANITIZERS_H_
#define QUIVER_BASE_SANITIZERS_H_

namespace quiver {

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif
#else
inline constexpr bool kThreadSanitizer = false;
#endif

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

}  // namespace quiver

#endif  // QUIVER_BASE_SANITIZERS_H_
