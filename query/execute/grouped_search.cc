// Grouped search (SearchRequest.group_by): for each query, the k groups of
// points sharing a value of the group_by attribute whose best hit is best,
// with each group's best group_size hits (Collection::SearchGrouped).
//
// The field's search runs as usual for a number of candidates (`fetch`),
// which are grouped best first: a hit joins its group while the group has
// room, and a new group opens while there are fewer than k. A query whose
// groups are not all full is searched again with 8 times the fetch, until
// its groups are full or its candidates cover every matching point; with
// exhaustive / min_results the last such search is exact. The binder adds
// `group_by IS NOT NULL` to the filter, so points without the attribute
// are neither candidates nor counted.
#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "query/bind/wire_schema.h"
#include "query/collection.h"
#include "query/execute/limit.h"
#include "query/execute/result_info.h"

namespace quiver {
namespace {

constexpr uint64_t kGroupFetchFactor = 4;   // first fetch: k x group_size x this
constexpr uint64_t kMinGroupFetch = 64;
constexpr uint64_t kMaxGroupFetch = 1 << 20;  // candidates per query, at most
constexpr uint64_t kFetchGrowth = 8;
constexpr int kMaxGroupRounds = 4;

}  // namespace

struct Group {
  AttrValue key;
  std::vector<index::Neighbor> hits;
};

// Per query: its groups, and whether they are final.
struct GroupedLists {
  std::vector<std::vector<Group>> groups;
  std::vector<uint8_t> done, exhaustive, cut;
};

namespace {

// Groups `cand` (best first) into *groups, from scratch. True if there are
// k groups and each has `size` hits.
bool GroupCandidates(const View& view, int attr, uint32_t k, uint32_t size,
                     const std::vector<index::Neighbor>& cand, std::vector<Group>* groups) {
  groups->clear();
  std::map<AttrValue, size_t> where;
  size_t full = 0;
  for (const index::Neighbor& nb : cand) {
    const Segment& seg = *view.parts[nb.id >> 32].segment;
    const AttrValue& key =
        AttrAt(seg.attrs(static_cast<uint32_t>(nb.id & 0xffffffffu)), static_cast<size_t>(attr));
    if (key.index() == 0) continue;  // null
    auto it = where.find(key);
    if (it == where.end()) {
      if (groups->size() >= k) continue;
      it = where.emplace(key, groups->size()).first;
      groups->push_back(Group{key, {}});
    }
    std::vector<index::Neighbor>& hits = (*groups)[it->second].hits;
    if (hits.size() >= size) continue;
    hits.push_back(nb);
    if (hits.size() == size && ++full == k) return true;
  }
  return false;
}

}  // namespace

absl::Status Collection::SearchGrouped(const BoundSearch& q, const StopToken& stop,
                                       v1::SearchResponse* resp) const {
  const VectorFieldSpec& field = schema().vectors()[q.field];
  SearchStart s;
  QUIVER_RETURN_IF_ERROR(BeginSearch(q, resp, &s));
  QUIVER_RETURN_IF_ERROR(CheckSearchEstimate(q.num_queries(), q.k * q.group_size,
                                             q.output.attributes, q.output.with_vectors, 0, 0));
  MatchingCounter counter(s.view, q.filter.get(), stop, static_cast<int>(q.field));
  QUIVER_ASSIGN_OR_RETURN(const uint64_t matching, counter.Get());
  const size_t nq = q.num_queries();
  GroupedLists g;
  g.groups.resize(nq);
  g.done.assign(nq, 0);
  g.exhaustive.assign(nq, 0);
  g.cut.assign(nq, 0);
  const uint64_t cap = std::max<uint64_t>(1, std::min(matching, kMaxGroupFetch));
  uint64_t fetch = std::min(cap, std::max(kMinGroupFetch,
                                          uint64_t{q.k} * q.group_size * kGroupFetchFactor));
  const SearchContext base =
      MakeContext(q.field, q.k, q.queries, q.qnorms, q.params, q.filter.get(), stop);
  std::string text;
  for (int round = 0; round < kMaxGroupRounds; ++round) {
    std::vector<size_t> which;
    for (size_t i = 0; i < nq; ++i) {
      if (!g.done[i]) which.push_back(i);
    }
    if (which.empty()) break;
    const bool last = fetch >= cap || round + 1 == kMaxGroupRounds;
    std::vector<float> queries, qnorms;
    SearchContext c = SelectQueries(base, which, &queries, &qnorms);
    c.k = static_cast<uint32_t>(fetch);
    c.exact = base.exact || (last && q.min_results > 0);
    bool approximate = false;
    c.approximate = &approximate;
    std::vector<index::TopK> topk(which.size(), index::TopK(fetch));
    QUIVER_RETURN_IF_ERROR(SearchView(c, s.view, round == 0 ? s.explain : nullptr, &topk));
    LimitOp limit(c.k);
    std::vector<std::vector<index::Neighbor>> cand = limit.Run(&topk);
    for (size_t j = 0; j < which.size(); ++j) {
      const size_t i = which[j];
      g.cut[i] = q.has_threshold &&
                 CutByThreshold(ThresholdDistance(field.metric, q.score_threshold), &cand[j]);
      const bool full = GroupCandidates(s.view, q.group_by, q.k, q.group_size, cand[j],
                                        &g.groups[i]);
      // Every matching point was a candidate: nothing more can be found.
      const bool all = cand[j].size() >= matching || (!approximate && cand[j].size() < fetch);
      g.exhaustive[i] = all ? 1 : 0;
      // A cut list ends where the threshold does: more candidates would be
      // further away.
      g.done[i] = full || all || g.cut[i] || last;
    }
    absl::StrAppend(&text, "  GroupRound(fetch=", fetch, ", queries=", which.size(),
                    c.exact ? ", exact" : "", ")\n");
    fetch = std::min(cap, fetch * kFetchGrowth);
  }
  if (s.explain != nullptr) {
    text = absl::StrCat("GroupedSearch(collection=\"", name_, "\", field=\"", field.name,
                        "\", k=", q.k, ", group_by=\"", schema().attributes()[q.group_by].name,
                        "\", group_size=", q.group_size, ", filter=",
                        q.filter ? absl::StrCat("\"", q.filter->ToString(), "\"") : "none",
                        ")\n", text);
    AppendSegmentsText(*s.explain, 0, "    ", &text);
  }
  return FinishGrouped(s, q, std::move(text), matching, g, resp);
}

absl::Status Collection::FinishGrouped(const SearchStart& s, const BoundSearch& q,
                                       std::string text, uint64_t matching,
                                       const GroupedLists& g, v1::SearchResponse* resp) const {
  ResponseBudget budget(options_.max_response_bytes);
  QUIVER_RETURN_IF_ERROR(FinishExplain(s, std::move(text), &budget));
  const VectorFieldSpec& field = schema().vectors()[q.field];
  for (size_t i = 0; i < g.groups.size(); ++i) {
    v1::SearchResult* result = resp->add_results();
    ListInfo info;
    info.count = static_cast<uint32_t>(g.groups[i].size());
    info.exhaustive = g.exhaustive[i] != 0;
    info.matching = matching;
    if (info.count < q.k) {
      info.shortfall = g.cut[i]        ? v1::SHORTFALL_SCORE_THRESHOLD
                       : info.exhaustive ? v1::SHORTFALL_FEWER_MATCHES
                                         : v1::SHORTFALL_INDEX_STOPPED_EARLY;
    }
    SetListInfo(info, result);
    for (const Group& group : g.groups[i]) {
      v1::HitGroup* out = result->add_groups();
      bind::AttrToValue(group.key, out->mutable_key());
      QUIVER_RETURN_IF_ERROR(FillHits(s.view, field, group.hits, q.output.attributes,
                                      q.output.with_vectors, &budget, out->mutable_hits()));
    }
  }
  return absl::OkStatus();
}

}  // namespace quiver
