// Collection's compaction: PlanCompactions picks and marks segments to
// rewrite (commit thread), BuildCompacted copies their live rows into a new
// segment (any thread), SwapCompacted puts it in their place (commit
// thread).
#include <algorithm>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "index/vector_index.h"
#include "query/collection.h"

namespace quiver {
namespace {

// Bytes a row's stored vectors and norms take (multi-vector fields: their
// encodings; their token vectors vary by row and are not counted).
uint64_t RowBytes(const Schema& schema) {
  uint64_t bytes = 0;
  for (const VectorFieldSpec& f : schema.vectors()) {
    if (!f.dropped) bytes += (uint64_t{StoredDim(f)} + 1) * sizeof(float);
  }
  return std::max<uint64_t>(bytes, 1);
}

// Rows not deleted or overwritten.
uint64_t LiveRows(const Segment& seg) {
  return seg.appended() - std::min(seg.appended(), seg.dead());
}

}  // namespace

std::vector<CompactionPlan> Collection::PlanCompactions() {
  const uint32_t max_rows = options_.segment_max_rows;
  const uint32_t small =
      options_.merge_below_rows != 0 ? options_.merge_below_rows : std::max(1u, max_rows / 2);
  std::vector<CompactionPlan> plans;
  auto sparse = [&](const Segment& seg) {
    return seg.appended() > 0 && seg.dead() >= options_.compact_deleted_ratio * seg.appended();
  };
  // Tiered merges by size (merge_target_bytes): a run of adjacent segments
  // of one tier, merged merge_factor at a time while a group fits the
  // target (a tier whose groups do not is at its final size). A small
  // segment left between them (a growing segment sealed when writes paused,
  // as write backpressure makes them) rides along with the group it sits in
  // instead of breaking the run: without that, an import throttled by index
  // builds left 65,536-row segments alternating with 464-row ones, and no
  // four of one tier were ever adjacent.
  const uint64_t row_bytes = RowBytes(schema());
  const uint64_t target = options_.merge_target_bytes;
  const uint32_t factor = std::max<uint32_t>(2, options_.merge_factor);
  auto tier_of = [&](uint32_t live) {
    int t = 0;
    for (uint64_t bound = uint64_t{small} * factor; live >= bound; bound *= factor) ++t;
    return t;
  };
  struct Member {
    std::shared_ptr<Segment> seg;
    bool rider;  // a small segment: not counted toward merge_factor
  };
  std::vector<Member> run;
  int run_tier = -1;
  auto flush_run = [&] {
    for (size_t start = 0; target > 0;) {
      size_t end = start;
      uint32_t counted = 0;
      uint64_t live = 0;
      for (; end < run.size() && counted < factor; ++end) {
        counted += !run[end].rider;
        live += LiveRows(*run[end].seg);
      }
      if (counted < factor) break;
      if (live * row_bytes > target || live > std::numeric_limits<uint32_t>::max() / 2) break;
      CompactionPlan p;
      for (size_t j = start; j < end; ++j) p.inputs.push_back(run[j].seg);
      plans.push_back(std::move(p));
      start = end;
    }
    run.clear();
    run_tier = -1;
  };
  // Small segments merge with their small neighbours up to max_rows. A
  // group of one is only worth rewriting for its deletions; otherwise it
  // may ride along in a size merge.
  CompactionPlan merge;
  uint64_t merge_live = 0;
  auto flush_merge = [&] {
    if (merge.inputs.size() >= 2 || (merge.inputs.size() == 1 && sparse(*merge.inputs[0]))) {
      flush_run();  // the run ends before this group
      plans.push_back(std::move(merge));
    } else if (merge.inputs.size() == 1 && target > 0 && merge.inputs[0]->persisted()) {
      run.push_back({merge.inputs[0], true});
    } else if (merge.inputs.size() == 1) {
      flush_run();
    }
    merge = CompactionPlan();
    merge_live = 0;
  };
  for (const auto& seg : writer_segments_) {
    if (!seg->sealed() || seg->compacting() || seg->building()) {
      flush_merge();
      flush_run();
      continue;
    }
    const uint32_t live = static_cast<uint32_t>(LiveRows(*seg));
    if (live < small) {
      if (merge_live + live > max_rows) flush_merge();
      merge.inputs.push_back(seg);
      merge_live += live;
      continue;
    }
    flush_merge();
    if (sparse(*seg)) {
      flush_run();
      CompactionPlan p;
      p.inputs.push_back(seg);
      plans.push_back(std::move(p));
      continue;
    }
    // Only indexed segments join a size merge: a segment still waiting for
    // its first build would be built twice.
    if (!seg->persisted()) {
      flush_run();
      continue;
    }
    const int tier = tier_of(live);
    if (tier != run_tier && run_tier != -1) flush_run();
    run.push_back({seg, false});
    run_tier = tier;
  }
  flush_merge();
  flush_run();
  if (plans.empty() && target > 0 && absl::Now() - last_write_ >= options_.merge_idle) {
    PlanIdleMerges(row_bytes, &plans);
  }
  for (CompactionPlan& p : plans) {
    p.output_id = next_segment_id_++;
    for (const auto& in : p.inputs) in->SetCompacting(true);
  }
  return plans;
}

void Collection::PlanIdleMerges(uint64_t row_bytes, std::vector<CompactionPlan>* plans) const {
  const uint64_t target = options_.merge_target_bytes;
  // Only over a settled segment list: a merge or build in flight would
  // split the groups differently once it lands.
  for (const auto& seg : writer_segments_) {
    if (seg->sealed() && (seg->compacting() || seg->building() || !seg->persisted())) return;
  }
  CompactionPlan group;
  uint64_t group_live = 0, largest = 0;
  auto flush = [&] {
    if (group.inputs.size() >= 2 && (group_live - largest) * 4 >= largest) {
      plans->push_back(std::move(group));
    }
    group = CompactionPlan();
    group_live = largest = 0;
  };
  for (const auto& seg : writer_segments_) {
    if (!seg->sealed()) {
      flush();
      continue;
    }
    const uint64_t live = LiveRows(*seg);
    if ((group_live + live) * row_bytes > target ||
        group_live + live > std::numeric_limits<uint32_t>::max() / 2) {
      flush();
    }
    if (live * row_bytes > target) continue;  // at its final size already
    group.inputs.push_back(seg);
    group_live += live;
    largest = std::max(largest, live);
  }
  flush();
}

std::shared_ptr<Segment> Collection::BuildCompacted(const CompactionPlan& plan) const {
  const View view = TakeView();
  uint64_t live = 0;
  for (const auto& in : plan.inputs) {
    const uint32_t rows = in->published();
    for (uint32_t off = 0; off < rows; ++off) live += in->Visible(off, view.seq);
  }
  // The output has the fields of the schema now: an added field its older
  // inputs lack is absent in their rows, a dropped one takes no memory.
  const std::shared_ptr<const Schema> schema = shared_schema();
  auto out = std::make_shared<Segment>(plan.output_id, schema,
                                       static_cast<uint32_t>(std::max<uint64_t>(live, 1)));
  const size_t nf = schema->vectors().size();
  // A field whose new index will hold the rows (HNSW) borrows them from
  // the inputs' blocks until it does: a copy here would be a third copy of
  // every vector at the peak of the merge. Only when every input reads the
  // field in an index's block, which the holds keep alive.
  std::vector<std::vector<std::optional<index::SharedRows>>> held(
      plan.inputs.size(), std::vector<std::optional<index::SharedRows>>(nf));
  for (size_t f = 0; f < nf; ++f) {
    if (!RowsMayBeShared(f)) continue;
    std::vector<std::shared_ptr<const void>> holds;
    std::vector<std::optional<index::SharedRows>> rows(plan.inputs.size());
    bool all = true;
    for (size_t i = 0; i < plan.inputs.size() && all; ++i) {
      const Segment& in = *plan.inputs[i];
      if (in.LacksField(f)) continue;
      rows[i] = in.adopted_rows(f);
      all = rows[i].has_value();
      if (all) holds.push_back(rows[i]->owner);
    }
    if (!all) continue;
    for (size_t i = 0; i < plan.inputs.size(); ++i) held[i][f] = std::move(rows[i]);
    out->LendRows(f, std::make_shared<std::vector<std::shared_ptr<const void>>>(std::move(holds)));
  }
  std::vector<const float*> vectors(nf);
  std::vector<TokenSet> tokens(nf);
  for (size_t i = 0; i < plan.inputs.size(); ++i) {
    const std::shared_ptr<Segment>& in = plan.inputs[i];
    const uint32_t rows = in->published();
    for (uint32_t off = 0; off < rows && !out->full(); ++off) {
      if (!in->Visible(off, view.seq)) continue;
      for (size_t f = 0; f < nf; ++f) {
        const VectorFieldSpec& field = schema->vectors()[f];
        const bool has = !field.dropped && in->HasVector(f, off);
        vectors[f] = !has ? nullptr : held[i][f] ? held[i][f]->row(off) : in->vector(f, off);
        if (field.multi && has) tokens[f] = in->tokens(f, off);
      }
      out->Append(in->iid(off), in->external_id(off), in->attrs(off), vectors, tokens.data(),
                  in->sparse(off), in->text(off));
    }
  }
  out->Seal();
  out->Publish(out->appended());
  return out;
}

bool Collection::SwapCompacted(const CompactionPlan& plan,
                               const std::shared_ptr<Segment>& output) {
  for (const auto& in : plan.inputs) in->SetCompacting(false);
  if (dropped()) return false;
  for (const auto& in : plan.inputs) in->SetRetired();
  // Where each copied row came from: inputs are scanned in the same order
  // BuildCompacted used, matching rows by internal id.
  absl::flat_hash_map<uint64_t, uint32_t> out_offset;
  const uint32_t out_rows = output->appended();
  for (uint32_t off = 0; off < out_rows; ++off) out_offset[output->iid(off)] = off;
  {
    MutexLock lock(&mu_);
    for (const auto& in : plan.inputs) {
      const uint32_t rows = in->published();
      for (uint32_t off = 0; off < rows; ++off) {
        auto it = out_offset.find(in->iid(off));
        if (it == out_offset.end()) continue;
        const uint64_t del = in->delete_seq(off);
        if (del != kAlive) {
          // Deleted or overwritten after the copy was taken.
          output->MarkDeleted(it->second, del);
          continue;
        }
        auto ref = id_map_.find(in->external_id(off));
        if (ref != id_map_.end() && ref->segment == in.get() && ref->offset == off) {
          ref->segment = output.get();
          ref->offset = it->second;
        }
      }
    }
    // The output takes the place of the first input; the others go.
    std::vector<std::shared_ptr<Segment>> next;
    bool placed = false;
    for (const auto& seg : writer_segments_) {
      const bool is_input =
          std::find(plan.inputs.begin(), plan.inputs.end(), seg) != plan.inputs.end();
      if (!is_input) {
        next.push_back(seg);
      } else if (!placed) {
        if (output->appended() > 0) next.push_back(output);
        placed = true;
      }
    }
    writer_segments_ = std::move(next);
    PublishLocked(seq_);
  }
  // The inputs go once the last search that may read them ends: through the
  // epochs, so their memory (graphs, ids, attributes) is freed and handed
  // back to the system then, not left in the allocator's heap.
  Retire(std::vector<std::shared_ptr<const void>>(plan.inputs.begin(), plan.inputs.end()));
  return true;
}

}  // namespace quiver
