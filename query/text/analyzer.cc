#include "query/text/analyzer.h"

#include <unicode/brkiter.h>
#include <unicode/uchar.h>
#include <unicode/ustring.h>
#include <unicode/utext.h>
#include <unicode/utf16.h>

#include <algorithm>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/mutex.h"
#include "base/string_view.h"

extern "C" {
#include <libstemmer.h>
}
// Header-only: the hash compiled in, so there is no run-time library to
// ship or to differ between machines.
#define XXH_INLINE_ALL
#include <xxhash.h>

namespace quiver::text {
namespace {

// Text is analysed in pieces of about this many bytes, so the buffers a
// pooled worker keeps stay small whatever one document's size was.
constexpr size_t kChunkBytes = 64 * 1024;
// How far back from kChunkBytes a whitespace to cut after is looked for.
constexpr size_t kChunkSlack = 4 * 1024;
// Stems remembered per worker. Stemming is half the time of analysis
// without it, and word frequencies are skewed enough that a small cache
// answers most words (~70 bytes an entry; emptied when full, which is
// cheaper than LRU and loses little).
constexpr size_t kStemCacheEntries = 8192;

// Snowball's English stop list (snowballstem.org/algorithms/english/stop.txt,
// as Xapian ships it), the forms with apostrophes written with ' as the
// analyzer normalizes them.
// clang-format off
constexpr std::string_view kEnglishStopWords[] = {
    "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "your", "yours",
    "yourself", "yourselves", "he", "him", "his", "himself", "she", "her", "hers", "herself",
    "it", "its", "itself", "they", "them", "their", "theirs", "themselves", "what", "which",
    "who", "whom", "this", "that", "these", "those", "am", "is", "are", "was", "were", "be",
    "been", "being", "have", "has", "had", "having", "do", "does", "did", "doing", "would",
    "should", "could", "ought", "i'm", "you're", "he's", "she's", "it's", "we're", "they're",
    "i've", "you've", "we've", "they've", "i'd", "you'd", "he'd", "she'd", "we'd", "they'd",
    "i'll", "you'll", "he'll", "she'll", "we'll", "they'll", "isn't", "aren't", "wasn't",
    "weren't", "hasn't", "haven't", "hadn't", "doesn't", "don't", "didn't", "won't",
    "wouldn't", "shan't", "shouldn't", "can't", "cannot", "couldn't", "mustn't", "let's",
    "that's", "who's", "what's", "here's", "there's", "when's", "where's", "why's", "how's",
    "a", "an", "the", "and", "but", "if", "or", "because", "as", "until", "while", "of", "at",
    "by", "for", "with", "about", "against", "between", "into", "through", "during", "before",
    "after", "above", "below", "to", "from", "up", "down", "in", "out", "on", "off", "over",
    "under", "again", "further", "then", "once", "here", "there", "when", "where", "why",
    "how", "all", "any", "both", "each", "few", "more", "most", "other", "some", "such", "no",
    "nor", "not", "only", "own", "same", "so", "than", "too", "very"};
// clang-format on

const absl::flat_hash_set<std::string_view>& EnglishStopWords() {
  static const auto* const set = new absl::flat_hash_set<std::string_view>(
      std::begin(kEnglishStopWords), std::end(kEnglishStopWords));
  return *set;
}

// Xapian's word characters: letters, marks, numbers, connector punctuation.
constexpr uint32_t kWordCharMask = U_GC_L_MASK | U_GC_M_MASK | U_GC_N_MASK | U_GC_PC_MASK;

bool IsWordChar(UChar32 c) {
  if (c < 0x80) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }
  return (U_GET_GC_MASK(c) & kWordCharMask) != 0;
}

bool IsDigit(UChar32 c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return u_charType(c) == U_DECIMAL_DIGIT_NUMBER;
}

bool IsAsciiUpper(UChar32 c) { return c >= 'A' && c <= 'Z'; }

constexpr UChar32 kIgnore = -1;  // an infix that joins but is not kept

bool IsZeroWidth(UChar32 c) { return (c >= 0x200b && c <= 0x200d) || c == 0x2060 || c == 0xfeff; }

// What `c` between two word characters (not both digits) does, as Xapian's
// check_infix: 0 splits, kIgnore joins, anything else joins and is kept.
UChar32 Infix(UChar32 c) {
  if (c == '\'' || c == '&' || c == 0xb7 || c == 0x5f4 || c == 0x2027) return c;
  if (c == 0x2019 || c == 0x201b) return '\'';  // so the stemmer and stop list see '
  if (IsZeroWidth(c)) return kIgnore;
  return 0;
}

// The same between two digits (Xapian's check_infix_digit; Unicode's MidNum).
UChar32 InfixDigit(UChar32 c) {
  switch (c) {
    case ',':
    case '.':
    case ';':
    case 0x037e:
    case 0x0589:
    case 0x060d:
    case 0x07f8:
    case 0x2044:
    case 0xfe10:
    case 0xfe13:
    case 0xfe14:
      return c;
  }
  if (IsZeroWidth(c)) return kIgnore;
  return 0;
}

UChar32 Joiner(UChar32 prev, UChar32 c, UChar32 next) {
  return IsDigit(prev) && IsDigit(next) ? InfixDigit(c) : Infix(c);
}

// Where to end the piece of text[0, ...) analysed next: after a whitespace
// character near kChunkBytes, else at a UTF-8 character boundary.
size_t ChunkEnd(std::string_view text) {
  if (text.size() <= kChunkBytes) return text.size();
  for (size_t i = kChunkBytes; i > kChunkBytes - kChunkSlack; --i) {
    const char c = text[i - 1];
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v') return i;
  }
  size_t i = kChunkBytes;
  while (i > 0 && (static_cast<unsigned char>(text[i]) & 0xc0) == 0x80) --i;
  return i > 0 ? i : kChunkBytes;
}

void AppendCodePoint(std::vector<UChar>& v, UChar32 c) {
  if (c <= 0xffff) {
    v.push_back(static_cast<UChar>(c));
  } else {
    v.push_back(U16_LEAD(c));
    v.push_back(U16_TRAIL(c));
  }
}

struct StemmerDeleter {
  void operator()(sb_stemmer* s) const { sb_stemmer_delete(s); }
};

// What one call in flight uses: ICU and Snowball objects are not safe to
// share between threads, and the buffers are reused across calls.
struct Worker {
  std::unique_ptr<icu::BreakIterator> breaker;
  std::unique_ptr<sb_stemmer, StemmerDeleter> stemmer;  // null: no stemming
  std::vector<UChar> text;                              // the chunk in UTF-16
  std::vector<UChar> word;                              // one word before folding
  std::vector<UChar> folded;                            // ... after, when not ASCII
  std::string term;                                     // ... in UTF-8
  absl::flat_hash_map<std::string, std::string> stems;  // folded word -> its stem
};

}  // namespace

