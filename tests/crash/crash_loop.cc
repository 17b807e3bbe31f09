// crash_loop: N cycles of mixed load against the real quiverd, each ended by
// kill -9 at a random moment, each followed by a restart and a check of
// every acknowledged operation (deploy/crash-loop.sh runs it; ctest runs a
// short version, label crash-loop).
//
// Load: `--writers` threads, each owning its ids (attribute owner), run a
// weighted mix of upserts of new ids, overwrites, deletes by id,
// delete-by-filter (owner = t AND group = g), exact and approximate
// searches, gets and counts, and check every read against their model as
// they go; one admin thread changes the vector index (a rebuild of every
// sealed segment), verifies the collection and takes snapshots (of "c"
// or of everything, under names of its own). quiverd runs with a small
// --segment-max-rows and --seal-idle-ms, so segments are sealed, indexed
// (HNSW on a MEMORY field, IVF_SQ8 on a DISK field with rerank tables) and
// compacted all the time. The kill comes after a number of acknowledged
// writes drawn from the seed; every --recovery-kill-every'th restart is
// itself killed part-way (during WAL replay, segment loads or rebuilds)
// before the restart that is checked.
//
// After each restart: every id of every owner is read back (vectors and
// attributes), acknowledged upserts must be there at their last
// acknowledged version, acknowledged deletes absent, the write in flight at
// the kill either landed whole or not at all, and nothing may hold content
// no write produced; counts must match; searches must agree with the gets
// (each sampled point found by its own vector at distance 0, every
// approximate hit live at its version with its true distance); the index
// spec must be the last acknowledged one (or the one in flight);
// VerifyCollection must find no defect; every snapshot whose create was
// acknowledged must be listed, download whole (every packed file passing
// its checksum, storage::VerifySnapshot) and restore online, and no other
// snapshot (but the one in flight at the kill) nor a damaged one may be
// listed. Prints one line per cycle and a
// summary table; exits 1 if anything was lost, resurrected, corrupt, torn,
// inconsistent, or a restart failed for good.
//
// Deterministic given --seed: the op streams, batch sizes, ids, values and
// kill points are drawn from it; thread interleaving and the server's own
// timing (seals, builds, compactions) are not.
//
// Adding an op kind: a method on Writer (or Admin) returning absl::Status
// (OK once acknowledged) and one row in its kOps table.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <random>
#include <set>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "base/mutex.h"
#include "client/client.h"
#include "client/snapshot_client.h"
#include "storage/snapshot_file.h"
#include "tests/common/quiverd_process.h"
#include "tests/common/table.h"
#include "tests/crash/crash_model.h"

namespace quiver::crash {
namespace {

struct Args {
  int cycles = 10;
  uint64_t seed = 1;
  std::string durability = "sync";
  std::string quiverd = QUIVERD_PATH;
  std::string data_dir;  // empty: a temporary directory, removed at the end
  int writers = 3;
  int ids_per_writer = 300;
  int min_acks = 30;   // acknowledged writes before the kill: uniform in
  int max_acks = 300;  // [min_acks, max_acks]
  int segment_max_rows = 100;
  int seal_idle_ms = 100;
  int restart_attempts = 3;
  int recovery_kill_every = 4;  // every Nth restart is itself killed part-way first
  bool verbose = false;
};

// Counters of one cycle (also summed over the run).
struct CycleStats {
  uint64_t acked = 0;         // acknowledged operations (writes, reads, admin)
  uint64_t acked_writes = 0;  // of those, upserts and deletes
  uint64_t in_flight = 0;     // writes in flight at the kill
  uint64_t load_errors = 0;   // an op failed while the server was up
  uint64_t inconsistent = 0;  // a read during load or after restart disagreed with the model
  RecoveryCounts rec;
  uint64_t verify_defects = 0;
  uint64_t restart_failures = 0;
  uint64_t recovery_kills = 0;  // restarts killed part-way (then restarted)
  double restart_ms = 0;
  uint64_t segments = 0, indexed = 0;
  uint64_t snapshots_acked = 0;    // creates acknowledged in this cycle's load
  uint64_t snapshots_checked = 0;  // listed, downloaded, verified and restored after the restart
  uint64_t snapshot_failures = 0;  // acknowledged but missing or damaged, or listed unasked

  uint64_t Failures() const {
    return load_errors + inconsistent + rec.lost + rec.resurrected + rec.corrupt + rec.torn +
           verify_defects + restart_failures + snapshot_failures;
  }
};

// Shared by the threads of one cycle's load.
struct LoadContext {
  std::string address;
  std::atomic<bool> killing{false};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> acked_writes{0};
  std::atomic<int> writers_running{0};
  Mutex mu;  // guards the counters below and `examples`
  uint64_t acked ABSL_GUARDED_BY(mu) = 0;
  uint64_t load_errors ABSL_GUARDED_BY(mu) = 0;
  uint64_t inconsistent ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::string> examples ABSL_GUARDED_BY(mu);

