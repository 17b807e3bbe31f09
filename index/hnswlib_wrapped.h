// hnswlib 0.6.2 (Debian's libhnswlib-dev, header-only), included with
// internal linkage and its warnings silenced. Its headers define
// non-inline functions and a global (cpuid, AVXCapable, L2SqrSIMD16Ext,
// ...), so two translation units of one binary that include it plainly
// fail to link; inside an anonymous namespace each gets its own copy (the
// index, a test writing hnswlib's own files, a benchmark's baseline). The
// standard headers hnswlib uses come first, so that the wrapper does not
// capture them. hnswlib picks its SIMD kernels by the including file's
// compile flags. Include only where hnswlib is used directly.
#ifndef QUIVER_INDEX_HNSWLIB_WRAPPED_H_
#define QUIVER_INDEX_HNSWLIB_WRAPPED_H_

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <limits>
#include <list>
#include <mutex>
#include <new>
#include <queue>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <x86intrin.h>
#endif

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-variable"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wtype-limits"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#if !defined(__clang__)  // gcc only; clang has no such warning group
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
namespace {
#include <hnswlib/hnswlib.h>
}  // namespace
#pragma GCC diagnostic pop

#endif  // QUIVER_INDEX_HNSWLIB_WRAPPED_H_
