// Import: file readers (fvecs, npy, IDX, jsonl, gzip'd or not) and the
// batched upsert loop behind `quiverctl import`.
#include "client/import.h"

#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "client/output.h"
#include "base/status_macros.h"

namespace quiver::ctl {
namespace {

// The API's largest dimension (types.proto). A header claiming more is
// corrupt or not the format we think, and trusting it would mean allocating
// whatever a damaged file says.
constexpr uint32_t kMaxDim = 65536;
// The largest npy header we accept; numpy writes well under 1 KiB.
constexpr uint32_t kMaxNpyHeader = 1 << 20;
// Requests are cut at this size so that wide vectors stay under the
// server's default --max-message-bytes (64 MiB) with room to spare.
constexpr size_t kMaxRequestBytes = 32 << 20;

// ------------------------------------------------------------ byte input

// A file read through zlib. zlib passes plain files through unchanged, so one
// reader serves both "x.fvecs" and "x.fvecs.gz" and the content decides.
class GzInput {
 public:
  static absl::StatusOr<std::unique_ptr<GzInput>> Open(const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
      const int err = errno;
      return absl::Status(absl::ErrnoToStatusCode(err),
                          absl::StrCat("cannot open ", path, ": ", std::strerror(err)));
    }
    if (S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat("cannot read ", path, ": is a directory"));
    }
    errno = 0;
    gzFile f = gzopen(path.c_str(), "rb");
    if (f == nullptr) {
      const int err = errno != 0 ? errno : ENOMEM;
      return absl::Status(absl::ErrnoToStatusCode(err),
                          absl::StrCat("cannot open ", path, ": ", std::strerror(err)));
    }
    gzbuffer(f, 1 << 17);  // fewer read calls on large files
    auto in = std::unique_ptr<GzInput>(new GzInput(path, f));
    in->size_ = S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
    return in;
  }
  ~GzInput() { gzclose(file_); }
  GzInput(const GzInput&) = delete;
  GzInput& operator=(const GzInput&) = delete;

  // Reads up to `n` bytes; fewer only at the end of the data. DATA_LOSS when
  // the compressed stream is damaged or cut short; its message names the
  // file and `where` ("row 12").
  absl::StatusOr<size_t> Read(void* buf, size_t n, absl::string_view where) {
    size_t got = 0;
    auto* p = static_cast<unsigned char*>(buf);
    while (got < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - got, 1u << 30));
      const int r = gzread(file_, p + got, chunk);
      if (r < 0) return ZlibError(where);
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    if (got < n) {
      // A short read is either a clean end or a cut-off gzip stream; zlib
      // tells them apart only through gzerror.
      int errnum = Z_OK;
      gzerror(file_, &errnum);
      if (errnum != Z_OK && errnum != Z_STREAM_END) return ZlibError(where);
    }
    return got;
  }

  // Reads the next line (without its '\n'). false at the end of the data.
  absl::StatusOr<bool> ReadLine(std::string* line, absl::string_view where) {
    line->clear();
    while (true) {
      if (pos_ < buf_.size()) {
        const auto nl = std::find(buf_.begin() + static_cast<ptrdiff_t>(pos_), buf_.end(), '\n');
        line->append(buf_.begin() + static_cast<ptrdiff_t>(pos_), nl);
        if (nl != buf_.end()) {
          pos_ = static_cast<size_t>(nl - buf_.begin()) + 1;
          return true;
        }
        pos_ = buf_.size();
      }
      buf_.resize(1 << 16);
      QUIVER_ASSIGN_OR_RETURN(size_t n, Read(buf_.data(), buf_.size(), where));
      buf_.resize(n);
      pos_ = 0;
      if (n == 0) return !line->empty();
    }
  }

  // True when the file is not compressed (valid after the first read).
  bool direct() const { return gzdirect(file_) == 1; }
  // Size of the file on disk; 0 for pipes and other non-regular files.
  uint64_t file_size() const { return size_; }
  // Share of the file on disk consumed, for progress reports.
  double progress() const {
    if (size_ == 0) return 0;
    const z_off_t off = gzoffset(file_);
    return off <= 0 ? 0.0 : std::min(1.0, static_cast<double>(off) / static_cast<double>(size_));
  }
  const std::string& path() const { return path_; }

 private:
  GzInput(std::string path, gzFile f) : path_(std::move(path)), file_(f) {}

  absl::Status ZlibError(absl::string_view where) {
    int errnum = Z_OK;
    const char* msg = gzerror(file_, &errnum);
    absl::string_view text = msg != nullptr ? msg : "unknown error";
    if (errnum == Z_ERRNO) text = std::strerror(errno);
    // zlib puts the path in front of its message; we add our own with the
    // position, so drop zlib's.
    absl::ConsumePrefix(&text, path_);
    absl::ConsumePrefix(&text, ": ");
    const char* what = errnum == Z_BUF_ERROR ? "truncated gzip data" : "read error";
    return absl::DataLossError(absl::StrCat(path_, ": ", where, ": ", what, " (", text, ")"));
  }

  std::string path_;
  gzFile file_;
  uint64_t size_ = 0;
  std::vector<char> buf_;  // ReadLine's look-ahead
  size_t pos_ = 0;
};

