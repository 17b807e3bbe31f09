// Tests of the attribute filter language: lexer, parser, binder and
// evaluator (query/filter/).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <iterator>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "query/bind/wire_schema.h"
#include "query/filter/ast.h"
#include "query/filter/filter.h"
#include "query/filter/lexer.h"
#include "query/filter/parser.h"
#include "storage/schema.h"

namespace quiver::filter {
namespace {

using StringList = std::vector<std::string>;

// Attribute indices of TestSchema().
enum : int { kI = 0, kD, kB, kS, kTags, kIn, kAny, kNumAttrs };

Schema TestSchema() {
  v1::CollectionSchema p;
  v1::VectorField* v = p.add_vectors();
  v->set_name("v");
  v->set_dim(4);
  v->set_metric(v1::L2);
  auto add = [&](const char* name, v1::AttributeType type) {
    v1::AttributeField* a = p.add_attributes();
    a->set_name(name);
    a->set_type(type);
  };
  add("i", v1::INT64);
  add("d", v1::DOUBLE);
  add("b", v1::BOOL);
  add("s", v1::STRING);
  add("tags", v1::STRING_LIST);
  add("in", v1::INT64);  // a keyword; reachable as `in`
  add("any", v1::BOOL);  // ANY is a keyword only after CONTAINS
  absl::StatusOr<Schema> s = bind::BindSchema(p);
  EXPECT_TRUE(s.ok()) << s.status();
  return *std::move(s);
}

const Schema& S() {
  static const Schema* schema = new Schema(TestSchema());
  return *schema;
}

// Default member initializers keep -Wmissing-field-initializers quiet about
// designated initializers that name only some fields.
struct RowSpec {
  std::optional<int64_t> i = std::nullopt;
  std::optional<double> d = std::nullopt;
  std::optional<bool> b = std::nullopt;
  std::optional<std::string> s = std::nullopt;
  std::optional<StringList> tags = std::nullopt;
  std::optional<int64_t> in = std::nullopt;
};

AttrRow MakeRow(const RowSpec& r) {
  AttrRow row(kNumAttrs);
  if (r.i) row[kI] = *r.i;
  if (r.d) row[kD] = *r.d;
  if (r.b) row[kB] = *r.b;
  if (r.s) row[kS] = *r.s;
  if (r.tags) row[kTags] = *r.tags;
  if (r.in) row[kIn] = *r.in;
  return row;
}

std::shared_ptr<const Filter> MustCompile(std::string_view expr) {
  absl::StatusOr<std::shared_ptr<const Filter>> f = Filter::Compile(expr, S());
  EXPECT_TRUE(f.ok()) << expr << ": " << f.status();
  return f.ok() ? *f : nullptr;
}

std::string CompileError(std::string_view expr) {
  absl::StatusOr<std::shared_ptr<const Filter>> f = Filter::Compile(expr, S());
  if (f.ok()) return "OK";
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << expr;
  return std::string(f.status().message());
}

// ---------------------------------------------------------------- lexer

std::string Kinds(std::string_view input) {
  std::string out;
  for (const Token& t : Tokenize(input)) {
    if (!out.empty()) out += " ";
    out += DescribeToken(t) + "@" + std::to_string(t.pos);
  }
  return out;
}

TEST(LexerTest, TokensAndPositions) {
  struct Case {
    const char* input;
    const char* want;
  } cases[] = {
      {"", "end of input@0"},
      {"  a_1", "identifier \"a_1\"@2 end of input@5"},
      {"and Or nOt IN between Contains true FALSE",
       "keyword AND@0 keyword OR@4 keyword NOT@7 keyword IN@11 keyword BETWEEN@14 "
       "keyword CONTAINS@22 keyword TRUE@31 keyword FALSE@36 end of input@41"},
      {"= == != <> < <= > >= ( ) ,",
       "'='@0 '='@2 '!='@5 '!='@8 '<'@11 '<='@13 '>'@16 '>='@18 '('@21 ')'@23 ','@25 "
       "end of input@26"},
      {"a>=-1", "identifier \"a\"@0 '>='@1 integer -1@3 end of input@5"},
      {"`in` `a b`", "identifier \"in\"@0 identifier \"a b\"@5 end of input@10"},
      {"\tx\n=\r1", "identifier \"x\"@1 '='@3 integer 1@5 end of input@6"},
  };
  for (const Case& c : cases) EXPECT_EQ(Kinds(c.input), c.want) << c.input;
}

TEST(LexerTest, Numbers) {
  std::vector<Token> t =
      Tokenize("1 -2 1.5 -2e3 .5 -.5 1e+2 2. 9223372036854775807 -9223372036854775808");
  ASSERT_EQ(t.size(), 11u);
  EXPECT_EQ(t[0].kind, TokenKind::kInt);
  EXPECT_EQ(t[0].int_value, 1);
  EXPECT_EQ(t[1].kind, TokenKind::kInt);
  EXPECT_EQ(t[1].int_value, -2);
  EXPECT_EQ(t[2].kind, TokenKind::kFloat);
  EXPECT_EQ(t[2].float_value, 1.5);
  EXPECT_EQ(t[3].float_value, -2000.0);
  EXPECT_EQ(t[4].float_value, 0.5);
  EXPECT_EQ(t[5].float_value, -0.5);
  EXPECT_EQ(t[6].float_value, 100.0);
  EXPECT_EQ(t[7].kind, TokenKind::kFloat);
  EXPECT_EQ(t[7].float_value, 2.0);
  EXPECT_EQ(t[8].int_value, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(t[9].int_value, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(t[10].kind, TokenKind::kEnd);
}

TEST(LexerTest, Strings) {
  std::vector<Token> t = Tokenize(R"("a\"b" 'c\'d' "e\\f\n\tg" 'say "hi"' "")");
  ASSERT_EQ(t.size(), 6u);
  EXPECT_EQ(t[0].text, "a\"b");
  EXPECT_EQ(t[1].text, "c'd");
  EXPECT_EQ(t[2].text, "e\\f\n\tg");
  EXPECT_EQ(t[3].text, "say \"hi\"");
  EXPECT_EQ(t[4].kind, TokenKind::kString);
  EXPECT_EQ(t[4].text, "");
  EXPECT_EQ(t[4].pos, 37u);
}

TEST(LexerTest, Errors) {
  struct Case {
    const char* input;
    size_t pos;
    const char* message;
  } cases[] = {
      {"a = \"abc", 4, "unterminated string literal"},
      {"'abc\\", 0, "unterminated string literal"},
      {"'a\\qb'", 2, "unknown escape sequence '\\q' (known: \\\" \\' \\\\ \\n \\t)"},
      {"x = 12abc", 4, "malformed number"},
      {"1.2.3", 0, "malformed number"},
      {"1e", 0, "malformed number: exponent has no digits"},
      {"99999999999999999999", 0, "integer literal out of range (int64)"},
      {"1e999", 0, "float literal out of range (double)"},
      {"a = -x", 4, "expected a number after '-'"},
      {"a @ 1", 2, "unexpected character '@'"},
      {"a ! 1", 2, "unexpected character '!' (did you mean '!='?)"},
      {"\x80", 0, "unexpected character byte 0x80"},
      {". 5", 0, "unexpected character '.'"},
      {"`abc", 0, "unterminated `quoted` identifier"},
      {"``", 0, "empty `quoted` identifier"},
  };
  for (const Case& c : cases) {
    std::vector<Token> t = Tokenize(c.input);
    EXPECT_EQ(t.back().kind, TokenKind::kError) << c.input;
    EXPECT_EQ(t.back().pos, c.pos) << c.input;
    EXPECT_EQ(t.back().text, c.message) << c.input;
  }
}

// ---------------------------------------------------------------- parser

// The tree as an S-expression, to see its shape.
std::string Sexp(const Node& n) {
  std::string out;
  auto list = [&](std::string head) {
    out = "(" + head;
    for (const Literal& v : n.values) out += " " + v.ToString();
    out += ")";
  };
  switch (n.kind) {
    case NodeKind::kCompare:
      list(std::string(CompareOpSymbol(n.op)) + " " + n.field);
      break;
    case NodeKind::kIn:
      list((n.negated ? "NOT-IN " : "IN ") + n.field);
      break;
    case NodeKind::kBetween:
      list((n.negated ? "NOT-BETWEEN " : "BETWEEN ") + n.field);
      break;
    case NodeKind::kContains:
      list((n.contains_mode == ContainsMode::kOne   ? "CONTAINS "
            : n.contains_mode == ContainsMode::kAny ? "CONTAINS-ANY "
                                                    : "CONTAINS-ALL ") +
           n.field);
      break;
    case NodeKind::kAnd:
    case NodeKind::kOr:
    case NodeKind::kNot:
      out = n.kind == NodeKind::kAnd ? "(AND" : n.kind == NodeKind::kOr ? "(OR" : "(NOT";
      for (const auto& c : n.children) out += " " + Sexp(*c);
      out += ")";
      break;
    case NodeKind::kIsNull:
      out = (n.negated ? "(IS-NOT-NULL " : "(IS-NULL ") + n.field + ")";
      break;
    case NodeKind::kField:
      out = n.field;
      break;
    case NodeKind::kConst:
      out = n.const_value ? "TRUE" : "FALSE";
      break;
  }
  return out;
}

std::string ParseSexp(std::string_view expr) {
  absl::StatusOr<std::unique_ptr<Node>> n = Parse(expr);
  if (!n.ok()) return std::string(n.status().message());
  return Sexp(**n);
}

TEST(ParserTest, PrecedenceAndShapes) {
  struct Case {
    const char* expr;
    const char* want;
  } cases[] = {
      {"a = 1 OR b = 2 AND c = 3", "(OR (= a 1) (AND (= b 2) (= c 3)))"},
      {"a = 1 AND b = 2 OR c = 3", "(OR (AND (= a 1) (= b 2)) (= c 3))"},
      {"(a = 1 OR b = 2) AND c = 3", "(AND (OR (= a 1) (= b 2)) (= c 3))"},
      {"NOT a = 1 AND b", "(AND (NOT (= a 1)) b)"},
      {"NOT (a = 1 OR b)", "(NOT (OR (= a 1) b))"},
      {"NOT NOT flag", "(NOT (NOT flag))"},
      {"a=1 AND (b=2 AND c=3) AND d", "(AND (= a 1) (= b 2) (= c 3) d)"},
      {"a=1 OR (b=2 OR c=3)", "(OR (= a 1) (= b 2) (= c 3))"},
      {"x BETWEEN 1 AND 2.5 AND y = 'q'", "(AND (BETWEEN x 1 2.5) (= y \"q\"))"},
      {"x NOT BETWEEN -1 AND 1", "(NOT-BETWEEN x -1 1)"},
      {"x NOT IN (1, 2,3)", "(NOT-IN x 1 2 3)"},
      {"NOT x IN (1)", "(NOT (IN x 1))"},
      {"tags CONTAINS 'a'", "(CONTAINS tags \"a\")"},
      {"tags contains any ('a', \"b\")", "(CONTAINS-ANY tags \"a\" \"b\")"},
      {"tags CONTAINS All ('a')", "(CONTAINS-ALL tags \"a\")"},
      {"any CONTAINS ANY ('x') AND all", "(AND (CONTAINS-ANY any \"x\") all)"},
      {"TRUE OR false", "(OR TRUE FALSE)"},
      {"a IS NULL OR NOT b IS NOT NULL", "(OR (IS-NULL a) (NOT (IS-NOT-NULL b)))"},
      {"a == 1 AND b <> 2 AND c != 3", "(AND (= a 1) (!= b 2) (!= c 3))"},
      {"a<1 or a<=1 or a>1 or a>=1", "(OR (< a 1) (<= a 1) (> a 1) (>= a 1))"},
      {"flag = TRUE", "(= flag TRUE)"},
      {"`not` = 1", "(= not 1)"},
  };
  for (const Case& c : cases) EXPECT_EQ(ParseSexp(c.expr), c.want) << c.expr;
}

TEST(ParserTest, SyntaxErrors) {
  struct Case {
    const char* expr;
    const char* want;
  } cases[] = {
      {"", "filter: at position 0: unexpected end of input; expected an attribute name, '(', "
           "NOT, TRUE or FALSE"},
      {"(a = 1", "filter: at position 6: unexpected end of input; expected ')'"},
      {"a = 1)", "filter: at position 5: expected AND, OR or end of input, found ')'"},
      {"a = 1 b", "filter: at position 6: expected AND, OR or end of input, found "
                  "identifier \"b\""},
      {"a = ", "filter: at position 4: unexpected end of input; expected a literal (number, "
               "string, TRUE or FALSE)"},
      {"a = b", "filter: at position 4: expected a literal (number, string, TRUE or FALSE), "
                "found identifier \"b\""},
      {"1 = a", "filter: at position 0: expected an attribute name, '(', NOT, TRUE or FALSE, "
                "found integer 1"},
      {"a IN ()", "filter: at position 6: empty list; IN needs at least one value"},
      {"a IN 1", "filter: at position 5: expected '(' after IN, found integer 1"},
      {"a IN (1,)", "filter: at position 8: expected a literal (number, string, TRUE or "
                    "FALSE), found ')'"},
      {"a IN (1 2)", "filter: at position 8: expected ',' or ')', found integer 2"},
      {"a BETWEEN 1 OR 2", "filter: at position 12: expected AND in BETWEEN ... AND ..., "
                           "found keyword OR"},
      {"a NOT CONTAINS 'x'", "filter: at position 6: expected IN or BETWEEN after NOT, found "
                             "keyword CONTAINS"},
      {"t CONTAINS SOME ('x')", "filter: at position 11: expected a literal, ANY or ALL after "
                                "CONTAINS, found identifier \"SOME\""},
      {"t CONTAINS ANY ()", "filter: at position 16: empty list; CONTAINS ANY needs at least "
                            "one value"},
      {"a = 1 AND", "filter: at position 9: unexpected end of input; expected an attribute "
                    "name, '(', NOT, TRUE or FALSE"},
      {"a = 'x", "filter: at position 4: unterminated string literal"},
      // A parse error before a bad token is reported first.
      {") 'x", "filter: at position 0: expected an attribute name, '(', NOT, TRUE or FALSE, "
               "found ')'"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<std::unique_ptr<Node>> n = Parse(c.expr);
    ASSERT_FALSE(n.ok()) << c.expr;
    EXPECT_EQ(n.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(n.status().message(), c.want) << c.expr;
  }
}

TEST(ParserTest, NestingLimit) {
  auto parens = [](int n) { return std::string(n, '(') + "b" + std::string(n, ')'); };
  EXPECT_TRUE(Parse(parens(kMaxNestingDepth)).ok());
  absl::StatusOr<std::unique_ptr<Node>> deep = Parse(parens(kMaxNestingDepth + 1));
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().message(),
            "filter: at position 64: expression nested too deeply (more than 64 levels of "
            "'(' and NOT)");

  std::string nots;
  for (int i = 0; i < kMaxNestingDepth; ++i) nots += "NOT ";
  EXPECT_TRUE(Parse(nots + "b").ok());
  absl::StatusOr<std::unique_ptr<Node>> deep_not = Parse(nots + "NOT b");
  ASSERT_FALSE(deep_not.ok());
  EXPECT_EQ(deep_not.status().message(),
            "filter: at position 256: expression nested too deeply (more than 64 levels of "
            "'(' and NOT)");

  // Far deeper input fails the same way, without exhausting the stack.
  EXPECT_FALSE(Parse(std::string(60000, '(')).ok());
  std::string many_nots;
  for (int i = 0; i < 10000; ++i) many_nots += "NOT ";
  EXPECT_FALSE(Parse(many_nots + "b").ok());
}

TEST(ParserTest, LengthLimit) {
  // A long flat chain is fine up to the limit (n-ary AND keeps it flat)...
  std::string chain = "b";
  while (chain.size() + 6 <= kMaxExpressionBytes) chain += " AND b";
  absl::StatusOr<std::unique_ptr<Node>> ok = Parse(chain);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->kind, NodeKind::kAnd);
  // ...and one byte past it is rejected.
  std::string too_long(kMaxExpressionBytes + 1, ' ');
  absl::StatusOr<std::unique_ptr<Node>> bad = Parse(too_long);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "filter: expression is 65537 bytes; the limit is 65536");
}

// ---------------------------------------------------------------- evaluation

struct EvalCase {
  const char* expr;
  bool want;
};

void ExpectMatches(const AttrRow& row, const std::vector<EvalCase>& cases) {
  for (const EvalCase& c : cases) {
    std::shared_ptr<const Filter> f = MustCompile(c.expr);
    if (f == nullptr) continue;
    EXPECT_EQ(f->Matches(row), c.want) << c.expr;
  }
}

TEST(FilterTest, EveryOperatorAndType) {
  const AttrRow row = MakeRow({.i = 5,
                               .d = 2.5,
                               .b = true,
                               .s = "mango",
                               .tags = StringList{"red", "blue"},
                               .in = 7});
  ExpectMatches(row, {
      // INT64
      {"i = 5", true},      {"i == 5", true},     {"i = 4", false},   {"i != 5", false},
      {"i <> 4", true},     {"i < 6", true},      {"i < 5", false},   {"i <= 5", true},
      {"i <= 4", false},    {"i > 4", true},      {"i > 5", false},   {"i >= 5", true},
      {"i >= 6", false},    {"i = 5.0", true},    {"i = 5.5", false}, {"i != 5.5", true},
      {"i < 5.5", true},    {"i > 4.5", true},    {"i <= 4.9", false}, {"i >= 5.1", false},
      {"i IN (1, 5, 9)", true},  {"i IN (1, 9)", false},   {"i NOT IN (1, 9)", true},
      {"i NOT IN (5)", false},   {"i IN (5.0)", true},     {"i IN (4.5, 5.5)", false},
      {"i BETWEEN 5 AND 9", true}, {"i BETWEEN 1 AND 5", true}, {"i BETWEEN 6 AND 9", false},
      {"i BETWEEN 4.5 AND 5.5", true}, {"i BETWEEN 9 AND 1", false},
      {"i NOT BETWEEN 6 AND 9", true}, {"i NOT BETWEEN 1 AND 9", false},
      {"i NOT BETWEEN 9 AND 1", true},
      // DOUBLE
      {"d = 2.5", true},    {"d != 2.5", false},  {"d < 3", true},    {"d < 2.5", false},
      {"d <= 2.5", true},   {"d > 2", true},      {"d > 2.5", false}, {"d >= 2.5", true},
      {"d = 2", false},     {"d IN (1, 2.5)", true}, {"d IN (2, 3)", false},
      {"d NOT IN (2, 3)", true}, {"d BETWEEN 2 AND 3", true}, {"d BETWEEN 2.5 AND 2.5", true},
      {"d BETWEEN 2.6 AND 3", false}, {"d NOT BETWEEN 2.6 AND 3", true},
      {"d > -1e300", true}, {"d < .5e1", true},
      // BOOL
      {"b", true},          {"NOT b", false},     {"b = TRUE", true}, {"b = false", false},
      {"b != FALSE", true}, {"b <> TRUE", false},
      // STRING
      {"s = \"mango\"", true}, {"s = 'Mango'", false}, {"s != 'apple'", true},
      {"s < 'melon'", true},   {"s <= 'mango'", true}, {"s > 'mangn'", true},
      {"s >= 'mangoes'", false}, {"s IN ('apple', 'mango')", true},
      {"s IN ('apple')", false}, {"s NOT IN ('apple')", true},
      {"s BETWEEN 'm' AND 'n'", true}, {"s BETWEEN 'n' AND 'm'", false},
      {"s NOT BETWEEN 'a' AND 'b'", true},
      // STRING_LIST
      {"tags CONTAINS 'red'", true}, {"tags CONTAINS 'green'", false},
      {"tags CONTAINS ANY ('green', 'blue')", true}, {"tags CONTAINS ANY ('green')", false},
      {"tags CONTAINS ALL ('blue', 'red')", true}, {"tags CONTAINS ALL ('blue', 'green')", false},
      {"tags CONTAINS ALL ('red', 'red')", true},
      // Names that are keywords.
      {"`in` = 7", true}, {"`in` = 8", false},
      {"any", false},     {"NOT any", false},  // `any` is null here: UNKNOWN
      // Constants and logic.
      {"TRUE", true}, {"FALSE", false}, {"NOT FALSE", true},
      {"i = 5 AND s = 'mango'", true}, {"i = 5 AND s = 'x'", false},
      {"i = 4 OR s = 'mango'", true}, {"i = 4 OR s = 'x'", false},
      {"NOT (i = 4 OR s = 'x')", true}, {"i = 4 OR NOT s = 'x' AND b", true},
  });
}

TEST(FilterTest, EmptyTagList) {
  const AttrRow row = MakeRow({.tags = StringList{}});
  ExpectMatches(row, {{"tags CONTAINS 'a'", false},
                      {"tags CONTAINS ANY ('a')", false},
                      {"tags CONTAINS ALL ('a')", false}});
}

TEST(FilterTest, NullSemantics) {
  const AttrRow nulls = MakeRow({});
  ExpectMatches(nulls, {
      {"i = 1", false},        {"i != 1", false},        {"i < 1", false},
      {"i != 1.5", false},     {"i < 1e300", false},     {"i IN (1)", false},
      {"i NOT IN (1)", false}, {"i BETWEEN 0 AND 9", false},
      {"i NOT BETWEEN 0 AND 9", false},
      {"d = 1", false},        {"d != 1", false},        {"d NOT IN (1)", false},
      {"b", false},            {"b = TRUE", false},      {"b = FALSE", false},
      {"b != TRUE", false},    {"s = 'x'", false},       {"s != 'x'", false},
      {"s > ''", false},       {"s NOT IN ('x')", false}, {"s NOT BETWEEN 'a' AND 'b'", false},
      {"tags CONTAINS 'x'", false}, {"tags CONTAINS ANY ('x')", false},
      {"tags CONTAINS ALL ('x')", false},
      // SQL: NOT UNKNOWN is UNKNOWN, and only TRUE matches.
      {"NOT i = 1", false},    {"NOT (i != 1)", false},  {"NOT i NOT IN (1)", false},
      {"NOT b", false},        {"NOT tags CONTAINS 'x'", false},
      {"NOT NOT b", false},    {"NOT (i = 1 OR b)", false}, {"NOT (i = 1 AND b)", false},
      {"i = 1 OR NOT i = 1", false}, {"i = 1 OR i != 1", false},
      {"NOT i BETWEEN 0 AND 9", false}, {"NOT s < 'x'", false},
      // Kleene: UNKNOWN AND FALSE is FALSE, UNKNOWN OR TRUE is TRUE.
      {"NOT (i = 1 AND FALSE)", true}, {"NOT (i = 1 OR TRUE)", false},
      {"i = 1 OR TRUE", true},  {"NOT (b AND i = 1 AND FALSE)", true},
      // IS [NOT] NULL is never UNKNOWN.
      {"i IS NULL", true},      {"i IS NOT NULL", false}, {"NOT i IS NULL", false},
      {"NOT i IS NOT NULL", true}, {"tags IS NULL", true}, {"b is null", true},
      {"i = 1 OR NOT i = 1 OR i IS NULL", true}, {"i != 1 OR i IS NULL", true},
      {"TRUE", true},
  });
  // A row shorter than the schema, or a value of the wrong type, reads as null.
  std::shared_ptr<const Filter> f = MustCompile("i IS NULL AND NOT s IS NOT NULL");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->Matches(AttrRow{}));
  AttrRow wrong = MakeRow({});
  wrong[kI] = std::string("1");
  wrong[kS] = int64_t{1};
  EXPECT_TRUE(f->Matches(wrong));
  EXPECT_FALSE(MustCompile("i != 2")->Matches(wrong));
  EXPECT_FALSE(MustCompile("NOT i = 2")->Matches(wrong));
  EXPECT_FALSE(MustCompile("NOT i = 1 AND NOT s = 'x'")->Matches(AttrRow{}));
  // On values, NOT is plain negation, IS NULL false.
  ExpectMatches(MakeRow({.i = 1, .b = false, .tags = StringList{}}),
                {{"NOT i = 1", false}, {"NOT i = 2", true}, {"NOT b", true},
                 {"NOT tags CONTAINS 'x'", true}, {"tags IS NOT NULL", true},
                 {"i IS NULL", false}, {"NOT (i = 2 OR b)", true}});
}

TEST(FilterTest, IsNullSyntax) {
  EXPECT_EQ(MustCompile("i IS NULL")->ToString(), "i IS NULL");
  EXPECT_EQ(MustCompile("NOT  i  is  not  null")->ToString(), "NOT i IS NOT NULL");
  // IS and NULL are keywords only there: attributes may be named so.
  EXPECT_EQ(CompileError("i IS 1"),
            "filter: at position 5: expected NULL or NOT NULL after IS, found integer 1");
  EXPECT_EQ(CompileError("i IS NOT 1"),
            "filter: at position 9: expected NULL after IS NOT, found integer 1");
  EXPECT_EQ(CompileError("i IS"),
            "filter: at position 4: unexpected end of input; expected NULL or NOT NULL after IS");
  EXPECT_EQ(CompileError("nope IS NULL"), "filter: at position 0: unknown attribute \"nope\"");
}

TEST(FilterTest, PointId) {
  const AttrRow row = MakeRow({.i = 1});
  auto matches = [&](const char* expr, std::string_view id) {
    std::shared_ptr<const Filter> f = MustCompile(expr);
    EXPECT_TRUE(f == nullptr || f->uses_id()) << expr;
    return f != nullptr && f->Matches(row, id);
  };
  EXPECT_TRUE(matches("id = 'p1'", "p1"));
  EXPECT_FALSE(matches("id = 'p1'", "p2"));
  EXPECT_TRUE(matches("id != 'p1'", "p2"));
  EXPECT_TRUE(matches("id IN ('a', 'p2', 'z')", "p2"));
  EXPECT_FALSE(matches("id IN ('a', 'z')", "p2"));
  EXPECT_TRUE(matches("id NOT IN ('a', 'z')", "p2"));
  EXPECT_TRUE(matches("NOT id IN ('a', 'z') AND i = 1", "p2"));
  EXPECT_TRUE(matches("id IS NOT NULL", "p2"));
  EXPECT_FALSE(matches("id IS NULL", "p2"));
  EXPECT_FALSE(MustCompile("i = 1")->uses_id());
  EXPECT_EQ(CompileError("id < 'a'"),
            "filter: at position 3: the point id (`id`) takes only =, !=, IN, NOT IN and IS "
            "[NOT] NULL");
  EXPECT_EQ(CompileError("id = 3"),
            "filter: at position 5: type mismatch: the point id (`id`) needs a string, got an "
            "integer");
  EXPECT_EQ(CompileError("id"),
            "filter: at position 0: the point id (`id`) takes only =, !=, IN, NOT IN and IS "
            "[NOT] NULL");
}

// The three-valued reference: random expressions over a few attributes,
// evaluated by a direct Kleene evaluation of SQL's rules, against Matches on
// rows where each attribute may be missing.
enum class Tri { kFalse, kUnknown, kTrue };
Tri Not(Tri t) { return t == Tri::kTrue ? Tri::kFalse : t == Tri::kFalse ? Tri::kTrue : t; }

struct RefExpr {
  std::string text;
  std::function<Tri(const RowSpec&)> eval;
};

RefExpr RandomExpr(std::mt19937& rng, int depth) {
  const int pick = static_cast<int>(rng() % (depth <= 0 ? 5 : 9));
  const int64_t v = static_cast<int64_t>(rng() % 3);
  auto tri = [](bool b) { return b ? Tri::kTrue : Tri::kFalse; };
  switch (pick) {
    case 0: return {absl::StrCat("i = ", v), [=](const RowSpec& r) {
                      return r.i ? tri(*r.i == v) : Tri::kUnknown; }};
    case 1: return {absl::StrCat("i < ", v), [=](const RowSpec& r) {
                      return r.i ? tri(*r.i < v) : Tri::kUnknown; }};
    case 2: return {"b", [=](const RowSpec& r) { return r.b ? tri(*r.b) : Tri::kUnknown; }};
    case 3: return {absl::StrCat("s NOT IN ('", v, "')"), [=](const RowSpec& r) {
                      return r.s ? tri(*r.s != std::to_string(v)) : Tri::kUnknown; }};
    case 4: return {absl::StrCat(v == 0 ? "i" : v == 1 ? "b" : "s", " IS NULL"),
                    [=](const RowSpec& r) {
                      return tri(v == 0 ? !r.i : v == 1 ? !r.b : !r.s); }};
    case 5: case 6: {
      RefExpr n = RandomExpr(rng, depth - 1);
      return {absl::StrCat("NOT (", n.text, ")"), [=](const RowSpec& r) { return Not(n.eval(r)); }};
    }
    default: {
      RefExpr a = RandomExpr(rng, depth - 1), b = RandomExpr(rng, depth - 1);
      const bool is_and = pick == 7;
      return {absl::StrCat("(", a.text, is_and ? ") AND (" : ") OR (", b.text, ")"),
              [=](const RowSpec& r) {
                const Tri x = a.eval(r), y = b.eval(r);
                if (is_and) return std::min(x, y);  // kFalse < kUnknown < kTrue
                return std::max(x, y);
              }};
    }
  }
}

TEST(FilterTest, ThreeValuedLogicMatchesReference) {
  std::mt19937 rng(11);
  for (int t = 0; t < 3000; ++t) {
    const RefExpr e = RandomExpr(rng, 4);
    std::shared_ptr<const Filter> f = MustCompile(e.text);
    ASSERT_NE(f, nullptr);
    for (int m = 0; m < 27; ++m) {
      RowSpec r;
      if (m % 3) r.i = m % 3 - 1;
      if ((m / 3) % 3) r.b = (m / 3) % 3 == 2;
      if ((m / 9) % 3) r.s = std::to_string((m / 9) % 3);
      ASSERT_EQ(f->Matches(MakeRow(r)), e.eval(r) == Tri::kTrue) << e.text << " row " << m;
    }
  }
}

// An OR of equalities (and IN lists) on one attribute compiles to one IN
// list, so a row costs one binary search rather than one comparison per
// value: 5,000 values used to be 5,000 evaluator nodes visited per row.
TEST(FilterTest, OrOfEqualitiesIsOneInList) {
  std::string expr;
  for (int v = 0; v < 5000; ++v) absl::StrAppend(&expr, v ? " OR " : "", "i = ", 3 * v);
  std::shared_ptr<const Filter> f = MustCompile(expr);
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->nodes().size(), 1u);
  EXPECT_EQ(f->nodes()[f->root()].op, Op::kIntIn);
  for (int64_t x : {0, 3, 4, 14997, 15000, -3}) {
    EXPECT_EQ(f->Matches(MakeRow({.i = x})), x >= 0 && x % 3 == 0 && x < 15000) << x;
  }
  EXPECT_FALSE(f->Matches(MakeRow({})));  // null, as for each equality
  // Mixed: the equalities on i and s merge per attribute, the rest stays.
  f = MustCompile("i = 1 OR s = 'a' OR i IN (2, 3) OR d > 5 OR s = 'b' OR i = 2.5");
  ASSERT_NE(f, nullptr);
  const BoundNode& root = f->nodes()[f->root()];
  ASSERT_EQ(root.op, Op::kOr);
  ASSERT_EQ(root.kids.size(), 3u);
  EXPECT_EQ(f->nodes()[root.kids[0]].ints, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(f->nodes()[root.kids[1]].strs, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f->nodes()[root.kids[2]].op, Op::kDoubleRange);
  ExpectMatches(MakeRow({.i = 3}), {{"i = 1 OR i = 3", true}, {"i = 1 OR i = 2", false},
                                    {"i = 1 OR i != 3", false}, {"NOT (i = 1 OR i = 3)", false},
                                    {"NOT (i = 1 OR i = 4)", true},
                                    {"s = 'x' OR i = 1 OR s = 'y' OR i = 3", true}});
  // Errors still point at the offending literal.
  EXPECT_EQ(CompileError("i = 1 OR s = 'a' OR i = 'x'"),
            "filter: at position 24: type mismatch: INT64 attribute \"i\" needs a number, got "
            "a string");
  // The normalized text is the expression as written.
  EXPECT_EQ(MustCompile("i = 1 OR i = 2")->ToString(), "i = 1 OR i = 2");
}

// An OR of many branches that each require i = v (ANDed with more) checks a
// row against the branches of its own i only, with the same results as
// checking every branch, nulls and wrong types included.
TEST(FilterTest, OrOfKeyedBranchesDispatchesOnTheKey) {
  std::string expr;
  for (int v = 0; v < 200; ++v) {
    absl::StrAppend(&expr, v ? " OR " : "", "(i = ", v % 150, " AND s = 's", v, "')");
  }
  absl::StrAppend(&expr, " OR (d > 10 AND b) OR (s = 'k' AND i IN (500, 501))");
  std::shared_ptr<const Filter> f = MustCompile(expr);
  ASSERT_NE(f, nullptr);
  const BoundNode& root = f->nodes()[f->root()];
  ASSERT_EQ(root.op, Op::kOr);
  ASSERT_NE(root.dispatch, nullptr);
  EXPECT_EQ(root.dispatch->attr, kI);
  EXPECT_EQ(root.dispatch->always.size(), 1u);  // (d > 10 AND b)
  auto reference = [](const RowSpec& r) {
    for (int v = 0; v < 200; ++v) {
      if (r.i == v % 150 && r.s == "s" + std::to_string(v)) return true;
    }
    if (r.d && *r.d > 10 && r.b && *r.b) return true;
    return r.s == "k" && r.i && (*r.i == 500 || *r.i == 501);
  };
  std::mt19937 rng(5);
  for (int t = 0; t < 20000; ++t) {
    RowSpec r;
    if (rng() % 8) r.i = static_cast<int64_t>(rng() % 160) + (rng() % 50 == 0 ? 350 : 0);
    if (rng() % 8) r.s = rng() % 10 == 0 ? "k" : "s" + std::to_string(rng() % 210);
    if (rng() % 4) r.d = static_cast<double>(rng() % 20);
    if (rng() % 4) r.b = rng() % 2 == 0;
    ASSERT_EQ(f->Matches(MakeRow(r)), reference(r)) << "row " << t;
  }
  AttrRow wrong = MakeRow({.s = std::string("s3")});
  wrong[kI] = std::string("3");  // wrong type: null
  EXPECT_FALSE(f->Matches(wrong));
}

// Inputs echoed in errors are cut to a few hundred bytes, saying so.
TEST(FilterTest, LongNamesAreCutInErrors) {
  const std::string name(60000, 'x');
  const std::string err = CompileError(name + " = 1");
  EXPECT_LT(err.size(), 400u) << err.substr(0, 400);
  EXPECT_NE(err.find("unknown attribute \"xxx"), std::string::npos) << err;
  EXPECT_NE(err.find("...(60000 bytes, cut)\""), std::string::npos) << err;
  const std::string syntax = CompileError("i = 1 " + name);
  EXPECT_LT(syntax.size(), 400u);
  EXPECT_NE(syntax.find("(60000 bytes, cut)"), std::string::npos) << syntax;
}

TEST(FilterTest, ExactMixedNumericComparisons) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  // 2^53 + 1 is not a double; naive conversion would call these equal.
  ExpectMatches(MakeRow({.i = 9007199254740993}),
                {{"i > 9007199254740992.0", true},
                 {"i = 9007199254740992.0", false},
                 {"i != 9007199254740992.0", true},
                 {"i IN (9007199254740992.0)", false},
                 {"i BETWEEN 9007199254740992.0 AND 9007199254740992.0", false}});
  ExpectMatches(MakeRow({.d = 9007199254740992.0}),
                {{"d < 9007199254740993", true},
                 {"d <= 9007199254740993", true},
                 {"d = 9007199254740993", false},
                 {"d != 9007199254740993", true},
                 {"d > 9007199254740991", true},
                 {"d = 9007199254740992", true},
                 {"d IN (9007199254740993)", false},
                 {"d BETWEEN 9007199254740993 AND 9007199254740995", false}});
  ExpectMatches(MakeRow({.i = kMax}),
                {{"i < 9223372036854775808.0", true},
                 {"i < 1e19", true},
                 {"i >= 9223372036854775808.0", false},
                 {"i = 9223372036854775807", true},
                 {"i > 9223372036854775807", false},
                 {"i BETWEEN 0 AND 1e300", true}});
  ExpectMatches(MakeRow({.i = kMin}),
                {{"i < -9223372036854775808", false},
                 {"i <= -9223372036854775808.0", true},
                 {"i = -9223372036854775808.0", true},
                 {"i > -1e19", true},
                 {"i < -1e19", false},
                 {"i BETWEEN -1e300 AND -9223372036854775808", true}});
  ExpectMatches(MakeRow({.d = -0.0}), {{"d = 0", true}, {"d = 0.0", true}, {"d < 0", false},
                                       {"d IN (0)", true}, {"d >= 0.0", true}});
  ExpectMatches(MakeRow({.d = 1e-320}), {{"d > 0", true}, {"d > 0.0", true}});
}

TEST(FilterTest, ReferencedAttributes) {
  std::shared_ptr<const Filter> f =
      MustCompile("tags CONTAINS 'a' OR (i = 1 AND s = 'x') OR i > 3 OR TRUE");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->referenced_attributes(), (std::vector<int>{kI, kS, kTags}));
  EXPECT_TRUE(MustCompile("TRUE")->referenced_attributes().empty());
}

