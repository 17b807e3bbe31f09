#include "client/import/labels.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "client/import/byte_input.h"
#include "client/import/idx.h"
#include "client/import/npy.h"

namespace quiver::ctl {

namespace {

// How a labels file stores its integers, from its header.
struct LabelLayout {
  uint64_t n = 0;
  int size = 0;  // bytes per label
  bool is_signed = false;
  bool big_endian = false;
  uint64_t header_bytes = 0;
};

absl::StatusOr<LabelLayout> NpyLabelLayout(const std::string& path, GzInput& in) {
  QUIVER_ASSIGN_OR_RETURN(NpyHeader h, ReadNpyHeader(in));
  const NpyDtype dt = ParseDtype(h.descr);
  if ((dt.kind != 'i' && dt.kind != 'u') ||
      (dt.size != 1 && dt.size != 2 && dt.size != 4 && dt.size != 8)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": labels must be an integer array, got dtype '", h.descr, "'"));
  }
  if (h.shape.size() == 0 || h.shape.size() > 2 || (h.shape.size() == 2 && h.shape[1] != 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": labels must be a 1-D array (or n x 1), got shape ", ShapeText(h.shape)));
  }
  LabelLayout l;
  l.n = h.shape[0];
  l.size = dt.size;
  l.is_signed = dt.kind == 'i';
  l.big_endian = IsBigEndian(dt.order);
  l.header_bytes = h.data_offset;
  return l;
}

absl::StatusOr<LabelLayout> IdxLabelLayout(const std::string& path, GzInput& in) {
  QUIVER_ASSIGN_OR_RETURN(IdxHeader h, ReadIdxHeader(in));
  if (h.dims.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": a labels IDX file has one dimension (IDX1), this one has ", h.dims.size()));
  }
  LabelLayout l;
  switch (h.type) {
    case 0x08:
      l.size = 1;
      break;
    case 0x09:
      l.size = 1;
      l.is_signed = true;
      break;
    case 0x0B:
      l.size = 2;
      l.is_signed = true;
      break;
    case 0x0C:
      l.size = 4;
      l.is_signed = true;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: IDX labels must be integers, got element type 0x%02x", path, h.type));
  }
  l.n = h.dims[0];
  l.big_endian = true;
  l.header_bytes = h.data_offset;
  return l;
}

// Reads the n labels after the header.
absl::StatusOr<std::vector<int64_t>> DecodeLabels(const std::string& path, GzInput& in,
                                                  const LabelLayout& l) {
  const uint64_t n = l.n;
  const int size = l.size;
  std::vector<int64_t> labels;
  // Reserve what the header promises only up to a sane amount; a damaged
  // gzip'd header must not make us allocate terabytes.
  labels.reserve(static_cast<size_t>(std::min<uint64_t>(n, 1 << 24)));
  std::vector<unsigned char> chunk;
  while (labels.size() < n) {
    const uint64_t todo = std::min<uint64_t>(n - labels.size(), 1 << 16);
    chunk.resize(todo * static_cast<uint64_t>(size));
    QUIVER_ASSIGN_OR_RETURN(
        size_t read, in.Read(chunk.data(), chunk.size(), absl::StrCat("label ", labels.size())));
    if (read < chunk.size()) {
      return absl::DataLossError(absl::StrCat(path, ": truncated: the header promises ", n,
                                              " labels; label ", labels.size() + read / size,
                                              " is missing"));
    }
    for (uint64_t i = 0; i < todo; ++i) {
      const unsigned char* p = chunk.data() + i * static_cast<uint64_t>(size);
      uint64_t u = 0;
      for (int b = 0; b < size; ++b) {
        const int shift = l.big_endian ? 8 * (size - 1 - b) : 8 * b;
        u |= uint64_t{p[b]} << shift;
      }
      int64_t v = static_cast<int64_t>(u);
      if (l.is_signed && size < 8 && (u >> (8 * size - 1)) != 0) {
        v = static_cast<int64_t>(u | (~uint64_t{0} << (8 * size)));  // sign-extend
      }
      labels.push_back(v);
    }
  }
  return labels;
}

}  // namespace

absl::StatusOr<std::vector<int64_t>> ReadLabels(const std::string& path) {
  QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<GzInput> in, GzInput::Open(path));
  // The two formats differ from the first byte: npy starts with 0x93, IDX
  // with two zero bytes. Peeking would need a seekable stream, so each
  // branch re-opens the file.
  unsigned char first = 0;
  QUIVER_ASSIGN_OR_RETURN(size_t got, in->Read(&first, 1, "header"));
  if (got == 0) return absl::InvalidArgumentError(absl::StrCat(path, ": empty file"));
  QUIVER_ASSIGN_OR_RETURN(in, GzInput::Open(path));

  LabelLayout l;
  if (first == 0x93) {
    QUIVER_ASSIGN_OR_RETURN(l, NpyLabelLayout(path, *in));
  } else if (first == 0) {
    QUIVER_ASSIGN_OR_RETURN(l, IdxLabelLayout(path, *in));
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not an IDX1 or .npy labels file (unrecognized first byte)"));
  }
  QUIVER_RETURN_IF_ERROR(
      CheckSize(*in, l.header_bytes, l.n, static_cast<uint64_t>(l.size), "label"));
  QUIVER_RETURN_IF_ERROR(DataBytes(path, l.n, static_cast<uint64_t>(l.size)).status());
  return DecodeLabels(path, *in, l);
}

}  // namespace quiver::ctl
