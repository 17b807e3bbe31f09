#include "server/http_routes.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "base/truncate.h"

namespace quiver::server {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::MethodDescriptor;
using google::protobuf::ServiceDescriptor;

constexpr char kParam[] = "{name}";
// Stands for an alias: sets the request's "alias" field.
constexpr char kAliasParam[] = "{alias}";

// Routes with HTTP verbs, for the methods REST clients expect there. A
// method missing from the served services is skipped.
struct Alias {
  const char* http_method;
  const char* path;
  const char* rpc;  // full method name
};
constexpr Alias kAliases[] = {
    {"GET", "/v1/collections", "quiver.v1.CollectionService.ListCollections"},
    {"GET", "/v1/collections/{name}", "quiver.v1.CollectionService.GetCollection"},
    {"PUT", "/v1/collections/{name}", "quiver.v1.CollectionService.CreateCollection"},
    {"DELETE", "/v1/collections/{name}", "quiver.v1.CollectionService.DropCollection"},
    {"PATCH", "/v1/collections/{name}", "quiver.v1.CollectionService.UpdateCollection"},
    {"PUT", "/v1/collections/{name}/points", "quiver.v1.PointService.UpsertPoints"},
    {"GET", "/v1/snapshots", "quiver.v1.SnapshotService.ListSnapshots"},
    {"GET", "/v1/aliases", "quiver.v1.CollectionService.ListAliases"},
    {"PUT", "/v1/aliases/{alias}", "quiver.v1.CollectionService.CreateAlias"},
    {"PATCH", "/v1/aliases/{alias}", "quiver.v1.CollectionService.SwitchAlias"},
    {"DELETE", "/v1/aliases/{alias}", "quiver.v1.CollectionService.DeleteAlias"},
    {"GET", "/healthz", "grpc.health.v1.Health.Check"},
};

// "/a/b" -> {"a", "b"}; empty segments ("/a//b", "/a/") are kept, and
// match nothing.
std::vector<std::string> Segments(absl::string_view path) {
  absl::ConsumePrefix(&path, "/");
  return absl::StrSplit(path, '/');
}

// The request's string field that names the collection the method acts on.
const FieldDescriptor* CollectionField(const MethodDescriptor* m) {
  const auto* req = m->input_type();
  const FieldDescriptor* f = req->FindFieldByName("collection");
  if (f == nullptr && m->service()->name() == "CollectionService") f = req->FindFieldByName("name");
  if (f == nullptr || f->type() != FieldDescriptor::TYPE_STRING || f->is_repeated()) return nullptr;
  return f;
}

// The REST action of a method: see the header.
std::vector<std::string> Action(const MethodDescriptor* m) {
  std::string a = SnakeCase(m->name());
  if (absl::EndsWith(a, "_collection")) a.resize(a.size() - std::string("_collection").size());
  if (absl::EndsWith(a, "_points")) {
    return {"points", a.substr(0, a.size() - std::string("_points").size())};
  }
  return {a};
}

HttpRoute MakeRoute(std::string http_method, std::vector<std::string> segments,
                    const MethodDescriptor* m) {
  HttpRoute r;
  r.http_method = std::move(http_method);
  r.segments = std::move(segments);
  r.rpc = m;
  r.grpc_method = absl::StrCat("/", m->service()->full_name(), "/", m->name());
  auto* factory = google::protobuf::MessageFactory::generated_factory();
  r.request_prototype = factory->GetPrototype(m->input_type());
  r.response_prototype = factory->GetPrototype(m->output_type());
  r.streaming = m->client_streaming() || m->server_streaming();
  for (const auto& s : r.segments) {
    if (s == kParam) r.path_field = CollectionField(m);
    if (s == kAliasParam) r.path_field = m->input_type()->FindFieldByName("alias");
  }
  return r;
}

bool SegmentsMatch(const HttpRoute& r, const std::vector<std::string>& path, std::string* value) {
  if (r.segments.size() != path.size()) return false;
  std::string v;
  for (size_t i = 0; i < path.size(); ++i) {
    if (r.segments[i] == kParam || r.segments[i] == kAliasParam) {
      if (path[i].empty()) return false;
      v = path[i];
    } else if (r.segments[i] != path[i]) {
      return false;
    }
  }
  *value = std::move(v);
  return true;
}

}  // namespace

std::string SnakeCase(absl::string_view camel) {
  std::string out;
  for (size_t i = 0; i < camel.size(); ++i) {
    const char c = camel[i];
    if (absl::ascii_isupper(static_cast<unsigned char>(c))) {
      if (i > 0) out.push_back('_');
      out.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string HttpRoute::Pattern() const { return absl::StrCat("/", absl::StrJoin(segments, "/")); }

HttpRouter HttpRouter::Build(const std::vector<const ServiceDescriptor*>& services) {
  HttpRouter router;
  for (const ServiceDescriptor* s : services) {
    for (int i = 0; i < s->method_count(); ++i) {
      const MethodDescriptor* m = s->method(i);
      router.routes_.push_back(MakeRoute("POST", {"v1", s->name(), m->name()}, m));
      router.routes_.push_back(MakeRoute("POST", {"v1", s->full_name(), m->name()}, m));
      if (CollectionField(m) != nullptr) {
        std::vector<std::string> path = {"v1", "collections", kParam};
        for (auto& a : Action(m)) path.push_back(std::move(a));
        router.routes_.push_back(MakeRoute("POST", std::move(path), m));
      }
    }
  }
  for (const Alias& a : kAliases) {
    for (const ServiceDescriptor* s : services) {
      absl::string_view rpc = a.rpc;
      if (!absl::ConsumePrefix(&rpc, s->full_name()) || !absl::ConsumePrefix(&rpc, ".")) continue;
      if (const MethodDescriptor* m = s->FindMethodByName(std::string(rpc))) {
        router.routes_.push_back(MakeRoute(a.http_method, Segments(a.path), m));
      }
    }
  }
  return router;
}

absl::StatusOr<HttpRouter::Match> HttpRouter::Find(absl::string_view http_method,
                                                   absl::string_view path) const {
  const std::vector<std::string> segments = Segments(path);
  std::vector<std::string> allowed;
  for (const HttpRoute& r : routes_) {
    std::string value;
    if (!SegmentsMatch(r, segments, &value)) continue;
    if (r.http_method == http_method) return Match{&r, std::move(value)};
    allowed.push_back(r.http_method);
  }
  if (!allowed.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        TruncateForMessage(path, 200), " takes ", absl::StrJoin(allowed, ", "), ", not ",
        TruncateForMessage(http_method, 20)));
  }
  return absl::NotFoundError(absl::StrCat(
      "no route for ", TruncateForMessage(http_method, 20), " ", TruncateForMessage(path, 200),
      ": routes are POST /v1/<Service>/<Method> and the REST forms under /v1/collections "
      "(see the README, HTTP/JSON)"));
}

}  // namespace quiver::server
