#include "server/auth.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <openssl/evp.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/truncate.h"

namespace quiver::server {
namespace {

// What each RPC needs. Methods are named in full, as on the wire; a method
// missing here (a new one, or any SnapshotService RPC) needs an admin key
// that is not limited to collections.
struct RuleSpec {
  const char* service;
  const char* method;
  Role role;
  const char* collection_field;  // "" : the request names no collection
  // A second name the key must also cover ("" : none): an alias change
  // names the alias and its collection.
  const char* second_field = "";
};
constexpr RuleSpec kRules[] = {
    {"quiver.v1.CollectionService", "GetCollection", Role::kRead, "name"},
    {"quiver.v1.CollectionService", "ListCollections", Role::kRead, ""},
    {"quiver.v1.CollectionService", "CreateCollection", Role::kAdmin, "name"},
    {"quiver.v1.CollectionService", "DropCollection", Role::kAdmin, "name"},
    {"quiver.v1.CollectionService", "UpdateCollection", Role::kAdmin, "name"},
    {"quiver.v1.CollectionService", "VerifyCollection", Role::kAdmin, "name"},
    {"quiver.v1.PointService", "GetPoints", Role::kRead, "collection"},
    {"quiver.v1.PointService", "CountPoints", Role::kRead, "collection"},
    {"quiver.v1.PointService", "ScrollPoints", Role::kRead, "collection"},
    {"quiver.v1.PointService", "UpdatePoints", Role::kWrite, "collection"},
    {"quiver.v1.PointService", "UpsertPoints", Role::kWrite, "collection"},
    {"quiver.v1.PointService", "DeletePoints", Role::kWrite, "collection"},
    {"quiver.v1.SearchService", "Search", Role::kRead, "collection"},
    // A limited key may change an alias only if it covers both the alias
    // and the collection, so no alias it can make or switch leads outside
    // its limit; requests through an alias are checked by the name given.
    {"quiver.v1.CollectionService", "CreateAlias", Role::kAdmin, "alias", "collection"},
    {"quiver.v1.CollectionService", "SwitchAlias", Role::kAdmin, "alias", "collection"},
    {"quiver.v1.CollectionService", "DeleteAlias", Role::kAdmin, "alias"},
    {"quiver.v1.CollectionService", "ListAliases", Role::kAdmin, "collection"},
};
constexpr char kListCollections[] = "/quiver.v1.CollectionService/ListCollections";
constexpr char kListAliases[] = "/quiver.v1.CollectionService/ListAliases";

// Keeps the entries of a listing that `keep(entry, covered)` accepts, where
// covered(name) says whether the caller's key covers a collection name:
// every entry for a key not limited to collections, none when the key no
// longer authenticates (it was removed between the check and now).
template <typename Entry, typename Keep>
void KeepCovered(const absl::StatusOr<const ApiKey*>& key,
                 google::protobuf::RepeatedPtrField<Entry>* list, Keep keep) {
  if (!key.ok()) {
    list->Clear();
    return;
  }
  const std::vector<std::string>& allowed = (*key)->collections;
  if (allowed.empty()) return;
  auto covered = [&allowed](const std::string& name) {
    return std::find(allowed.begin(), allowed.end(), name) != allowed.end();
  };
  for (int i = list->size() - 1; i >= 0; --i) {
    if (!keep(list->Get(i), covered)) list->DeleteSubrange(i, 1);
  }
}

const EVP_MD* Sha256Md() {
  // Fetched once: an implicit fetch per digest takes a lock in OpenSSL 3.
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

absl::StatusOr<Role> ParseRole(absl::string_view s) {
  const std::string r = absl::AsciiStrToLower(s);
  if (r == "read") return Role::kRead;
  if (r == "write") return Role::kWrite;
  if (r == "admin") return Role::kAdmin;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown role \"", TruncateForMessage(s, 40), "\" (expected read, write or admin)"));
}

bool IsHex64(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Whether two digests are equal, in time independent of where they differ:
// the words' differences are ORed together, with no early exit. (OpenSSL's
// CRYPTO_memcmp does the same byte by byte through a call, about 30 times
// slower, which shows with a hundred keys on every request.)
bool DigestEquals(const Sha256Digest& a, const Sha256Digest& b) {
  uint64_t diff = 0;
  for (size_t i = 0; i < a.size(); i += sizeof(uint64_t)) {
    uint64_t x, y;
    std::memcpy(&x, a.data() + i, sizeof(x));
    std::memcpy(&y, b.data() + i, sizeof(y));
    diff |= x ^ y;
  }
  return diff == 0;
}

// The key sent as "authorization: Bearer <key>", or why there is none.
absl::StatusOr<absl::string_view> BearerKey(const grpc::ServerContextBase& ctx) {
  const auto& md = ctx.client_metadata();
  const auto it = md.find("authorization");
  if (it == md.end()) {
    return absl::UnauthenticatedError(
        "this server requires an API key: send the metadata \"authorization: Bearer <key>\" "
        "(quiverctl --api-key or QUIVER_API_KEY)");
  }
  absl::string_view v(it->second.data(), it->second.size());
  constexpr absl::string_view kScheme = "bearer ";
  if (v.size() <= kScheme.size() || !absl::EqualsIgnoreCase(v.substr(0, kScheme.size()), kScheme)) {
    return absl::UnauthenticatedError(
        "the authorization metadata is not of the form \"Bearer <key>\"");
  }
  return absl::StripAsciiWhitespace(v.substr(kScheme.size()));
}

}  // namespace

bool IsLoopbackListen(absl::string_view listen) {
  if (absl::StartsWith(listen, "unix:") || absl::StartsWith(listen, "unix-abstract:")) {
    return true;
  }
  absl::ConsumePrefix(&listen, "ipv4:");
  absl::ConsumePrefix(&listen, "ipv6:");
  std::string host;
  if (absl::StartsWith(listen, "[")) {
    const size_t close = listen.find(']');
    if (close == absl::string_view::npos) return false;
    host = std::string(listen.substr(1, close - 1));
  } else {
    const size_t colon = listen.rfind(':');
    host = std::string(colon == absl::string_view::npos ? listen : listen.substr(0, colon));
  }
  if (absl::AsciiStrToLower(host) == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

absl::Status CheckExposure(const ServerConfig& config) {
  if (config.allow_insecure) return absl::OkStatus();
  // The metrics endpoint has neither keys nor TLS, so only loopback (or the
  // explicit flag) keeps it private, whatever protects the gRPC port.
  if (!config.metrics_listen.empty() && !IsLoopbackListen(config.metrics_listen)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to serve metrics on ", config.metrics_listen,
        ": it is not a loopback address and /metrics has no authentication, so anyone who "
        "can reach it could read every collection's name and size and the request traffic "
        "(use --metrics-listen 127.0.0.1:PORT behind a proxy, or pass --allow-insecure)"));
  }
  if (!config.api_keys_file.empty() || !config.tls_cert.empty()) return absl::OkStatus();
  // The HTTP endpoint has the gRPC port's keys and TLS, so the same rule.
  for (const std::string* listen : {&config.listen, &config.http_listen}) {
    if (listen->empty() || IsLoopbackListen(*listen)) continue;
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to serve ", *listen,
        " without authentication: it is not a loopback address and neither --api-keys-file nor "
        "--tls-cert is set, so anyone who can reach it could read, write and drop every "
        "collection (give one of them, listen on 127.0.0.1, or pass --allow-insecure)"));
  }
  return absl::OkStatus();
}