uint32_t LoadBE32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
uint32_t LoadLE32(const unsigned char* p) {
  return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | uint32_t{p[0]};
}

// Reads exactly `n` header bytes; a shorter file is not of the format.
absl::Status ReadHeaderBytes(GzInput& in, void* buf, size_t n, const char* what) {
  QUIVER_ASSIGN_OR_RETURN(size_t got, in.Read(buf, n, "header"));
  if (got < n) {
    return absl::InvalidArgumentError(
        absl::StrCat(in.path(), ": too short for ", what, " (", got, " bytes)"));
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------ npy header

// The parts of an npy header dict we use.
struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<uint64_t> shape;
  uint64_t data_offset = 0;  // bytes before the array data
};

// Parser for the Python literal numpy writes as the header:
//   {'descr': '<f4', 'fortran_order': False, 'shape': (100, 8), }
// Only the literal forms numpy emits are accepted: quoted strings,
// True/False/None, integers and tuples of integers.
class NpyDictParser {
 public:
  explicit NpyDictParser(absl::string_view text) : s_(text) {}

  absl::Status Parse(NpyHeader* h) {
    bool have_descr = false, have_order = false, have_shape = false;
    Skip();
    if (!Eat('{')) return Error("expected '{'");
    while (true) {
      Skip();
      if (Eat('}')) break;
      std::string key;
      QUIVER_RETURN_IF_ERROR(String(&key));
      Skip();
      if (!Eat(':')) return Error("expected ':'");
      Skip();
      if (key == "descr") {
        QUIVER_RETURN_IF_ERROR(String(&h->descr));
        have_descr = true;
      } else if (key == "fortran_order") {
        QUIVER_RETURN_IF_ERROR(Bool(&h->fortran_order));
        have_order = true;
      } else if (key == "shape") {
        QUIVER_RETURN_IF_ERROR(Tuple(&h->shape));
        have_shape = true;
      } else {
        QUIVER_RETURN_IF_ERROR(AnyValue());
      }
      Skip();
      if (Eat(',')) continue;
      Skip();
      if (Eat('}')) break;
      return Error("expected ',' or '}'");
    }
    if (!have_descr || !have_order || !have_shape) {
      return Error("missing 'descr', 'fortran_order' or 'shape'");
    }
    return absl::OkStatus();
  }

 private:
  void Skip() {
    while (i_ < s_.size() && absl::ascii_isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool Eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool EatWord(absl::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("bad npy header at offset ", i_, ": ", what));
  }
  absl::Status String(std::string* out) {
    if (i_ >= s_.size() || (s_[i_] != '\'' && s_[i_] != '"')) return Error("expected a string");
    const char quote = s_[i_++];
    const size_t end = s_.find(quote, i_);
    if (end == absl::string_view::npos) return Error("unterminated string");
    *out = std::string(s_.substr(i_, end - i_));
    i_ = end + 1;
    return absl::OkStatus();
  }
  absl::Status Bool(bool* out) {
    if (EatWord("True")) {
      *out = true;
    } else if (EatWord("False")) {
      *out = false;
    } else {
      return Error("expected True or False");
    }
    return absl::OkStatus();
  }
  absl::Status Int(uint64_t* out) {
    const size_t start = i_;
    while (i_ < s_.size() && absl::ascii_isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
    // Python 2 era files may write 100L.
    absl::string_view digits = s_.substr(start, i_ - start);
    if (i_ < s_.size() && s_[i_] == 'L') ++i_;
    if (digits.empty() || !absl::SimpleAtoi(digits, out)) return Error("expected an integer");
    return absl::OkStatus();
  }
  absl::Status Tuple(std::vector<uint64_t>* out) {
    out->clear();
    if (!Eat('(')) return Error("expected a tuple");
    while (true) {
      Skip();
      if (Eat(')')) return absl::OkStatus();
      uint64_t v = 0;
      QUIVER_RETURN_IF_ERROR(Int(&v));
      out->push_back(v);
      Skip();
      if (Eat(',')) continue;
      Skip();
      if (Eat(')')) return absl::OkStatus();
      return Error("expected ',' or ')'");
    }
  }
  absl::Status AnyValue() {
    if (i_ < s_.size() && (s_[i_] == '\'' || s_[i_] == '"')) {
      std::string ignored;
      return String(&ignored);
    }
    if (i_ < s_.size() && s_[i_] == '(') {
      std::vector<uint64_t> ignored;
      return Tuple(&ignored);
    }
    if (EatWord("True") || EatWord("False") || EatWord("None")) return absl::OkStatus();
    uint64_t ignored = 0;
    return Int(&ignored);
  }

  absl::string_view s_;
  size_t i_ = 0;
};

// Reads the magic, version and header dict of an npy file.
absl::StatusOr<NpyHeader> ReadNpyHeader(GzInput& in) {
  unsigned char pre[10];
  QUIVER_RETURN_IF_ERROR(ReadHeaderBytes(in, pre, 8, "an npy header"));
  if (std::memcmp(pre, "\x93NUMPY", 6) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(in.path(), ": not an npy file (no \\x93NUMPY magic)"));
  }
  const int major = pre[6];
  uint32_t header_len = 0;
  uint64_t offset = 0;
  if (major == 1) {
    QUIVER_RETURN_IF_ERROR(ReadHeaderBytes(in, pre + 8, 2, "an npy header"));
    header_len = uint32_t{pre[8]} | (uint32_t{pre[9]} << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    unsigned char len[4];
    QUIVER_RETURN_IF_ERROR(ReadHeaderBytes(in, len, 4, "an npy header"));
    header_len = LoadLE32(len);
    offset = 12;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(in.path(), ": unsupported npy format version ", major, ".", int{pre[7]}));
  }
  if (header_len > kMaxNpyHeader) {
    return absl::InvalidArgumentError(
        absl::StrCat(in.path(), ": implausible npy header length ", header_len));
  }
  std::string text(header_len, '\0');
  QUIVER_RETURN_IF_ERROR(ReadHeaderBytes(in, text.data(), header_len, "its npy header"));
  NpyHeader h;
  if (absl::Status s = NpyDictParser(text).Parse(&h); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(in.path(), ": ", s.message()));
  }
  h.data_offset = offset + header_len;
  return h;
}

std::string ShapeText(const std::vector<uint64_t>& shape) {
  return absl::StrCat("(", absl::StrJoin(shape, ", "), shape.size() == 1 ? ",)" : ")");
}

// ------------------------------------------------------------ IDX header

struct IdxHeader {
  uint8_t type = 0;  // 0x08 ubyte, 0x09 sbyte, 0x0B int16, 0x0C int32, 0x0D float, 0x0E double
  std::vector<uint64_t> dims;
  uint64_t data_offset = 0;
};

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

// Size of `rows` rows of `row_bytes`, or an error when a header claims so
// much that it cannot be real (and the product would overflow).
absl::StatusOr<uint64_t> DataBytes(const std::string& path, uint64_t rows, uint64_t row_bytes) {
  if (row_bytes != 0 && rows > (uint64_t{1} << 60) / row_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": implausible header: ", rows, " rows of ", row_bytes, " bytes"));
  }
  return rows * row_bytes;
}

