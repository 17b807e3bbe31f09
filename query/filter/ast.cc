#include "query/filter/ast.h"

#include <charconv>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "query/filter/lexer.h"
#include "base/string_view.h"

namespace quiver::filter {
namespace {

std::string FloatToString(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  std::string s(buf, ec == std::errc() ? end : buf);
  // The lexer reads a literal without '.' or exponent as an integer; keep
  // the float a float across a round trip.
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

std::string QuoteString(const std::string& v) {
  std::string out = "\"";
  for (char c : v) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default: out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

void AppendList(const std::vector<Literal>& values, std::string* out) {
  out->push_back('(');
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) *out += ", ";
    *out += values[i].ToString();
  }
  out->push_back(')');
}

// Appends `child` as an operand of a parent of kind `parent`, adding
// parentheses where the child binds more loosely than the parent.
void AppendOperand(const Node& child, NodeKind parent, std::string* out) {
  // Predicates need none: NOT applies to a whole predicate (`NOT a = 1` is
  // NOT (a = 1)), and adding them would make the printed form nest deeper
  // than the input, which could push it past the parser's depth limit.
  // Same-kind AND/OR children need none either: the parser flattens them.
  bool parens = false;
  if (parent == NodeKind::kNot) {
    parens = child.kind == NodeKind::kAnd || child.kind == NodeKind::kOr;
  } else if (parent == NodeKind::kAnd) {
    parens = child.kind == NodeKind::kOr;
  }
  if (parens) out->push_back('(');
  *out += child.ToString();
  if (parens) out->push_back(')');
}

}  // namespace

std::string_view CompareOpSymbol(CompareOp op) {
  switch (op) {
    case CompareOp::kEq: return "=";
    case CompareOp::kNe: return "!=";
    case CompareOp::kLt: return "<";
    case CompareOp::kLe: return "<=";
    case CompareOp::kGt: return ">";
    case CompareOp::kGe: return ">=";
  }
  return "?";
}

std::string_view Literal::KindName() const {
  if (is_int()) return "an integer";
  if (is_float()) return "a number";
  if (is_string()) return "a string";
  return "a boolean";
}

std::string Literal::ToString() const {
  if (const auto* i = std::get_if<int64_t>(&value)) return absl::StrCat(*i);
  if (const auto* d = std::get_if<double>(&value)) return FloatToString(*d);
  if (const auto* s = std::get_if<std::string>(&value)) return QuoteString(*s);
  return std::get<bool>(value) ? "TRUE" : "FALSE";
}

std::string QuoteIdentifier(std::string_view name) {
  bool plain = !name.empty() &&
               (absl::ascii_isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_');
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') plain = false;
  }
  if (plain && KeywordKind(name) == TokenKind::kIdent) return std::string(name);
  return absl::StrCat("`", Sv(name), "`");
}

std::string Node::ToString() const {
  std::string out;
  switch (kind) {
    case NodeKind::kCompare:
      out = absl::StrCat(QuoteIdentifier(field), " ", Sv(CompareOpSymbol(op)), " ",
                         values.empty() ? "?" : values[0].ToString());
      break;
    case NodeKind::kIn:
      out = absl::StrCat(QuoteIdentifier(field), negated ? " NOT IN " : " IN ");
      AppendList(values, &out);
      break;
    case NodeKind::kBetween:
      out = absl::StrCat(QuoteIdentifier(field), negated ? " NOT BETWEEN " : " BETWEEN ",
                         values.size() > 0 ? values[0].ToString() : "?", " AND ",
                         values.size() > 1 ? values[1].ToString() : "?");
      break;
    case NodeKind::kContains:
      out = absl::StrCat(QuoteIdentifier(field), " CONTAINS ");
      if (contains_mode == ContainsMode::kOne) {
        out += values.empty() ? "?" : values[0].ToString();
      } else {
        out += contains_mode == ContainsMode::kAny ? "ANY " : "ALL ";
        AppendList(values, &out);
      }
      break;
    case NodeKind::kAnd:
    case NodeKind::kOr:
      for (size_t i = 0; i < children.size(); ++i) {
        if (i > 0) out += kind == NodeKind::kAnd ? " AND " : " OR ";
        AppendOperand(*children[i], kind, &out);
      }
      break;
    case NodeKind::kNot:
      out = "NOT ";
      if (!children.empty()) AppendOperand(*children[0], kind, &out);
      break;
    case NodeKind::kField:
      out = QuoteIdentifier(field);
      break;
    case NodeKind::kIsNull:
      out = absl::StrCat(QuoteIdentifier(field), negated ? " IS NOT NULL" : " IS NULL");
      break;
    case NodeKind::kConst:
      out = const_value ? "TRUE" : "FALSE";
      break;
  }
  return out;
}

}  // namespace quiver::filter
