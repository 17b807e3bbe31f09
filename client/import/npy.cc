#include "client/import/npy.h"

#include <bit>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "base/status_macros.h"

namespace quiver::ctl {
namespace {

// The largest npy header we accept; numpy writes well under 1 KiB.
constexpr uint32_t kMaxNpyHeader = 1 << 20;

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

}  // namespace

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

}  // namespace quiver::ctl
