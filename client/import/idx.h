// The IDX format's header (MNIST's): big-endian magic 0x0000TTNN (element
// type TT, NN dimensions), then NN big-endian sizes. Used by the vector and
// label readers.
//
// Stateless; errors are INVALID_ARGUMENT naming the file.
#ifndef QUIVER_CLIENT_IMPORT_IDX_H_
#define QUIVER_CLIENT_IMPORT_IDX_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "client/import/byte_input.h"

namespace quiver::ctl {

struct IdxHeader {
  uint8_t type = 0;  // 0x08 ubyte, 0x09 sbyte, 0x0B int16, 0x0C int32, 0x0D float, 0x0E double
  std::vector<uint64_t> dims;
  uint64_t data_offset = 0;
};

// Reads the magic and the dimensions.
absl::StatusOr<IdxHeader> ReadIdxHeader(GzInput& in);

}  // namespace quiver::ctl

#endif  // QUIVER_CLIENT_IMPORT_IDX_H_