  void Note(uint64_t LoadContext::*counter, std::string what) {
    MutexLock l(&mu);
    ++(this->*counter);
    if (examples.size() < 8) examples.push_back(std::move(what));
  }
  void Acked() {
    MutexLock l(&mu);
    ++acked;
  }
};

client::ClientOptions ClientOpts() {
  client::ClientOptions o;
  o.timeout = absl::Seconds(60);
  return o;
}

// One writer thread: its model, its stream of ops.
class Writer {
 public:
  Writer(Model* model, LoadContext* ctx, uint64_t seed)
      : m_(model), ctx_(ctx), rng_(seed), c_(ctx->address, ClientOpts()) {}

  void Run() {
    struct Op {
      const char* name;
      int weight;
      absl::Status (Writer::*run)();
    };
    static constexpr Op kOps[] = {
        {"upsert", 30, &Writer::UpsertNew},
        {"overwrite", 25, &Writer::Overwrite},
        {"delete", 12, &Writer::DeleteIds},
        {"delete_by_filter", 3, &Writer::DeleteByFilter},
        {"search_exact", 8, &Writer::SearchExact},
        {"search_ann", 8, &Writer::SearchAnn},
        {"get", 8, &Writer::Get},
        {"count", 3, &Writer::Count},
    };
    int total = 0;
    for (const Op& op : kOps) total += op.weight;
    while (!ctx_->stop.load()) {
      int pick = static_cast<int>(rng_() % total);
      const Op* op = kOps;
      while (pick >= op->weight) pick -= (op++)->weight;
      const absl::Status s = (this->*op->run)();
      if (s.ok()) {
        ctx_->Acked();
        continue;
      }
      if (ctx_->killing.load()) return;  // the server is gone; m_->in_flight stays
      ctx_->Note(&LoadContext::load_errors, absl::StrCat("owner ", m_->owner, " ", op->name,
                                                         ": ", s.ToString()));
      m_->in_flight.reset();  // refused while up: nothing was written
      // Counted; more of the same would only spin.
      if (++errors_ >= kMaxErrors) return;
    }
  }

  // The read checks alone, `rounds` times each (after a restart): errors
  // count as inconsistencies, since nothing kills the server meanwhile.
  void Probe(int rounds) {
    for (auto op : {&Writer::SearchExact, &Writer::SearchAnn, &Writer::Get, &Writer::Count}) {
      for (int r = 0; r < rounds; ++r) {
        const absl::Status s = (this->*op)();
        if (!s.ok()) {
          ctx_->Note(&LoadContext::inconsistent,
                     absl::StrCat("owner ", m_->owner, " read after restart: ", s.ToString()));
        }
      }
    }
  }

 private:
  int Index() { return static_cast<int>(rng_() % m_->ids); }
  int Batch(int max) { return 1 + static_cast<int>(rng_() % max); }

  absl::Status Write(InFlight w) {
    m_->in_flight = std::move(w);
    absl::Status s;
    if (m_->in_flight->ids.empty()) return absl::OkStatus();
    if (m_->in_flight->op == "delete") {
      v1::DeletePointsRequest req;
      req.set_collection("c");
      for (const auto& [i, st] : m_->in_flight->ids) req.add_ids(PointId(m_->owner, i));
      s = c_.Delete(req).status();
    } else {
      v1::UpsertPointsRequest req;
      req.set_collection("c");
      for (const auto& [i, st] : m_->in_flight->ids) *req.add_points() = MakePoint(m_->owner, i, *st);
      s = c_.Upsert(req).status();
    }
    if (s.ok()) Acknowledge();
    return s;
  }
  void Acknowledge() {
    m_->Apply(*m_->in_flight);
    m_->in_flight.reset();
    ctx_->acked_writes.fetch_add(1);
  }
  // Distinct indexes, so one request names each id once.
  std::vector<int> Pick(std::vector<int> from, int n) {
    std::shuffle(from.begin(), from.end(), rng_);
    if (static_cast<int>(from.size()) > n) from.resize(n);
    return from;
  }
  std::vector<int> AllIndexes() const {
    std::vector<int> v(m_->ids);
    for (int i = 0; i < m_->ids; ++i) v[i] = i;
    return v;
  }

