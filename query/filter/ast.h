// Syntax tree of the attribute filter language (see GRAMMAR.md).
//
// The parser builds it; the binder in filter.cc type-checks it against a
// schema and compiles it into the evaluator. Nodes keep the byte offsets of
// their parts so binding errors can point into the expression. The tree owns
// its children (unique_ptr); its depth is bounded by the parser's nesting
// limit, so recursive walks (ToString, destruction) cannot overflow the stack.
// AND/OR nodes are n-ary: a chain `a AND b AND c` is one node with three
// children, which keeps long chains flat.
//
// A tree is a plain value: not synchronized, immutable after parsing in
// practice; concurrent const use is safe.
#ifndef QUIVER_QUERY_FILTER_AST_H_
#define QUIVER_QUERY_FILTER_AST_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace quiver::filter {

enum class CompareOp { kEq, kNe, kLt, kLe, kGt, kGe };

// "=", "!=", "<", "<=", ">", ">=".
std::string_view CompareOpSymbol(CompareOp op);

// A literal as written. `value` holds int64_t for integers, double for
// numbers with '.' or an exponent, std::string (unescaped) or bool.
struct Literal {
  std::variant<int64_t, double, std::string, bool> value;
  size_t pos = 0;  // byte offset of the literal's first byte

  bool is_int() const { return std::holds_alternative<int64_t>(value); }
  bool is_float() const { return std::holds_alternative<double>(value); }
  bool is_number() const { return is_int() || is_float(); }
  bool is_string() const { return std::holds_alternative<std::string>(value); }
  bool is_bool() const { return std::holds_alternative<bool>(value); }

  // Kind for error messages: "an integer", "a number", "a string", "a boolean".
  std::string_view KindName() const;
  // Normalized source form: integers in decimal, floats in shortest
  // round-trip form with a '.' or exponent, strings in double quotes with
  // \" \\ \n \t escaped, TRUE / FALSE.
  std::string ToString() const;
};

enum class NodeKind {
  kCompare,   // field op values[0]
  kIn,        // field [NOT] IN (values...)
  kBetween,   // field [NOT] BETWEEN values[0] AND values[1]
  kContains,  // field CONTAINS values[0] | CONTAINS ANY/ALL (values...)
  kAnd,       // children[0] AND children[1] AND ...   (2 or more)
  kOr,        // children[0] OR children[1] OR ...     (2 or more)
  kNot,       // NOT children[0]
  kField,     // a BOOL attribute used alone as a predicate
  kConst,     // TRUE / FALSE
  kIsNull,    // field IS NULL, or IS NOT NULL when `negated`
};

enum class ContainsMode { kOne, kAny, kAll };

struct Node {
  NodeKind kind = NodeKind::kConst;
  size_t pos = 0;  // byte offset where the node's text starts

  // Predicates (kCompare, kIn, kBetween, kContains, kField).
  std::string field;
  size_t field_pos = 0;
  size_t op_pos = 0;  // offset of the operator / IN / BETWEEN / CONTAINS
  CompareOp op = CompareOp::kEq;
  bool negated = false;  // NOT IN, NOT BETWEEN, IS NOT NULL
  ContainsMode contains_mode = ContainsMode::kOne;
  std::vector<Literal> values;

  // kAnd, kOr, kNot.
  std::vector<std::unique_ptr<Node>> children;

  // kConst.
  bool const_value = false;

  // Normalized expression: keywords upper case, single spaces, literals in
  // Literal::ToString form, names that are keywords or not plain identifiers
  // in `backticks`, and parentheses only where precedence needs them.
  // Parsing the result gives a tree with the same ToString().
  std::string ToString() const;
};

// Prints `name` so that the lexer reads it back as the same identifier.
std::string QuoteIdentifier(std::string_view name);

}  // namespace quiver::filter

#endif  // QUIVER_QUERY_FILTER_AST_H_
