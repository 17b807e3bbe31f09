// HttpGet: a plain HTTP/1.0 GET on loopback, for tests and benchmarks that
// read quiverd's /metrics or Prometheus's HTTP API. Blocking; safe from any
// thread (no shared state). Errors: UNAVAILABLE when the port does not
// answer or the status is not 200 (the message names the status line),
// INTERNAL when no socket can be made.
#ifndef QUIVER_TESTS_COMMON_HTTP_GET_H_
#define QUIVER_TESTS_COMMON_HTTP_GET_H_

#include <string>

#include "absl/status/statusor.h"

namespace quiver::testing {

// The body of http://127.0.0.1:port/path; `path` must be URL-encoded.
// Gives up on a read that stalls for 10 s.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path);

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_COMMON_HTTP_GET_H_
