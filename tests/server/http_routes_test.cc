// The HTTP gateway's route table (server/http_routes.h), derived from the
// real service descriptors, and its status mapping.
#include "server/http_routes.h"

#include <google/protobuf/descriptor.h>
#include <gtest/gtest.h>

#include "quiver/v1/collections.grpc.pb.h"
#include "quiver/v1/points.grpc.pb.h"
#include "quiver/v1/search.grpc.pb.h"
#include "quiver/v1/snapshots.grpc.pb.h"
#include "server/http_gateway.h"

namespace quiver::server {
namespace {

// The services' descriptors, reached through their messages' files (which
// also links the generated code in).
std::vector<const google::protobuf::ServiceDescriptor*> Services() {
  return {v1::GetCollectionRequest::descriptor()->file()->service(0),
          v1::GetPointsRequest::descriptor()->file()->service(0),
          v1::SearchRequest::descriptor()->file()->service(0),
          v1::ListSnapshotsRequest::descriptor()->file()->service(0)};
}

HttpRouter Router() { return HttpRouter::Build(Services()); }

std::string Rpc(const HttpRouter& r, const char* method, const char* path, std::string* value = nullptr) {
  auto m = r.Find(method, path);
  if (!m.ok()) return m.status().ToString();
  if (value != nullptr) *value = m->path_value;
  return m->route->rpc->full_name();
}

TEST(HttpRoutesTest, RestFormsSetTheCollectionFromThePath) {
  const HttpRouter r = Router();
  std::string v;
  EXPECT_EQ(Rpc(r, "POST", "/v1/collections/shop/search", &v), "quiver.v1.SearchService.Search");
  EXPECT_EQ(v, "shop");
  EXPECT_EQ(Rpc(r, "POST", "/v1/collections/shop/points/count"), "quiver.v1.PointService.CountPoints");
  EXPECT_EQ(Rpc(r, "POST", "/v1/collections/shop/points/get"), "quiver.v1.PointService.GetPoints");
  EXPECT_EQ(Rpc(r, "POST", "/v1/collections/shop/points/upsert"), "quiver.v1.PointService.UpsertPoints");
  EXPECT_EQ(Rpc(r, "PUT", "/v1/collections/shop/points"), "quiver.v1.PointService.UpsertPoints");
  EXPECT_EQ(Rpc(r, "POST", "/v1/collections/shop/verify"),
            "quiver.v1.CollectionService.VerifyCollection");
  EXPECT_EQ(Rpc(r, "GET", "/v1/collections/shop", &v), "quiver.v1.CollectionService.GetCollection");
  EXPECT_EQ(v, "shop");
  EXPECT_EQ(Rpc(r, "PUT", "/v1/collections/shop"), "quiver.v1.CollectionService.CreateCollection");
  EXPECT_EQ(Rpc(r, "DELETE", "/v1/collections/shop"), "quiver.v1.CollectionService.DropCollection");
  EXPECT_EQ(Rpc(r, "GET", "/v1/collections"), "quiver.v1.CollectionService.ListCollections");
  auto m = r.Find("POST", "/v1/collections/shop/search");
  ASSERT_TRUE(m.ok());
  ASSERT_NE(m->route->path_field, nullptr);
  EXPECT_EQ(m->route->path_field->name(), "collection");
  EXPECT_EQ(m->route->Pattern(), "/v1/collections/{name}/search");
}

TEST(HttpRoutesTest, AliasRoutesSetTheAliasFromThePath) {
  const HttpRouter r = Router();
  std::string v;
  EXPECT_EQ(Rpc(r, "GET", "/v1/aliases"), "quiver.v1.CollectionService.ListAliases");
  for (const auto& [method, rpc] : std::vector<std::pair<const char*, std::string>>{
           {"PUT", "quiver.v1.CollectionService.CreateAlias"},
           {"PATCH", "quiver.v1.CollectionService.SwitchAlias"},
           {"DELETE", "quiver.v1.CollectionService.DeleteAlias"}}) {
    EXPECT_EQ(Rpc(r, method, "/v1/aliases/live", &v), rpc);
    EXPECT_EQ(v, "live");
    auto m = r.Find(method, "/v1/aliases/live");
    ASSERT_TRUE(m.ok());
    ASSERT_NE(m->route->path_field, nullptr);
    EXPECT_EQ(m->route->path_field->name(), "alias");
  }
  EXPECT_TRUE(absl::IsFailedPrecondition(r.Find("POST", "/v1/aliases/live").status()));
  EXPECT_TRUE(absl::IsNotFound(r.Find("PUT", "/v1/aliases//").status()));
  EXPECT_EQ(Rpc(r, "POST", "/v1/CollectionService/SwitchAlias"),
            "quiver.v1.CollectionService.SwitchAlias");
}

TEST(HttpRoutesTest, GenericFormCoversEveryMethod) {
  const HttpRouter r = Router();
  EXPECT_EQ(Rpc(r, "POST", "/v1/SearchService/Search"), "quiver.v1.SearchService.Search");
  EXPECT_EQ(Rpc(r, "POST", "/v1/quiver.v1.PointService/DeletePoints"),
            "quiver.v1.PointService.DeletePoints");
  // Every method of every service, by descriptor: a new RPC needs no route.
  const auto* points = Services()[1];
  for (int i = 0; i < points->method_count(); ++i) {
    const std::string path = "/v1/PointService/" + points->method(i)->name();
    EXPECT_EQ(Rpc(r, "POST", path.c_str()), points->method(i)->full_name());
  }
  auto dl = r.Find("POST", "/v1/SnapshotService/DownloadSnapshot");
  ASSERT_TRUE(dl.ok());
  EXPECT_TRUE(dl->route->streaming);
  auto search = r.Find("POST", "/v1/SearchService/Search");
  ASSERT_TRUE(search.ok());
  EXPECT_FALSE(search->route->streaming);
  EXPECT_EQ(search->route->path_field, nullptr);
}

TEST(HttpRoutesTest, UnknownPathsAndMethods) {
  const HttpRouter r = Router();
  auto wrong = r.Find("DELETE", "/v1/collections/shop/search");
  EXPECT_TRUE(absl::IsFailedPrecondition(wrong.status())) << wrong.status();
  EXPECT_NE(wrong.status().message().find("takes POST"), std::string::npos);
  EXPECT_TRUE(absl::IsNotFound(r.Find("POST", "/v1/collections/shop/nope").status()));
  EXPECT_TRUE(absl::IsNotFound(r.Find("POST", "/v1/SearchService/Nope").status()));
  EXPECT_TRUE(absl::IsNotFound(r.Find("GET", "/").status()));
  EXPECT_TRUE(absl::IsNotFound(r.Find("POST", "/v1/collections//search").status()));
}

TEST(HttpRoutesTest, SnakeCaseAndStatusMapping) {
  EXPECT_EQ(SnakeCase("CountPoints"), "count_points");
  EXPECT_EQ(SnakeCase("Search"), "search");
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::OK), 200);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::INVALID_ARGUMENT), 400);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::UNAUTHENTICATED), 401);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::PERMISSION_DENIED), 403);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::NOT_FOUND), 404);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::ALREADY_EXISTS), 409);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::RESOURCE_EXHAUSTED), 429);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::UNIMPLEMENTED), 501);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::UNAVAILABLE), 503);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::DEADLINE_EXCEEDED), 504);
  EXPECT_EQ(HttpStatusOf(grpc::StatusCode::DATA_LOSS), 500);
}

}  // namespace
}  // namespace quiver::server