struct Analyzer::Shared {
  const AnalyzerOptions options;
  const absl::flat_hash_set<std::string_view>* stop_words = nullptr;  // null: none dropped
  const std::string stemmer_name;                                     // empty: no stemming

  mutable Mutex mu;
  // Only ever cloned (under mu), never iterated.
  std::unique_ptr<icu::BreakIterator> prototype ABSL_GUARDED_BY(mu);
  mutable std::vector<std::unique_ptr<Worker>> idle ABSL_GUARDED_BY(mu);

  Shared(const AnalyzerOptions& o, const absl::flat_hash_set<std::string_view>* stops,
         std::string stemmer, std::unique_ptr<icu::BreakIterator> proto)
      : options(o),
        stop_words(stops),
        stemmer_name(std::move(stemmer)),
        prototype(std::move(proto)) {}

  std::unique_ptr<Worker> Acquire() const;
  void Release(std::unique_ptr<Worker> w) const;
  size_t Run(std::string_view text, absl::FunctionRef<void(std::string_view)> emit) const;
  size_t RunChunk(Worker& w, std::string_view chunk,
                  absl::FunctionRef<void(std::string_view)> emit) const;
  bool Emit(Worker& w, absl::FunctionRef<void(std::string_view)> emit) const;
};

std::unique_ptr<Worker> Analyzer::Shared::Acquire() const {
  std::unique_ptr<icu::BreakIterator> breaker;
  {
    MutexLock lock(&mu);
    if (!idle.empty()) {
      std::unique_ptr<Worker> w = std::move(idle.back());
      idle.pop_back();
      return w;
    }
    breaker.reset(prototype->clone());
  }
  auto w = std::make_unique<Worker>();
  w->breaker = std::move(breaker);
  if (!stemmer_name.empty()) {
    w->stemmer.reset(sb_stemmer_new(stemmer_name.c_str(), "UTF_8"));
  }
  return w;
}