// For an uncompressed file, compares its size with what the header promises
// so truncation shows before anything is imported.
absl::Status CheckSize(GzInput& in, uint64_t header_bytes, uint64_t rows, uint64_t row_bytes,
                       const char* unit) {
  if (!in.direct() || in.file_size() == 0) return absl::OkStatus();
  QUIVER_ASSIGN_OR_RETURN(uint64_t need, DataBytes(in.path(), rows, row_bytes));
  const uint64_t have = in.file_size() > header_bytes ? in.file_size() - header_bytes : 0;
  if (have >= need) return absl::OkStatus();
  const uint64_t whole = row_bytes == 0 ? 0 : have / row_bytes;
  return absl::DataLossError(absl::StrCat(in.path(), ": truncated: the header promises ", rows, " ",
                                          unit, "s (", need, " bytes of data) but the file has ",
                                          have, "; ", unit, " ", whole, " is incomplete"));
}

// An npy dtype string ('<i8', '|u1', ...) taken apart.
struct NpyDtype {
  char order = '<';  // '<', '>', '|' or '='
  char kind = 0;     // 'f', 'i', 'u', 'b', ...
  int size = 0;
};

NpyDtype ParseDtype(const std::string& descr) {
  NpyDtype d;
  if (descr.size() < 2) return d;
  size_t i = 0;
  if (descr[0] == '<' || descr[0] == '>' || descr[0] == '|' || descr[0] == '=')
    d.order = descr[i++];
  d.kind = descr[i++];
  if (!absl::SimpleAtoi(absl::string_view(descr).substr(i), &d.size)) d.size = 0;
  return d;
}

bool IsBigEndian(char order) {
  return order == '>' || (order == '=' && std::endian::native == std::endian::big);
}

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
  GzInput& in = *impl_->in;
  switch (format_) {
    case FileFormat::kFvecs: {
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
      break;
    }
    case FileFormat::kNpy: {
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
      break;
    }
    case FileFormat::kIdx: {
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
      break;
    }
    case FileFormat::kJsonl:
      break;
  }
  impl_->buf.resize(dim_ * ElementSize(impl_->element));
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

// ------------------------------------------------------------ labels

