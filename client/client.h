// Client: the C++ client library for quiverd, a thin layer over the
// generated gRPC stubs that returns absl::Status/StatusOr (the server's code
// and message carried over unchanged).
//
// Thread-safety: a Client may be shared by many threads (gRPC channels and
// stubs are thread-safe).
//
// Access control: with `api_key` every call carries the metadata
// "authorization: Bearer <key>"; with TLS options the channel is TLS,
// verifying the server against `tls_ca_pem` (or the system's roots) and
// presenting a client certificate for mutual TLS. LoadClientTls reads the
// PEM files.
#ifndef QUIVER_CLIENT_CLIENT_H_
#define QUIVER_CLIENT_CLIENT_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "quiver/v1/collections.grpc.pb.h"
#include "quiver/v1/points.grpc.pb.h"
#include "quiver/v1/search.grpc.pb.h"

namespace quiver::client {

// How long Upsert waits before trying again after the server refused a
// write with the "retry-after-ms" trailer `hint`, when `remaining` is left
// of the call's timeout; nullopt: do not retry. A hint that is not a whole
// number of milliseconds, or is negative, is ignored (no retry); 0 waits
// 1 ms; a wait that would reach the end of the timeout is not taken.
std::optional<absl::Duration> RetryWait(absl::string_view hint, absl::Duration remaining);

struct ClientOptions {
  // Per-call timeout. Default: 60 s.
  absl::Duration timeout = absl::Seconds(60);
  // Largest message sent or received. Default: 256 MiB.
  int max_message_bytes = 256 << 20;
  // Sent as "authorization: Bearer <api_key>"; empty: no key.
  std::string api_key;
  // TLS instead of plaintext. Implied by any of the tls_ fields below.
  bool tls = false;
  // PEM CA certificates the server's certificate must chain to; empty: the
  // system's roots.
  std::string tls_ca_pem;
  // Mutual TLS: this client's certificate chain and private key (PEM).
  std::string tls_cert_pem;
  std::string tls_key_pem;
  // The name the server's certificate must carry, instead of the host in
  // the target (e.g. connecting to an IP with a certificate for a name).
  std::string tls_server_name;
};

// Fills the TLS fields of `options` from PEM files; empty paths are
// skipped. NOT_FOUND/INVALID_ARGUMENT naming the file.
absl::Status LoadClientTls(const std::string& ca_file, const std::string& cert_file,
                           const std::string& key_file, ClientOptions* options);

class Client {
 public:
  // `target` is host:port. Connects lazily; use Health() to check.
  explicit Client(const std::string& target, ClientOptions options = {});

  // SERVING -> OK; NOT_SERVING or unreachable -> UNAVAILABLE.
  absl::Status Health();

  absl::StatusOr<v1::CollectionInfo> CreateCollection(const std::string& name,
                                                       const v1::CollectionSchema& schema);
  absl::StatusOr<v1::CollectionInfo> GetCollection(const std::string& name);
  absl::StatusOr<std::vector<v1::CollectionInfo>> ListCollections();
  absl::Status DropCollection(const std::string& name);
  absl::StatusOr<v1::CollectionInfo> UpdateCollection(const v1::UpdateCollectionRequest& req);
  // OK with the findings (which may list defects): see VerifyCollection in
  // proto/quiver/v1/collections.proto.
  absl::StatusOr<v1::VerifyCollectionResponse> VerifyCollection(
      const v1::VerifyCollectionRequest& req);

  // Retried while the server holds writes back (UNAVAILABLE with a
  // retry-after-ms trailer: its index builds are behind), within the
  // timeout; the last refusal is returned if the hint would pass it.
  absl::StatusOr<v1::UpsertPointsResponse> Upsert(const v1::UpsertPointsRequest& req);
  absl::StatusOr<v1::GetPointsResponse> GetPoints(const v1::GetPointsRequest& req);
  absl::StatusOr<v1::DeletePointsResponse> Delete(const v1::DeletePointsRequest& req);
  absl::StatusOr<uint64_t> Count(const std::string& collection, const std::string& filter = "");
  // One page; pass its next_cursor in the next request (empty: the end).
  absl::StatusOr<v1::ScrollPointsResponse> Scroll(const v1::ScrollPointsRequest& req);
  absl::StatusOr<v1::UpdatePointsResponse> Update(const v1::UpdatePointsRequest& req);
  absl::StatusOr<v1::SearchResponse> Search(const v1::SearchRequest& req);

  // Aliases (client/alias_client.cc): the changes return their
  // operation-log sequence; ListAliases of one collection, or of all when
  // `collection` is empty.
  absl::StatusOr<uint64_t> CreateAlias(const std::string& alias, const std::string& collection);
  absl::StatusOr<uint64_t> SwitchAlias(const std::string& alias, const std::string& collection);
  absl::StatusOr<uint64_t> DeleteAlias(const std::string& alias);
  absl::StatusOr<std::vector<v1::AliasInfo>> ListAliases(const std::string& collection = "");

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  // Adds the API key (if any) to a call made on channel() with another
  // service's stub (client/snapshot_client.h).
  void AddCredentials(grpc::ClientContext* ctx) const;

 private:
  void Prepare(grpc::ClientContext* ctx) const;

  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::CollectionService::Stub> collections_;
  std::unique_ptr<v1::PointService::Stub> points_;
  std::unique_ptr<v1::SearchService::Stub> search_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

// grpc::Status -> absl::Status, code and message unchanged.
absl::Status FromGrpc(const grpc::Status& s);

}  // namespace quiver::client

#endif  // QUIVER_CLIENT_CLIENT_H_
