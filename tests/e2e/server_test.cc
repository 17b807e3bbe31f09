// quiverd as a server: health, reflection, message limits, graceful
// shutdown, and persistence across a clean restart.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include <atomic>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "reflection.grpc.pb.h"
#include "tests/common/server_fixture.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;

v1::CollectionSchema Schema(uint32_t dim) {
  v1::CollectionSchema s;
  *s.add_vectors() = ::quiver::testing::VectorField("v", dim);
  *s.add_attributes() = ::quiver::testing::Attribute("n", v1::INT64);
  return s;
}

v1::UpsertPointsRequest Points(const std::string& coll, int first, int count, uint32_t dim) {
  v1::UpsertPointsRequest req;
  req.set_collection(coll);
  for (int i = first; i < first + count; ++i) {
    v1::Point* p = req.add_points();
    p->set_id(absl::StrCat("id", i));
    auto* v = (*p->mutable_vectors())["v"].mutable_values();
    for (uint32_t d = 0; d < dim; ++d) v->Add(static_cast<float>(i * 0.5 + d));
    (*p->mutable_attributes())["n"].set_int_value(i);
  }
  return req;
}

class ServerTest : public ::quiver::testing::ServerFixture {};

// A second quiverd on a data directory in use, or on a port in use, exits
// with an error saying why, and leaves the first one serving.
TEST_F(ServerTest, StartFailuresExitCleanlyWithAReason) {
  StartServer();
  auto [code1, out1] = ::quiver::testing::RunQuiverdToExit(
      {"--listen", "127.0.0.1:0", "--data-dir", dir_.path() + "/data"}, dir_.path() + "/second.log",
      absl::Seconds(20));
  EXPECT_EQ(code1, 1) << out1;
  EXPECT_NE(out1.find("cannot start"), std::string::npos) << out1;
  EXPECT_NE(out1.find("lock"), std::string::npos) << out1;

  auto [code2, out2] = ::quiver::testing::RunQuiverdToExit(
      {"--listen", server_->address(), "--data-dir", dir_.path() + "/other"},
      dir_.path() + "/third.log", absl::Seconds(20));
  EXPECT_EQ(code2, 1) << out2;
  EXPECT_NE(out2.find("cannot listen"), std::string::npos) << out2;
  QUIVER_ASSERT_OK(client_->Health());
}

TEST_F(ServerTest, HealthServing) {
  StartServer();
  QUIVER_ASSERT_OK(client_->Health());
}

