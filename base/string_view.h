// Sv: a std::string_view as abseil's string_view. Debian's abseil keeps its
// own string_view (ABSL_OPTION_USE_STD_STRING_VIEW is 0), to which
// std::string_view does not convert implicitly, and absl::StrCat and the
// containers' heterogeneous lookup take abseil's.
//
// Stateless; no errors.
#ifndef QUIVER_BASE_STRING_VIEW_H_
#define QUIVER_BASE_STRING_VIEW_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace quiver {

inline absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace quiver

#endif  // QUIVER_BASE_STRING_VIEW_H_
