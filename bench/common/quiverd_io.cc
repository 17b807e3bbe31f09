// Search requests, response hits and quiverd's build log lines.
#include "bench/common/quiverd_io.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string_view>

#include "bench/common/driver.h"

namespace quiver::bench {
namespace {

// The seconds in "... in 12.34s" at the first " in " at or after `from`;
// -1 without one.
double SecondsAfter(const std::string& line, size_t from) {
  const size_t at = line.find(" in ", from);
  if (at == std::string::npos) return -1;
  return std::strtod(line.c_str() + at + 4, nullptr);
}

// Parses `collection "C" segment N field "F": ` at the start of the
// message; returns the position after it, or npos.
size_t ParsePrefix(const std::string& line, std::string* coll, uint64_t* segment,
                   std::string* field) {
  constexpr std::string_view kColl = "collection \"";
  size_t p = line.find(kColl);
  if (p == std::string::npos) return std::string::npos;
  p += kColl.size();
  const size_t coll_end = line.find('"', p);
  if (coll_end == std::string::npos) return std::string::npos;
  *coll = line.substr(p, coll_end - p);
  constexpr std::string_view kSeg = "\" segment ";
  if (line.compare(coll_end, kSeg.size(), kSeg) != 0) return std::string::npos;
  p = coll_end + kSeg.size();
  char* end = nullptr;
  *segment = std::strtoull(line.c_str() + p, &end, 10);
  p = static_cast<size_t>(end - line.c_str());
  constexpr std::string_view kField = " field \"";
  if (line.compare(p, kField.size(), kField) != 0) return std::string::npos;
  p += kField.size();
  const size_t field_end = line.find("\": ", p);
  if (field_end == std::string::npos) return std::string::npos;
  *field = line.substr(p, field_end - p);
  return field_end + 3;
}

}  // namespace

std::vector<v1::SearchRequest> MakeSearches(const std::string& coll, const Matrix& queries,
                                            size_t nq, size_t per_call, size_t k,
                                            const std::string& field) {
  std::vector<v1::SearchRequest> out;
  for (size_t first = 0; first < nq; first += per_call) {
    v1::SearchRequest req;
    req.set_collection(coll);
    req.set_field(field);
    req.set_k(static_cast<uint32_t>(k));
    for (size_t q = first; q < std::min(nq, first + per_call); ++q) {
      req.add_vectors()->mutable_values()->Add(queries.row(q), queries.row(q) + queries.dim);
    }
    out.push_back(std::move(req));
  }
  return out;
}

void HitIdsInto(const v1::SearchResponse& resp, size_t first, size_t k, int64_t* ids) {
  for (int r = 0; r < resp.results_size(); ++r) {
    const auto& hits = resp.results(r).hits();
    for (int h = 0; h < hits.size() && static_cast<size_t>(h) < k; ++h) {
      ids[(first + r) * k + h] = ParseId(hits[h].id());
    }
  }
}

std::vector<LoggedBuild> LoggedBuilds(const std::string& path, const std::string& coll) {
  std::vector<LoggedBuild> out;
  std::ifstream in(path);
  std::string line, c, field;
  uint64_t segment = 0;
  while (std::getline(in, line)) {
    const size_t msg = ParsePrefix(line, &c, &segment, &field);
    if (msg == std::string::npos || (!coll.empty() && c != coll)) continue;
    constexpr std::string_view kBuilt = "built ";
    constexpr std::string_view kCalibrated = "recall calibrated on ";
    if (line.compare(msg, kBuilt.size(), kBuilt) == 0) {
      // The first " in " after "built" is the build's: the self-check's
      // comes after it (a build that failed its check is not logged so).
      LoggedBuild b;
      b.segment = segment;
      b.field = field;
      const size_t what = msg + kBuilt.size();
      size_t what_end = line.find(" over ", what);
      if (what_end == std::string::npos) what_end = line.find(" on \"", what);
      b.index = line.substr(what, what_end == std::string::npos ? 0 : what_end - what);
      b.build_s = SecondsAfter(line, what);
      if (b.build_s < 0) continue;
      const size_t check = line.find("self-check", what);
      if (check != std::string::npos) b.check_s = std::max(0.0, SecondsAfter(line, check));
      out.push_back(std::move(b));
    } else if (line.compare(msg, kCalibrated.size(), kCalibrated) == 0) {
      // Logged after its build's line: attach it to the last build of the
      // same segment and field.
      const size_t held = line.find("(held out of the build)", msg);
      const double s = SecondsAfter(line, held == std::string::npos ? msg : held);
      for (auto it = out.rbegin(); it != out.rend(); ++it) {
        if (it->segment == segment && it->field == field) {
          if (s > 0) it->calibration_s = s;
          break;
        }
      }
    }
  }
  return out;
}

std::vector<double> BuildTimesFromLog(const std::string& path, const std::string& coll) {
  std::vector<double> out;
  for (const LoggedBuild& b : LoggedBuilds(path, coll)) out.push_back(b.build_s);
  return out;
}

}  // namespace quiver::bench
