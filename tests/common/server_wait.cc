// Segments / WaitIndexed: polling a server's describe output.
#include "tests/common/server_wait.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace quiver::testing {

absl::StatusOr<SegmentsState> Segments(client::Client& c, const std::string& coll) {
  auto info = c.GetCollection(coll);
  if (!info.ok()) return info.status();
  SegmentsState s;
  s.all_indexed = info->stats().segments_size() > 0;
  for (const auto& seg : info->stats().segments()) {
    s.all_indexed &= seg.state() == v1::SegmentInfo::INDEXED;
    ++s.segments;
    s.rows += seg.rows();
    std::string idx;
    for (const auto& f : seg.fields()) {
      s.index_memory += f.memory_bytes();
      s.index_disk += f.disk_bytes();
      idx = f.index();
    }
    s.desc += absl::StrCat(s.desc.empty() ? "" : ", ", "#", seg.id(), " ",
                           v1::SegmentInfo::State_Name(seg.state()), " ", seg.rows(), " rows",
                           idx.empty() ? "" : " " + idx);
  }
  for (const auto& v : info->stats().vectors()) s.field_memory += v.memory_bytes();
  return s;
}

absl::StatusOr<double> WaitIndexed(client::Client& c, const std::vector<std::string>& colls,
                                   double timeout_s, int poll_ms) {
  const absl::Time t0 = absl::Now();
  for (;;) {
    bool all = true;
    std::string desc;
    for (const auto& coll : colls) {
      auto s = Segments(c, coll);
      if (!s.ok()) {  // may be UNAVAILABLE right after a start
        all = false;
        desc += absl::StrCat(coll, ": ", s.status().ToString(), "; ");
        continue;
      }
      all &= s->all_indexed;
      desc += absl::StrCat(coll, ": ", s->desc, "; ");
    }
    const double waited = absl::ToDoubleSeconds(absl::Now() - t0);
    if (all) return waited;
    if (waited > timeout_s) return absl::DeadlineExceededError(desc);
    absl::SleepFor(absl::Milliseconds(poll_ms));
  }
}

}  // namespace quiver::testing
