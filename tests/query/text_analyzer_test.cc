// The text analyzer (query/text/analyzer.h): word breaking, case folding,
// the Xapian-compatible joining rules, stemming, stop words, term
// frequencies, the fixed term ids, and concurrent use of one Analyzer.
#include "query/text/analyzer.h"

#include <string>
#include <thread>
#include <vector>

#include "tests/common/test_util.h"

namespace quiver::text {
namespace {

using ::quiver::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

std::unique_ptr<Analyzer> Make(AnalyzerOptions o = {}) {
  auto a = Analyzer::Create(o);
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? *std::move(a) : nullptr;
}

std::unique_ptr<Analyzer> Unstemmed() {
  AnalyzerOptions o;
  o.language = "none";
  return Make(o);
}

std::vector<std::string> Terms(const Analyzer& a, std::string_view text) {
  std::vector<std::string> terms;
  const size_t n = a.Analyze(text, &terms);
  EXPECT_EQ(n, terms.size());
  return terms;
}

TEST(TextAnalyzerTest, EmptyAndPunctuationOnly) {
  auto a = Make();
  EXPECT_THAT(Terms(*a, ""), IsEmpty());
  EXPECT_THAT(Terms(*a, " \t\n"), IsEmpty());
  EXPECT_THAT(Terms(*a, "!?.,;:-- ... (){}[] \"' / \\ * + # & @ $ %"), IsEmpty());
  EXPECT_EQ(a->TermFrequencies("...").length, 0u);
  EXPECT_THAT(a->TermFrequencies("...").terms, IsEmpty());
}

TEST(TextAnalyzerTest, PunctuationSeparatesWords) {
  auto a = Unstemmed();
  EXPECT_THAT(Terms(*a, "Hello, world! (foo) [bar] {baz}... qux--quux"),
              ElementsAre("hello", "world", "foo", "bar", "baz", "qux", "quux"));
  // Unlike ICU alone, '.' and ':' between letters split, as in Xapian.
  EXPECT_THAT(Terms(*a, "node.js e.g. foo:bar x86-64"),
              ElementsAre("node", "js", "e", "g", "foo", "bar", "x86", "64"));
}

TEST(TextAnalyzerTest, XapianJoiningRules) {
  auto a = Unstemmed();
  // Apostrophes (U+2019 becomes ') and '&' inside words; initials; C++.
  EXPECT_THAT(
      Terms(*a, "don't it\u2019s AT&T U.S.A. C++ C# F#. x86_64 rock'n'roll"),
      ElementsAre("don't", "it's", "at&t", "usa", "c++", "c#", "f#", "x86_64", "rock'n'roll"));
  // Trailing apostrophes and '+'s followed by a word character are not kept.
  EXPECT_THAT(Terms(*a, "dogs' fish+chips"), ElementsAre("dogs", "fish", "chips"));
  // Digits: , . ; join digits to digits; an apostrophe joins a digit to a letter only.
  EXPECT_THAT(Terms(*a, "3.14 1,000.5 v1.2.3 1'000 90's 3.x"),
              ElementsAre("3.14", "1,000.5", "v1.2.3", "1", "000", "90's", "3", "x"));
  // A zero-width space inside a word vanishes.
  EXPECT_THAT(Terms(*a, "zero\u200bwidth"), ElementsAre("zerowidth"));
  // Word characters ICU gives no word status.
  EXPECT_THAT(Terms(*a, "a _ b"), ElementsAre("a", "_", "b"));
}

TEST(TextAnalyzerTest, NumbersOtherThanDigitsStayInsideWords) {
  // ICU gives a superscript or a vulgar fraction no word status and breaks
  // around it; they are numbers, so Xapian (and this analyzer) keep the
  // word whole.
  auto a = Unstemmed();
  EXPECT_THAT(Terms(*a, "I\u00b2C bus and GOsa\u00b2 tools, ROM\u00b2 and x\u00b3y and \u00bdcup"),
              ElementsAre("i\u00b2c", "bus", "and", "gosa\u00b2", "tools", "rom\u00b2", "and",
                          "x\u00b3y", "and", "\u00bdcup"));
  EXPECT_THAT(Terms(*a, "\u00b2 alone, m\u00b2"), ElementsAre("\u00b2", "alone", "m\u00b2"));
}

TEST(TextAnalyzerTest, UnicodeCaseFolding) {
  auto a = Unstemmed();
  EXPECT_THAT(Terms(*a, "Café NAÏVE Ångström"), ElementsAre("café", "naïve", "ångström"));
  // Full folding: ß and SS fold alike, so they match.
  EXPECT_THAT(Terms(*a, "Straße STRASSE"), ElementsAre("strasse", "strasse"));
  // Greek: final and medial sigma fold alike.
  EXPECT_THAT(Terms(*a, "ΣΊΣΥΦΟΣ σίσυφος"), ElementsAre("σίσυφοσ", "σίσυφοσ"));
}

TEST(TextAnalyzerTest, IdeographsAreSegmentedByIcu) {
  auto a = Unstemmed();
  // ICU's dictionary splits unspaced Chinese into words; which words depends
  // on its dictionary, so only that it splits and loses nothing is checked.
  const std::string text = "北京大学的学生";
  std::vector<std::string> terms = Terms(*a, text);
  EXPECT_GT(terms.size(), 1u);
  std::string joined;
  for (const std::string& t : terms) joined += t;
  EXPECT_EQ(joined, text);
  // Katakana is one word; a change of script ends a word.
  EXPECT_THAT(Terms(*a, "テキスト"), ElementsAre("テキスト"));
  EXPECT_THAT(Terms(*a, "abc漢字"), ElementsAre("abc", "漢字"));
}

TEST(TextAnalyzerTest, LongTokensDropped) {
  auto a = Unstemmed();
  const std::string max(64, 'a');
  const std::string over(65, 'b');
  std::vector<std::string> terms;
  EXPECT_EQ(a->Analyze("short " + max + " " + over + " end", &terms), 3u);
  EXPECT_THAT(terms, ElementsAre("short", max, "end"));
  // Measured in bytes after folding: 33 two-byte letters are 66 bytes.
  std::string accented;
  for (int i = 0; i < 33; ++i) accented += "É";
  EXPECT_THAT(Terms(*a, accented + " x"), ElementsAre("x"));

  AnalyzerOptions o;
  o.language = "none";
  o.max_token_bytes = 3;
  EXPECT_THAT(Terms(*Make(o), "a abc abcd"), ElementsAre("a", "abc"));
}

TEST(TextAnalyzerTest, LongTextIsAnalysedInPieces) {
  auto a = Unstemmed();
  // Well past the 64 KiB a worker analyses at once; no word may be cut.
  std::string text;
  std::vector<std::string> want;
  for (int i = 0; text.size() < 300 * 1024; ++i) {
    want.push_back("word" + std::to_string(i));
    text += "Word" + std::to_string(i) + (i % 7 == 0 ? ".\n" : " ");
  }
  EXPECT_EQ(Terms(*a, text), want);
}

TEST(TextAnalyzerTest, InvalidUtf8IsASeparator) {
  auto a = Unstemmed();
  // Two bytes that start no character, then a sequence cut short.
  const std::string text = std::string("abc\xff\xfe") + "def \xc3";
  EXPECT_THAT(Terms(*a, text), ElementsAre("abc", "def"));
}

TEST(TextAnalyzerTest, EnglishStemming) {
  auto a = Make();
  EXPECT_THAT(Terms(*a, "running runs connections Connected"),
              ElementsAre("run", "run", "connect", "connect"));
  // Possessives go: Snowball English strips 's.
  EXPECT_THAT(Terms(*a, "O'Reilly's dog's"), ElementsAre("o'reilli", "dog"));
}

TEST(TextAnalyzerTest, NoStemming) {
  AnalyzerOptions o;
  o.language = "none";
  EXPECT_THAT(Terms(*Make(o), "running connections"), ElementsAre("running", "connections"));
  o.language = "english";
  o.stem = false;
  EXPECT_THAT(Terms(*Make(o), "Running connections"), ElementsAre("running", "connections"));
}

TEST(TextAnalyzerTest, FrenchStemming) {
  AnalyzerOptions o;
  o.language = "french";
  EXPECT_THAT(Terms(*Make(o), "Continuellement les chevaux mangeaient"),
              ElementsAre("continuel", "le", "cheval", "mang"));
}

TEST(TextAnalyzerTest, UnknownLanguageNamesTheKnownOnes) {
  AnalyzerOptions o;
  o.language = "klingon";
  auto a = Analyzer::Create(o);
  EXPECT_THAT(a, StatusIs(absl::StatusCode::kInvalidArgument, "klingon"));
  EXPECT_THAT(a, StatusIs(absl::StatusCode::kInvalidArgument, "english"));
  EXPECT_THAT(a, StatusIs(absl::StatusCode::kInvalidArgument, "french"));
  EXPECT_THAT(a, StatusIs(absl::StatusCode::kInvalidArgument, "none"));
  // ISO codes, which libstemmer also takes, are refused: one name per language.
  o.language = "en";
  EXPECT_THAT(Analyzer::Create(o), StatusIs(absl::StatusCode::kInvalidArgument));
  o.language = "english";
  o.max_token_bytes = 0;
  EXPECT_THAT(Analyzer::Create(o), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TextAnalyzerTest, StopWords) {
  const std::string text = "The quick fox isn't in the house, it\u2019s here";
  EXPECT_THAT(Terms(*Make(), text),
              ElementsAre("the", "quick", "fox", "isn't", "in", "the", "hous", "it", "here"));
  AnalyzerOptions o;
  o.stop_words = true;
  auto a = Make(o);
  EXPECT_THAT(Terms(*a, text), ElementsAre("quick", "fox", "hous"));
  // Stop words do not count towards the length.
  EXPECT_EQ(a->TermFrequencies(text).length, 3u);

  o.language = "french";
  EXPECT_THAT(Analyzer::Create(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                            "stop words are available for english only"));
  o.language = "none";
  EXPECT_THAT(Analyzer::Create(o), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TextAnalyzerTest, TermFrequencies) {
  auto a = Make();
  Analyzer::TermCounts tf = a->TermFrequencies("Run, runs! Running connections; RUN");
  EXPECT_EQ(tf.length, 5u);
  EXPECT_THAT(tf.terms, UnorderedElementsAre(Pair(TermId("run"), 4u), Pair(TermId("connect"), 1u)));
  for (size_t i = 1; i < tf.terms.size(); ++i) {
    EXPECT_LT(tf.terms[i - 1].first, tf.terms[i].first);
  }
  EXPECT_EQ(a->TermFrequencies("").length, 0u);
}

TEST(TextAnalyzerTest, TermIdIsFixed) {
  // XXH3_64bits, seed 0: the empty input is xxHash's published test vector.
  // These values are ids in stored sparse vectors: they must never change.
  EXPECT_EQ(TermId(""), 0x2d06800538d394c2u);
  EXPECT_EQ(TermId("run"), 0xafc3b56278c6744eu);
  EXPECT_EQ(TermId("connect"), 0x8f97e838ca1c33c9u);
}

TEST(TextAnalyzerTest, ConcurrentUseMatchesSingleThreaded) {
  AnalyzerOptions o;
  o.stop_words = true;
  auto a = Make(o);
  constexpr int kThreads = 8;
  std::vector<std::string> texts;
  for (int t = 0; t < kThreads; ++t) {
    std::string s;
    for (int i = 0; i < 200; ++i) {
      s += "Thread" + std::to_string(t) + " connections running Straße, it's C++ " +
           std::to_string(i * t) + " 北京大学 ";
    }
    texts.push_back(s);
  }
  std::vector<std::vector<std::string>> want;
  for (const std::string& s : texts) want.push_back(Terms(*a, s));

  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 50; ++rep) {
        const std::string& s = texts[(t + rep) % kThreads];
        std::vector<std::string> got;
        a->Analyze(s, &got);
        if (got != want[(t + rep) % kThreads]) ++mismatches[t];
        if (a->TermFrequencies(s).length != got.size()) ++mismatches[t];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace quiver::text