TEST_F(ServerTest, ReflectionIsServedOnlyWithItsFlag) {
  StartServer();
  auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(client_->channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->ServerReflectionInfo(&ctx);
  grpc::reflection::v1alpha::ServerReflectionRequest req;
  req.set_list_services("");
  stream->Write(req);
  // gRPC answers an unknown streaming method once the client half-closes.
  stream->WritesDone();
  grpc::reflection::v1alpha::ServerReflectionResponse resp;
  EXPECT_FALSE(stream->Read(&resp));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST_F(ServerTest, ReflectionListsServicesAndDescribesThem) {
  StartServer({"--reflection"});
  auto stub = grpc::reflection::v1alpha::ServerReflection::NewStub(client_->channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = stub->ServerReflectionInfo(&ctx);
  grpc::reflection::v1alpha::ServerReflectionRequest req;
  req.set_list_services("");
  ASSERT_TRUE(stream->Write(req));
  grpc::reflection::v1alpha::ServerReflectionResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  std::vector<std::string> names;
  for (const auto& s : resp.list_services_response().service()) names.push_back(s.name());
  EXPECT_THAT(names, ::testing::IsSupersetOf({"quiver.v1.CollectionService",
                                              "quiver.v1.PointService",
                                              "quiver.v1.SearchService",
                                              "grpc.health.v1.Health"}));
  req.set_file_containing_symbol("quiver.v1.SearchService");
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_GT(resp.file_descriptor_response().file_descriptor_proto_size(), 0);
  stream->WritesDone();
  QUIVER_ASSERT_OK(client::FromGrpc(stream->Finish()));
}

TEST_F(ServerTest, OversizedMessageIsRejectedAndChangesNothing) {
  StartServer({"--max-message-bytes", "1048576"});
  QUIVER_ASSERT_OK(client_->CreateCollection("c", Schema(256)));
  // 2000 x 256 floats = 2 MB > 1 MiB.
  auto big = client_->Upsert(Points("c", 0, 2000, 256));
  EXPECT_THAT(big, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(*client_->Count("c"), 0u);
  QUIVER_ASSERT_OK(client_->Upsert(Points("c", 0, 100, 256)));
  EXPECT_EQ(*client_->Count("c"), 100u);
}

TEST_F(ServerTest, StatusCodesCrossTheWireUnchanged) {
  StartServer();
  EXPECT_THAT(client_->GetCollection("missing"),
              StatusIs(absl::StatusCode::kNotFound, "collection \"missing\" does not exist"));
  QUIVER_ASSERT_OK(client_->CreateCollection("c", Schema(4)));
  EXPECT_THAT(client_->CreateCollection("c", Schema(4)),
              StatusIs(absl::StatusCode::kAlreadyExists));
  v1::SearchRequest s;
  s.set_collection("c");
  s.set_k(3);
  auto* qv = s.add_vectors()->mutable_values();
  for (float x : {1.f, 2.f, 3.f, 4.f}) qv->Add(x);
  s.set_filter("n >");
  EXPECT_THAT(client_->Search(s), StatusIs(absl::StatusCode::kInvalidArgument, "position 3"));
}

TEST_F(ServerTest, GracefulShutdownKeepsDataAndExitsZero) {
  StartServer();
  QUIVER_ASSERT_OK(client_->CreateCollection("c", Schema(8)));
  for (int b = 0; b < 5; ++b) QUIVER_ASSERT_OK(client_->Upsert(Points("c", b * 100, 100, 8)));
  QUIVER_ASSERT_OK(server_->Stop());  // SIGTERM; OK only on exit status 0
  EXPECT_TRUE(WIFEXITED(server_->last_wait_status()));
  QUIVER_ASSERT_OK(server_->Start(dir_.path() + "/data"));
  client_ = std::make_unique<client::Client>(server_->address());
  EXPECT_EQ(*client_->Count("c"), 500u);
  v1::GetPointsRequest get;
  get.set_collection("c");
  get.add_ids("id321");
  get.set_with_vectors(true);
  auto got = client_->GetPoints(get);
  QUIVER_ASSERT_OK(got);
  ASSERT_EQ(got->points_size(), 1);
  EXPECT_EQ(got->points(0).attributes().at("n").int_value(), 321);
  EXPECT_FLOAT_EQ(got->points(0).vectors().at("v").values(7), 321 * 0.5f + 7);
}

// SIGTERM while clients are writing: the server finishes what it accepted,
// refuses the rest with UNAVAILABLE, exits 0, and every acknowledged write is
// there after a restart.
TEST_F(ServerTest, SigtermDuringWritesLosesNothingAcknowledged) {
  StartServer();
  QUIVER_ASSERT_OK(client_->CreateCollection("c", Schema(64)));
  std::atomic<int> acked_batches[2] = {0, 0};
  std::atomic<bool> other_error{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < 2; ++t) {
    writers.emplace_back([&, t] {
      client::Client c(server_->address());
      for (int b = 0; b < 100000; ++b) {
        auto r = c.Upsert(Points("c", t * 1000000 + b * 50, 50, 64));
        if (!r.ok()) {
          // UNAVAILABLE from quiverd's own refusal; CANCELLED from gRPC for a
          // call that reached the server after its shutdown began.
          if (!absl::IsUnavailable(r.status()) && !absl::IsCancelled(r.status())) {
            other_error = true;
            ADD_FAILURE() << r.status();
          }
          return;
        }
        acked_batches[t] = b + 1;
      }
    });
  }
  while (acked_batches[0] + acked_batches[1] < 20) absl::SleepFor(absl::Milliseconds(2));
  QUIVER_ASSERT_OK(server_->Stop());
  for (auto& w : writers) w.join();
  EXPECT_FALSE(other_error.load());
  QUIVER_ASSERT_OK(server_->Start(dir_.path() + "/data"));
  client_ = std::make_unique<client::Client>(server_->address());
  const uint64_t acked = 50ull * (acked_batches[0] + acked_batches[1]);
  const uint64_t count = *client_->Count("c");
  // Each thread may have had one more batch committed whose reply was lost.
  EXPECT_GE(count, acked);
  EXPECT_LE(count, acked + 2 * 50);
  for (int t = 0; t < 2; ++t) {
    v1::GetPointsRequest get;
    get.set_collection("c");
    const int last = t * 1000000 + (acked_batches[t] - 1) * 50 + 49;
    get.add_ids(absl::StrCat("id", last));
    EXPECT_EQ(client_->GetPoints(get)->points_size(), 1) << "thread " << t;
  }
}

// A search that cannot finish within its deadline ends with
// DEADLINE_EXCEEDED, and the server keeps serving.
TEST_F(ServerTest, SearchDeadlineIsHonoured) {
  StartServer();
  constexpr uint32_t kBigDim = 512;
  QUIVER_ASSERT_OK(client_->CreateCollection("c", Schema(kBigDim)));
  for (int b = 0; b < 20; ++b) QUIVER_ASSERT_OK(client_->Upsert(Points("c", b * 1000, 1000, kBigDim)));
  v1::SearchRequest s;
  s.set_collection("c");
  s.set_k(10);
  for (int q = 0; q < 1024; ++q) {
    auto* qv = s.add_vectors()->mutable_values();
    for (uint32_t d = 0; d < kBigDim; ++d) qv->Add(static_cast<float>(q + d));
  }
  // On the client's channel, already connected, so the whole budget goes to
  // the search itself.
  auto stub = v1::SearchService::NewStub(client_->channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(20));
  v1::SearchResponse slow;
  EXPECT_THAT(client::FromGrpc(stub->Search(&ctx, s, &slow)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  s.mutable_vectors()->DeleteSubrange(1, 1023);
  auto r = client_->Search(s);
  QUIVER_ASSERT_OK(r);
  EXPECT_EQ(r->results(0).hits_size(), 10);
}

}  // namespace
}  // namespace quiver