  absl::Status UpsertNew() {
    InFlight w{"upsert", {}};
    for (int i : Pick(AllIndexes(), Batch(20))) w.ids.emplace_back(i, m_->next_version++);
    return Write(std::move(w));
  }
  absl::Status Overwrite() {
    InFlight w{"overwrite", {}};
    for (int i : Pick(m_->Live(), Batch(10))) w.ids.emplace_back(i, m_->next_version++);
    return Write(std::move(w));
  }
  absl::Status DeleteIds() {
    // Mostly live ids; some absent ones, which must stay absent.
    InFlight w{"delete", {}};
    std::vector<int> ids = Pick(m_->Live(), Batch(8));
    if (rng_() % 4 == 0) ids.push_back(Index());
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    for (int i : ids) w.ids.emplace_back(i, State());
    return Write(std::move(w));
  }
  absl::Status DeleteByFilter() {
    const int g = static_cast<int>(rng_() % kGroups);
    InFlight w{"delete_by_filter", {}};
    for (int i : m_->Live()) {
      if (GroupOf(*m_->Acked(i)) == g) w.ids.emplace_back(i, State());
    }
    const uint64_t expect = w.ids.size();
    m_->in_flight = std::move(w);
    v1::DeletePointsRequest req;
    req.set_collection("c");
    req.set_filter(absl::StrCat("owner = ", m_->owner, " AND group = ", g));
    auto r = c_.Delete(req);
    if (!r.ok()) return r.status();
    Acknowledge();
    if (r->deleted_count() != expect) {
      ctx_->Note(&LoadContext::inconsistent,
                 absl::StrCat("owner ", m_->owner, " delete_by_filter group ", g, " deleted ",
                              r->deleted_count(), ", expected ", expect));
    }
    return absl::OkStatus();
  }
  v1::SearchRequest OwnSearch(const v1::Point& query, bool exact) {
    v1::SearchRequest req;
    req.set_collection("c");
    req.set_field("v");
    req.set_k(10);
    *req.add_vectors() = query.vectors().at("v");
    req.set_filter(absl::StrCat("owner = ", m_->owner));
    req.add_output_attributes("version");
    req.mutable_params()->set_exact(exact);
    return req;
  }
  // Exact search for a live point's own vector: the top scores must be the
  // model's k smallest distances, and every hit live at its version.
  absl::Status SearchExact() {
    const std::vector<int> live = m_->Live();
    if (live.empty()) return absl::OkStatus();
    const int q = live[rng_() % live.size()];
    const v1::Point query = MakePoint(m_->owner, q, *m_->Acked(q));
    auto r = c_.Search(OwnSearch(query, true));
    if (!r.ok()) return r.status();
    std::vector<double> want;
    for (int i : live) {
      want.push_back(L2(query.vectors().at("v").values(),
                        MakePoint(m_->owner, i, *m_->Acked(i)).vectors().at("v").values()));
    }
    std::sort(want.begin(), want.end());
    want.resize(std::min<size_t>(want.size(), 10));
    const auto& hits = r->results(0).hits();
    bool ok = hits.size() == static_cast<int>(want.size());
    for (int h = 0; ok && h < hits.size(); ++h) ok = hits[h].score() == want[h];
    if (!ok) {
      ctx_->Note(&LoadContext::inconsistent,
                 absl::StrCat("owner ", m_->owner, " exact search for ", PointId(m_->owner, q),
                              ": ", hits.size(), " hits, scores differ from the model's"));
    }
    CheckHits(query, hits, "exact");
    return absl::OkStatus();
  }
  absl::Status SearchAnn() {
    const std::vector<int> live = m_->Live();
    if (live.empty()) return absl::OkStatus();
    const int q = live[rng_() % live.size()];
    const v1::Point query = MakePoint(m_->owner, q, *m_->Acked(q));
    auto r = c_.Search(OwnSearch(query, false));
    if (!r.ok()) return r.status();
    CheckHits(query, r->results(0).hits(), "approximate");
    return absl::OkStatus();
  }
  // Every hit is a live point of this owner, at its acknowledged version,
  // with its true distance.
  void CheckHits(const v1::Point& query, const google::protobuf::RepeatedPtrField<v1::Hit>& hits,
                 const char* kind) {
    for (const v1::Hit& h : hits) {
      int index = -1;
      if (sscanf(h.id().c_str(), "t%*d-%d", &index) != 1 || h.id() != PointId(m_->owner, index) ||
          !m_->Acked(index).has_value()) {
        ctx_->Note(&LoadContext::inconsistent,
                   absl::StrCat(kind, " search of owner ", m_->owner, " returned ", h.id(),
                                ", which is not live"));
        continue;
      }
      const int64_t version = *m_->Acked(index);
      auto v = h.attributes().find("version");
      const double d = L2(query.vectors().at("v").values(),
                          MakePoint(m_->owner, index, version).vectors().at("v").values());
      if (v == h.attributes().end() || v->second.int_value() != version || h.score() != d) {
        ctx_->Note(&LoadContext::inconsistent,
                   absl::StrCat(kind, " search hit ", h.id(), " score ", h.score(),
                                " version ", v == h.attributes().end() ? -1 : v->second.int_value(),
                                "; the model has version ", version, " at distance ", d));
      }
    }
  }
  absl::Status Get() {
    v1::GetPointsRequest req;
    req.set_collection("c");
    req.set_with_vectors(true);
    const std::vector<int> ids = Pick(AllIndexes(), Batch(20));
    for (int i : ids) req.add_ids(PointId(m_->owner, i));
    auto r = c_.GetPoints(req);
    if (!r.ok()) return r.status();
    std::map<std::string, const v1::Point*> got;
    for (const v1::Point& p : r->points()) got[p.id()] = &p;
    for (int i : ids) {
      auto it = got.find(PointId(m_->owner, i));
      State found;
      std::string why;
      int64_t version = 0;
      if (it != got.end()) {
        if (CheckPoint(m_->owner, i, *it->second, &version, &why) == Found::kCorrupt) {
          ctx_->Note(&LoadContext::inconsistent, absl::StrCat("get ", it->first, ": ", why));
          continue;
        }
        found = version;
      }
      if (found != m_->Acked(i)) {
        ctx_->Note(&LoadContext::inconsistent,
                   absl::StrCat("get ", PointId(m_->owner, i), ": found ",
                                found ? absl::StrCat("version ", *found) : "nothing",
                                ", the model has ",
                                m_->Acked(i) ? absl::StrCat("version ", *m_->Acked(i)) : "nothing"));
      }
    }
    return absl::OkStatus();
  }
  absl::Status Count() {
    auto r = c_.Count("c", absl::StrCat("owner = ", m_->owner));
    if (!r.ok()) return r.status();
    if (*r != m_->Live().size()) {
      ctx_->Note(&LoadContext::inconsistent, absl::StrCat("count of owner ", m_->owner, ": ", *r,
                                                          ", the model has ", m_->Live().size()));
    }
    return absl::OkStatus();
  }

