// Collection-wide BM25 statistics of one text attribute (or sparse field
// with the IDF modifier, its indexes as terms): how many live points have a
// value, their total length, and each term's document frequency. BM25 ranks with these, not a segment's own, so a point scores
// the same whichever segment holds it, and the figures stay exact through
// overwrites, deletes and compaction: the commit thread adds a row's terms
// when it is written and removes them when the row is deleted or replaced
// (a compaction copies live rows only, so it changes nothing here), and
// recovery counts the live rows once.
//
// Thread-safety: Add and Remove (commit thread) and Snapshot (searches)
// may run concurrently; a snapshot is consistent in itself.
#ifndef QUIVER_QUERY_TEXT_BM25_STATS_H_
#define QUIVER_QUERY_TEXT_BM25_STATS_H_

#include <cmath>
#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "query/text/analyzer.h"
#include "storage/schema.h"

namespace quiver {

// The analyzer of a text attribute's options (INVALID_ARGUMENT for an
// unknown language, or stop words other than english's).
inline absl::StatusOr<std::shared_ptr<const text::Analyzer>> MakeTextAnalyzer(
    const TextSpec& spec) {
  text::AnalyzerOptions o;
  o.language = spec.language;
  o.stem = spec.language != "none";
  o.stop_words = spec.stop_words;
  absl::StatusOr<std::unique_ptr<text::Analyzer>> a = text::Analyzer::Create(o);
  if (!a.ok()) return a.status();
  return std::shared_ptr<const text::Analyzer>(*std::move(a));
}

// What a search needs of the statistics for its query terms.
struct Bm25Snapshot {
  uint64_t docs = 0;      // live points with a value
  double avg_len = 1;     // their mean length (1 when there are none)
  std::vector<uint32_t> df;  // per query term, in the order asked
};

// BM25's IDF of a term in `df` of `docs` documents: Lucene's form, which
// stays positive for terms in most documents (Robertson's raw form turns
// negative past half of them).
inline double Bm25Idf(uint64_t docs, uint32_t df) {
  return std::log(1.0 + (static_cast<double>(docs) - df + 0.5) / (df + 0.5));
}

class Bm25Stats {
 public:
  void Add(const text::Analyzer::TermCounts& doc) { Change(doc, +1); }
  void Remove(const text::Analyzer::TermCounts& doc) { Change(doc, -1); }
  // A sparse vector's indexes, as the terms of a document (a sparse field
  // with the IDF modifier needs only the counts; its length is its size).
  void Add(const SparseVector& v) { Change(v, +1); }
  void Remove(const SparseVector& v) { Change(v, -1); }
  void Clear() {
    MutexLock lock(&mu_);
    docs_ = 0;
    total_len_ = 0;
    df_.clear();
  }
  Bm25Snapshot Snapshot(const std::vector<uint64_t>& terms) const {
    Bm25Snapshot s;
    MutexLock lock(&mu_);
    s.docs = docs_;
    s.avg_len = docs_ == 0 ? 1.0 : static_cast<double>(total_len_) / docs_;
    if (s.avg_len <= 0) s.avg_len = 1.0;  // every document empty
    s.df.reserve(terms.size());
    for (uint64_t t : terms) {
      auto it = df_.find(t);
      s.df.push_back(it == df_.end() ? 0 : it->second);
    }
    return s;
  }
  uint64_t docs() const {
    MutexLock lock(&mu_);
    return docs_;
  }

 private:
  void Change(const text::Analyzer::TermCounts& doc, int sign) {
    MutexLock lock(&mu_);
    docs_ += sign;
    total_len_ += sign * static_cast<int64_t>(doc.length);
    for (const auto& [term, tf] : doc.terms) CountLocked(term, sign);
  }
  void Change(const SparseVector& v, int sign) {
    MutexLock lock(&mu_);
    docs_ += sign;
    total_len_ += sign * static_cast<int64_t>(v.size());
    for (uint32_t index : v.indices) CountLocked(index, sign);
  }
  void CountLocked(uint64_t term, int sign) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    uint32_t& n = df_[term];
    n += sign;
    if (n == 0) df_.erase(term);
  }

  mutable Mutex mu_;
  uint64_t docs_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t total_len_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, uint32_t> df_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quiver

#endif  // QUIVER_QUERY_TEXT_BM25_STATS_H_