void Analyzer::Shared::Release(std::unique_ptr<Worker> w) const {
  MutexLock lock(&mu);
  idle.push_back(std::move(w));
}

size_t Analyzer::Shared::Run(std::string_view text,
                             absl::FunctionRef<void(std::string_view)> emit) const {
  if (text.empty()) return 0;
  std::unique_ptr<Worker> w = Acquire();
  // A clone or a stemmer ICU or Snowball could not allocate: no terms
  // rather than a crash, and the worker is not kept.
  if (w->breaker == nullptr || (!stemmer_name.empty() && w->stemmer == nullptr)) return 0;
  size_t count = 0;
  while (!text.empty()) {
    const size_t end = ChunkEnd(text);
    count += RunChunk(*w, text.substr(0, end), emit);
    text.remove_prefix(end);
  }
  Release(std::move(w));
  return count;
}

size_t Analyzer::Shared::RunChunk(Worker& w, std::string_view chunk,
                                  absl::FunctionRef<void(std::string_view)> emit) const {
  UErrorCode status = U_ZERO_ERROR;
  w.text.resize(chunk.size() + 1);  // UTF-16 is never longer than UTF-8, in units
  int32_t len = 0;
  u_strFromUTF8WithSub(w.text.data(), static_cast<int32_t>(w.text.size()), &len, chunk.data(),
                       static_cast<int32_t>(chunk.size()), 0xfffd, nullptr, &status);
  if (U_FAILURE(status)) return 0;
  const UChar* const s = w.text.data();
  auto at = [&](int32_t i) {  // the code point at i (i < len)
    UChar32 c;
    U16_GET(s, 0, i, len, c);
    return c;
  };
  auto before = [&](int32_t i) {  // the code point ending at i (i > 0)
    UChar32 c;
    U16_PREV(s, 0, i, c);
    return c;
  };

  size_t count = 0;
  // Xapian's rules within [begin, end), a run of ICU words joined as
  // Xapian would join them.
  auto run = [&](int32_t begin, int32_t end) {
    int32_t i = begin;
    while (i < end) {
      UChar32 c;
      U16_NEXT(s, i, end, c);
      if (!IsWordChar(c)) continue;
      w.word.clear();
      const int32_t start = i - U16_LENGTH(c);
      // Initials with dots: "U.S.A." is "usa" if nothing word-like follows.
      if (IsAsciiUpper(c)) {
        int32_t p = start;
        do {
          w.word.push_back(s[p++]);
        } while (p < len && s[p] == '.' && ++p < len && IsAsciiUpper(s[p]));
        if (w.word.size() > 1 && (p >= len || !IsWordChar(at(p)))) {
          if (Emit(w, emit)) ++count;
          i = std::min(p, end);
          continue;
        }
        w.word.clear();
      }
      UChar32 prev = c;
      AppendCodePoint(w.word, c);
      while (i < end) {
        int32_t j = i;
        UChar32 d;
        U16_NEXT(s, j, end, d);
        if (IsWordChar(d)) {
          AppendCodePoint(w.word, d);
          prev = d;
          i = j;
          continue;
        }
        if (j >= end) break;
        const UChar32 next = at(j);
        if (!IsWordChar(next)) break;
        const UChar32 joiner = Joiner(prev, d, next);
        if (joiner == 0) break;
        if (joiner != kIgnore) AppendCodePoint(w.word, joiner);
        i = j;
      }
      if (i == end) {
        // "C++", "C#": up to three of them, then no word character.
        int32_t p = end;
        while (p < len && p - end <= 3 && (s[p] == '+' || s[p] == '#')) ++p;
        if (p > end && p - end <= 3 && (p >= len || !IsWordChar(at(p)))) {
          w.word.insert(w.word.end(), s + end, s + p);
        }
      }
      if (Emit(w, emit)) ++count;
    }
  };

  UText ut = UTEXT_INITIALIZER;
  utext_openUChars(&ut, s, len, &status);
  w.breaker->setText(&ut, status);
  if (U_FAILURE(status)) {
    utext_close(&ut);
    return 0;
  }
  int32_t run_begin = -1;
  int32_t run_end = -1;
  bool run_ends_unworded = false;  // the run's last piece had no word status
  int32_t start = w.breaker->first();
  for (int32_t end = w.breaker->next(); end != icu::BreakIterator::DONE;
       start = end, end = w.breaker->next()) {
    // ICU gives a lone '_' or "²" no word status; Xapian indexes them.
    const bool unworded = w.breaker->getRuleStatus() < UBRK_WORD_NONE_LIMIT;
    if (unworded && !IsWordChar(at(start))) continue;
    if (run_begin >= 0) {
      // One character between this word and the last that Xapian would
      // keep inside a word ICU ends there: "AT&T", "90's".
      bool join = false;
      if (run_end == start) {
        // ICU breaks around a number it gives no word status ("I²C",
        // "½cup"); Xapian's words run on through any word character. Only
        // there: ICU's other breaks between word characters (ideographs,
        // a change of script) stay.
        join = (unworded || run_ends_unworded) && IsWordChar(before(run_end)) &&
               IsWordChar(at(start));
      } else if (run_end < start) {
        int32_t k = run_end;
        UChar32 gap;
        U16_NEXT(s, k, len, gap);
        const UChar32 last = before(run_end);
        const UChar32 first = at(start);
        join = k == start && IsWordChar(last) && IsWordChar(first) && Joiner(last, gap, first) != 0;
      }
      if (join) {
        run_end = end;
        run_ends_unworded = unworded;
        continue;
      }
      run(run_begin, run_end);
    }
    run_begin = start;
    run_end = end;
    run_ends_unworded = unworded;
  }
  if (run_begin >= 0) run(run_begin, run_end);
  utext_close(&ut);
  return count;
}