  static constexpr int kMaxErrors = 20;
  Model* m_;
  LoadContext* ctx_;
  std::mt19937_64 rng_;
  client::Client c_;
  int errors_ = 0;
};

// The index spec of field "v" the admin thread last had acknowledged, and
// the one in flight.
struct AdminModel {
  std::string acked = "8";  // HNSW M
  std::string in_flight;
  // Snapshots whose create was acknowledged (and not deleted since), and
  // the one being created.
  std::vector<std::string> snapshots;
  std::string snapshot_in_flight;
  int next_snapshot = 1;
  uint64_t snapshots_acked = 0;  // in the current cycle
};

// The admin thread: index changes (every sealed segment rebuilt) and
// verification while the writers run.
class Admin {
 public:
  Admin(AdminModel* m, LoadContext* ctx, uint64_t seed)
      : m_(m), ctx_(ctx), rng_(seed), c_(ctx->address, ClientOpts()) {}

  void Run() {
    struct Op {
      const char* name;
      int weight;
      absl::Status (Admin::*run)();
    };
    static constexpr Op kOps[] = {
        {"set_index", 3, &Admin::SetIndex},
        {"verify", 1, &Admin::Verify},
        {"snapshot", 3, &Admin::Snapshot},
    };
    int total = 0;
    for (const Op& op : kOps) total += op.weight;
    // A snapshot first: a cycle's load (async above all) is often killed
    // before the mix reaches one.
    bool first = true;
    while (!ctx_->stop.load()) {
      if (!first) absl::SleepFor(absl::Milliseconds(50 + rng_() % 200));
      if (ctx_->stop.load()) return;
      int pick = static_cast<int>(rng_() % total);
      const Op* op = kOps;
      while (pick >= op->weight) pick -= (op++)->weight;
      if (first) op = &kOps[2];
      first = false;
      const absl::Status s = (this->*op->run)();
      if (s.ok()) {
        ctx_->Acked();
        continue;
      }
      if (ctx_->killing.load()) return;
      ctx_->Note(&LoadContext::load_errors, absl::StrCat("admin ", op->name, ": ", s.ToString()));
      m_->in_flight.clear();
      m_->snapshot_in_flight.clear();
      if (++errors_ >= 20) return;
    }
  }

 private:
  absl::Status SetIndex() {
    static const char* kM[] = {"6", "8", "12"};
    m_->in_flight = kM[rng_() % 3];
    v1::UpdateCollectionRequest req;
    req.set_name("c");
    v1::VectorFieldUpdate* u = req.add_vectors();
    u->set_field("v");
    u->mutable_index()->set_type("HNSW");
    (*u->mutable_index()->mutable_params())["M"] = m_->in_flight;
    absl::Status s = c_.UpdateCollection(req).status();
    if (s.ok()) {
      m_->acked = m_->in_flight;
      m_->in_flight.clear();
    }
    return s;
  }
  // A snapshot of "c" or of every collection, taken while the writers go
  // on; the checker keeps the number on the server small.
  absl::Status Snapshot() {
    m_->snapshot_in_flight = absl::StrCat("s", m_->next_snapshot++);
    absl::StatusOr<v1::SnapshotInfo> info = client::CreateSnapshot(
        c_, rng_() % 2 == 0 ? "c" : "", m_->snapshot_in_flight, absl::Seconds(60));
    if (!info.ok()) return info.status();
    m_->snapshots.push_back(m_->snapshot_in_flight);
    m_->snapshot_in_flight.clear();
    ++m_->snapshots_acked;
    return absl::OkStatus();
  }
  absl::Status Verify() {
    v1::VerifyCollectionRequest req;
    req.set_name("c");
    req.set_index_samples(10);
    req.set_seed(rng_());
    auto r = c_.VerifyCollection(req);
    if (!r.ok()) return r.status();
    if (r->defects_total() > 0) {
      ctx_->Note(&LoadContext::inconsistent,
                 absl::StrCat("verify during load: ", r->defects_total(), " defects, first: ",
                              r->defects(0).DebugString()));
    }
    return absl::OkStatus();
  }

