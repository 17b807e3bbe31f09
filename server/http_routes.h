// HttpRouter: the HTTP/JSON gateway's route table (server/http_gateway.h),
// derived from the gRPC services' descriptors, so an RPC added to a .proto
// is reachable over HTTP without a change here.
//
// Every unary method M of a served service S gets:
//   POST /v1/S/M                    S short ("SearchService") or full
//                                   ("quiver.v1.SearchService")
// and, when its request has a string field naming the collection
// ("collection", or "name" in CollectionService), a REST form whose path
// sets that field:
//   POST /v1/collections/{name}/<action>
// where <action> is M in snake_case with a trailing "_collection" dropped
// (verify, get, drop, ...) and "<verb>_points" written "points/<verb>"
// (points/upsert, points/get, points/delete, points/count, ...), except
// Search, which is /search. A few aliases use HTTP verbs (kAliases in
// http_routes.cc): GET /v1/collections, GET|PUT|DELETE|PATCH
// /v1/collections/{name}, PUT /v1/collections/{name}/points,
// GET /v1/snapshots, GET /healthz, and for aliases GET /v1/aliases,
// PUT|PATCH|DELETE /v1/aliases/{alias} (create, switch, delete; the
// body names the collection).
// Streaming methods are in the table too, marked, so the gateway can answer
// them 501 rather than 404.
//
// Thread-safety: immutable once built; Find may run on any thread.
// Errors: Find returns NOT_FOUND for a path no route has and
// FAILED_PRECONDITION (the gateway's 405) when the path exists for other
// HTTP methods, naming them.
#ifndef QUIVER_SERVER_HTTP_ROUTES_H_
#define QUIVER_SERVER_HTTP_ROUTES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace google::protobuf {
class FieldDescriptor;
class Message;
class MethodDescriptor;
class ServiceDescriptor;
}  // namespace google::protobuf

namespace quiver::server {

struct HttpRoute {
  std::string http_method;  // "POST", "GET", ...
  // The path, segment by segment; "{name}" stands for the collection,
  // "{alias}" for an alias.
  std::vector<std::string> segments;
  const google::protobuf::MethodDescriptor* rpc = nullptr;
  // Fixed per route, so requests do not look them up: the gRPC method path
  // ("/quiver.v1.SearchService/Search") and the generated request and
  // response prototypes.
  std::string grpc_method;
  const google::protobuf::Message* request_prototype = nullptr;
  const google::protobuf::Message* response_prototype = nullptr;
  // The request field "{name}" or "{alias}" sets; null when the path has
  // none.
  const google::protobuf::FieldDescriptor* path_field = nullptr;
  bool streaming = false;

  std::string Pattern() const;  // "/v1/collections/{name}/search"
};

class HttpRouter {
 public:
  // Routes for `services` (each method once per form, see above).
  static HttpRouter Build(const std::vector<const google::protobuf::ServiceDescriptor*>& services);

  struct Match {
    const HttpRoute* route = nullptr;
    std::string path_value;  // what "{name}" matched; "" without one
  };
  absl::StatusOr<Match> Find(absl::string_view http_method, absl::string_view path) const;

  const std::vector<HttpRoute>& routes() const { return routes_; }

 private:
  std::vector<HttpRoute> routes_;
};

// "CountPoints" -> "count_points".
std::string SnakeCase(absl::string_view camel);

}  // namespace quiver::server

#endif  // QUIVER_SERVER_HTTP_ROUTES_H_
