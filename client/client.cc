#include "client/client.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace quiver::client {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& what, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", what, " ", path, ": ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", path, " is not a PEM file"));
  }
  return text.str();
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const ClientOptions& o) {
  if (!o.tls && o.tls_ca_pem.empty() && o.tls_cert_pem.empty() && o.tls_server_name.empty()) {
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = o.tls_ca_pem;
  ssl.pem_private_key = o.tls_key_pem;
  ssl.pem_cert_chain = o.tls_cert_pem;
  return grpc::SslCredentials(ssl);
}

}  // namespace

absl::Status LoadClientTls(const std::string& ca_file, const std::string& cert_file,
                           const std::string& key_file, ClientOptions* options) {
  if (cert_file.empty() != key_file.empty()) {
    return absl::InvalidArgumentError("a TLS client certificate and its key go together");
  }
  if (!ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPem("TLS CA file", ca_file);
    if (!ca.ok()) return ca.status();
    options->tls_ca_pem = *std::move(ca);
    options->tls = true;
  }
  if (!cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadPem("TLS client certificate", cert_file);
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem("TLS client key", key_file);
    if (!key.ok()) return key.status();
    options->tls_cert_pem = *std::move(cert);
    options->tls_key_pem = *std::move(key);
    options->tls = true;
  }
  return absl::OkStatus();
}

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

Client::Client(const std::string& target, ClientOptions options) : options_(options) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  if (!options.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options.tls_server_name);
  }
  channel_ = grpc::CreateCustomChannel(target, ChannelCredentials(options), args);
  collections_ = v1::CollectionService::NewStub(channel_);
  points_ = v1::PointService::NewStub(channel_);
  search_ = v1::SearchService::NewStub(channel_);
  health_ = grpc::health::v1::Health::NewStub(channel_);
}

void Client::Prepare(grpc::ClientContext* ctx) const {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  AddCredentials(ctx);
}

void Client::AddCredentials(grpc::ClientContext* ctx) const {
  if (!options_.api_key.empty()) ctx->AddMetadata("authorization", "Bearer " + options_.api_key);
}

absl::Status Client::Health() {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status s = health_->Check(&ctx, req, &resp);
  if (!s.ok()) return absl::UnavailableError("health check failed: " + s.error_message());
  if (resp.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::UnavailableError("server is not serving");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::CollectionInfo> Client::CreateCollection(const std::string& name,
                                                            const v1::CollectionSchema& schema) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::CreateCollectionRequest req;
  req.set_name(name);
  *req.mutable_schema() = schema;
  v1::CreateCollectionResponse resp;
  absl::Status s = FromGrpc(collections_->CreateCollection(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp.collection();
}

absl::StatusOr<v1::CollectionInfo> Client::GetCollection(const std::string& name) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::GetCollectionRequest req;
  req.set_name(name);
  v1::GetCollectionResponse resp;
  absl::Status s = FromGrpc(collections_->GetCollection(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp.collection();
}

absl::StatusOr<std::vector<v1::CollectionInfo>> Client::ListCollections() {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::ListCollectionsResponse resp;
  absl::Status s = FromGrpc(collections_->ListCollections(&ctx, {}, &resp));
  if (!s.ok()) return s;
  return std::vector<v1::CollectionInfo>(resp.collections().begin(), resp.collections().end());
}

absl::StatusOr<v1::VerifyCollectionResponse> Client::VerifyCollection(
    const v1::VerifyCollectionRequest& req) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::VerifyCollectionResponse resp;
  absl::Status s = FromGrpc(collections_->VerifyCollection(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

absl::Status Client::DropCollection(const std::string& name) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::DropCollectionRequest req;
  req.set_name(name);
  v1::DropCollectionResponse resp;
  return FromGrpc(collections_->DropCollection(&ctx, req, &resp));
}

absl::StatusOr<v1::CollectionInfo> Client::UpdateCollection(
    const v1::UpdateCollectionRequest& req) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::UpdateCollectionResponse resp;
  absl::Status s = FromGrpc(collections_->UpdateCollection(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp.collection();
}

absl::StatusOr<v1::UpsertPointsResponse> Client::Upsert(const v1::UpsertPointsRequest& req) {
  // A server holding writes back (its index builds or compactions are
  // behind) answers UNAVAILABLE with a "retry-after-ms" trailer: the
  // upsert is tried again after that long, within the call's timeout:
  // every attempt's deadline is the call's, so the whole call never takes
  // longer than one timeout. Upserts are idempotent, and a refused one
  // changed nothing.
  const absl::Time give_up = absl::Now() + options_.timeout;
  for (;;) {
    grpc::ClientContext ctx;
    Prepare(&ctx);
    ctx.set_deadline(absl::ToChronoTime(give_up));
    v1::UpsertPointsResponse resp;
    absl::Status s = FromGrpc(points_->UpsertPoints(&ctx, req, &resp));
    if (s.ok()) return resp;
    if (!absl::IsUnavailable(s)) return s;
    const auto& trailers = ctx.GetServerTrailingMetadata();
    auto hint = trailers.find("retry-after-ms");
    if (hint == trailers.end()) return s;
    const std::optional<absl::Duration> wait = RetryWait(
        absl::string_view(hint->second.data(), hint->second.size()), give_up - absl::Now());
    if (!wait.has_value()) return s;
    absl::SleepFor(*wait);
  }
}

std::optional<absl::Duration> RetryWait(absl::string_view hint, absl::Duration remaining) {
  int64_t ms = 0;
  if (!absl::SimpleAtoi(hint, &ms) || ms < 0) return std::nullopt;
  const absl::Duration wait = absl::Milliseconds(std::max<int64_t>(ms, 1));
  if (wait >= remaining) return std::nullopt;
  return wait;
}

absl::StatusOr<v1::GetPointsResponse> Client::GetPoints(const v1::GetPointsRequest& req) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::GetPointsResponse resp;
  absl::Status s = FromGrpc(points_->GetPoints(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<v1::DeletePointsResponse> Client::Delete(const v1::DeletePointsRequest& req) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::DeletePointsResponse resp;
  absl::Status s = FromGrpc(points_->DeletePoints(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<uint64_t> Client::Count(const std::string& collection, const std::string& filter) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::CountPointsRequest req;
  req.set_collection(collection);
  req.set_filter(filter);
  v1::CountPointsResponse resp;
  absl::Status s = FromGrpc(points_->CountPoints(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp.count();
}

absl::StatusOr<v1::ScrollPointsResponse> Client::Scroll(const v1::ScrollPointsRequest& req) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::ScrollPointsResponse resp;
  absl::Status s = FromGrpc(points_->ScrollPoints(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<v1::UpdatePointsResponse> Client::Update(const v1::UpdatePointsRequest& req) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::UpdatePointsResponse resp;
  absl::Status s = FromGrpc(points_->UpdatePoints(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

absl::StatusOr<v1::SearchResponse> Client::Search(const v1::SearchRequest& req) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::SearchResponse resp;
  absl::Status s = FromGrpc(search_->Search(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp;
}

}  // namespace quiver::client