TEST(FilterTest, CompileErrors) {
  struct Case {
    const char* expr;
    const char* want;
  } cases[] = {
      {"s = \"abc", "filter: at position 4: unterminated string literal"},
      {"nope = 1", "filter: at position 0: unknown attribute \"nope\""},
      {"i = 1 AND Nope", "filter: at position 10: unknown attribute \"Nope\""},
      {"i = \"x\"", "filter: at position 4: type mismatch: INT64 attribute \"i\" needs a "
                    "number, got a string"},
      {"d > TRUE", "filter: at position 4: type mismatch: DOUBLE attribute \"d\" needs a "
                   "number, got a boolean"},
      {"s = 1", "filter: at position 4: type mismatch: STRING attribute \"s\" needs a string, "
                "got an integer"},
      {"b = 1", "filter: at position 4: type mismatch: BOOL attribute \"b\" needs TRUE or "
                "FALSE, got an integer"},
      {"i IN (1, 'x')", "filter: at position 9: type mismatch: INT64 attribute \"i\" needs a "
                        "number, got a string"},
      {"i BETWEEN 1 AND 'z'", "filter: at position 16: type mismatch: INT64 attribute \"i\" "
                              "needs a number, got a string"},
      {"tags CONTAINS 1", "filter: at position 14: type mismatch: STRING_LIST attribute "
                          "\"tags\" needs a string, got an integer"},
      {"b < TRUE", "filter: at position 2: operator < is not allowed on BOOL attribute \"b\"; "
                   "use = or !="},
      {"tags = 'a'", "filter: at position 5: operator = is not allowed on STRING_LIST "
                     "attribute \"tags\"; use CONTAINS"},
      {"tags >= 'a'", "filter: at position 5: operator >= is not allowed on STRING_LIST "
                      "attribute \"tags\"; use CONTAINS"},
      {"s CONTAINS 'x'", "filter: at position 2: CONTAINS is not allowed on STRING attribute "
                         "\"s\"; it needs a STRING_LIST attribute"},
      {"b IN (TRUE)", "filter: at position 2: IN is not allowed on BOOL attribute \"b\"; use "
                      "= or !="},
      {"tags NOT IN ('a')", "filter: at position 5: NOT IN is not allowed on STRING_LIST "
                            "attribute \"tags\"; use CONTAINS ANY"},
      {"b BETWEEN FALSE AND TRUE", "filter: at position 2: BETWEEN is not allowed on BOOL "
                                   "attribute \"b\""},
      {"i", "filter: at position 0: INT64 attribute \"i\" cannot stand alone as a condition; "
            "only a BOOL attribute can"},
      {"(i = 1", "filter: at position 6: unexpected end of input; expected ')'"},
      {"i = 1 )", "filter: at position 6: expected AND, OR or end of input, found ')'"},
      {"i IN ()", "filter: at position 6: empty list; IN needs at least one value"},
      {"`IN` = 7", "filter: at position 0: unknown attribute \"IN\""},  // case-sensitive
      {"in = 1", "filter: at position 0: expected an attribute name, '(', NOT, TRUE or FALSE, "
                 "found keyword IN"},
  };
  for (const Case& c : cases) EXPECT_EQ(CompileError(c.expr), c.want) << c.expr;
  EXPECT_EQ(CompileError(std::string(70, '(') + "b" + std::string(70, ')')),
            "filter: at position 64: expression nested too deeply (more than 64 levels of "
            "'(' and NOT)");
}

