// Labels (and multi-vector offsets): a column of integers, one per row.
// Stateless; errors as for VectorFileReader::Open (vector_file.h).
#ifndef QUIVER_CLIENT_IMPORT_LABELS_H_
#define QUIVER_CLIENT_IMPORT_LABELS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace quiver::ctl {

// Reads integer labels from an IDX1 file (ubyte, sbyte, int16 or int32
// items, optionally gzip'd) or a 1-D (or n x 1) .npy array of any integer
// dtype. Errors as for VectorFileReader::Open.
absl::StatusOr<std::vector<int64_t>> ReadLabels(const std::string& path);

}  // namespace quiver::ctl

#endif  // QUIVER_CLIENT_IMPORT_LABELS_H_
