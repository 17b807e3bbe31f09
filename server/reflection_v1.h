// ReflectionV1Service: gRPC server reflection, protocol v1
// (grpc.reflection.v1.ServerReflection), next to the v1alpha service that
// gRPC 1.51's reflection plugin provides (it has no v1). Tools that ask v1
// first (grpcurl >= 1.8.8, Postman) then discover quiverd without falling
// back. Served only with --reflection, like v1alpha, and like it without an
// API key: it describes the API, never data.
//
// Answers come from protobuf's generated descriptor pool, which holds every
// message and service compiled into quiverd: list_services gives the names
// passed at construction (the services quiverd registers), file requests a
// serialized FileDescriptorProto plus every file it imports, as v1alpha
// does.
//
// Thread-safety: the service is immutable once built; streams share nothing
// (gRPC runs sync handlers on its own threads). Errors: an unknown file, symbol or extension is answered on the
// stream with an ErrorResponse (NOT_FOUND), an empty request with one of
// INVALID_ARGUMENT; the stream itself ends OK when the client half-closes.
#ifndef QUIVER_SERVER_REFLECTION_V1_H_
#define QUIVER_SERVER_REFLECTION_V1_H_

#include <string>
#include <vector>

#include "grpc/reflection/v1/reflection.grpc.pb.h"

namespace quiver::server {

class ReflectionV1Service final : public grpc::reflection::v1::ServerReflection::Service {
 public:
  // `services`: full names of the services to list (e.g.
  // "quiver.v1.SearchService").
  explicit ReflectionV1Service(std::vector<std::string> services)
      : services_(std::move(services)) {}

  grpc::Status ServerReflectionInfo(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<grpc::reflection::v1::ServerReflectionResponse,
                               grpc::reflection::v1::ServerReflectionRequest>* stream) override;

 private:
  const std::vector<std::string> services_;
};

}  // namespace quiver::server

#endif  // QUIVER_SERVER_REFLECTION_V1_H_
