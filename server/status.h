// Mapping between absl::Status and grpc::Status. absl::StatusCode mirrors
// google.rpc.Code, so codes carry over one-to-one. Messages are capped at
// kMaxStatusMessageBytes: they travel in the grpc-message trailer, and a
// client refuses trailers past its metadata limit (8 KiB by default),
// reporting its own RESOURCE_EXHAUSTED instead of the error. Echoed inputs
// are cut far shorter where they are echoed (base/truncate.h); this is
// the backstop. Stateless, safe from any thread; ToGrpc does not fail.
#ifndef QUIVER_SERVER_STATUS_H_
#define QUIVER_SERVER_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "base/truncate.h"

namespace quiver::server {

inline constexpr size_t kMaxStatusMessageBytes = 2048;

inline grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      TruncateForMessage(s.message(), kMaxStatusMessageBytes));
}

}  // namespace quiver::server

#endif  // QUIVER_SERVER_STATUS_H_
