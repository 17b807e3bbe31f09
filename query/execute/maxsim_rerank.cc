#include "query/execute/maxsim_rerank.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "query/execute/operator.h"
#include "storage/rerank_table.h"

namespace quiver {

absl::Status MaxSimRerankOp::Run(const index::MaxSimQuery& query, const Segment& seg,
                                 size_t part, const std::vector<uint32_t>& rows,
                                 index::TopK* out) {
  const Timed timed(&stats_);
  GatheredSets g;
  std::shared_ptr<const storage::RerankTable> table = read_table_ ? seg.table(f_) : nullptr;
  if (table != nullptr) {
    const std::vector<uint64_t> wanted(rows.begin(), rows.end());
    std::vector<std::vector<float>> got;
    QUIVER_RETURN_IF_ERROR(table->Read(wanted, &got, &stats_.reads));
    for (const auto& v : got) g.Add(v.data(), v.size() / field_.dim, field_.dim);
  } else {
    for (uint32_t row : rows) {
      const TokenSet t = seg.tokens(f_, row);
      g.Add(t.data, t.count, field_.dim);
    }
  }
  std::vector<float> dist(rows.size());
  index::MaxSimDistances(query, g.Docs(field_.dim), 0, rows.size(), dist.data(), &scratch_);
  for (size_t i = 0; i < rows.size(); ++i) out->Push(dist[i], HitId(part, rows[i]));
  stats_.rows_in += rows.size();
  stats_.distances += static_cast<uint64_t>(query.n) * g.offsets.back();
  return absl::OkStatus();
}

std::string MaxSimRerankOp::Describe() const {
  return absl::StrCat("MaxSimRerank(field=\"", field_.name, "\"",
                      candidates_ > 0 ? absl::StrCat(", candidates=", candidates_, " per query")
                                      : "",
                      read_table_ ? ", sets from the rerank table" : "", ")");
}

}  // namespace quiver
