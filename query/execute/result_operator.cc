#include "query/execute/result_operator.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace quiver {

std::string ActualText(const OpStats& s) {
  return absl::StrCat("| actual: ", absl::StrFormat("time=%.1fus", s.micros),
                      s.runs > 1 ? absl::StrCat(" runs=", s.runs) : "",
                      s.rows_in ? absl::StrCat(" rows_in=", s.rows_in) : "",
                      s.rows_out ? absl::StrCat(" rows_out=", s.rows_out) : "",
                      s.distances ? absl::StrCat(" distances=", s.distances) : "",
                      s.checks ? absl::StrCat(" checks=", s.checks) : "",
                      s.reads ? absl::StrCat(" reads=", s.reads) : "",
                      s.fetches ? absl::StrCat(" fetches=", s.fetches) : "",
                      s.fallbacks ? absl::StrCat(" fallbacks=", s.fallbacks) : "");
}

void ResultOperator::ToExplain(const std::string& indent, std::string* out) const {
  absl::StrAppend(out, indent, Describe(), "\n");
  if (stats_.runs > 0) absl::StrAppend(out, indent, "  ", ActualText(stats_), "\n");
}

}  // namespace quiver