  AdminModel* m_;
  LoadContext* ctx_;
  std::mt19937_64 rng_;
  client::Client c_;
  int errors_ = 0;
};

}  // namespace
}  // namespace quiver::crash

namespace quiver::crash {
namespace {

using ::quiver::testing::QuiverdOptions;
using ::quiver::testing::QuiverdProcess;

uint64_t SeedOf(uint64_t seed, uint64_t cycle, uint64_t stream) {
  std::seed_seq seq{seed, cycle, stream};
  uint64_t out[1];
  seq.generate(reinterpret_cast<uint32_t*>(out), reinterpret_cast<uint32_t*>(out) + 2);
  return out[0];
}

class Loop {
 public:
  explicit Loop(Args a) : a_(std::move(a)), rng_(SeedOf(a_.seed, 0, 0)) {
    for (int t = 0; t < a_.writers; ++t) {
      Model m;
      m.owner = t;
      m.ids = a_.ids_per_writer;
      models_.push_back(std::move(m));
    }
  }

  absl::Status Setup() {
    QuiverdOptions o;
    o.binary = a_.quiverd;
    o.durability = a_.durability;
    o.data_dir = a_.data_dir;
    o.capture_log = true;
    o.wait_healthy = true;
    o.extra_args = {"--segment-max-rows", absl::StrCat(a_.segment_max_rows), "--seal-idle-ms",
                    absl::StrCat(a_.seal_idle_ms), "--index-check-samples", "8"};
    options_ = o;
    server_ = std::make_unique<QuiverdProcess>(o);
    if (absl::Status s = server_->Start(); !s.ok()) return s;
    client::Client c(server_->address(), ClientOpts());
    return c.CreateCollection("c", CrashSchema()).status();
  }

  // Load, kill -9, restart, check. False when the server cannot be
  // restarted at all (the run cannot go on).
  bool RunCycle(int cycle, CycleStats* st) {
    LoadContext ctx;
    ctx.address = server_->address();
    std::vector<std::unique_ptr<Writer>> writers;
    std::vector<std::thread> threads;
    for (int t = 0; t < a_.writers; ++t) {
      writers.push_back(std::make_unique<Writer>(&models_[t], &ctx, SeedOf(a_.seed, cycle, t + 1)));
      ctx.writers_running.fetch_add(1);
      threads.emplace_back([w = writers.back().get(), &ctx] {
        w->Run();
        ctx.writers_running.fetch_sub(1);
      });
    }
    Admin admin(&admin_, &ctx, SeedOf(a_.seed, cycle, 1000));
    threads.emplace_back([&admin] { admin.Run(); });

    const uint64_t kill_after =
        a_.min_acks + rng_() % static_cast<uint64_t>(a_.max_acks - a_.min_acks + 1);
    const absl::Duration extra = absl::Milliseconds(static_cast<int>(rng_() % 20));
    const absl::Time give_up = absl::Now() + absl::Seconds(300);
    while (ctx.acked_writes.load() < kill_after && absl::Now() < give_up &&
           ctx.writers_running.load() > 0) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    absl::SleepFor(extra);
    if (ctx.acked_writes.load() < kill_after) {
      ctx.Note(&LoadContext::load_errors,
               absl::StrCat("only ", ctx.acked_writes.load(), " writes acknowledged, of ",
                            kill_after, " wanted before the kill"));
    }
    ctx.killing = true;
    if (absl::Status s = server_->Kill9(); !s.ok()) {
      ctx.Note(&LoadContext::load_errors, absl::StrCat("kill -9: ", s.ToString()));
    }
    ctx.stop = true;
    for (auto& th : threads) th.join();
    {
      MutexLock l(&ctx.mu);
      st->acked = ctx.acked;
      st->load_errors = ctx.load_errors;
      st->inconsistent = ctx.inconsistent;
      for (auto& e : ctx.examples) Report(cycle, "load", e);
    }
    st->acked_writes = ctx.acked_writes.load();
    for (const Model& m : models_) st->in_flight += m.in_flight.has_value();
    st->snapshots_acked = admin_.snapshots_acked;
    admin_.snapshots_acked = 0;

    if (!Restart(cycle, st)) return false;
    Check(cycle, st);
    return true;
  }

 private:
  void Report(int cycle, const char* phase, const std::string& what) {
    std::printf("cycle %d %s: %s\n", cycle, phase, what.c_str());
  }

  bool Restart(int cycle, CycleStats* st) {
    if (a_.recovery_kill_every > 0 && cycle % a_.recovery_kill_every == 0) {
      KillDuringRecovery(cycle, st);
    }
    for (int attempt = 0; attempt < a_.restart_attempts; ++attempt) {
      const absl::Time t0 = absl::Now();
      absl::Status s = server_->Start();
      if (s.ok()) {
        st->restart_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
        last_restart_ms_ = st->restart_ms;
        return true;
      }
      ++st->restart_failures;
      Report(cycle, "restart", s.ToString());
      (void)server_->Kill9();
    }
    return false;
  }