absl::string_view RoleName(Role r) {
  switch (r) {
    case Role::kRead:
      return "read";
    case Role::kWrite:
      return "write";
    case Role::kAdmin:
      return "admin";
  }
  return "?";
}

Sha256Digest Sha256(absl::string_view data) {
  Sha256Digest out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, Sha256Md(), nullptr);
  return out;
}

absl::StatusOr<std::vector<ApiKey>> ParseApiKeys(absl::string_view text) {
  std::vector<ApiKey> keys;
  absl::flat_hash_set<std::string> seen;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (const size_t hash = line.find('#'); hash != absl::string_view::npos) {
      line = line.substr(0, hash);
    }
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    auto bad = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": ", why));
    };
    // The first field is never quoted back: it may be a key in clear.
    if (!IsHex64(fields[0])) {
      return bad(
          "the first field must be the key's SHA-256 as 64 hex digits, not the key itself "
          "(`quiverctl key hash` prints it)");
    }
    if (fields.size() < 2) return bad("missing role (read, write or admin) after the hash");
    if (fields.size() > 3) {
      return bad("expected <sha256> <role> [collection,...]: collections are separated by "
                 "commas, without spaces");
    }
    ApiKey key;
    key.line = line_no;
    const std::string bytes = absl::HexStringToBytes(fields[0]);  // checked by IsHex64
    std::memcpy(key.digest.data(), bytes.data(), key.digest.size());
    if (!seen.insert(bytes).second) return bad("the same hash is listed twice");
    absl::StatusOr<Role> role = ParseRole(fields[1]);
    if (!role.ok()) return bad(role.status().message());
    key.role = *role;
    if (fields.size() == 3) {
      for (absl::string_view c : absl::StrSplit(fields[2], ',')) {
        if (c.empty()) return bad("empty collection name in the list");
        key.collections.emplace_back(c);
      }
    }
    keys.push_back(std::move(key));
  }
  return keys;
}

Authorizer::Authorizer(std::string path) : path_(std::move(path)) {
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const RuleSpec& spec : kRules) {
    const google::protobuf::ServiceDescriptor* service = pool->FindServiceByName(spec.service);
    const google::protobuf::MethodDescriptor* m =
        service != nullptr ? service->FindMethodByName(spec.method) : nullptr;
    if (m == nullptr) continue;  // not linked in: unknown methods need admin anyway
    MethodRule rule;
    rule.full_name = absl::StrCat("/", spec.service, "/", spec.method);
    rule.method = spec.method;
    rule.role = spec.role;
    if (*spec.collection_field != '\0') {
      rule.collection = m->input_type()->FindFieldByName(spec.collection_field);
    }
    if (*spec.second_field != '\0') {
      rule.second = m->input_type()->FindFieldByName(spec.second_field);
    }
    rules_.emplace(m->input_type(), std::move(rule));
  }
}

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::Load(const std::string& path) {
  std::unique_ptr<Authorizer> a(new Authorizer(path));
  absl::Status s = a->Reload();
  if (!s.ok()) return s;
  return a;
}

