#include "query/execute/rescore.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace quiver {

absl::StatusOr<std::vector<index::Neighbor>> RescoreOp::Run(const std::vector<uint64_t>& ids,
                                                            const Scorer& score) {
  const Timed timed(&stats_);
  std::vector<float> dist(ids.size());
  std::vector<uint8_t> present(ids.size(), 0);
  QUIVER_RETURN_IF_ERROR(score(ids, &dist, &present, &stats_));
  std::vector<index::Neighbor> out;
  out.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (present[i] != 0) {
      out.push_back({dist[i], ids[i]});
    } else {
      ++dropped_;
    }
  }
  // Neighbor's order: distance, then id.
  if (out.size() > limit_) {
    std::partial_sort(out.begin(), out.begin() + limit_, out.end());
    out.resize(limit_);
  } else {
    std::sort(out.begin(), out.end());
  }
  stats_.rows_in += ids.size();
  stats_.rows_out += out.size();
  return out;
}

std::string RescoreOp::Describe() const {
  return absl::StrCat("Rescore(field=\"", field_, "\", ", scoring_, ", limit=", limit_,
                      dropped_ > 0 ? absl::StrCat(", dropped without the field=", dropped_) : "",
                      ")");
}

}  // namespace quiver
