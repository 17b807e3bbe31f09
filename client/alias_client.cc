// Client's alias calls (declared in client/client.h): one unary call each
// on the CollectionService stub, errors passed through unchanged.
#include "client/client.h"

namespace quiver::client {

absl::StatusOr<uint64_t> Client::CreateAlias(const std::string& alias,
                                             const std::string& collection) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::CreateAliasRequest req;
  req.set_alias(alias);
  req.set_collection(collection);
  v1::CreateAliasResponse resp;
  absl::Status s = FromGrpc(collections_->CreateAlias(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp.sequence();
}

absl::StatusOr<uint64_t> Client::SwitchAlias(const std::string& alias,
                                             const std::string& collection) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::SwitchAliasRequest req;
  req.set_alias(alias);
  req.set_collection(collection);
  v1::SwitchAliasResponse resp;
  absl::Status s = FromGrpc(collections_->SwitchAlias(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp.sequence();
}

absl::StatusOr<uint64_t> Client::DeleteAlias(const std::string& alias) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::DeleteAliasRequest req;
  req.set_alias(alias);
  v1::DeleteAliasResponse resp;
  absl::Status s = FromGrpc(collections_->DeleteAlias(&ctx, req, &resp));
  if (!s.ok()) return s;
  return resp.sequence();
}

absl::StatusOr<std::vector<v1::AliasInfo>> Client::ListAliases(const std::string& collection) {
  grpc::ClientContext ctx;
  Prepare(&ctx);
  v1::ListAliasesRequest req;
  req.set_collection(collection);
  v1::ListAliasesResponse resp;
  absl::Status s = FromGrpc(collections_->ListAliases(&ctx, req, &resp));
  if (!s.ok()) return s;
  return std::vector<v1::AliasInfo>(resp.aliases().begin(), resp.aliases().end());
}

}  // namespace quiver::client