absl::StatusOr<std::vector<int64_t>> ReadLabels(const std::string& path) {
  QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<GzInput> in, GzInput::Open(path));
  // The two formats differ from the first byte: npy starts with 0x93, IDX
  // with two zero bytes. Peeking would need a seekable stream, so each
  // branch re-opens the file.
  unsigned char first = 0;
  QUIVER_ASSIGN_OR_RETURN(size_t got, in->Read(&first, 1, "header"));
  if (got == 0) return absl::InvalidArgumentError(absl::StrCat(path, ": empty file"));
  QUIVER_ASSIGN_OR_RETURN(in, GzInput::Open(path));

  uint64_t n = 0;
  int size = 0;  // bytes per label
  bool is_signed = false, big_endian = false;
  uint64_t header_bytes = 0;
  if (first == 0x93) {
    QUIVER_ASSIGN_OR_RETURN(NpyHeader h, ReadNpyHeader(*in));
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
    n = h.shape[0];
    size = dt.size;
    is_signed = dt.kind == 'i';
    big_endian = IsBigEndian(dt.order);
    header_bytes = h.data_offset;
  } else if (first == 0) {
    QUIVER_ASSIGN_OR_RETURN(IdxHeader h, ReadIdxHeader(*in));
    if (h.dims.size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": a labels IDX file has one dimension (IDX1), this one has ", h.dims.size()));
    }
    switch (h.type) {
      case 0x08:
        size = 1;
        break;
      case 0x09:
        size = 1;
        is_signed = true;
        break;
      case 0x0B:
        size = 2;
        is_signed = true;
        break;
      case 0x0C:
        size = 4;
        is_signed = true;
        break;
      default:
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: IDX labels must be integers, got element type 0x%02x", path, h.type));
    }
    n = h.dims[0];
    big_endian = true;
    header_bytes = h.data_offset;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not an IDX1 or .npy labels file (unrecognized first byte)"));
  }
  QUIVER_RETURN_IF_ERROR(CheckSize(*in, header_bytes, n, static_cast<uint64_t>(size), "label"));
  QUIVER_RETURN_IF_ERROR(DataBytes(path, n, static_cast<uint64_t>(size)).status());

  std::vector<int64_t> labels;
  // Reserve what the header promises only up to a sane amount; a damaged
  // gzip'd header must not make us allocate terabytes.
  labels.reserve(static_cast<size_t>(std::min<uint64_t>(n, 1 << 24)));
  std::vector<unsigned char> chunk;
  while (labels.size() < n) {
    const uint64_t todo = std::min<uint64_t>(n - labels.size(), 1 << 16);
    chunk.resize(todo * static_cast<uint64_t>(size));
    QUIVER_ASSIGN_OR_RETURN(
        size_t read, in->Read(chunk.data(), chunk.size(), absl::StrCat("label ", labels.size())));
    if (read < chunk.size()) {
      return absl::DataLossError(absl::StrCat(path, ": truncated: the header promises ", n,
                                              " labels; label ", labels.size() + read / size,
                                              " is missing"));
    }
    for (uint64_t i = 0; i < todo; ++i) {
      const unsigned char* p = chunk.data() + i * static_cast<uint64_t>(size);
      uint64_t u = 0;
      for (int b = 0; b < size; ++b) {
        const int shift = big_endian ? 8 * (size - 1 - b) : 8 * b;
        u |= uint64_t{p[b]} << shift;
      }
      int64_t v = static_cast<int64_t>(u);
      if (is_signed && size < 8 && (u >> (8 * size - 1)) != 0) {
        v = static_cast<int64_t>(u | (~uint64_t{0} << (8 * size)));  // sign-extend
      }
      labels.push_back(v);
    }
  }
  return labels;
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

// ------------------------------------------------------------ import

namespace {

// Progress on stderr. Short imports print nothing: the report starts once
// an import has run for half a second. On a terminal it is a bar redrawn in
// place; in a log (stderr redirected) a line per 10% so logs stay short.
class Progress {
 public:
  Progress(bool enabled, int64_t total)
      : enabled_(enabled),
        total_(total),
        tty_(isatty(STDERR_FILENO) == 1),
        start_(std::chrono::steady_clock::now()) {}

  // `done` points so far; `fraction` of the input consumed (used when the
  // total is unknown).
  void Update(uint64_t done, double fraction) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = Seconds(now);
    if (elapsed < 0.5) return;
    if (total_ > 0) fraction = static_cast<double>(done) / static_cast<double>(total_);
    fraction = std::clamp(fraction, 0.0, 1.0);
    if (tty_) {
      if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
      last_draw_ = now;
      Draw(done, fraction, elapsed);
    } else {
      const int decile = static_cast<int>(fraction * 10);
      if (decile <= last_decile_) return;
      last_decile_ = decile;
      std::cerr << "import: " << Line(done, fraction, elapsed) << "\n";
    }
  }

  // Leaves the terminal on a fresh line after a bar.
  void Finish(uint64_t done) {
    if (!enabled_ || !tty_ || !drawn_) return;
    Draw(done, 1.0, Seconds(std::chrono::steady_clock::now()));
    std::cerr << "\n";
  }

 private:
  double Seconds(std::chrono::steady_clock::time_point now) const {
    return std::chrono::duration<double>(now - start_).count();
  }
  std::string Line(uint64_t done, double fraction, double elapsed) const {
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
    std::string points = total_ >= 0 ? absl::StrCat(done, "/", total_) : absl::StrCat(done);
    return absl::StrFormat("%5.1f%%  %s points  %.0f points/s", fraction * 100, points, rate);
  }
  void Draw(uint64_t done, double fraction, double elapsed) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    // \r returns to the line start; \x1b[K clears what a longer previous
    // line left behind.
    std::cerr << "\r[" << bar << "] " << Line(done, fraction, elapsed) << "\x1b[K" << std::flush;
    drawn_ = true;
  }

  const bool enabled_;
  const int64_t total_;
  const bool tty_;
  const std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
  bool drawn_ = false;
  int last_decile_ = 0;
};

// Collects points into UpsertPoints requests and sends them. `unit` names
// what a position is ("row", "line") in error messages.
class Batcher {
 public:
  Batcher(client::Client& client, const ImportOptions& options, const char* unit)
      : client_(client), options_(options), unit_(unit) {
    req_.set_collection(options.collection);
  }

