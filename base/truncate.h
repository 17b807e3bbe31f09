// TruncateForMessage: user input as echoed in error messages and logs.
//
// Messages travel back in the grpc-message trailer, which clients cap (8 KiB
// of metadata by default): a message that echoes a 60 KB filter identifier
// turns the INVALID_ARGUMENT it explains into the client's own
// RESOURCE_EXHAUSTED. Every echo of a client-supplied string (names, ids,
// filter tokens, attribute values) goes through this, so a message stays
// short whatever the input.
//
// Stateless; safe from any thread. Does not fail: it returns a (possibly
// shortened) copy and never touches its input.
#ifndef QUIVER_BASE_TRUNCATE_H_
#define QUIVER_BASE_TRUNCATE_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace quiver {

// Bytes of an echoed input kept by default: enough to recognize it.
inline constexpr size_t kMaxEchoBytes = 200;

// `s` itself if at most `max_bytes` long; else its first bytes (not
// splitting a UTF-8 sequence) followed by "...(N bytes, cut)", so a reader
// knows it was cut and how long it was.
inline std::string TruncateForMessage(std::string_view s, size_t max_bytes = kMaxEchoBytes) {
  if (s.size() <= max_bytes) return std::string(s);
  size_t n = max_bytes;
  // Back off continuation bytes (10xxxxxx) so a multi-byte character is
  // either whole or gone.
  // A character is at most 4 bytes; invalid input backs off no further.
  for (int i = 0; i < 3 && n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80; ++i) --n;
  return absl::StrCat(absl::string_view(s.data(), n), "...(", s.size(), " bytes, cut)");
}

inline std::string TruncateForMessage(const std::string& s, size_t max_bytes = kMaxEchoBytes) {
  return TruncateForMessage(std::string_view(s), max_bytes);
}
inline std::string TruncateForMessage(const char* s, size_t max_bytes = kMaxEchoBytes) {
  return TruncateForMessage(std::string_view(s), max_bytes);
}
#if !defined(ABSL_USES_STD_STRING_VIEW)
// Debian's abseil has its own string_view, which std::string_view does not
// convert to or from implicitly.
inline std::string TruncateForMessage(absl::string_view s, size_t max_bytes = kMaxEchoBytes) {
  return TruncateForMessage(std::string_view(s.data(), s.size()), max_bytes);
}
#endif

}  // namespace quiver

#endif  // QUIVER_BASE_TRUNCATE_H_
