// Mapping between absl::Status and grpc::Status. absl::StatusCode mirrors
// google.rpc.Code, so codes carry over one-to-one.
#ifndef QUIVER_SERVER_STATUS_H_
#define QUIVER_SERVER_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace quiver::server {

inline grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace quiver::server

#endif  // QUIVER_SERVER_STATUS_H_
