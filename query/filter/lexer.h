// Lexer of the attribute filter language (see GRAMMAR.md).
//
// Tokenize() turns a filter expression into tokens that carry the 0-based
// byte offset at which they start, so the parser and binder can point at the
// offending byte in their errors. The lexer never fails as a function: a
// malformed token ends the token list with a kError token holding the
// message, so errors are reported in input order (a parse error before the
// bad token is reported first).
//
// Stateless free functions; safe to call from any thread.
#ifndef QUIVER_QUERY_FILTER_LEXER_H_
#define QUIVER_QUERY_FILTER_LEXER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace quiver::filter {

enum class TokenKind {
  kIdent,     // text = name (unquoted or from `backticks`)
  kInt,       // int_value
  kFloat,     // float_value (always finite)
  kString,    // text = the unescaped value
  // Keywords, matched case-insensitively.
  kAnd,
  kOr,
  kNot,
  kIn,
  kBetween,
  kContains,
  kTrue,
  kFalse,
  // Operators and punctuation.
  kEq,  // = or ==
  kNe,  // != or <>
  kLt,
  kLe,
  kGt,
  kGe,
  kLParen,
  kRParen,
  kComma,
  kEnd,    // end of input; always the last token unless kError is
  kError,  // malformed input at `pos`; text = message; always the last token
};

struct Token {
  TokenKind kind = TokenKind::kEnd;
  size_t pos = 0;  // 0-based byte offset of the token's first byte
  std::string text;
  int64_t int_value = 0;
  double float_value = 0;
};

// Splits `input` into tokens. The result is never empty and ends with exactly
// one kEnd or kError token.
std::vector<Token> Tokenize(std::string_view input);

// Short human description of a token for error messages, e.g.
// `identifier "price"`, `')'`, `keyword AND`, `end of input`.
std::string DescribeToken(const Token& token);

// The keyword `word` spells (case-insensitively), or kIdent if it is none.
TokenKind KeywordKind(std::string_view word);

}  // namespace quiver::filter

#endif  // QUIVER_QUERY_FILTER_LEXER_H_
