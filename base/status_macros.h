// Status helpers missing from Debian's abseil 20220623.
// Macros only, no state: usable from any thread. They add no error of their
// own; they return the absl::Status the expression gave, unchanged.
#ifndef QUIVER_BASE_STATUS_MACROS_H_
#define QUIVER_BASE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define QUIVER_CONCAT_INNER_(a, b) a##b
#define QUIVER_CONCAT_(a, b) QUIVER_CONCAT_INNER_(a, b)

// Returns from the current function if `expr` (an absl::Status) is not OK.
#define QUIVER_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::absl::Status quiver_status_ = (expr);          \
    if (!quiver_status_.ok()) return quiver_status_; \
  } while (0)

// `lhs = value of expr` if OK, else returns its status.
#define QUIVER_ASSIGN_OR_RETURN(lhs, expr) \
  QUIVER_ASSIGN_OR_RETURN_IMPL_(QUIVER_CONCAT_(quiver_sor_, __LINE__), lhs, expr)
#define QUIVER_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()

#endif  // QUIVER_BASE_STATUS_MACROS_H_
