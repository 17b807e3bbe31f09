#include "query/filter/lexer.h"

#include <charconv>
#include <cmath>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/truncate.h"
#include "base/string_view.h"

namespace quiver::filter {
namespace {

bool IsIdentStart(char c) {
  return absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool IsIdentChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Printable form of one input byte for error messages.
std::string ShowByte(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u < 0x7f) return absl::StrCat("'", std::string(1, c), "'");
  return absl::StrFormat("byte 0x%02x", u);
}

class Lexer {
 public:
  explicit Lexer(std::string_view in) : in_(in) {}

  std::vector<Token> Run() {
    std::vector<Token> out;
    while (true) {
      SkipSpace();
      Token t = Next();
      TokenKind k = t.kind;
      out.push_back(std::move(t));
      if (k == TokenKind::kEnd || k == TokenKind::kError) return out;
    }
  }

 private:
  void SkipSpace() {
    while (i_ < in_.size() && absl::ascii_isspace(static_cast<unsigned char>(in_[i_]))) ++i_;
  }

  bool At(size_t j, char c) const { return j < in_.size() && in_[j] == c; }

  static Token Make(TokenKind k, size_t pos) {
    Token t;
    t.kind = k;
    t.pos = pos;
    return t;
  }
  static Token Error(size_t pos, std::string msg) {
    Token t = Make(TokenKind::kError, pos);
    t.text = std::move(msg);
    return t;
  }

  Token Next() {
    const size_t start = i_;
    if (i_ >= in_.size()) return Make(TokenKind::kEnd, start);
    const char c = in_[i_];
    auto op = [&](TokenKind k, size_t len) {
      i_ += len;
      return Make(k, start);
    };
    switch (c) {
      case '(': return op(TokenKind::kLParen, 1);
      case ')': return op(TokenKind::kRParen, 1);
      case ',': return op(TokenKind::kComma, 1);
      case '=': return op(TokenKind::kEq, At(i_ + 1, '=') ? 2 : 1);
      case '!':
        if (At(i_ + 1, '=')) return op(TokenKind::kNe, 2);
        return Error(start, "unexpected character '!' (did you mean '!='?)");
      case '<':
        if (At(i_ + 1, '=')) return op(TokenKind::kLe, 2);
        if (At(i_ + 1, '>')) return op(TokenKind::kNe, 2);
        return op(TokenKind::kLt, 1);
      case '>':
        if (At(i_ + 1, '=')) return op(TokenKind::kGe, 2);
        return op(TokenKind::kGt, 1);
      case '"':
      case '\'':
        return String();
      case '`':
        return QuotedIdent();
      default:
        break;
    }
    if (IsDigit(c) || c == '.' || c == '-') return Number();
    if (IsIdentStart(c)) {
      while (i_ < in_.size() && IsIdentChar(in_[i_])) ++i_;
      std::string_view word = in_.substr(start, i_ - start);
      Token t = Make(KeywordKind(word), start);
      if (t.kind == TokenKind::kIdent) t.text = std::string(word);
      return t;
    }
    return Error(start, absl::StrCat("unexpected character ", ShowByte(c)));
  }

  Token String() {
    const size_t start = i_;
    const char quote = in_[i_++];
    Token t = Make(TokenKind::kString, start);
    while (i_ < in_.size()) {
      const char c = in_[i_];
      if (c == quote) {
        ++i_;
        return t;
      }
      if (c != '\\') {
        t.text.push_back(c);
        ++i_;
        continue;
      }
      if (i_ + 1 >= in_.size()) break;  // unterminated
      const char e = in_[i_ + 1];
      switch (e) {
        case '"': t.text.push_back('"'); break;
        case '\'': t.text.push_back('\''); break;
        case '\\': t.text.push_back('\\'); break;
        case 'n': t.text.push_back('\n'); break;
        case 't': t.text.push_back('\t'); break;
        default:
          return Error(i_, absl::StrCat("unknown escape sequence '\\", std::string(1, e),
                                        "' (known: \\\" \\' \\\\ \\n \\t)"));
      }
      i_ += 2;
    }
    return Error(start, "unterminated string literal");
  }

  // `name`: an identifier that may spell a keyword (an attribute named "in").
  Token QuotedIdent() {
    const size_t start = i_++;
    const size_t close = in_.find('`', i_);
    if (close == std::string_view::npos) return Error(start, "unterminated `quoted` identifier");
    if (close == i_) return Error(start, "empty `quoted` identifier");
    Token t = Make(TokenKind::kIdent, start);
    t.text = std::string(in_.substr(i_, close - i_));
    i_ = close + 1;
    return t;
  }

