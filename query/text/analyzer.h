// Text analysis for BM25 full-text fields: a UTF-8 string in, its terms out
// (the words, case-folded and stemmed), and a stable 64-bit id per term,
// which is a text field's sparse dimension.
//
// The pipeline, per word:
//   1. Words are ICU's (UAX #29 word boundaries, ICU's root rules with its
//      dictionaries for Chinese, Japanese, Thai etc.): the segments whose
//      rule status is letter, number, kana or ideograph.
//   2. Within and between those segments, Xapian 1.4's TermGenerator rules
//      decide what is one term, so that BM25 rankings agree with Xapian's
//      (measured: see "Differences from Xapian" below):
//        - a word splits at every character that is not a letter, mark,
//          number or connector ('_'), except: an apostrophe (', U+2019 and
//          U+201B, all kept as ') or '&', U+00B7, U+05F4, U+2027 between two
//          word characters; between two digits, instead, one of , . ; and
//          a few others of Unicode's MidNum class ("3.14", "1,000"; "1'000"
//          splits). Zero-width spaces and joiners between word characters
//          vanish. So "don't", "AT&T", "90's" and "x86_64" are one term
//          each; "example.com", "e.g." and "x86-64" are two; "U.S.A."
//          (ASCII capitals with dots) is "usa";
//        - up to three '+' or '#' right after a word, not followed by a
//          word character, belong to it: "C++", "C#";
//        - segments ICU gives no word status but that start with a word
//          character are words too: a lone '_', "²", "½"; and such a
//          segment joins the word characters it touches, as ICU breaks
//          around it where Xapian does not: "I²C", "m²", "½cup".
//   3. Full Unicode case folding (ICU, default mappings: "Straße" gives
//      "strasse", final sigma folds to sigma).
//   4. Words longer than `max_token_bytes` after folding are dropped
//      (Xapian drops those over 64 bytes too); with stop_words, words of
//      Snowball's English stop list (compared before stemming) are dropped.
//   5. The Snowball stemmer of `language` (libstemmer), applied to every
//      word, digits or not (Xapian's STEM_ALL, which indexes stems only,
//      unprefixed).
// Every word kept counts towards the document's length, stop words and
// dropped long words do not.
//
// Differences from Xapian 1.4 (TermGenerator, STEM_ALL, Stem("english")),
// measured on 883 Debian package descriptions (all 56,760 terms agree),
// 51,032 changelog lines and 6,867 copyright-file paragraphs (99.99% of
// 1.16 M terms agree); what differs, all outside plain English prose:
//   - case folding: ICU's full folding maps "ß" to "ss", final "ς" to "σ",
//     "µ" (micro) to "μ", "ﬁ" to "fi"; Xapian's per-character lower-casing
//     keeps them;
//   - scripts written without spaces: ICU splits Chinese, Japanese, Thai,
//     Khmer etc. into dictionary words (a Chinese name into its characters)
//     and breaks where the script changes ("abc漢字" is two words); Xapian
//     1.4 without FLAG_CJK_NGRAM keeps a whole run as one term (dropped when
//     over 64 bytes);
//   - Unicode versions: ICU 72 knows Unicode 15, Xapian 1.4.22 an older
//     one, so a letter added since is a word here and a separator there;
//   - a stray combining mark or variation selector with no letter before
//     it: Xapian indexes it as a term of its own, this analyzer drops it.
// On the 63,905 long descriptions of Debian's packages (bench/text_bench),
// 63,872 documents get the same terms from both and every one of 1,000
// package summaries as a query does.
// Xapian's STEM_SOME (its default) indexes the unstemmed word and a
// "Z"-prefixed stem for words starting with a letter; our terms are its
// Z terms without the prefix, except that words starting with a digit are
// stemmed here too (as STEM_ALL does; Snowball leaves most of them alone).
//
// Invalid UTF-8 is read as U+FFFD, a separator. Text of any length is
// taken: it is analysed in pieces of about 64 KiB cut after a whitespace
// character (so no word is cut; a piece with no whitespace at all, which
// only a run of unspaced script or one huge token makes, is cut at a
// character boundary).
//
// Thread-safety: an Analyzer is immutable after Create and every method is
// const and safe to call from any number of threads at once. ICU's break
// iterators and Snowball's stemmers keep per-call state, so each Analyzer
// keeps a pool of them (with their buffers and a cache of recent stems),
// one per thread analysing at that moment: a call takes one from the pool
// under a mutex and gives it back at the end, so the pool grows to the most
// calls ever in flight at once (each well under 1 MB), and is freed with the
// Analyzer. Measured: taking and returning a worker costs well under 0.1 µs
// a call, where cloning a break iterator and opening a stemmer per call cost
// ~0.7 µs, about as much as analysing a 4-word query (~1 µs).
//
// Speed, one thread on a shared 2-core VM: 3-5 M words/s (20-30 MB/s of
// English text) when the machine is idle, 2-3 M under load; ~40% of it is
// ICU's word breaking, ~10% stemming (the stem cache answers most words).
//
// Errors: only Create fails (INVALID_ARGUMENT for bad options); analysis
// does not.
#ifndef QUIVER_QUERY_TEXT_ANALYZER_H_
#define QUIVER_QUERY_TEXT_ANALYZER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"

