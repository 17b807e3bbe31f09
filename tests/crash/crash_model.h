// What the crash loop (crash_loop.cc) knows about the collection it loads:
// the content of every point as a function of (owner, index, version), so a
// point read back can be checked field by field; and, per owner, the last
// acknowledged state of each id plus the one write that was in flight when
// quiverd was killed.
//
// Each writer thread owns its ids (attribute `owner`), so its own writes are
// the only ones to them and its model is exact between its requests.
// Ownership: a Model belongs to one thread at a time (its writer during
// load, the main thread after a kill); no locking inside.
// Errors: the checks return counts and a text for the first few failures;
// they do not stop the run.
#ifndef QUIVER_TESTS_CRASH_CRASH_MODEL_H_
#define QUIVER_TESTS_CRASH_CRASH_MODEL_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "quiver/v1/collections.pb.h"
#include "quiver/v1/types.pb.h"

namespace quiver::crash {

constexpr uint32_t kDimV = 16;  // field "v": MEMORY, HNSW, L2
constexpr uint32_t kDimD = 8;   // field "d": DISK, IVF_SQ8, L2
constexpr int kGroups = 8;      // attribute "group" = version % kGroups

// The collection's schema: both vector fields, and attributes of every type
// (owner, group indexed; the rest plain).
v1::CollectionSchema CrashSchema();

std::string PointId(int owner, int index);
// The point (owner, index) as written at `version`: vectors and attributes
// are a pure function of the three, with small integer coordinates so that
// squared L2 distances are exact in float32.
v1::Point MakePoint(int owner, int index, int64_t version);
int GroupOf(int64_t version);
// Squared L2 distance between two value lists, in double.
double L2(const google::protobuf::RepeatedField<float>& a,
          const google::protobuf::RepeatedField<float>& b);

// One id's state: the version written, or nullopt when absent.
using State = std::optional<int64_t>;

// A write of several ids sent but not (yet) acknowledged.
struct InFlight {
  std::string op;                          // op kind name, for reports
  std::vector<std::pair<int, State>> ids;  // index -> state if it lands
};

struct Model {
  int owner = 0;
  int ids = 0;                 // indexes 0..ids-1
  std::map<int, State> acked;  // absent key = never written = absent
  std::optional<InFlight> in_flight;
  int64_t next_version = 1;  // versions only grow, across cycles too

  State Acked(int index) const;
  std::vector<int> Live() const;
  void Apply(const InFlight& w);
};

// What reading a point back found.
enum class Found { kOk, kCorrupt };
// Checks a point read back against MakePoint at the version its attributes
// name; sets *version. kCorrupt (with *why) when anything differs.
Found CheckPoint(int owner, int index, const v1::Point& p, int64_t* version, std::string* why);

// The outcome of comparing a recovered owner with its model.
struct RecoveryCounts {
  uint64_t lost = 0;         // acknowledged upsert missing or at an older version
  uint64_t resurrected = 0;  // acknowledged delete present again
  uint64_t corrupt = 0;      // content matches no version, or a version never written
  uint64_t torn = 0;         // the in-flight batch landed for some ids and not others
  uint64_t in_flight_landed = 0;
  uint64_t in_flight_not_landed = 0;
  std::vector<std::string> examples;  // the first few failures, for the log
};

// Compares what the server holds for `m`'s ids (`found`: index -> point, as
// read back) with the model, then makes the recovered state the model's
// (the in-flight write resolved one way or the other).
void Reconcile(Model* m, const std::map<int, const v1::Point*>& found, RecoveryCounts* out);

}  // namespace quiver::crash

#endif  // QUIVER_TESTS_CRASH_CRASH_MODEL_H_
