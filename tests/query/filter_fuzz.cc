// libFuzzer entry point for the attribute filter language.
//
// Compiles the input against a fixed schema with every attribute type and
// evaluates it on a few fixed rows (one all-null, one short, one with a
// value of the wrong type). Beyond "no crash, no sanitizer report", it
// checks two invariants and traps if either breaks:
//   - errors are INVALID_ARGUMENT;
//   - the normalized form (ToString) compiles again, to the same text and
//     the same result on every row.
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
  for (const AttrRow& row : FuzzRows()) {
    if ((*f)->Matches(row) != (*again)->Matches(row)) __builtin_trap();
  }
  return 0;
}