namespace quiver::text {

struct AnalyzerOptions {
  // A Snowball algorithm, as sb_stemmer_list() names it ("english",
  // "french", "porter", ...), or "none": no stemming and no stop words.
  std::string language = "english";
  // Off: words are case-folded only (the language still picks stop words).
  bool stem = true;
  // Drop the language's stop words. Only "english" has a list (Snowball's).
  bool stop_words = false;
  // Words longer than this, in UTF-8 bytes after case folding, are dropped:
  // they are almost always not words (base64, hashes, URLs without
  // punctuation) and would each make a dimension of their own. >= 1.
  size_t max_token_bytes = 64;
};

class Analyzer {
 public:
  // INVALID_ARGUMENT for a language Snowball does not know (the message
  // lists those it does), stop words for a language other than english, or
  // max_token_bytes 0.
  static absl::StatusOr<std::unique_ptr<Analyzer>> Create(const AnalyzerOptions& options);

  ~Analyzer();
  Analyzer(const Analyzer&) = delete;
  Analyzer& operator=(const Analyzer&) = delete;

  // Appends the terms of `text` to *terms in text order, one per word kept
  // (a term may repeat), and returns how many it appended: the document
  // length BM25 uses.
  size_t Analyze(std::string_view text, std::vector<std::string>* terms) const;

  // Calls emit(term) for each term, in order, without allocating a string
  // per term; the view is valid only during the call. Returns the count.
  size_t ForEachTerm(std::string_view text, absl::FunctionRef<void(std::string_view)> emit) const;

  // A document's term frequencies, as a text field stores them.
  struct TermCounts {
    // (TermId(term), occurrences), one per distinct id, ascending by id.
    std::vector<std::pair<uint64_t, uint32_t>> terms;
    // Words kept, as Analyze returns (saturates at 2^32 - 1).
    uint32_t length = 0;
  };
  TermCounts TermFrequencies(std::string_view text) const;

  const AnalyzerOptions& options() const { return options_; }

 private:
  struct Shared;  // the break iterator prototype and the pool (analyzer.cc)
  Analyzer(const AnalyzerOptions& options, std::unique_ptr<Shared> shared);

  const AnalyzerOptions options_;
  const std::unique_ptr<Shared> shared_;
};

// A term's id: XXH3_64bits (xxHash, seed 0) of its UTF-8 bytes. Ids are
// never stored as a mapping, only used, so they must be the same in every
// process, build and machine: XXH3's output is fixed by its specification
// since xxHash 0.8.0 and does not depend on endianness or CPU features
// (unlike absl::Hash, which is seeded per process). Two terms sharing an id
// are counted as one; among a billion distinct terms that happens with
// probability ~3%, to a pair of them.
uint64_t TermId(std::string_view term);

}  // namespace quiver::text

#endif  // QUIVER_QUERY_TEXT_ANALYZER_H_
