#include "query/execute/limit.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace quiver {

std::vector<std::vector<index::Neighbor>> LimitOp::Run(std::vector<index::TopK>* topk) {
  const Timed timed(&stats_);
  std::vector<std::vector<index::Neighbor>> out;
  out.reserve(topk->size());
  for (index::TopK& t : *topk) {
    stats_.rows_in += t.size();
    std::vector<index::Neighbor> best = t.Take();
    if (best.size() > k_) best.resize(k_);
    stats_.rows_out += best.size();
    out.push_back(std::move(best));
  }
  queries_ = out.size();
  return out;
}

template <typename Hit>
std::vector<Hit> LimitOp::Cut(std::vector<Hit> ranked) {
  const Timed timed(&stats_);
  stats_.rows_in += ranked.size();
  if (ranked.size() > k_) ranked.resize(k_);
  stats_.rows_out += ranked.size();
  queries_ = 1;
  return ranked;
}

std::vector<FusedHit> LimitOp::Run(std::vector<FusedHit> ranked) { return Cut(std::move(ranked)); }

std::vector<index::Neighbor> LimitOp::Run(std::vector<index::Neighbor> ranked) {
  return Cut(std::move(ranked));
}

std::string LimitOp::Describe() const {
  return absl::StrCat("Limit(k=", k_, ", queries=", queries_, ")");
}

}  // namespace quiver