  // Starts quiverd on the data and kills it again after a random part of
  // the last restart's time: recovery (WAL replay, segment files, index
  // loads and rebuilds) must itself survive kill -9.
  void KillDuringRecovery(int cycle, CycleStats* st) {
    const double window_ms = std::max(20.0, last_restart_ms_);
    const absl::Time kill_at =
        absl::Now() + absl::Milliseconds(static_cast<double>(rng_() % 1000) / 1000 * window_ms);
    QuiverdOptions o = options_;
    o.data_dir = server_->data_dir();
    o.log_file = server_->log_path();
    o.ready = [kill_at](const std::string&) { return absl::Now() >= kill_at; };
    QuiverdProcess early(o);
    absl::Status s = early.Start();
    if (!s.ok()) {
      ++st->restart_failures;
      Report(cycle, "restart killed part-way", s.ToString());
    }
    (void)early.Kill9();
    ++st->recovery_kills;
  }

  void Check(int cycle, CycleStats* st) {
    client::Client c(server_->address(), ClientOpts());
    auto fail = [&](std::string what) {
      ++st->inconsistent;
      Report(cycle, "check", what);
    };
    uint64_t live = 0;
    for (Model& m : models_) {
      v1::GetPointsRequest req;
      req.set_collection("c");
      req.set_with_vectors(true);
      for (int i = 0; i < m.ids; ++i) req.add_ids(PointId(m.owner, i));
      auto r = c.GetPoints(req);
      if (!r.ok()) fail(absl::StrCat("get after restart: ", r.status().ToString()));
      // (A failed get finds nothing: every acknowledged point counts as lost.)
      v1::GetPointsResponse none;
      std::map<int, const v1::Point*> found;
      for (const v1::Point& p : r.ok() ? r->points() : none.points()) {
        int index = -1;
        if (sscanf(p.id().c_str(), "t%*d-%d", &index) == 1) found[index] = &p;
      }
      Reconcile(&m, found, &st->rec);
      live += m.Live().size();
    }
    for (const std::string& e : st->rec.examples) Report(cycle, "recovery", e);
    auto count = c.Count("c");
    if (!count.ok() || *count != live) {
      fail(absl::StrCat("count after restart: ",
                        count.ok() ? absl::StrCat(*count) : count.status().ToString(),
                        ", the model has ", live));
    }
    CheckAdmin(cycle, c, fail, st);
    CheckSnapshots(cycle, c, st);
    // Searches, gets and counts against the reconciled model.
    LoadContext probe;
    probe.address = server_->address();
    for (Model& m : models_) Writer(&m, &probe, SeedOf(a_.seed, cycle, 2000 + m.owner)).Probe(3);
    MutexLock l(&probe.mu);
    st->inconsistent += probe.inconsistent + probe.load_errors;
    for (auto& e : probe.examples) Report(cycle, "check", e);
  }

  // The index spec of "v" is the acknowledged one or the one in flight;
  // VerifyCollection finds no defect; the segment counts for the table.
  template <typename Fail>
  void CheckAdmin(int cycle, client::Client& c, Fail& fail, CycleStats* st) {
    auto info = c.GetCollection("c");
    if (!info.ok()) return fail(absl::StrCat("describe: ", info.status().ToString()));
    std::string m;
    for (const auto& f : info->schema().vectors()) {
      if (f.name() == "v") m = f.index().params().count("M") ? f.index().params().at("M") : "";
    }
    if (m == admin_.acked || (!admin_.in_flight.empty() && m == admin_.in_flight)) {
      admin_.acked = m;
    } else {
      fail(absl::StrCat("index of v has M=", m, ", acknowledged M=", admin_.acked,
                        admin_.in_flight.empty() ? "" : absl::StrCat(", in flight M=", admin_.in_flight)));
      admin_.acked = m;
    }
    admin_.in_flight.clear();
    for (const auto& seg : info->stats().segments()) {
      ++st->segments;
      st->indexed += seg.state() == v1::SegmentInfo::INDEXED;
    }
    v1::VerifyCollectionRequest vreq;
    vreq.set_name("c");
    vreq.set_index_samples(20);
    vreq.set_seed(rng_());
    auto v = c.VerifyCollection(vreq);
    if (!v.ok()) return fail(absl::StrCat("verify: ", v.status().ToString()));
    st->verify_defects = v->defects_total();
    for (int i = 0; i < v->defects_size() && i < 5; ++i) {
      Report(cycle, "verify", v->defects(i).ShortDebugString());
    }
  }

