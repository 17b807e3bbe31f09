#include "bench/common/server_wait.h"

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "bench/common/report.h"
#include "bench/common/sysinfo.h"

namespace quiver::bench {

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

double WaitIndexed(client::Client& c, const std::vector<std::string>& colls, double timeout_s,
                   int poll_ms) {
  const double t0 = NowSeconds();
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
    if (all) return NowSeconds() - t0;
    if (NowSeconds() - t0 > timeout_s) {
      Die("wait for indexes", absl::DeadlineExceededError(desc));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
}

void WaitQuiet(pid_t pid, double timeout_s) {
  const double t0 = NowSeconds();
  for (int quiet = 0; quiet < 2 && NowSeconds() - t0 < timeout_s;) {
    const double c0 = ProcessCpuSeconds(pid);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    quiet = ProcessCpuSeconds(pid) - c0 < 0.03 ? quiet + 1 : 0;
  }
}

}  // namespace quiver::bench