TEST(FilterTest, ToStringNormalizes) {
  struct Case {
    const char* expr;
    const char* want;
  } cases[] = {
      {"i>=1 and not(b) or s<>'x'", "i >= 1 AND NOT b OR s != \"x\""},
      {"(i=1 OR i=2) AND ((b))", "(i = 1 OR i = 2) AND b"},
      {"NOT (i = 1)", "NOT i = 1"},
      {"not (i = 1 and b)", "NOT (i = 1 AND b)"},
      {"i NOT IN (3,1 , 2)", "i NOT IN (3, 1, 2)"},
      {"d between -1 and 2.50", "d BETWEEN -1 AND 2.5"},
      {"d = 2e0", "d = 2.0"},
      {"d = -0.0", "d = -0.0"},
      {"d < 1e300", "d < 1e+300"},
      {"s = 'a\\'b\"c\\\\d\\n'", "s = \"a'b\\\"c\\\\d\\n\""},
      {"tags contains any ('a','b')", "tags CONTAINS ANY (\"a\", \"b\")"},
      {"`in` = 1 AND `any` AND any", "`in` = 1 AND any AND any"},
      {"true or FALSE", "TRUE OR FALSE"},
      {"b = true", "b = TRUE"},
  };
  for (const Case& c : cases) {
    std::shared_ptr<const Filter> f = MustCompile(c.expr);
    ASSERT_NE(f, nullptr) << c.expr;
    EXPECT_EQ(f->ToString(), c.want) << c.expr;
  }
}

