// libFuzzer entry point for the attribute filter language.
//
// Compiles the input against a fixed schema with every attribute type and
// evaluates it on a few fixed rows (two with every value, one all-null, one
// short, one with every value of the wrong type). Beyond "no crash, no
// sanitizer report", it checks these invariants and traps if one breaks:
//   - errors are INVALID_ARGUMENT;
//   - the normalized form (ToString) compiles again, to the same text and
//     the same result on every row;
//   - three-valued logic (GRAMMAR.md): f and NOT (f) never both match; on
//     the rows with every value exactly one does; the all-null, short and
//     wrong-type rows all read as null, so they give the same answer.
// Built and run by deploy/fuzz.sh (CMake target filter_fuzz, QUIVER_FUZZ=ON
// with clang-14; seeds in tests/query/filter_fuzz_corpus/, dictionary
// tests/query/filter_fuzz.dict). To replay an input:
//   build-asan/filter_fuzz build-asan/filter_fuzz-artifacts/crash-...
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "query/filter/filter.h"
#include "storage/schema.h"

namespace {

using quiver::AttributeSpec;
using quiver::AttrRow;
using quiver::AttrType;
using quiver::Schema;
using quiver::VectorFieldSpec;
using quiver::filter::Filter;

const Schema& FuzzSchema() {
  static const Schema* schema = [] {
    VectorFieldSpec v;
    v.name = "v";
    v.dim = 4;
    std::vector<AttributeSpec> attrs = {
        {"i", AttrType::kInt64}, {"d", AttrType::kDouble}, {"b", AttrType::kBool},
        {"s", AttrType::kString}, {"tags", AttrType::kStringList}, {"in", AttrType::kInt64}};
    absl::StatusOr<Schema> s = Schema::Create({v}, std::move(attrs));
    if (!s.ok()) __builtin_trap();
    return new Schema(*std::move(s));
  }();
  return *schema;
}

const std::vector<AttrRow>& FuzzRows() {
  static const std::vector<AttrRow>* rows = [] {
    auto* r = new std::vector<AttrRow>;
    r->push_back(AttrRow{int64_t{3}, 2.5, true, std::string("abc"),
                         std::vector<std::string>{"x", "y"}, int64_t{-1}});
    r->push_back(AttrRow{int64_t{-9223372036854775807 - 1}, -0.0, false, std::string(),
                         std::vector<std::string>{}, int64_t{9223372036854775807}});
    r->push_back(AttrRow(6));  // all null
    r->push_back(AttrRow{});   // shorter than the schema
    r->push_back(AttrRow{std::string("3"), int64_t{1}, 1.0, false, std::string("x"),
                         true});  // every value of the wrong type
    return r;
  }();
  return *rows;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view expr(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::shared_ptr<const Filter>> f = Filter::Compile(expr, FuzzSchema());
  if (!f.ok()) {
    if (f.status().code() != absl::StatusCode::kInvalidArgument) __builtin_trap();
    return 0;
  }
  const std::string text = (*f)->ToString();
  absl::StatusOr<std::shared_ptr<const Filter>> again = Filter::Compile(text, FuzzSchema());
  if (!again.ok() || (*again)->ToString() != text) __builtin_trap();
  const std::vector<AttrRow>& rows = FuzzRows();
  for (const AttrRow& row : rows) {
    if ((*f)->Matches(row, "p") != (*again)->Matches(row, "p")) __builtin_trap();
  }
  if ((*f)->Matches(rows[2], "p") != (*f)->Matches(rows[3], "p") ||
      (*f)->Matches(rows[2], "p") != (*f)->Matches(rows[4], "p")) {
    __builtin_trap();
  }
  // NOT (f) may nest one level past the limit; then there is nothing to check.
  absl::StatusOr<std::shared_ptr<const Filter>> negated =
      Filter::Compile("NOT (" + text + ")", FuzzSchema());
  if (!negated.ok()) return 0;
  for (size_t r = 0; r < rows.size(); ++r) {
    const bool m = (*f)->Matches(rows[r], "p");
    const bool n = (*negated)->Matches(rows[r], "p");
    if (m && n) __builtin_trap();
    if (r < 2 && m == n) __builtin_trap();
  }
  return 0;
}
