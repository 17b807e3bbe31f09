// Waiting on a quiverd under test or benchmark until its segments are
// indexed (quiverd seals a segment after --seal-idle-ms without writes and
// indexes it in the background), and what its segments look like meanwhile.
//
// Stateless functions over a client the caller owns; thread-safe as far as
// the client is. Errors: absl::Status.
#ifndef QUIVER_TESTS_COMMON_SERVER_WAIT_H_
#define QUIVER_TESTS_COMMON_SERVER_WAIT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/client.h"

namespace quiver::testing {

// A collection's segments as describe reports them.
struct SegmentsState {
  bool all_indexed = false;  // at least one segment, every one INDEXED
  size_t segments = 0;
  uint64_t rows = 0;
  uint64_t index_memory = 0;  // per-field memory of the segments
  uint64_t index_disk = 0;
  uint64_t field_memory = 0;  // VectorFieldStats.memory_bytes
  std::string desc;           // "#1 INDEXED 60000 rows HNSW(...), ..."
};
absl::StatusOr<SegmentsState> Segments(client::Client& c, const std::string& coll);

// Polls every `poll_ms` until every segment of every collection is INDEXED;
// returns the seconds waited, or DEADLINE_EXCEEDED (with each collection's
// state) after `timeout_s`.
absl::StatusOr<double> WaitIndexed(client::Client& c, const std::vector<std::string>& colls,
                                   double timeout_s, int poll_ms);

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_COMMON_SERVER_WAIT_H_
