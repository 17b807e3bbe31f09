// Helpers shared by the unit tests: temp directories, status matchers
// (Debian's abseil has no StatusIs), schema builders.
#ifndef QUIVER_TESTS_COMMON_TEST_UTIL_H_
#define QUIVER_TESTS_COMMON_TEST_UTIL_H_

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "quiver/v1/search.pb.h"
#include "quiver/v1/types.pb.h"

namespace quiver::testing {

// A fresh directory removed when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "quiver-test-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) { return s.status(); }

MATCHER_P(StatusIs, code, "") { return GetStatus(arg).code() == code; }
MATCHER_P2(StatusIs, code, substr, "") {
  const absl::Status& s = GetStatus(arg);
  return s.code() == code && std::string(s.message()).find(substr) != std::string::npos;
}

#define QUIVER_ASSERT_OK(expr)                         \
  do {                                                 \
    const auto& quiver_s_ = (expr);                    \
    ASSERT_TRUE(::quiver::testing::GetStatus(quiver_s_).ok()) \
        << ::quiver::testing::GetStatus(quiver_s_);    \
  } while (0)

// The ids of a result's hits, best first (for recall and comparisons).
inline std::vector<std::string> HitIds(const v1::SearchResult& r) {
  std::vector<std::string> ids;
  for (const auto& h : r.hits()) ids.push_back(h.id());
  return ids;
}

inline v1::VectorField VectorField(const std::string& name, uint32_t dim,
                                   v1::Metric metric = v1::L2) {
  v1::VectorField f;
  f.set_name(name);
  f.set_dim(dim);
  f.set_metric(metric);
  return f;
}

inline v1::AttributeField Attribute(const std::string& name, v1::AttributeType type) {
  v1::AttributeField a;
  a.set_name(name);
  a.set_type(type);
  return a;
}

// The "| actual:" line explain prints under the first operator whose line
// starts with `op` (after indentation), or "" if it has none.
inline std::string ActualLine(const std::string& plan, const std::string& op) {
  const std::vector<std::string> lines = absl::StrSplit(plan, '\n');
  for (size_t i = 0; i + 1 < lines.size(); ++i) {
    if (absl::StripLeadingAsciiWhitespace(lines[i]).substr(0, op.size()) != op) continue;
    const absl::string_view next = absl::StripLeadingAsciiWhitespace(lines[i + 1]);
    return absl::StartsWith(next, "| actual:") ? std::string(next) : "";
  }
  return "";
}

// The count `name=N` on an actual line (0 when absent: zero counts are not
// printed).
inline uint64_t ActualCount(const std::string& line, const std::string& name) {
  const size_t at = line.find(" " + name + "=");
  if (at == std::string::npos) return 0;
  return std::stoull(line.substr(at + name.size() + 2));
}

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_COMMON_TEST_UTIL_H_