TEST(FilterTest, ToStringRoundTrip) {
  const char* exprs[] = {
      "i = 1 OR d < 2.5 AND NOT (b OR s >= 'q')",
      "NOT NOT NOT b",
      "((i = 1 OR i = 2) AND (d = 1 OR d = 2)) OR NOT (s = 'x' AND b)",
      "i NOT BETWEEN 1e3 AND -5 AND d IN (0.1, 0.2, 0.30000000000000004)",
      "tags CONTAINS ALL ('x', 'y\\tz') OR tags CONTAINS \"\\\\\"",
      "d = 1.7976931348623157e308 OR d = 5e-324 OR d = -2.2250738585072014e-308",
      "i = -9223372036854775808 OR i = 9223372036854775807",
      "`in` IN (1) AND NOT `any`",
      "TRUE AND (FALSE OR b)",
  };
  for (const char* e : exprs) {
    std::shared_ptr<const Filter> f1 = MustCompile(e);
    ASSERT_NE(f1, nullptr) << e;
    std::shared_ptr<const Filter> f2 = MustCompile(f1->ToString());
    ASSERT_NE(f2, nullptr) << f1->ToString();
    EXPECT_EQ(f2->ToString(), f1->ToString()) << e;
  }
  // The printed form never nests deeper than the input, so a filter at the
  // depth limit still reparses.
  std::string deep;
  for (int k = 0; k < 32; ++k) deep += "NOT (";
  deep += "i = 1";
  for (int k = 0; k < 32; ++k) deep += ")";
  std::shared_ptr<const Filter> f = MustCompile(deep);
  ASSERT_NE(f, nullptr);
  EXPECT_NE(MustCompile(f->ToString()), nullptr);
}

