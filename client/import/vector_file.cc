#include "client/import/vector_file.h"

#include <bit>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "client/import/byte_input.h"
#include "client/import/idx.h"
#include "client/import/npy.h"

namespace quiver::ctl {
namespace {

// The API's largest dimension (types.proto). A header claiming more is
// corrupt or not the format we think, and trusting it would mean allocating
// whatever a damaged file says.
constexpr uint32_t kMaxDim = 65536;

// Element layouts the vector reader converts to float.
enum class Element { kF32LE, kF32BE, kU8 };

float ToFloat(const unsigned char* p, Element e) {
  switch (e) {
    case Element::kU8:
      return static_cast<float>(*p);
    case Element::kF32LE:
      return std::bit_cast<float>(LoadLE32(p));
    case Element::kF32BE:
      return std::bit_cast<float>(LoadBE32(p));
  }
  return 0;
}

size_t ElementSize(Element e) { return e == Element::kU8 ? 1 : 4; }

}  // namespace

// ------------------------------------------------------------ formats

const char* FileFormatName(FileFormat f) {
  switch (f) {
    case FileFormat::kFvecs:
      return "fvecs";
    case FileFormat::kNpy:
      return "npy";
    case FileFormat::kIdx:
      return "idx";
    case FileFormat::kJsonl:
      return "jsonl";
  }
  return "?";
}

absl::StatusOr<FileFormat> ParseFileFormat(const std::string& name) {
  const std::string n = absl::AsciiStrToLower(name);
  if (n == "fvecs") return FileFormat::kFvecs;
  if (n == "npy") return FileFormat::kNpy;
  if (n == "idx") return FileFormat::kIdx;
  if (n == "jsonl" || n == "ndjson") return FileFormat::kJsonl;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown format \"", name, "\" (expected fvecs, npy, idx or jsonl)"));
}

absl::StatusOr<FileFormat> FileFormatFromName(const std::string& path) {
  std::string n = absl::AsciiStrToLower(path);
  if (absl::EndsWith(n, ".gz")) n.resize(n.size() - 3);
  const size_t slash = n.rfind('/');
  if (slash != std::string::npos) n = n.substr(slash + 1);
  if (absl::EndsWith(n, ".fvecs")) return FileFormat::kFvecs;
  if (absl::EndsWith(n, ".npy")) return FileFormat::kNpy;
  if (absl::EndsWith(n, ".jsonl") || absl::EndsWith(n, ".ndjson")) return FileFormat::kJsonl;
  if (absl::EndsWith(n, ".idx") || absl::StrContains(n, "idx1") || absl::StrContains(n, "idx2") ||
      absl::StrContains(n, "idx3") || absl::StrContains(n, "idx4")) {
    return FileFormat::kIdx;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "cannot tell the format of ", path, " from its name; pass --format fvecs|npy|idx|jsonl"));
}

// ------------------------------------------------------------ vector reader

struct VectorFileReader::Impl {
  std::unique_ptr<GzInput> in;
  Element element = Element::kF32LE;
  std::vector<unsigned char> buf;  // one row's raw bytes
};

VectorFileReader::VectorFileReader(std::string path, FileFormat format)
    : path_(std::move(path)), format_(format), impl_(std::make_unique<Impl>()) {}

VectorFileReader::~VectorFileReader() = default;

absl::StatusOr<std::unique_ptr<VectorFileReader>> VectorFileReader::Open(const std::string& path,
                                                                         FileFormat format) {
  if (format == FileFormat::kJsonl) {
    return absl::InvalidArgumentError("jsonl is not a vector file format");
  }
  auto reader = std::unique_ptr<VectorFileReader>(new VectorFileReader(path, format));
  QUIVER_ASSIGN_OR_RETURN(reader->impl_->in, GzInput::Open(path));
  QUIVER_RETURN_IF_ERROR(reader->ReadHeader());
  return reader;
}

absl::Status VectorFileReader::ReadHeader() {
  switch (format_) {
    case FileFormat::kFvecs:
      QUIVER_RETURN_IF_ERROR(ReadFvecsHeader());
      break;
    case FileFormat::kNpy:
      QUIVER_RETURN_IF_ERROR(ReadNpyVectorsHeader());
      break;
    case FileFormat::kIdx:
      QUIVER_RETURN_IF_ERROR(ReadIdxVectorsHeader());
      break;
    case FileFormat::kJsonl:
      break;
  }
  impl_->buf.resize(dim_ * ElementSize(impl_->element));
  return absl::OkStatus();
}