  // [-] ( digits [ '.' digits* ] | '.' digits ) [ (e|E) [+|-] digits ]
  Token Number() {
    const size_t start = i_;
    size_t j = i_;
    if (At(j, '-')) ++j;
    const size_t int_start = j;
    while (j < in_.size() && IsDigit(in_[j])) ++j;
    const bool int_digits = j > int_start;
    bool is_float = false;
    if (At(j, '.')) {
      is_float = true;
      ++j;
      const size_t frac_start = j;
      while (j < in_.size() && IsDigit(in_[j])) ++j;
      if (!int_digits && j == frac_start) {
        return Error(start, in_[start] == '-' ? "expected a number after '-'"
                                              : "unexpected character '.'");
      }
    } else if (!int_digits) {
      return Error(start, "expected a number after '-'");
    }
    if (At(j, 'e') || At(j, 'E')) {
      is_float = true;
      ++j;
      if (At(j, '+') || At(j, '-')) ++j;
      const size_t exp_start = j;
      while (j < in_.size() && IsDigit(in_[j])) ++j;
      if (j == exp_start) return Error(start, "malformed number: exponent has no digits");
    }
    if (j < in_.size() && (IsIdentChar(in_[j]) || in_[j] == '.')) {
      return Error(start, "malformed number");
    }
    i_ = j;
    const char* first = in_.data() + start;
    const char* last = in_.data() + j;
    if (!is_float) {
      Token t = Make(TokenKind::kInt, start);
      auto [p, ec] = std::from_chars(first, last, t.int_value);
      if (ec != std::errc() || p != last) {
        return Error(start, "integer literal out of range (int64)");
      }
      return t;
    }
    Token t = Make(TokenKind::kFloat, start);
    auto [p, ec] = std::from_chars(first, last, t.float_value);
    if (ec != std::errc() || p != last || !std::isfinite(t.float_value)) {
      return Error(start, "float literal out of range (double)");
    }
    return t;
  }

  std::string_view in_;
  size_t i_ = 0;
};

}  // namespace

TokenKind KeywordKind(std::string_view word) {
  struct Kw {
    std::string_view name;
    TokenKind kind;
  };
  static constexpr Kw kKeywords[] = {
      {"AND", TokenKind::kAnd},         {"OR", TokenKind::kOr},
      {"NOT", TokenKind::kNot},         {"IN", TokenKind::kIn},
      {"BETWEEN", TokenKind::kBetween}, {"CONTAINS", TokenKind::kContains},
      {"TRUE", TokenKind::kTrue},       {"FALSE", TokenKind::kFalse},
  };
  for (const Kw& kw : kKeywords) {
    if (absl::EqualsIgnoreCase(Sv(word), Sv(kw.name))) return kw.kind;
  }
  return TokenKind::kIdent;
}

std::vector<Token> Tokenize(std::string_view input) { return Lexer(input).Run(); }

std::string DescribeToken(const Token& t) {
  switch (t.kind) {
    case TokenKind::kIdent: return absl::StrCat("identifier \"", TruncateForMessage(t.text), "\"");
    case TokenKind::kInt: return absl::StrCat("integer ", t.int_value);
    case TokenKind::kFloat: return absl::StrCat("number ", t.float_value);
    case TokenKind::kString: return "string literal";
    case TokenKind::kAnd: return "keyword AND";
    case TokenKind::kOr: return "keyword OR";
    case TokenKind::kNot: return "keyword NOT";
    case TokenKind::kIn: return "keyword IN";
    case TokenKind::kBetween: return "keyword BETWEEN";
    case TokenKind::kContains: return "keyword CONTAINS";
    case TokenKind::kTrue: return "keyword TRUE";
    case TokenKind::kFalse: return "keyword FALSE";
    case TokenKind::kEq: return "'='";
    case TokenKind::kNe: return "'!='";
    case TokenKind::kLt: return "'<'";
    case TokenKind::kLe: return "'<='";
    case TokenKind::kGt: return "'>'";
    case TokenKind::kGe: return "'>='";
    case TokenKind::kLParen: return "'('";
    case TokenKind::kRParen: return "')'";
    case TokenKind::kComma: return "','";
    case TokenKind::kEnd: return "end of input";
    case TokenKind::kError: return t.text;
  }
  return "token";
}

}  // namespace quiver::filter
