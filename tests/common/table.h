// Table: the one table printer of the tests and benchmarks. A plain-text
// table (Markdown pipe syntax, so it pastes into issues and READMEs) with
// columns padded to width; numbers right-aligned. Plus the number formats
// the tables use.
//
// A Table owns its cells; not thread-safe. Nothing here fails.
#ifndef QUIVER_TESTS_COMMON_TABLE_H_
#define QUIVER_TESTS_COMMON_TABLE_H_

#include <ostream>
#include <string>
#include <vector>

namespace quiver::testing {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// Fixed-point with `digits` decimals; "-" for NaN.
std::string Fixed(double v, int digits);
// Rounded integer with thousands separators: 12,345.
std::string Thousands(double v);

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_COMMON_TABLE_H_
