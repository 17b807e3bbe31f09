// Table: padding, alignment and number formats.
#include "tests/common/table.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

namespace quiver::testing {
namespace {

bool LooksNumeric(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == ',' || c == '-' ||
          c == '+' || c == 'x' || c == '%')) {
      return false;
    }
  }
  return true;
}

}  // namespace

void Table::Print(std::ostream& out) const {
  std::vector<size_t> width(header_.size(), 0);
  for (size_t c = 0; c < header_.size(); ++c) width[c] = header_[c].size();
  for (const auto& r : rows_) {
    for (size_t c = 0; c < r.size() && c < width.size(); ++c) {
      width[c] = std::max(width[c], r[c].size());
    }
  }
  auto line = [&](const std::vector<std::string>& cells, bool header) {
    out << "|";
    for (size_t c = 0; c < width.size(); ++c) {
      const std::string& s = c < cells.size() ? cells[c] : std::string();
      const std::string pad(width[c] - s.size(), ' ');
      out << ' ' << (!header && LooksNumeric(s) ? pad + s : s + pad) << " |";
    }
    out << "\n";
  };
  line(header_, true);
  out << "|";
  for (size_t c = 0; c < width.size(); ++c) out << std::string(width[c] + 2, '-') << "|";
  out << "\n";
  for (const auto& r : rows_) line(r, false);
}

std::string Fixed(double v, int digits) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

std::string Thousands(double v) {
  if (std::isnan(v)) return "-";
  const long long n = std::llround(v);
  const std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out = n < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

}  // namespace quiver::testing