// Folds, filters and stems w.word and passes it on; false if it was dropped.
bool Analyzer::Shared::Emit(Worker& w, absl::FunctionRef<void(std::string_view)> emit) const {
  std::string& term = w.term;
  term.clear();
  const bool ascii = std::all_of(w.word.begin(), w.word.end(), [](UChar u) { return u < 0x80; });
  if (ascii) {
    if (w.word.size() > options.max_token_bytes) return false;
    for (UChar u : w.word) {
      term.push_back(static_cast<char>(u >= 'A' && u <= 'Z' ? u + ('a' - 'A') : u));
    }
  } else {
    // Full folding can lengthen a word (ß to ss); the second try has room.
    const int32_t n = static_cast<int32_t>(w.word.size());
    w.folded.resize(w.word.size() * 2 + 4);
    UErrorCode status = U_ZERO_ERROR;
    int32_t folded = u_strFoldCase(w.folded.data(), static_cast<int32_t>(w.folded.size()),
                                   w.word.data(), n, U_FOLD_CASE_DEFAULT, &status);
    if (status == U_BUFFER_OVERFLOW_ERROR) {
      w.folded.resize(folded);
      status = U_ZERO_ERROR;
      folded =
          u_strFoldCase(w.folded.data(), folded, w.word.data(), n, U_FOLD_CASE_DEFAULT, &status);
    }
    if (U_FAILURE(status)) return false;
    // At most 3 UTF-8 bytes per UTF-16 unit.
    term.resize(static_cast<size_t>(folded) * 3);
    int32_t bytes = 0;
    status = U_ZERO_ERROR;
    u_strToUTF8(term.data(), static_cast<int32_t>(term.size()), &bytes, w.folded.data(), folded,
                &status);
    if (U_FAILURE(status)) return false;
    term.resize(bytes);
    if (term.size() > options.max_token_bytes) return false;
  }
  if (stop_words != nullptr && stop_words->contains(term)) return false;
  if (w.stemmer == nullptr) {
    emit(term);
    return true;
  }
  if (auto it = w.stems.find(Sv(term)); it != w.stems.end()) {
    if (it->second.empty()) return false;
    emit(it->second);
    return true;
  }
  const sb_symbol* stem =
      sb_stemmer_stem(w.stemmer.get(), reinterpret_cast<const sb_symbol*>(term.data()),
                      static_cast<int>(term.size()));
  if (stem == nullptr) {  // Snowball out of memory: the word unstemmed
    emit(term);
    return true;
  }
  const int stem_len = sb_stemmer_length(w.stemmer.get());
  if (w.stems.size() >= kStemCacheEntries) w.stems.clear();
  // An empty stem is remembered too: such a word is dropped, as Xapian does.
  const std::string& cached =
      w.stems.emplace(term, std::string(reinterpret_cast<const char*>(stem), std::max(stem_len, 0)))
          .first->second;
  if (cached.empty()) return false;
  emit(cached);
  return true;
}

