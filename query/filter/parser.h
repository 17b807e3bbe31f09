// Parser of the attribute filter language (see GRAMMAR.md).
//
// Recursive descent over the lexer's tokens; precedence NOT > AND > OR.
// Parse() checks syntax only; attribute names and types are checked by the
// binder (Filter::Compile). The recursion is bounded: each '(' and each NOT
// counts one level and more than kMaxNestingDepth levels is an error, so
// hostile input cannot overflow the stack of the parser or of any later
// recursive walk of the tree.
//
// Stateless free function; safe to call from any thread.
#ifndef QUIVER_QUERY_FILTER_PARSER_H_
#define QUIVER_QUERY_FILTER_PARSER_H_

#include <cstddef>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "query/filter/ast.h"

namespace quiver::filter {

// Longest expression accepted, in bytes.
inline constexpr size_t kMaxExpressionBytes = 64 * 1024;
// Deepest nesting accepted; each '(' and each NOT is one level.
inline constexpr int kMaxNestingDepth = 64;

// Parses `expr` into a tree. On error returns INVALID_ARGUMENT with message
// "filter: at position N: <what was expected, and what was found>", N being
// the 0-based byte offset of the offending token ("... unexpected end of
// input" when the input stops early); an over-long expression is
// INVALID_ARGUMENT "filter: expression is N bytes; the limit is 65536".
absl::StatusOr<std::unique_ptr<Node>> Parse(std::string_view expr);

// "filter: at position N: <message>" as INVALID_ARGUMENT; shared with the
// binder so every filter error has one form.
absl::Status FilterError(size_t pos, std::string_view message);

}  // namespace quiver::filter

#endif  // QUIVER_QUERY_FILTER_PARSER_H_
