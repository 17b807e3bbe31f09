#include "client/import/idx.h"

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"

namespace quiver::ctl {

absl::StatusOr<IdxHeader> ReadIdxHeader(GzInput& in) {
  unsigned char magic[4];
  QUIVER_RETURN_IF_ERROR(ReadHeaderBytes(in, magic, 4, "an IDX header"));
  IdxHeader h;
  h.type = magic[2];
  const int ndims = magic[3];
  const bool known_type = h.type == 0x08 || h.type == 0x09 || h.type == 0x0B || h.type == 0x0C ||
                          h.type == 0x0D || h.type == 0x0E;
  if (magic[0] != 0 || magic[1] != 0 || !known_type || ndims < 1) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: not an IDX file (magic 0x%08x; expected 0x000008nn for ubyte data)",
                        in.path(), LoadBE32(magic)));
  }
  unsigned char dims[4 * 255];
  QUIVER_RETURN_IF_ERROR(
      ReadHeaderBytes(in, dims, 4 * static_cast<size_t>(ndims), "an IDX header"));
  for (int i = 0; i < ndims; ++i) h.dims.push_back(LoadBE32(dims + 4 * i));
  h.data_offset = 4 + 4 * static_cast<uint64_t>(ndims);
  return h;
}

}  // namespace quiver::ctl