  absl::Status Add(v1::Point point, int64_t position) {
    if (req_.points_size() == 0) first_ = position;
    last_ = position;
    bytes_ += point.ByteSizeLong();
    *req_.add_points() = std::move(point);
    if (req_.points_size() >= options_.batch || bytes_ >= kMaxRequestBytes) return Flush();
    return absl::OkStatus();
  }

  absl::Status Flush() {
    if (req_.points_size() == 0) return absl::OkStatus();
    absl::StatusOr<v1::UpsertPointsResponse> resp = client_.Upsert(req_);
    if (!resp.ok()) {
      return absl::Status(resp.status().code(),
                          absl::StrCat(resp.status().message(), " (in the batch of ", unit_, "s ",
                                       first_, "-", last_, " of ", options_.path, "; ", imported_,
                                       " points were imported before it)"));
    }
    imported_ += static_cast<uint64_t>(req_.points_size());
    req_.clear_points();
    bytes_ = 0;
    return absl::OkStatus();
  }

  uint64_t imported() const { return imported_; }

 private:
  client::Client& client_;
  const ImportOptions& options_;
  const char* unit_;
  v1::UpsertPointsRequest req_;
  size_t bytes_ = 0;
  int64_t first_ = 0, last_ = 0;
  uint64_t imported_ = 0;
};

}  // namespace

std::string FieldNames(const v1::CollectionSchema& schema) {
  std::vector<std::string> names;
  for (const auto& f : schema.vectors()) names.push_back(f.name());
  return absl::StrJoin(names, ", ");
}

absl::StatusOr<const v1::VectorField*> ResolveField(const std::string& collection,
                                                    const v1::CollectionSchema& schema,
                                                    const std::string& field) {
  if (field.empty()) {
    if (schema.vectors_size() == 1) return &schema.vectors(0);
    return absl::InvalidArgumentError(absl::StrCat("collection \"", collection, "\" has ",
                                                   schema.vectors_size(), " vector fields (",
                                                   FieldNames(schema), "); pass --field"));
  }
  for (const auto& f : schema.vectors()) {
    if (f.name() == field) return &f;
  }
  return absl::InvalidArgumentError(absl::StrCat("collection \"", collection,
                                                 "\" has no vector field \"", field,
                                                 "\" (fields: ", FieldNames(schema), ")"));
}

namespace {

// A label as a value of the label attribute's type.
v1::Value LabelValue(int64_t label, v1::AttributeType type) {
  v1::Value v;
  switch (type) {
    case v1::DOUBLE:
      v.set_double_value(static_cast<double>(label));
      break;
    case v1::STRING:
      v.set_string_value(absl::StrCat(label));
      break;
    default:
      v.set_int_value(label);
      break;
  }
  return v;
}

// Points of a multi-vector field from a vector file of all their vectors,
// point i holding rows [offsets[i], offsets[i + 1]).
absl::StatusOr<ImportResult> ImportMultiVectors(client::Client& client,
                                                const ImportOptions& options,
                                                const v1::VectorField& field,
                                                VectorFileReader* reader,
                                                const std::vector<int64_t>& labels,
                                                v1::AttributeType label_type) {
  QUIVER_ASSIGN_OR_RETURN(std::vector<int64_t> offsets, ReadLabels(options.offsets_path));
  if (offsets.size() < 2 || offsets.front() != 0 ||
      !std::is_sorted(offsets.begin(), offsets.end()) ||
      (reader->rows() >= 0 && offsets.back() != reader->rows())) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.offsets_path, ": offsets must start at 0, never decrease and end at the rows of ",
        options.path, reader->rows() >= 0 ? absl::StrCat(" (", reader->rows(), ")") : "",
        "; nothing was imported"));
  }
  const int64_t points = static_cast<int64_t>(offsets.size()) - 1;
  if (!labels.empty() && static_cast<int64_t>(labels.size()) != points) {
    return absl::InvalidArgumentError(absl::StrCat(options.labels_path, " has ", labels.size(),
                                                   " labels for ", points, " points"));
  }
  const int64_t total = options.limit >= 0 ? std::min(points, options.limit) : points;
  Progress progress(options.show_progress, total);
  Batcher batcher(client, options, "point");
  const auto start = std::chrono::steady_clock::now();
  std::vector<float> row;
  for (int64_t i = 0; i < total; ++i) {
    v1::Point p;
    p.set_id(absl::StrCat(options.id_prefix, options.start_id + i));
    v1::MultiVector& mv = (*p.mutable_multi_vectors())[field.name()];
    for (int64_t r = offsets[i]; r < offsets[i + 1]; ++r) {
      absl::StatusOr<bool> more = reader->Next(&row);
      if (!more.ok()) return more.status();
      if (!*more) {
        return absl::InvalidArgumentError(absl::StrCat(
            options.path, " ends at row ", r, " but ", options.offsets_path, " says point ", i,
            " goes on to row ", offsets[i + 1], " (", batcher.imported(),
            " points were imported)"));
      }
      mv.add_vectors()->mutable_values()->Add(row.begin(), row.end());
    }
    if (!labels.empty()) {
      (*p.mutable_attributes())[options.label_attr] =
          LabelValue(labels[static_cast<size_t>(i)], label_type);
    }
    const uint64_t before = batcher.imported();
    QUIVER_RETURN_IF_ERROR(batcher.Add(std::move(p), i));
    if (batcher.imported() != before) progress.Update(batcher.imported(), reader->progress());
  }
  QUIVER_RETURN_IF_ERROR(batcher.Flush());
  progress.Finish(batcher.imported());
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return ImportResult{batcher.imported(), secs};
}

