// DecodeErrorInterceptorFactory: gives a reason to requests that could not
// be decoded.
//
// gRPC 1.51's callback API answers a request whose bytes do not parse as
// the method's request message (typically a proto3 string field holding
// invalid UTF-8, which protobuf rejects) with UNIMPLEMENTED and an empty
// message, before any handler runs: CallbackUnaryHandler::RunHandler drops
// the deserialization status and finishes with
// Status(UNIMPLEMENTED, ""). A server interceptor still sees such an RPC:
// POST_RECV_MESSAGE with a null message, then PRE_SEND_STATUS, whose status
// it may replace. This one replaces it with INVALID_ARGUMENT "request could
// not be decoded as <message>: <protobuf's reason>".
//
// Thread-safety: gRPC creates one interceptor per RPC; the factory is
// stateless.
#ifndef QUIVER_SERVER_DECODE_ERRORS_H_
#define QUIVER_SERVER_DECODE_ERRORS_H_

#include <grpcpp/support/server_interceptor.h>

namespace quiver::server {

class DecodeErrorInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace quiver::server

#endif  // QUIVER_SERVER_DECODE_ERRORS_H_