absl::Status VectorFileReader::ReadFvecsHeader() {
  GzInput& in = *impl_->in;
  // fvecs has no header: the first row's dimension stands for the file.
  unsigned char d[4];
  QUIVER_ASSIGN_OR_RETURN(size_t got, in.Read(d, 4, "row 0"));
  if (got == 0) return absl::InvalidArgumentError(absl::StrCat(path_, ": empty file"));
  if (got < 4) {
    return absl::DataLossError(absl::StrCat(path_, ": row 0: truncated dimension"));
  }
  const int32_t dim = static_cast<int32_t>(LoadLE32(d));
  if (dim <= 0 || static_cast<uint32_t>(dim) > kMaxDim) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": row 0: implausible dimension ",
                                                   dim, " (is this an fvecs file?)"));
  }
  dim_ = static_cast<uint32_t>(dim);
  impl_->element = Element::kF32LE;
  if (in.direct() && in.file_size() > 0) {
    const uint64_t row_bytes = 4 + 4 * uint64_t{dim_};
    rows_ = static_cast<int64_t>(in.file_size() / row_bytes);
    if (in.file_size() % row_bytes != 0) {
      return absl::DataLossError(absl::StrCat(
          path_, ": truncated: ", in.file_size(), " bytes is not a whole number of rows of ",
          row_bytes, " bytes (dimension ", dim_, "); row ", rows_, " is incomplete"));
    }
  }
  return absl::OkStatus();
}

absl::Status VectorFileReader::ReadNpyVectorsHeader() {
  GzInput& in = *impl_->in;
  QUIVER_ASSIGN_OR_RETURN(NpyHeader h, ReadNpyHeader(in));
  if (h.fortran_order) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_,
                     ": fortran_order arrays are not supported; save a C-order array "
                     "(numpy.ascontiguousarray)"));
  }
  const NpyDtype dt = ParseDtype(h.descr);
  if (dt.kind == 'f' && dt.size == 4) {
    impl_->element = IsBigEndian(dt.order) ? Element::kF32BE : Element::kF32LE;
  } else if (dt.kind == 'u' && dt.size == 1) {
    impl_->element = Element::kU8;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        path_, ": unsupported dtype '", h.descr,
        "'; vectors must be float32 ('<f4') or uint8 ('|u1'), e.g. array.astype('float32')"));
  }
  if (h.shape.size() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        path_, ": expected a 2-D array (rows, dim), got shape ", ShapeText(h.shape)));
  }
  if (h.shape[1] == 0 || h.shape[1] > kMaxDim) {
    return absl::InvalidArgumentError(absl::StrCat(
        path_, ": implausible dimension ", h.shape[1], " in shape ", ShapeText(h.shape)));
  }
  dim_ = static_cast<uint32_t>(h.shape[1]);
  QUIVER_RETURN_IF_ERROR(
      DataBytes(path_, h.shape[0], dim_ * ElementSize(impl_->element)).status());
  rows_ = static_cast<int64_t>(h.shape[0]);
  QUIVER_RETURN_IF_ERROR(
      CheckSize(in, h.data_offset, h.shape[0], dim_ * ElementSize(impl_->element), "row"));
  return absl::OkStatus();
}

absl::Status VectorFileReader::ReadIdxVectorsHeader() {
  GzInput& in = *impl_->in;
  QUIVER_ASSIGN_OR_RETURN(IdxHeader h, ReadIdxHeader(in));
  if (h.dims.size() < 2) {
    return absl::InvalidArgumentError(absl::StrCat(
        path_, ": a 1-D IDX file holds labels, not vectors; pass it with --labels"));
  }
  if (h.type == 0x08) {
    impl_->element = Element::kU8;
  } else if (h.type == 0x0D) {
    impl_->element = Element::kF32BE;
  } else {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s: unsupported IDX element type 0x%02x; vectors must be ubyte (0x08) or float "
        "(0x0D)",
        path_, h.type));
  }
  uint64_t dim = 1;
  for (size_t i = 1; i < h.dims.size(); ++i) {
    dim *= h.dims[i];
    if (dim > kMaxDim) break;
  }
  if (dim == 0 || dim > kMaxDim) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": implausible IDX item size (",
                                                   absl::StrJoin(h.dims, " x "), ")"));
  }
  dim_ = static_cast<uint32_t>(dim);
  rows_ = h.dims[0];
  QUIVER_RETURN_IF_ERROR(
      CheckSize(in, h.data_offset, h.dims[0], dim_ * ElementSize(impl_->element), "row"));
  return absl::OkStatus();
}