absl::StatusOr<ImportResult> ImportVectors(client::Client& client, const ImportOptions& options,
                                           const v1::CollectionSchema& schema) {
  QUIVER_ASSIGN_OR_RETURN(const v1::VectorField* field,
                          ResolveField(options.collection, schema, options.field));
  const bool multi = field->has_multi_vector();
  if (multi != !options.offsets_path.empty()) {
    return absl::InvalidArgumentError(
        multi ? absl::StrCat("\"", field->name(),
                             "\" is a multi-vector field: give --offsets, the first row of each "
                             "point's vectors (n + 1 entries, the last = the rows of ",
                             options.path, ")")
              : absl::StrCat("--offsets goes with a multi-vector field; \"", field->name(),
                             "\" is not one"));
  }
  if (schema.vectors_size() > 1) {
    // Every point needs every vector field, and a vector file has one.
    return absl::InvalidArgumentError(absl::StrCat(
        "collection \"", options.collection, "\" has several vector fields (", FieldNames(schema),
        ") and every point needs all of them; a ", FileFormatName(*options.format),
        " file fills one. Use jsonl with \"vectors\": {...}"));
  }
  QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<VectorFileReader> reader,
                          VectorFileReader::Open(options.path, *options.format));
  if (reader->dim() != field->dim()) {
    return absl::InvalidArgumentError(
        absl::StrCat(options.path, " has vectors of dimension ", reader->dim(), " but field \"",
                     field->name(), "\" of collection \"", options.collection, "\" has dimension ",
                     field->dim(), "; nothing was imported"));
  }

  std::vector<int64_t> labels;
  v1::AttributeType label_type = v1::INT64;
  if (!options.labels_path.empty()) {
    const v1::AttributeField* attr = nullptr;
    for (const auto& a : schema.attributes()) {
      if (a.name() == options.label_attr) attr = &a;
    }
    if (attr == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("collection \"", options.collection, "\" has no attribute \"",
                       options.label_attr, "\" for the labels; create it with --attr ",
                       options.label_attr, ":int64 or pass --label-attr"));
    }
    if (attr->type() != v1::INT64 && attr->type() != v1::DOUBLE && attr->type() != v1::STRING) {
      return absl::InvalidArgumentError(absl::StrCat(
          "attribute \"", attr->name(), "\" must be int64, double or string to hold labels"));
    }
    label_type = attr->type();
    QUIVER_ASSIGN_OR_RETURN(labels, ReadLabels(options.labels_path));
    if (reader->rows() >= 0 && static_cast<int64_t>(labels.size()) != reader->rows()) {
      return absl::InvalidArgumentError(absl::StrCat(options.labels_path, " has ", labels.size(),
                                                     " labels but ", options.path, " has ",
                                                     reader->rows(), " rows"));
    }
  }

  if (multi) return ImportMultiVectors(client, options, *field, reader.get(), labels, label_type);

  int64_t total = reader->rows();
  if (options.limit >= 0 && (total < 0 || total > options.limit)) {
    // With an unknown row count the limit is only an upper bound.
    total = reader->rows() < 0 ? -1 : options.limit;
  }
  Progress progress(options.show_progress, total);
  Batcher batcher(client, options, "row");
  const auto start = std::chrono::steady_clock::now();
  std::vector<float> row;
  int64_t n = 0;
  while (options.limit < 0 || n < options.limit) {
    const int64_t index = reader->row();
    absl::StatusOr<bool> more = reader->Next(&row);
    if (!more.ok()) {
      // Damage found mid-file (a gzip'd file cannot be checked up front):
      // say how much is already in the collection.
      return absl::Status(more.status().code(),
                          absl::StrCat(more.status().message(), " (", batcher.imported(),
                                       " points were imported before it)"));
    }
    if (!*more) break;
    v1::Point p;
    p.set_id(absl::StrCat(options.id_prefix, options.start_id + index));
    auto* values = (*p.mutable_vectors())[field->name()].mutable_values();
    values->Reserve(static_cast<int>(row.size()));
    values->Add(row.begin(), row.end());
    if (!options.labels_path.empty()) {
      if (index >= static_cast<int64_t>(labels.size())) {
        return absl::InvalidArgumentError(absl::StrCat(
            options.labels_path, " has only ", labels.size(), " labels; ", options.path, " row ",
            index, " has none (", batcher.imported(), " points were imported)"));
      }
      (*p.mutable_attributes())[options.label_attr] =
          LabelValue(labels[static_cast<size_t>(index)], label_type);
    }
    const uint64_t before = batcher.imported();
    QUIVER_RETURN_IF_ERROR(batcher.Add(std::move(p), index));
    ++n;
    if (batcher.imported() != before) progress.Update(batcher.imported(), reader->progress());
  }
  QUIVER_RETURN_IF_ERROR(batcher.Flush());
  progress.Finish(batcher.imported());
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return ImportResult{batcher.imported(), secs};
}