// Random rows (each value null with probability 1/4) against reference
// lambdas written directly from the semantics.
TEST(FilterTest, MatchesAgreesWithReferenceOnRandomRows) {
  std::mt19937_64 rng(42);
  auto coin = [&](int n) { return static_cast<int>(rng() % n); };
  const char* words[] = {"a", "b", "c", "d", "e"};
  std::vector<AttrRow> rows;
  for (int r = 0; r < 400; ++r) {
    RowSpec spec;
    if (coin(4)) spec.i = coin(21) - 10;
    if (coin(4)) spec.d = (coin(41) - 20) / 4.0;
    if (coin(4)) spec.b = coin(2) == 1;
    if (coin(4)) spec.s = words[coin(5)];
    if (coin(4)) {
      StringList tags;
      for (int k = coin(4); k > 0; --k) tags.push_back(words[coin(5)]);
      spec.tags = tags;
    }
    rows.push_back(MakeRow(spec));
  }
  using Row = const AttrRow&;
  auto I = [](Row r) { return std::get_if<int64_t>(&r[kI]); };
  auto D = [](Row r) { return std::get_if<double>(&r[kD]); };
  auto B = [](Row r) { return std::get_if<bool>(&r[kB]); };
  auto Str = [](Row r) { return std::get_if<std::string>(&r[kS]); };
  auto T = [](Row r) { return std::get_if<StringList>(&r[kTags]); };
  auto has = [](const StringList* t, const std::string& w) {
    return t != nullptr && std::find(t->begin(), t->end(), w) != t->end();
  };
  struct Case {
    const char* expr;
    std::function<bool(Row)> ref;
  };
  const std::vector<Case> cases = {
      {"i > 2 AND d <= 1.5",
       [&](Row r) { return I(r) && *I(r) > 2 && D(r) && *D(r) <= 1.5; }},
      {"i < -3 OR NOT b",
       [&](Row r) { return (I(r) && *I(r) < -3) || (B(r) && !*B(r)); }},  // NOT null: UNKNOWN
      {"i != 0 AND (s IN ('a', 'c') OR tags CONTAINS 'e')",
       [&](Row r) {
         return I(r) && *I(r) != 0 &&
                ((Str(r) && (*Str(r) == "a" || *Str(r) == "c")) || has(T(r), "e"));
       }},
      {"NOT (i BETWEEN -2 AND 4) AND d NOT BETWEEN -1 AND 1",
       [&](Row r) {
         return I(r) && !(*I(r) >= -2 && *I(r) <= 4) && D(r) && (*D(r) < -1 || *D(r) > 1);
       }},
      {"i < 2.5 AND i >= -1.5 OR d = 2",
       [&](Row r) { return (I(r) && *I(r) <= 2 && *I(r) >= -1) || (D(r) && *D(r) == 2.0); }},
      {"tags CONTAINS ANY ('a', 'b') AND NOT tags CONTAINS ALL ('a', 'b')",
       [&](Row r) {
         return (has(T(r), "a") || has(T(r), "b")) && T(r) && !(has(T(r), "a") && has(T(r), "b"));
       }},
      {"s > 'b' AND s <= 'd' OR b = FALSE",
       [&](Row r) { return (Str(r) && *Str(r) > "b" && *Str(r) <= "d") || (B(r) && !*B(r)); }},
      {"i NOT IN (1, 2, 3) OR d IN (0.5, -0.25) OR NOT s != 'a'",
       [&](Row r) {
         return (I(r) && *I(r) != 1 && *I(r) != 2 && *I(r) != 3) ||
                (D(r) && (*D(r) == 0.5 || *D(r) == -0.25)) || (Str(r) && *Str(r) == "a");
       }},
  };
  for (const Case& c : cases) {
    std::shared_ptr<const Filter> f = MustCompile(c.expr);
    ASSERT_NE(f, nullptr);
    int matched = 0;
    for (size_t k = 0; k < rows.size(); ++k) {
      const bool want = c.ref(rows[k]);
      ASSERT_EQ(f->Matches(rows[k]), want) << c.expr << " row " << k;
      matched += want;
    }
    // Each expression should split the rows, or the check proves little.
    EXPECT_GT(matched, 0) << c.expr;
    EXPECT_LT(matched, static_cast<int>(rows.size())) << c.expr;
  }
}

