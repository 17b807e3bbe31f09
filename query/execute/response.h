// Response side of the search orchestration (query/execute/): the byte
// budget a response is filled against, and the explain text shared by the
// single-vector, late-interaction and hybrid searches. The Collection
// methods that fill hits and estimate response sizes live in
// query/execute/response.cc too.
//
// Ownership: nothing here owns request or collection state; the explain
// message a caller passes is read only.
// Thread-safety: ResponseBudget is not thread-safe (one per request);
// AppendSegmentsText is reentrant.
// Errors: ResponseBudget::Add returns RESOURCE_EXHAUSTED (naming
// --max-message-bytes) once a response passes its limit.
#ifndef QUIVER_QUERY_EXECUTE_RESPONSE_H_
#define QUIVER_QUERY_EXECUTE_RESPONSE_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "quiver/v1/search.pb.h"

namespace quiver {

// The bytes of a response being filled, against a limit. Not thread-safe:
// one per request.
class ResponseBudget {
 public:
  // limit 0: unlimited.
  explicit ResponseBudget(size_t limit) : limit_(limit) {}
  // Counts `bytes` more; RESOURCE_EXHAUSTED once the total passes the limit.
  absl::Status Add(size_t bytes);

 private:
  const size_t limit_;
  size_t used_ = 0;
};

// Appends the segments of one field's search (explain.segments from
// `first` on) to explain text, each line prefixed by `indent`.
void AppendSegmentsText(const v1::Explain& explain, int first, const std::string& indent,
                        std::string* text);
// Appends each non-empty line of `lines` to explain text, prefixed by
// `indent`.
void AppendIndented(absl::string_view lines, const std::string& indent, std::string* text);

}  // namespace quiver

#endif  // QUIVER_QUERY_EXECUTE_RESPONSE_H_