// ---- jsonl

std::string JsonTypeName(const nlohmann::json& j) { return j.type_name(); }

// One JSON object of a jsonl file -> a Point, by the collection's schema.
class JsonlConverter {
 public:
  JsonlConverter(const v1::CollectionSchema& schema, std::string default_field)
      : default_field_(std::move(default_field)) {
    for (const auto& f : schema.vectors()) vectors_[f.name()] = &f;
    for (const auto& a : schema.attributes()) attributes_[a.name()] = a.type();
  }

  // Errors are plain descriptions; the caller adds file and line.
  absl::Status Convert(const nlohmann::json& j, v1::Point* p) const {
    if (!j.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected a JSON object, got ", JsonTypeName(j)));
    }
    bool have_id = false;
    for (const auto& [key, value] : j.items()) {
      if (key == "id") {
        if (value.is_string()) {
          p->set_id(value.get<std::string>());
        } else if (value.is_number_integer()) {
          p->set_id(value.dump());
        } else {
          return absl::InvalidArgumentError(
              absl::StrCat("\"id\" must be a string, got ", JsonTypeName(value)));
        }
        have_id = true;
      } else if (key == "vector") {
        if (j.contains("vectors")) {
          return absl::InvalidArgumentError("give either \"vector\" or \"vectors\", not both");
        }
        if (default_field_.empty()) {
          return absl::InvalidArgumentError(
              "\"vector\" needs a collection with one vector field (or --field); use "
              "\"vectors\": {\"field\": [...]}");
        }
        QUIVER_RETURN_IF_ERROR(Vector(default_field_, value, p));
      } else if (key == "vectors") {
        if (!value.is_object()) {
          return absl::InvalidArgumentError(absl::StrCat(
              "\"vectors\" must be an object of field -> array, got ", JsonTypeName(value)));
        }
        for (const auto& [name, v] : value.items()) QUIVER_RETURN_IF_ERROR(Vector(name, v, p));
      } else if (key == "attributes") {
        if (value.is_null()) continue;
        if (!value.is_object()) {
          return absl::InvalidArgumentError(
              absl::StrCat("\"attributes\" must be an object, got ", JsonTypeName(value)));
        }
        for (const auto& [name, v] : value.items()) QUIVER_RETURN_IF_ERROR(Attribute(name, v, p));
      } else {
        // Strict about keys: a misspelt "attribute" would otherwise drop
        // data silently.
        return absl::InvalidArgumentError(
            absl::StrCat("unknown key \"", key, "\" (expected id, vector, vectors, attributes)"));
      }
    }
    if (!have_id) return absl::InvalidArgumentError("missing \"id\"");
    return absl::OkStatus();
  }

 private:
  absl::Status Vector(const std::string& name, const nlohmann::json& v, v1::Point* p) const {
    auto it = vectors_.find(name);
    if (it == vectors_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("no vector field \"", name, "\" in the schema"));
    }
    if (it->second->has_multi_vector()) {
      // A list of vectors: [[...], [...], ...].
      if (!v.is_array()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "multi-vector field \"", name, "\" takes an array of vectors, got ", JsonTypeName(v)));
      }
      v1::Point tmp;
      v1::MultiVector& mv = (*p->mutable_multi_vectors())[name];
      for (size_t j = 0; j < v.size(); ++j) {
        absl::Status st = Values(absl::StrCat(name, "[", j, "]"), it->second->dim(), v[j],
                                 mv.add_vectors()->mutable_values());
        if (!st.ok()) return st;
      }
      return absl::OkStatus();
    }
    return Values(name, it->second->dim(), v, (*p->mutable_vectors())[name].mutable_values());
  }

  // One vector's values from a JSON array of `dim` finite numbers.
  static absl::Status Values(const std::string& name, uint32_t dim, const nlohmann::json& v,
                             google::protobuf::RepeatedField<float>* values) {
    if (!v.is_array()) {
      return absl::InvalidArgumentError(
          absl::StrCat("vector \"", name, "\" must be an array of numbers, got ", JsonTypeName(v)));
    }
    if (v.size() != dim) {
      return absl::InvalidArgumentError(absl::StrCat("vector \"", name, "\" has ", v.size(),
                                                     " values; the field's dimension is ", dim));
    }
    values->Reserve(static_cast<int>(v.size()));
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_number()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "vector \"", name, "\"[", i, "] is not a number (", JsonTypeName(v[i]), ")"));
      }
      const float f = static_cast<float>(v[i].get<double>());
      if (!std::isfinite(f)) {
        return absl::InvalidArgumentError(
            absl::StrCat("vector \"", name, "\"[", i, "] is not a finite float32"));
      }
      values->Add(f);
    }
    return absl::OkStatus();
  }

  absl::Status Attribute(const std::string& name, const nlohmann::json& v, v1::Point* p) const {
    auto it = attributes_.find(name);
    if (it == attributes_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("no attribute \"", name, "\" in the schema"));
    }
    if (v.is_null()) return absl::OkStatus();  // null = absent, as in the API
    v1::Value value;
    auto wrong = [&](const char* expected) {
      return absl::InvalidArgumentError(absl::StrCat("attribute \"", name, "\" is ",
                                                     AttributeTypeName(it->second), " and needs ",
                                                     expected, ", got ", v.dump()));
    };
    switch (it->second) {
      case v1::INT64:
        if (v.is_number_unsigned()) {
          if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            return wrong("an integer in int64 range");
          }
          value.set_int_value(static_cast<int64_t>(v.get<uint64_t>()));
        } else if (v.is_number_integer()) {
          value.set_int_value(v.get<int64_t>());
        } else if (v.is_number_float()) {
          // 3.0 is accepted: some writers (Python's json) print whole
          // floats that way.
          const double d = v.get<double>();
          if (d != std::floor(d) || std::abs(d) >= 9.2e18) return wrong("an integer");
          value.set_int_value(static_cast<int64_t>(d));
        } else {
          return wrong("an integer");
        }
        break;
      case v1::DOUBLE:
        if (!v.is_number()) return wrong("a number");
        value.set_double_value(v.get<double>());
        break;
      case v1::BOOL:
        if (!v.is_boolean()) return wrong("true or false");
        value.set_bool_value(v.get<bool>());
        break;
      case v1::STRING:
        if (!v.is_string()) return wrong("a string");
        value.set_string_value(v.get<std::string>());
        break;
      case v1::STRING_LIST: {
        if (!v.is_array()) return wrong("an array of strings");
        auto* list = value.mutable_string_list_value();
        for (const auto& e : v) {
          if (!e.is_string()) return wrong("an array of strings");
          list->add_values(e.get<std::string>());
        }
        break;
      }
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("attribute \"", name, "\" has a type this client does not know"));
    }
    (*p->mutable_attributes())[name] = std::move(value);
    return absl::OkStatus();
  }

  std::string default_field_;
  std::map<std::string, const v1::VectorField*> vectors_;
  std::map<std::string, v1::AttributeType> attributes_;
};

