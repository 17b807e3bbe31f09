// Byte units for messages and budgets.
#ifndef QUIVER_BASE_UNITS_H_
#define QUIVER_BASE_UNITS_H_

#include <cstdint>

namespace quiver {

inline constexpr uint64_t kMiB = uint64_t{1} << 20;

}  // namespace quiver

#endif  // QUIVER_BASE_UNITS_H_