TEST(FilterTest, ConcurrentMatches) {
  std::shared_ptr<const Filter> f = MustCompile("i > 0 AND s IN ('a', 'b')");
  ASSERT_NE(f, nullptr);
  const AttrRow yes = MakeRow({.i = 1, .s = "a"});
  const AttrRow no = MakeRow({.i = 1, .s = "c"});
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 20000; ++k) bad[t] += !f->Matches(yes) + f->Matches(no);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(bad, std::vector<int>(4, 0));
}

// Random token soup must compile or fail cleanly, never crash.
TEST(FilterTest, RandomInputNeverCrashes) {
  const char* pieces[] = {"i", "d", "b", "s", "tags", "(", ")", "NOT ", " AND ", " OR ",
                          "=", "<", ">=", "!=", " IN ", " BETWEEN ", " CONTAINS ", "ANY",
                          "ALL", ",", "1", "-2.5", "'x'", "\"y", "TRUE", "1e400", "\\", "`"};
  std::mt19937 rng(7);
  const AttrRow row = MakeRow({.i = 1, .d = 1, .b = true, .s = "x", .tags = StringList{"x"}});
  int compiled = 0;
  for (int n = 0; n < 20000; ++n) {
    std::string expr;
    for (int k = rng() % 12; k > 0; --k) expr += pieces[rng() % std::size(pieces)];
    absl::StatusOr<std::shared_ptr<const Filter>> f = Filter::Compile(expr, S());
    if (!f.ok()) {
      EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << expr;
      continue;
    }
    ++compiled;
    (*f)->Matches(row);
    absl::StatusOr<std::shared_ptr<const Filter>> again = Filter::Compile((*f)->ToString(), S());
    ASSERT_TRUE(again.ok()) << expr << " -> " << (*f)->ToString();
    EXPECT_EQ((*again)->ToString(), (*f)->ToString());
    EXPECT_EQ((*again)->Matches(row), (*f)->Matches(row));
  }
  EXPECT_GT(compiled, 0);
}

}  // namespace
}  // namespace quiver::filter
