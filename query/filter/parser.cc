#include "query/filter/parser.h"

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "query/filter/lexer.h"
#include "base/status_macros.h"
#include "base/string_view.h"

namespace quiver::filter {
namespace {

using NodePtr = std::unique_ptr<Node>;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  absl::StatusOr<NodePtr> ParseFilter() {
    QUIVER_ASSIGN_OR_RETURN(NodePtr n, ParseOr());
    if (cur().kind != TokenKind::kEnd) return Unexpected("AND, OR or end of input");
    return n;
  }

 private:
  // toks_ ends with kEnd or kError and Advance() never moves past it, so
  // cur() is always valid.
  const Token& cur() const { return toks_[i_]; }
  void Advance() {
    if (i_ + 1 < toks_.size()) ++i_;
  }

  absl::Status Unexpected(std::string_view expected) const {
    const Token& t = cur();
    if (t.kind == TokenKind::kError) return FilterError(t.pos, t.text);
    if (t.kind == TokenKind::kEnd) {
      return FilterError(t.pos, absl::StrCat("unexpected end of input; expected ", Sv(expected)));
    }
    return FilterError(t.pos, absl::StrCat("expected ", Sv(expected), ", found ", DescribeToken(t)));
  }

  // One more level of '(' or NOT at `pos`.
  absl::Status Enter(size_t pos) {
    if (++depth_ > kMaxNestingDepth) {
      return FilterError(pos, absl::StrCat("expression nested too deeply (more than ",
                                           kMaxNestingDepth, " levels of '(' and NOT)"));
    }
    return absl::OkStatus();
  }

  static NodePtr NewNode(NodeKind kind, size_t pos) {
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->pos = pos;
    return n;
  }

  // Appends `child` to the n-ary `parent`, splicing in the children of a
  // child of the same kind: `(a AND b) AND c` becomes one three-way AND.
  static void AddOperand(Node* parent, NodePtr child) {
    if (child->kind == parent->kind) {
      for (NodePtr& c : child->children) parent->children.push_back(std::move(c));
    } else {
      parent->children.push_back(std::move(child));
    }
  }

  // or_expr = and_expr { OR and_expr }   (and_expr likewise with AND)
  absl::StatusOr<NodePtr> ParseOr() { return ParseChain(TokenKind::kOr, NodeKind::kOr); }
  absl::StatusOr<NodePtr> ParseAnd() { return ParseChain(TokenKind::kAnd, NodeKind::kAnd); }

  absl::StatusOr<NodePtr> ParseChain(TokenKind op, NodeKind kind) {
    auto operand = [&]() { return kind == NodeKind::kOr ? ParseAnd() : ParseNot(); };
    QUIVER_ASSIGN_OR_RETURN(NodePtr first, operand());
    if (cur().kind != op) return first;
    NodePtr node = NewNode(kind, first->pos);
    AddOperand(node.get(), std::move(first));
    while (cur().kind == op) {
      Advance();
      QUIVER_ASSIGN_OR_RETURN(NodePtr next, operand());
      AddOperand(node.get(), std::move(next));
    }
    return node;
  }

  // not_expr = NOT not_expr | primary
  absl::StatusOr<NodePtr> ParseNot() {
    if (cur().kind != TokenKind::kNot) return ParsePrimary();
    const size_t pos = cur().pos;
    QUIVER_RETURN_IF_ERROR(Enter(pos));
    Advance();
    QUIVER_ASSIGN_OR_RETURN(NodePtr child, ParseNot());
    --depth_;
    NodePtr node = NewNode(NodeKind::kNot, pos);
    node->children.push_back(std::move(child));
    return node;
  }

  // primary = '(' or_expr ')' | TRUE | FALSE | predicate
  absl::StatusOr<NodePtr> ParsePrimary() {
    const Token& t = cur();
    switch (t.kind) {
      case TokenKind::kLParen: {
        QUIVER_RETURN_IF_ERROR(Enter(t.pos));
        Advance();
        QUIVER_ASSIGN_OR_RETURN(NodePtr inner, ParseOr());
        if (cur().kind != TokenKind::kRParen) return Unexpected("')'");
        Advance();
        --depth_;
        return inner;
      }
      case TokenKind::kTrue:
      case TokenKind::kFalse: {
        NodePtr node = NewNode(NodeKind::kConst, t.pos);
        node->const_value = t.kind == TokenKind::kTrue;
        Advance();
        return node;
      }
      case TokenKind::kIdent:
        return ParsePredicate();
      default:
        return Unexpected("an attribute name, '(', NOT, TRUE or FALSE");
    }
  }

  // predicate = name [ cmp_op literal | [NOT] IN list
  //                  | [NOT] BETWEEN literal AND literal | IS [NOT] NULL
  //                  | CONTAINS ( literal | (ANY | ALL) list ) ]
  absl::StatusOr<NodePtr> ParsePredicate() {
    NodePtr node = NewNode(NodeKind::kField, cur().pos);
    node->field = cur().text;
    node->field_pos = cur().pos;
    Advance();
    node->op_pos = cur().pos;
    switch (cur().kind) {
      case TokenKind::kEq: return ParseCompare(std::move(node), CompareOp::kEq);
      case TokenKind::kNe: return ParseCompare(std::move(node), CompareOp::kNe);
      case TokenKind::kLt: return ParseCompare(std::move(node), CompareOp::kLt);
      case TokenKind::kLe: return ParseCompare(std::move(node), CompareOp::kLe);
      case TokenKind::kGt: return ParseCompare(std::move(node), CompareOp::kGt);
      case TokenKind::kGe: return ParseCompare(std::move(node), CompareOp::kGe);
      case TokenKind::kNot:
        Advance();
        node->negated = true;
        if (cur().kind == TokenKind::kIn) return ParseIn(std::move(node));
        if (cur().kind == TokenKind::kBetween) return ParseBetween(std::move(node));
        return Unexpected("IN or BETWEEN after NOT");
      case TokenKind::kIn: return ParseIn(std::move(node));
      case TokenKind::kBetween: return ParseBetween(std::move(node));
      case TokenKind::kContains: return ParseContains(std::move(node));
      case TokenKind::kIdent:
        // IS and NULL are keywords only here, so attributes may be named so.
        if (absl::EqualsIgnoreCase(cur().text, "IS")) return ParseIsNull(std::move(node));
        return node;  // the caller reports what follows
      default:
        return node;  // a BOOL attribute alone; the binder checks the type
    }
  }

