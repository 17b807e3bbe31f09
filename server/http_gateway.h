// HttpGateway: quiverd's HTTP/JSON endpoint (--http-listen HOST:PORT). It
// serves the gRPC services as JSON over HTTP/1.1 (cpp-httplib), so `curl`
// and any HTTP client can use Quiver without gRPC.
//
// Each request is translated, not reimplemented: its route (HttpRouter,
// server/http_routes.h, derived from the service descriptors) names the
// RPC; the JSON body is parsed into the RPC's request message with
// protobuf's JSON mapping (field names in snake_case or lowerCamelCase,
// int64 as a number or a string, enums by name), the path's collection name
// is set, and the request is sent to the running gRPC server through its
// in-process channel with the HTTP "Authorization" header as the gRPC
// "authorization" metadata. API keys, per-method limits, response size
// limits, metrics and logging therefore apply exactly as over gRPC, and an
// RPC added to a service is served here too. The response is printed as
// JSON (proto field names, every field, int64 as strings per the mapping).
//
// Errors: the RPC's gRPC status becomes the HTTP status (HttpStatusOf) with
// a JSON body {"code": <gRPC code number>, "status": "NOT_FOUND",
// "message": "..."}; a body that is not valid JSON for the request, or sets
// the collection differently from the path, is 400 before any RPC runs (so
// nothing changes); a body over the limit 413; an unknown path 404, a known
// path with another HTTP method 405; a streaming RPC (snapshot download and
// restore) 501. A "retry-after-ms" trailer becomes the headers
// "retry-after-ms" and "Retry-After" (whole seconds, rounded up).
//
// With TLS configured for gRPC the gateway serves HTTPS with the same
// certificate, key and client CA (mutual TLS), reloaded with them on
// SIGHUP: connections opened after a successful reload use the new files.
//
// Starting is two steps so that quiverd never reports SERVING with a
// listener still missing: Bind takes the port before the gRPC server starts
// (a connection made from then on waits in the kernel's backlog instead of
// being refused), Serve starts answering once the gRPC server, and so its
// in-process channel, exists.
//
// Ownership: the Server owns its gateway and destroys it after draining its
// own RPCs and before shutting gRPC down; the gateway holds the in-process
// channel (a shared_ptr) and borrows the ServerTls. Thread-safety: requests
// run on the gateway's own thread pool, each blocking on its RPC; Bind,
// Serve and destruction happen on one thread. Bind returns INVALID_ARGUMENT
// for an address that is not HOST:PORT and UNAVAILABLE when it cannot
// listen there.
#ifndef QUIVER_SERVER_HTTP_GATEWAY_H_
#define QUIVER_SERVER_HTTP_GATEWAY_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "server/http_routes.h"
#include "server/tls.h"

namespace httplib {
class Server;
}

namespace quiver::server {

struct HttpGatewayOptions {
  std::string listen;                 // HOST:PORT; port 0 picks one
  int64_t max_body_bytes = 64 << 20;  // larger request bodies: 413
  int threads = 16;                   // concurrent HTTP requests
  // Full names of the services to serve ("quiver.v1.SearchService").
  std::vector<std::string> services;
};

class HttpGateway {
 public:
  // Listens on options.listen; nothing is answered before Serve. `tls`:
  // null for plain HTTP; else it must outlive the gateway.
  static absl::StatusOr<std::unique_ptr<HttpGateway>> Bind(const HttpGatewayOptions& options,
                                                          ServerTls* tls);
  // Answers requests through `channel`, the gRPC server's in-process
  // channel. Once only.
  void Serve(std::shared_ptr<grpc::Channel> channel);
  // Closes the listening socket; returns at once. Requests in progress go
  // on, and a kept-alive connection ends after its current request.
  void StopListening();
  // Stops listening and waits for requests in progress (closes the socket
  // of a gateway never served).
  ~HttpGateway();

  int port() const { return port_; }
  bool https() const { return https_; }

 private:
  class Handler;
  HttpGateway() = default;
  void RunLoop();
  std::unique_ptr<Handler> handler_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
  bool https_ = false;
};

// The HTTP status for a gRPC status code (the mapping of Google's API
// design guide): INVALID_ARGUMENT, FAILED_PRECONDITION and OUT_OF_RANGE
// 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403, NOT_FOUND 404,
// ALREADY_EXISTS and ABORTED 409, RESOURCE_EXHAUSTED 429, CANCELLED 499,
// UNIMPLEMENTED 501, UNAVAILABLE 503, DEADLINE_EXCEEDED 504, the rest 500.
int HttpStatusOf(grpc::StatusCode code);

}  // namespace quiver::server

#endif  // QUIVER_SERVER_HTTP_GATEWAY_H_