absl::StatusOr<std::unique_ptr<Analyzer>> Analyzer::Create(const AnalyzerOptions& options) {
  if (options.max_token_bytes == 0) {
    return absl::InvalidArgumentError("max_token_bytes must be at least 1");
  }
  const bool none = options.language == "none";
  if (!none) {
    std::vector<std::string> known;
    for (const char* const* l = sb_stemmer_list(); *l != nullptr; ++l) known.push_back(*l);
    // Only the canonical names, though sb_stemmer_new takes ISO codes too:
    // one spelling per language in stored schemas.
    if (std::find(known.begin(), known.end(), options.language) == known.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown text language \"", options.language,
                                                     "\"; known: none, ",
                                                     absl::StrJoin(known, ", ")));
    }
  }
  const absl::flat_hash_set<std::string_view>* stops = nullptr;
  if (options.stop_words) {
    if (options.language != "english") {
      return absl::InvalidArgumentError(absl::StrCat(
          "stop words are available for english only, not \"", options.language, "\""));
    }
    stops = &EnglishStopWords();
  }
  UErrorCode status = U_ZERO_ERROR;
  std::unique_ptr<icu::BreakIterator> prototype(
      icu::BreakIterator::createWordInstance(icu::Locale::getRoot(), status));
  if (U_FAILURE(status) || prototype == nullptr) {
    return absl::InternalError(absl::StrCat("ICU word break iterator: ", u_errorName(status)));
  }
  std::string stemmer = (options.stem && !none) ? options.language : std::string();
  if (!stemmer.empty()) {
    // Checked once here, so a worker's stemmer can only fail to allocate.
    std::unique_ptr<sb_stemmer, StemmerDeleter> probe(sb_stemmer_new(stemmer.c_str(), "UTF_8"));
    if (probe == nullptr) {
      return absl::InternalError(absl::StrCat("Snowball stemmer \"", stemmer, "\" failed"));
    }
  }
  auto shared = std::make_unique<Shared>(options, stops, std::move(stemmer), std::move(prototype));
  return std::unique_ptr<Analyzer>(new Analyzer(options, std::move(shared)));
}

Analyzer::Analyzer(const AnalyzerOptions& options, std::unique_ptr<Shared> shared)
    : options_(options), shared_(std::move(shared)) {}

Analyzer::~Analyzer() = default;

size_t Analyzer::ForEachTerm(std::string_view text,
                             absl::FunctionRef<void(std::string_view)> emit) const {
  return shared_->Run(text, emit);
}

size_t Analyzer::Analyze(std::string_view text, std::vector<std::string>* terms) const {
  return shared_->Run(text, [terms](std::string_view t) { terms->emplace_back(t); });
}

Analyzer::TermCounts Analyzer::TermFrequencies(std::string_view text) const {
  TermCounts out;
  std::vector<uint64_t> ids;
  const size_t n = shared_->Run(text, [&ids](std::string_view t) { ids.push_back(TermId(t)); });
  out.length = static_cast<uint32_t>(std::min<size_t>(n, std::numeric_limits<uint32_t>::max()));
  // Sorted, as the result is: equal ids end up next to each other.
  std::sort(ids.begin(), ids.end());
  for (size_t i = 0; i < ids.size();) {
    size_t j = i + 1;
    while (j < ids.size() && ids[j] == ids[i]) ++j;
    const size_t c = j - i;
    out.terms.emplace_back(
        ids[i], static_cast<uint32_t>(std::min<size_t>(c, std::numeric_limits<uint32_t>::max())));
    i = j;
  }
  return out;
}

uint64_t TermId(std::string_view term) { return XXH3_64bits(term.data(), term.size()); }

}  // namespace quiver::text
