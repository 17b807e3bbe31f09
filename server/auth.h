// API keys: who may call which RPC on which collection.
//
// quiverd --api-keys-file FILE reads keys by their SHA-256, never in clear.
// The file has one key per line:
//
//   # comment (also after a key's fields)
//   <sha256 of the key, 64 hex digits> <role> [collection,collection,...]
//
// A role is `read` (GetCollection, ListCollections, GetPoints, CountPoints,
// ScrollPoints, Search), `write` (read's, plus UpsertPoints, UpdatePoints
// and DeletePoints) or `admin`
// (everything: CreateCollection, DropCollection, UpdateCollection,
// VerifyCollection, the alias RPCs, every SnapshotService RPC and any
// method not listed here). A key limited to collections may call a method
// only on those; ListCollections shows it only those; a method that names
// no collection (snapshots of all collections, say) needs a key not
// limited to any.
//
// Aliases: the limit applies to the name a request gives, never to what
// an alias resolves to, so a key limited to "docs" cannot reach another
// collection through an alias (unless the alias's own name is in its
// list: listing an alias grants whatever it points to). CreateAlias and
// SwitchAlias need the key to cover both the alias and the collection,
// DeleteAlias the alias; ListAliases shows a limited key only the pairs
// whose alias and collection it both covers.
// `quiverctl key hash` makes a key and its line.
//
// Clients send the metadata "authorization: Bearer <key>". A missing or
// unknown key is UNAUTHENTICATED; a known key whose role or collections do
// not cover the call is PERMISSION_DENIED. Messages never quote the key or
// its hash. A key's digest is compared with every stored digest in constant
// time (differences ORed word by word, no early exit), so the time taken
// says nothing about how close a guess came.
//
// Ownership: the Server owns its Authorizer; the services borrow it through
// their RpcGate. Thread-safety: Check and FilterCollections may run on any
// number of threads at once, concurrently with Reload (which swaps in a new
// immutable key set under a lock; a call in progress keeps the set it
// started with). Errors: absl::Status (INVALID_ARGUMENT for a bad file,
// naming the file and line; NOT_FOUND/PERMISSION_DENIED when unreadable).
#ifndef QUIVER_SERVER_AUTH_H_
#define QUIVER_SERVER_AUTH_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/server_context.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/mutex.h"
#include "quiver/v1/collections.pb.h"
#include "server/config.h"

namespace google::protobuf {
class Descriptor;
class FieldDescriptor;
class Message;
}  // namespace google::protobuf

namespace quiver::server {

enum class Role { kRead = 1, kWrite = 2, kAdmin = 3 };
absl::string_view RoleName(Role r);

using Sha256Digest = std::array<uint8_t, 32>;
Sha256Digest Sha256(absl::string_view data);

struct ApiKey {
  Sha256Digest digest{};
  Role role = Role::kRead;
  // Empty: every collection.
  std::vector<std::string> collections;
  // Where it was declared, for log lines (never the key or its hash).
  int line = 0;
};

// Parses the text of an API keys file. INVALID_ARGUMENT "line N: ..." on
// the first bad line; the message never repeats a line's first field, which
// may be a key pasted in clear by mistake.
absl::StatusOr<std::vector<ApiKey>> ParseApiKeys(absl::string_view text);

// Whether quiverd's --listen address accepts only local connections:
// 127.0.0.0/8, ::1 (also as ::ffff:127.x.x.x), "localhost", or a unix
// socket. 0.0.0.0, [::], an empty host and other names are not local.
bool IsLoopbackListen(absl::string_view listen);

// Safe by default: FAILED_PRECONDITION, with a one-line reason, when
// quiverd would serve a non-loopback address (--listen or --http-listen)
// with neither API keys nor TLS and without --allow-insecure, or --metrics-listen on a non-loopback
// address without --allow-insecure (/metrics is never authenticated).
absl::Status CheckExposure(const ServerConfig& config);

class Authorizer {
 public:
  // Reads and parses `path`; the error names the file.
  static absl::StatusOr<std::unique_ptr<Authorizer>> Load(const std::string& path);

  // Reads the file again and, if it parses, serves its keys from the next
  // call on. On error the keys loaded before stay in force and the error is
  // returned (the caller logs it).
  absl::Status Reload();

  // Whether the caller of `ctx` may make the unary call `method` (the RPC's
  // name, e.g. "Search") with `request`. OK, UNAUTHENTICATED or
  // PERMISSION_DENIED.
  absl::Status Check(const grpc::ServerContextBase& ctx, absl::string_view method,
                     const google::protobuf::Message& request) const;

  // Drops from `resp` the collections the caller's key is not limited to
  // (a ListCollections the caller was allowed to make).
  void FilterCollections(const grpc::ServerContextBase& ctx,
                         v1::ListCollectionsResponse* resp) const;
  // The same for ListAliases: keeps the pairs whose alias and collection
  // the key both covers.
  void FilterAliases(const grpc::ServerContextBase& ctx, v1::ListAliasesResponse* resp) const;

  const std::string& path() const { return path_; }
  size_t key_count() const;

 private:
  // What a method needs, found by its request message type.
  struct MethodRule {
    std::string full_name;  // "/quiver.v1.SearchService/Search"
    std::string method;     // "Search"
    Role role = Role::kAdmin;
    // The request's string field naming the collection; null: none.
    const google::protobuf::FieldDescriptor* collection = nullptr;
    // A second name the key must cover too; null: none.
    const google::protobuf::FieldDescriptor* second = nullptr;
  };

  explicit Authorizer(std::string path);
  std::shared_ptr<const std::vector<ApiKey>> keys() const;
  // The key the caller sent, matched; UNAUTHENTICATED if none matches.
  absl::StatusOr<const ApiKey*> Authenticate(const grpc::ServerContextBase& ctx,
                                             const std::vector<ApiKey>& keys) const;

  const std::string path_;
  absl::flat_hash_map<const google::protobuf::Descriptor*, MethodRule> rules_;
  mutable Mutex mu_;
  std::shared_ptr<const std::vector<ApiKey>> keys_ ABSL_GUARDED_BY(mu_);
};

}  // namespace quiver::server

#endif  // QUIVER_SERVER_AUTH_H_
