#include "client/commands/segments.h"

#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/output.h"

namespace quiver::ctl {
namespace {

std::string SegmentStateName(v1::SegmentInfo::State s) {
  switch (s) {
    case v1::SegmentInfo::GROWING:
      return "growing";
    case v1::SegmentInfo::SEALED:
      return "sealed";
    case v1::SegmentInfo::BUILDING:
      return "building";
    case v1::SegmentInfo::INDEXED:
      return "indexed";
    default:
      return "unknown";
  }
}

}  // namespace

std::string SegmentSummary(const v1::CollectionStats& st) {
  const int n = st.segments_size();
  std::map<v1::SegmentInfo::State, int> by_state;
  for (const auto& seg : st.segments()) ++by_state[seg.state()];
  std::string out = absl::StrFormat(
      "%d segment%s (%d indexed, %d building, %d sealed waiting, %d growing", n, n == 1 ? "" : "s",
      by_state[v1::SegmentInfo::INDEXED], by_state[v1::SegmentInfo::BUILDING],
      by_state[v1::SegmentInfo::SEALED], by_state[v1::SegmentInfo::GROWING]);
  const int other = by_state[v1::SegmentInfo::STATE_UNSPECIFIED];
  if (other > 0) absl::StrAppend(&out, ", ", other, " unknown");
  return out + ")";
}

bool AllSegmentsIndexed(const v1::CollectionStats& st) {
  for (const auto& seg : st.segments()) {
    if (seg.state() != v1::SegmentInfo::INDEXED) return false;
  }
  return true;
}

void PrintSegments(std::ostream& out, const v1::CollectionInfo& info) {
  const v1::CollectionStats& st = info.stats();
  out << "\n";
  if (st.segments_size() == 0) {
    out << SegmentSummary(st) << "\n";
    return;
  }
  std::vector<std::string> fields;
  for (const auto& f : info.schema().vectors()) fields.push_back(f.name());
  // Fields a segment reports that the schema does not list (should not
  // happen) still get columns.
  for (const auto& seg : st.segments()) {
    for (const auto& f : seg.fields()) {
      if (std::find(fields.begin(), fields.end(), f.name()) == fields.end()) {
        fields.push_back(f.name());
      }
    }
  }
  std::vector<std::string> headers = {"SEGMENT", "STATE", "ROWS", "DELETED"};
  for (const auto& name : fields) {
    const std::string prefix = fields.size() == 1 ? "" : name + " ";
    for (const char* h : {"INDEX", "MEMORY", "DISK"}) headers.push_back(prefix + h);
  }
  Table t(headers);
  for (const auto& seg : st.segments()) {
    std::vector<std::string> row = {absl::StrCat(seg.id()), SegmentStateName(seg.state()),
                                    absl::StrCat(seg.rows()), absl::StrCat(seg.deleted())};
    for (const auto& name : fields) {
      const v1::SegmentInfo::Field* field = nullptr;
      for (const auto& f : seg.fields()) {
        if (f.name() == name) field = &f;
      }
      if (field == nullptr) {
        row.insert(row.end(), {"-", "-", "-"});
        continue;
      }
      row.push_back(field->index().empty() ? "-" : field->index());
      row.push_back(FormatBytes(field->memory_bytes()));
      row.push_back(FormatBytes(field->disk_bytes()));
    }
    t.AddRow(std::move(row));
  }
  t.Print(out);
  out << SegmentSummary(st) << "\n";
}

}  // namespace quiver::ctl