  absl::StatusOr<NodePtr> ParseCompare(NodePtr node, CompareOp op) {
    node->kind = NodeKind::kCompare;
    node->op = op;
    Advance();
    QUIVER_ASSIGN_OR_RETURN(Literal lit, ParseLiteral());
    node->values.push_back(std::move(lit));
    return node;
  }

  // IS [NOT] NULL
  absl::StatusOr<NodePtr> ParseIsNull(NodePtr node) {
    node->kind = NodeKind::kIsNull;
    Advance();  // IS
    if (cur().kind == TokenKind::kNot) {
      node->negated = true;
      Advance();
    }
    if (cur().kind != TokenKind::kIdent || !absl::EqualsIgnoreCase(cur().text, "NULL")) {
      return Unexpected(node->negated ? "NULL after IS NOT" : "NULL or NOT NULL after IS");
    }
    Advance();
    return node;
  }

  absl::StatusOr<NodePtr> ParseIn(NodePtr node) {
    node->kind = NodeKind::kIn;
    Advance();  // IN
    QUIVER_RETURN_IF_ERROR(ParseList("IN", &node->values));
    return node;
  }

  absl::StatusOr<NodePtr> ParseBetween(NodePtr node) {
    node->kind = NodeKind::kBetween;
    Advance();  // BETWEEN
    QUIVER_ASSIGN_OR_RETURN(Literal lo, ParseLiteral());
    if (cur().kind != TokenKind::kAnd) return Unexpected("AND in BETWEEN ... AND ...");
    Advance();
    QUIVER_ASSIGN_OR_RETURN(Literal hi, ParseLiteral());
    node->values.push_back(std::move(lo));
    node->values.push_back(std::move(hi));
    return node;
  }

  absl::StatusOr<NodePtr> ParseContains(NodePtr node) {
    node->kind = NodeKind::kContains;
    Advance();  // CONTAINS
    // ANY and ALL are keywords only here, so attributes may be named so.
    if (cur().kind == TokenKind::kIdent) {
      if (absl::EqualsIgnoreCase(cur().text, "ANY")) {
        node->contains_mode = ContainsMode::kAny;
      } else if (absl::EqualsIgnoreCase(cur().text, "ALL")) {
        node->contains_mode = ContainsMode::kAll;
      } else {
        return Unexpected("a literal, ANY or ALL after CONTAINS");
      }
      Advance();
      QUIVER_RETURN_IF_ERROR(ParseList(node->contains_mode == ContainsMode::kAny
                                           ? "CONTAINS ANY"
                                           : "CONTAINS ALL",
                                       &node->values));
      return node;
    }
    QUIVER_ASSIGN_OR_RETURN(Literal lit, ParseLiteral());
    node->values.push_back(std::move(lit));
    return node;
  }

  // list = '(' literal { ',' literal } ')'
  absl::Status ParseList(std::string_view what, std::vector<Literal>* out) {
    if (cur().kind != TokenKind::kLParen) return Unexpected(absl::StrCat("'(' after ", Sv(what)));
    Advance();
    if (cur().kind == TokenKind::kRParen) {
      return FilterError(cur().pos, absl::StrCat("empty list; ", Sv(what),
                                                 " needs at least one value"));
    }
    while (true) {
      QUIVER_ASSIGN_OR_RETURN(Literal lit, ParseLiteral());
      out->push_back(std::move(lit));
      if (cur().kind == TokenKind::kRParen) break;
      if (cur().kind != TokenKind::kComma) return Unexpected("',' or ')'");
      Advance();
    }
    Advance();  // ')'
    return absl::OkStatus();
  }

  // literal = INT | FLOAT | STRING | TRUE | FALSE
  absl::StatusOr<Literal> ParseLiteral() {
    const Token& t = cur();
    Literal lit;
    lit.pos = t.pos;
    switch (t.kind) {
      case TokenKind::kInt: lit.value = t.int_value; break;
      case TokenKind::kFloat: lit.value = t.float_value; break;
      case TokenKind::kString: lit.value = t.text; break;
      case TokenKind::kTrue: lit.value = true; break;
      case TokenKind::kFalse: lit.value = false; break;
      default:
        return Unexpected("a literal (number, string, TRUE or FALSE)");
    }
    Advance();
    return lit;
  }

  std::vector<Token> toks_;
  size_t i_ = 0;
  int depth_ = 0;
};

}  // namespace

absl::Status FilterError(size_t pos, std::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("filter: at position ", pos, ": ", Sv(message)));
}

absl::StatusOr<std::unique_ptr<Node>> Parse(std::string_view expr) {
  if (expr.size() > kMaxExpressionBytes) {
    return absl::InvalidArgumentError(absl::StrCat("filter: expression is ", expr.size(),
                                                   " bytes; the limit is ",
                                                   kMaxExpressionBytes));
  }
  return Parser(Tokenize(expr)).ParseFilter();
}

}  // namespace quiver::filter