  // Every acknowledged snapshot is listed, none is damaged, and the only
  // other one allowed is the create in flight at the kill (it may have
  // finished: then it counts as acknowledged). Each is downloaded, every
  // packed file checked, and restored online under a new name (then
  // dropped). All but the newest two are deleted afterwards.
  void CheckSnapshots(int cycle, client::Client& c, CycleStats* st) {
    auto bad = [&](std::string what) {
      ++st->snapshot_failures;
      Report(cycle, "snapshots", what);
    };
    const absl::Duration timeout = absl::Seconds(120);
    absl::StatusOr<v1::ListSnapshotsResponse> list = client::ListSnapshots(c, timeout);
    if (!list.ok()) return bad(absl::StrCat("list: ", list.status().ToString()));
    for (const std::string& d : list->damaged()) bad(absl::StrCat("listed damaged: ", d));
    std::set<std::string> listed;
    for (const v1::SnapshotInfo& info : list->snapshots()) listed.insert(info.name());
    if (!admin_.snapshot_in_flight.empty() && listed.count(admin_.snapshot_in_flight) != 0) {
      admin_.snapshots.push_back(admin_.snapshot_in_flight);
    }
    admin_.snapshot_in_flight.clear();
    for (const std::string& name : listed) {
      if (std::find(admin_.snapshots.begin(), admin_.snapshots.end(), name) ==
          admin_.snapshots.end()) {
        bad(absl::StrCat("\"", name, "\" is listed, no create of it was acknowledged"));
      }
    }
    const std::string file = server_->data_dir() + "-download.qsnap";
    std::vector<std::string> kept;
    for (const std::string& name : admin_.snapshots) {
      if (listed.count(name) == 0) {
        bad(absl::StrCat("\"", name, "\" was acknowledged and is not listed"));
        continue;
      }
      kept.push_back(name);
      absl::StatusOr<v1::SnapshotInfo> got = client::DownloadSnapshot(c, name, file, timeout);
      if (!got.ok()) {
        bad(absl::StrCat("download \"", name, "\": ", got.status().ToString()));
        continue;
      }
      absl::StatusOr<storage::SnapshotManifest> m = storage::VerifySnapshot(file);
      if (!m.ok() || m->sequence() != got->sequence() ||
          std::filesystem::file_size(file) != got->size_bytes()) {
        bad(absl::StrCat("downloaded \"", name, "\": ",
                         m.ok() ? "sequence or size differs from its listing"
                                : m.status().ToString()));
        continue;
      }
      absl::StatusOr<v1::RestoreSnapshotResponse> r =
          client::RestoreSnapshot(c, name, "", "c", "restored", timeout);
      if (!r.ok()) {
        bad(absl::StrCat("restore \"", name, "\": ", r.status().ToString()));
        continue;
      }
      if (absl::Status d = c.DropCollection("restored"); !d.ok()) {
        bad(absl::StrCat("drop the restore of \"", name, "\": ", d.ToString()));
      }
      ++st->snapshots_checked;
    }
    std::error_code ec;
    std::filesystem::remove(file, ec);
    while (kept.size() > 2) {
      if (absl::Status d = client::DeleteSnapshot(c, kept.front(), timeout); !d.ok()) {
        bad(absl::StrCat("delete \"", kept.front(), "\": ", d.ToString()));
      }
      kept.erase(kept.begin());
    }
    admin_.snapshots = kept;
  }

  Args a_;
  std::mt19937_64 rng_;
  std::vector<Model> models_;
  AdminModel admin_;
  QuiverdOptions options_;
  std::unique_ptr<QuiverdProcess> server_;
  double last_restart_ms_ = 0;

