// Output: tables, key/value lists, JSON and value formatting for quiverctl.
#include "client/output.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <charconv>
#include <ctime>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace quiver::ctl {
namespace {

// Display width of UTF-8 text: one column per code point, which is right for
// the ids, names and the ellipsis we print (no wide CJK handling needed).
size_t DisplayWidth(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

// Numbers ("42", "-0.5", "1e-05") and sizes with a unit ("1.5 KiB") are
// right-aligned so that magnitudes line up; dates and ids that merely start
// with a digit ("2024-05-01 ...") are not.
bool LooksNumeric(const std::string& s) {
  size_t i = 0;
  auto digits = [&] {
    const size_t start = i;
    while (i < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[i]))) ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (!digits()) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && s[i] == ' ') {  // a unit: "B", "KiB", ...
    ++i;
    const size_t start = i;
    while (i < s.size() && absl::ascii_isalpha(static_cast<unsigned char>(s[i]))) ++i;
    if (i == start) return false;
  }
  return i == s.size();
}

void Pad(std::ostream& os, size_t n) {
  for (size_t i = 0; i < n; ++i) os << ' ';
}

}  // namespace

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

void Table::Print(std::ostream& os) const {
  const size_t ncol = headers_.size();
  std::vector<size_t> width(ncol);
  std::vector<bool> right(ncol, true);
  for (size_t c = 0; c < ncol; ++c) {
    width[c] = DisplayWidth(headers_[c]);
    bool any = false;
    for (const auto& row : rows_) {
      width[c] = std::max(width[c], DisplayWidth(row[c]));
      if (row[c].empty()) continue;
      any = true;
      if (!LooksNumeric(row[c])) right[c] = false;
    }
    if (!any) right[c] = false;
  }
  auto print_row = [&](const std::vector<std::string>& row) {
    for (size_t c = 0; c < ncol; ++c) {
      const size_t pad = width[c] - DisplayWidth(row[c]);
      const bool last = c + 1 == ncol;
      if (right[c]) Pad(os, pad);
      os << row[c];
      // No trailing blanks: they upset diffs and copy-paste.
      if (!right[c] && !last) Pad(os, pad);
      if (!last) os << "  ";
    }
    os << '\n';
  };
  print_row(headers_);
  for (const auto& row : rows_) print_row(row);
}

void PrintKeyValues(std::ostream& os,
                    const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t width = 0;
  for (const auto& [k, v] : rows) width = std::max(width, DisplayWidth(k));
  for (const auto& [k, v] : rows) {
    os << k;
    Pad(os, width - DisplayWidth(k) + 2);
    os << v << '\n';
  }
}

std::string ProtoToJsonString(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string out;
  auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  // Printing only fails for Any fields with unknown types, which the API
  // does not use; an empty object keeps the output valid JSON regardless.
  if (!status.ok()) return "{}";
  return out;
}

nlohmann::ordered_json ProtoToJson(const google::protobuf::Message& message) {
  // No exceptions: a parse failure yields a discarded value, replaced by {}.
  nlohmann::ordered_json doc = nlohmann::ordered_json::parse(ProtoToJsonString(message), nullptr,
                                                             /*allow_exceptions=*/false);
  if (doc.is_discarded()) return nlohmann::ordered_json::object();
  return doc;
}

void PrintJson(std::ostream& os, const nlohmann::ordered_json& doc) {
  // `replace` keeps invalid UTF-8 in ids or strings from throwing.
  os << doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
}

std::string FormatFloat(float v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return absl::StrFormat("%g", v);
  return std::string(buf, end);
}

std::string FormatDouble(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  if (ec != std::errc()) return absl::StrFormat("%g", v);
  return std::string(buf, end);
}

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes) / 1024;
  size_t unit = 0;
  while (v >= 1024 && unit + 1 < std::size(kUnits)) {
    v /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", v, kUnits[unit]);
}

std::string FormatVector(const v1::Vector& v, size_t max_values) {
  const size_t n = static_cast<size_t>(v.values_size());
  const size_t shown = std::min(n, max_values);
  std::string out = "[";
  for (size_t i = 0; i < shown; ++i) {
    if (i > 0) out += ", ";
    out += FormatFloat(v.values(static_cast<int>(i)));
  }
  if (shown < n) absl::StrAppend(&out, shown > 0 ? ", " : "", "… +", n - shown);
  out += "]";
  return out;
}

std::string FormatValue(const v1::Value& v) {
  switch (v.kind_case()) {
    case v1::Value::kIntValue:
      return absl::StrCat(v.int_value());
    case v1::Value::kDoubleValue:
      return FormatDouble(v.double_value());
    case v1::Value::kBoolValue:
      return v.bool_value() ? "true" : "false";
    case v1::Value::kStringValue:
      return v.string_value();
    case v1::Value::kStringListValue:
      return absl::StrCat("[", absl::StrJoin(v.string_list_value().values(), ", "), "]");
    case v1::Value::KIND_NOT_SET:
      break;
  }
  return "";
}

std::string FormatUnixMillis(int64_t ms) {
  if (ms <= 0) return "-";
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  if (gmtime_r(&secs, &tm) == nullptr) return absl::StrCat(ms);
  char buf[64];
  const size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return std::string(buf, n);
}

std::string MetricName(v1::Metric m) {
  switch (m) {
    case v1::L2:
      return "L2";
    case v1::IP:
      return "IP";
    case v1::COSINE:
      return "COSINE";
    default:
      return "unspecified";
  }
}

std::string AttributeTypeName(v1::AttributeType t) {
  switch (t) {
    case v1::INT64:
      return "int64";
    case v1::DOUBLE:
      return "double";
    case v1::BOOL:
      return "bool";
    case v1::STRING:
      return "string";
    case v1::STRING_LIST:
      return "string_list";
    default:
      return "unspecified";
  }
}

std::string StorageModeName(v1::StorageMode m) {
  switch (m) {
    case v1::DISK:
      return "disk";
    case v1::MEMORY:
    case v1::STORAGE_MODE_UNSPECIFIED:
    default:
      return "memory";
  }
}

}  // namespace quiver::ctl