// nlohmann's messages start with "[json.exception.parse_error.101] "; the
// rest ("parse error at line 1, column 7: ...") is what a person needs.
std::string ParseErrorText(const char* what) {
  absl::string_view s(what);
  const size_t close = s.find("] ");
  if (!s.empty() && s[0] == '[' && close != absl::string_view::npos) s.remove_prefix(close + 2);
  return std::string(s);
}

absl::StatusOr<ImportResult> ImportJsonl(client::Client& client, const ImportOptions& options,
                                         const v1::CollectionSchema& schema) {
  std::string default_field;
  if (!options.field.empty()) {
    QUIVER_ASSIGN_OR_RETURN(const v1::VectorField* f,
                            ResolveField(options.collection, schema, options.field));
    default_field = f->name();
  } else if (schema.vectors_size() == 1) {
    default_field = schema.vectors(0).name();
  }
  JsonlConverter converter(schema, default_field);
  QUIVER_ASSIGN_OR_RETURN(std::unique_ptr<GzInput> in, GzInput::Open(options.path));

  Progress progress(options.show_progress, options.limit);
  Batcher batcher(client, options, "line");
  const auto start = std::chrono::steady_clock::now();
  std::string line;
  int64_t line_no = 0, n = 0;
  while (options.limit < 0 || n < options.limit) {
    QUIVER_ASSIGN_OR_RETURN(bool more, in->ReadLine(&line, absl::StrCat("line ", line_no + 1)));
    if (!more) break;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();  // CRLF files
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    auto where = [&](absl::string_view msg) {
      return absl::InvalidArgumentError(absl::StrCat(options.path, ": line ", line_no, ": ", msg,
                                                     " (", batcher.imported(),
                                                     " points were imported before it)"));
    };
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      return where(absl::StrCat("invalid JSON: ", ParseErrorText(e.what())));
    }
    v1::Point p;
    if (absl::Status s = converter.Convert(j, &p); !s.ok()) return where(s.message());
    const uint64_t before = batcher.imported();
    QUIVER_RETURN_IF_ERROR(batcher.Add(std::move(p), line_no));
    ++n;
    if (batcher.imported() != before) progress.Update(batcher.imported(), in->progress());
  }
  QUIVER_RETURN_IF_ERROR(batcher.Flush());
  progress.Finish(batcher.imported());
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return ImportResult{batcher.imported(), secs};
}

}  // namespace

absl::StatusOr<ImportResult> Import(client::Client& client, const ImportOptions& options) {
  ImportOptions opts = options;
  if (!opts.format) {
    QUIVER_ASSIGN_OR_RETURN(opts.format, FileFormatFromName(opts.path));
  }
  if (opts.batch <= 0) return absl::InvalidArgumentError("--batch must be positive");
  if (*opts.format == FileFormat::kJsonl && !opts.labels_path.empty()) {
    return absl::InvalidArgumentError(
        "--labels applies to fvecs, npy and idx files; jsonl "
        "lines carry their own attributes");
  }
  QUIVER_ASSIGN_OR_RETURN(v1::CollectionInfo info, client.GetCollection(opts.collection));
  if (*opts.format == FileFormat::kJsonl) return ImportJsonl(client, opts, info.schema());
  return ImportVectors(client, opts, info.schema());
}

}  // namespace quiver::ctl