absl::StatusOr<bool> VectorFileReader::Next(std::vector<float>* out) {
  GzInput& in = *impl_->in;
  if (rows_ >= 0 && row_ >= rows_) return false;
  if (format_ == FileFormat::kFvecs && row_ > 0) {
    // Every fvecs row repeats the dimension; row 0's was read as the header.
    unsigned char d[4];
    const std::string where = absl::StrCat("row ", row_);
    QUIVER_ASSIGN_OR_RETURN(size_t got, in.Read(d, 4, where));
    if (got == 0) {
      rows_ = row_;
      return false;
    }
    if (got < 4) {
      return absl::DataLossError(absl::StrCat(path_, ": row ", row_, ": truncated"));
    }
    const int32_t dim = static_cast<int32_t>(LoadLE32(d));
    if (dim != static_cast<int32_t>(dim_)) {
      return absl::InvalidArgumentError(absl::StrCat(path_, ": row ", row_, ": dimension ", dim,
                                                     " differs from the first row's ", dim_));
    }
  }
  QUIVER_ASSIGN_OR_RETURN(
      size_t got, in.Read(impl_->buf.data(), impl_->buf.size(), absl::StrCat("row ", row_)));
  if (got < impl_->buf.size()) {
    return absl::DataLossError(absl::StrCat(path_, ": row ", row_, ": truncated (", got, " of ",
                                            impl_->buf.size(), " bytes)"));
  }
  out->resize(dim_);
  const size_t esize = ElementSize(impl_->element);
  const unsigned char* p = impl_->buf.data();
  if (impl_->element == Element::kF32LE && std::endian::native == std::endian::little) {
    std::memcpy(out->data(), p, impl_->buf.size());
  } else {
    for (uint32_t i = 0; i < dim_; ++i) (*out)[i] = ToFloat(p + i * esize, impl_->element);
  }
  ++row_;
  return true;
}

absl::Status VectorFileReader::Skip(int64_t n) {
  std::vector<float> ignored;
  for (int64_t i = 0; i < n; ++i) {
    QUIVER_ASSIGN_OR_RETURN(bool more, Next(&ignored));
    if (!more) {
      return absl::OutOfRangeError(absl::StrCat(path_, " has only ", row_, " rows"));
    }
  }
  return absl::OkStatus();
}

double VectorFileReader::progress() const {
  if (rows_ > 0) return static_cast<double>(row_) / static_cast<double>(rows_);
  return impl_->in->progress();
}

absl::StatusOr<std::vector<std::vector<float>>> ReadVectorRows(const std::string& path,
                                                               FileFormat format, int64_t begin,
                                                               int64_t end) {
  QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<VectorFileReader> r,
                          VectorFileReader::Open(path, format));
  if (begin < 0 || end <= begin) {
    return absl::InvalidArgumentError(absl::StrCat("empty row range ", begin, ":", end));
  }
  if (r->rows() >= 0 && end > r->rows()) {
    return absl::OutOfRangeError(
        absl::StrCat(path, " has ", r->rows(), " rows; asked for rows ", begin, " to ", end - 1));
  }
  QUIVER_RETURN_IF_ERROR(r->Skip(begin));
  std::vector<std::vector<float>> rows;
  for (int64_t i = begin; i < end; ++i) {
    std::vector<float> v;
    QUIVER_ASSIGN_OR_RETURN(bool more, r->Next(&v));
    if (!more) return absl::OutOfRangeError(absl::StrCat(path, " has only ", i, " rows"));
    rows.push_back(std::move(v));
  }
  return rows;
}

}  // namespace quiver::ctl
