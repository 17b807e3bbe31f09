#include "query/execute/fuse.h"

#include "absl/strings/str_cat.h"

namespace quiver {

std::vector<FusedHit> FuseOp::Run(const std::vector<RankedList>& lists) {
  const Timed timed(&stats_);
  size_t in = 0;
  for (const RankedList& l : lists) in += l.hits.size();
  lists_ = lists.size();
  // At most `in` distinct points: asking for that many keeps them all.
  std::vector<FusedHit> fused = Fuse(kind_, lists, in, rrf_k_);
  stats_.rows_in += in;
  stats_.rows_out += fused.size();
  return fused;
}

std::string FuseOp::Describe() const {
  return absl::StrCat("Fuse(",
                      kind_ == FusionKind::kRrf        ? absl::StrCat("RRF, rrf_k=", rrf_k_)
                      : kind_ == FusionKind::kWeighted ? std::string("WEIGHTED")
                                                       : std::string("DBSF"),
                      ", lists=", lists_, ")");
}

}  // namespace quiver