absl::Status Authorizer::Reload() {
  std::ifstream in(path_, std::ios::binary);
  if (!in) {
    const int err = errno;
    const std::string why = absl::StrCat("cannot read API keys file ", path_, ": ",
                                         std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(why) : absl::PermissionDeniedError(why);
  }
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading API keys file ", path_));
  absl::StatusOr<std::vector<ApiKey>> keys = ParseApiKeys(text.str());
  if (!keys.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("API keys file ", path_, ": ", keys.status().message()));
  }
  auto fresh = std::make_shared<const std::vector<ApiKey>>(*std::move(keys));
  MutexLock lock(&mu_);
  keys_ = std::move(fresh);
  return absl::OkStatus();
}

std::shared_ptr<const std::vector<ApiKey>> Authorizer::keys() const {
  ReaderMutexLock lock(&mu_);
  return keys_;
}

size_t Authorizer::key_count() const { return keys()->size(); }

absl::StatusOr<const ApiKey*> Authorizer::Authenticate(const grpc::ServerContextBase& ctx,
                                                       const std::vector<ApiKey>& keys) const {
  absl::StatusOr<absl::string_view> sent = BearerKey(ctx);
  if (!sent.ok()) return sent.status();
  const Sha256Digest digest = Sha256(*sent);
  // Every stored digest is compared in full, whatever matched before.
  const ApiKey* found = nullptr;
  for (const ApiKey& k : keys) {
    const bool match = DigestEquals(k.digest, digest);
    found = match ? &k : found;
  }
  if (found == nullptr) return absl::UnauthenticatedError("unknown API key");
  return found;
}

absl::Status Authorizer::Check(const grpc::ServerContextBase& ctx, absl::string_view method,
                               const google::protobuf::Message& request) const {
  const std::shared_ptr<const std::vector<ApiKey>> keys = this->keys();
  absl::StatusOr<const ApiKey*> key = Authenticate(ctx, *keys);
  if (!key.ok()) return key.status();
  const auto it = rules_.find(request.GetDescriptor());
  // A rule applies only to its own method, so a new method that happens to
  // take an existing request message is not let through by its rule.
  const MethodRule* rule = it != rules_.end() && it->second.method == method ? &it->second
                                                                             : nullptr;
  const Role needed = rule != nullptr ? rule->role : Role::kAdmin;
  if (static_cast<int>((*key)->role) < static_cast<int>(needed)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "this API key's role is ", RoleName((*key)->role), "; ",
        rule != nullptr ? rule->full_name : std::string(method), " needs ", RoleName(needed)));
  }
  if ((*key)->collections.empty()) return absl::OkStatus();
  if (rule != nullptr && rule->full_name == kListCollections) return absl::OkStatus();
  if (rule == nullptr || rule->collection == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat(
        "this API key is limited to some collections; ",
        rule != nullptr ? rule->full_name : std::string(method),
        " needs a key that is not limited to collections"));
  }
  std::string scratch;
  const std::string& coll =
      request.GetReflection()->GetStringReference(request, rule->collection, &scratch);
  // ListAliases of every collection: allowed, then filtered (FilterAliases).
  if (rule->full_name == kListAliases && coll.empty()) return absl::OkStatus();
  for (const google::protobuf::FieldDescriptor* field : {rule->collection, rule->second}) {
    if (field == nullptr) continue;
    const std::string& name = request.GetReflection()->GetStringReference(request, field, &scratch);
    if (std::find((*key)->collections.begin(), (*key)->collections.end(), name) ==
        (*key)->collections.end()) {
      return absl::PermissionDeniedError(
          absl::StrCat("this API key does not give access to collection \"",
                       TruncateForMessage(name, 200), "\""));
    }
  }
  return absl::OkStatus();
}

void Authorizer::FilterCollections(const grpc::ServerContextBase& ctx,
                                   v1::ListCollectionsResponse* resp) const {
  const std::shared_ptr<const std::vector<ApiKey>> keys = this->keys();
  KeepCovered(Authenticate(ctx, *keys), resp->mutable_collections(),
              [](const v1::CollectionInfo& c, const auto& covered) { return covered(c.name()); });
}

void Authorizer::FilterAliases(const grpc::ServerContextBase& ctx,
                               v1::ListAliasesResponse* resp) const {
  const std::shared_ptr<const std::vector<ApiKey>> keys = this->keys();
  KeepCovered(Authenticate(ctx, *keys), resp->mutable_aliases(),
              [](const v1::AliasInfo& a, const auto& covered) {
                return covered(a.alias()) && covered(a.collection());
              });
}

}  // namespace quiver::server