 public:
  QuiverdProcess* server() { return server_.get(); }
};

void PrintSummary(const Args& a, const std::vector<CycleStats>& cycles) {
  using ::quiver::testing::Fixed;
  testing::Table t({"cycle", "acked ops", "acked writes", "in flight", "landed", "lost",
                    "resurrected", "corrupt", "torn", "inconsistent", "load errors",
                    "verify defects", "recovery kills", "restart failures", "restart ms",
                    "segments (indexed)", "snapshots acked", "snapshots checked",
                    "snapshot failures"});
  CycleStats sum;
  double max_ms = 0;
  auto row = [&](const std::string& name, const CycleStats& s, double ms) {
    t.AddRow({name, absl::StrCat(s.acked), absl::StrCat(s.acked_writes), absl::StrCat(s.in_flight),
              absl::StrCat(s.rec.in_flight_landed), absl::StrCat(s.rec.lost),
              absl::StrCat(s.rec.resurrected), absl::StrCat(s.rec.corrupt),
              absl::StrCat(s.rec.torn), absl::StrCat(s.inconsistent), absl::StrCat(s.load_errors),
              absl::StrCat(s.verify_defects), absl::StrCat(s.recovery_kills),
              absl::StrCat(s.restart_failures), Fixed(ms, 0),
              name == "total" ? "-" : absl::StrCat(s.segments, " (", s.indexed, ")"),
              absl::StrCat(s.snapshots_acked), absl::StrCat(s.snapshots_checked),
              absl::StrCat(s.snapshot_failures)});
  };
  for (size_t i = 0; i < cycles.size(); ++i) {
    const CycleStats& s = cycles[i];
    row(absl::StrCat(i + 1), s, s.restart_ms);
    sum.acked += s.acked;
    sum.acked_writes += s.acked_writes;
    sum.in_flight += s.in_flight;
    sum.rec.in_flight_landed += s.rec.in_flight_landed;
    sum.rec.lost += s.rec.lost;
    sum.rec.resurrected += s.rec.resurrected;
    sum.rec.corrupt += s.rec.corrupt;
    sum.rec.torn += s.rec.torn;
    sum.inconsistent += s.inconsistent;
    sum.load_errors += s.load_errors;
    sum.verify_defects += s.verify_defects;
    sum.restart_failures += s.restart_failures;
    sum.recovery_kills += s.recovery_kills;
    sum.snapshots_acked += s.snapshots_acked;
    sum.snapshots_checked += s.snapshots_checked;
    sum.snapshot_failures += s.snapshot_failures;
    sum.restart_ms += s.restart_ms;
    max_ms = std::max(max_ms, s.restart_ms);
  }
  const double mean_ms = cycles.empty() ? 0 : sum.restart_ms / cycles.size();
  row("total", sum, mean_ms);
  std::printf("\ncrash loop: %zu cycles, --durability %s, --seed %llu, %d writers x %d ids\n",
              cycles.size(), a.durability.c_str(), static_cast<unsigned long long>(a.seed),
              a.writers, a.ids_per_writer);
  t.Print(std::cout);
  std::printf("restart time: mean %.0f ms, max %.0f ms (total row: mean)\n", mean_ms, max_ms);
}

int Main(int argc, char** argv) {
  Args a;
  CLI::App app("crash_loop: kill -9 quiverd under mixed load and check every acknowledged op");
  app.add_option("--cycles", a.cycles, "Kill/restart cycles")->capture_default_str();
  app.add_option("--seed", a.seed, "Seed of the op streams and kill points")->capture_default_str();
  app.add_option("--durability", a.durability, "quiverd --durability: sync or async")
      ->check(CLI::IsMember({"sync", "async"}))->capture_default_str();
  app.add_option("--quiverd", a.quiverd, "The quiverd binary")->capture_default_str();
  app.add_option("--data-dir", a.data_dir, "Data directory (default: a temporary one)");
  app.add_option("--writers", a.writers, "Writer threads")->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--ids-per-writer", a.ids_per_writer, "Ids each writer owns")
      ->check(CLI::Range(10, 100000))->capture_default_str();
  app.add_option("--min-acks", a.min_acks, "Fewest acknowledged writes before a kill")
      ->check(CLI::Range(1, 1000000))->capture_default_str();
  app.add_option("--max-acks", a.max_acks, "Most acknowledged writes before a kill")
      ->check(CLI::Range(1, 1000000))->capture_default_str();
  app.add_option("--segment-max-rows", a.segment_max_rows, "quiverd --segment-max-rows")
      ->capture_default_str();
  app.add_option("--seal-idle-ms", a.seal_idle_ms, "quiverd --seal-idle-ms")->capture_default_str();
  app.add_option("--recovery-kill-every", a.recovery_kill_every,
                 "Every Nth restart is first killed part-way through recovery (0: never)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (a.max_acks < a.min_acks) {
    std::fprintf(stderr, "crash_loop: --max-acks must be at least --min-acks\n");
    return 2;
  }
  Loop loop(a);
  if (absl::Status s = loop.Setup(); !s.ok()) {
    std::fprintf(stderr, "crash_loop: cannot start: %s\n", s.ToString().c_str());
    return 1;
  }
  std::vector<CycleStats> cycles;
  uint64_t failures = 0;
  bool alive = true;
  for (int i = 1; i <= a.cycles && alive; ++i) {
    CycleStats st;
    alive = loop.RunCycle(i, &st);
    failures += st.Failures();
    std::printf("cycle %d: %llu ops acknowledged (%llu writes, %llu snapshots), %llu in flight, "
                "restart %.0f ms, %llu snapshots checked, %llu failures\n",
                i, static_cast<unsigned long long>(st.acked),
                static_cast<unsigned long long>(st.acked_writes),
                static_cast<unsigned long long>(st.snapshots_acked),
                static_cast<unsigned long long>(st.in_flight), st.restart_ms,
                static_cast<unsigned long long>(st.snapshots_checked),
                static_cast<unsigned long long>(st.Failures()));
    std::fflush(stdout);
    cycles.push_back(std::move(st));
  }
  if (alive) {
    if (absl::Status s = loop.server()->Stop(); !s.ok()) {
      std::printf("graceful stop at the end: %s\n", s.ToString().c_str());
      ++failures;
    }
  } else {
    std::printf("quiverd could not be restarted; its log: %s\n%s\n",
                loop.server()->log_path().c_str(),
                testing::FileTail(loop.server()->log_path(), 4000).c_str());
  }
  PrintSummary(a, cycles);
  const bool ok = alive && failures == 0;
  std::printf("crash loop: %s\n", ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace quiver::crash

int main(int argc, char** argv) { return quiver::crash::Main(argc, argv); }
