// libFuzzer target for quiverd's gRPC surface: a Server (the Engine, the v1
// services, health, reflection, the decode-error interceptor) is started in
// this process on a loopback port with a temporary data directory, and each
// input becomes one RPC sent to it through a generic stub, so requests go
// through gRPC's real transport and protobuf's real parsing.
//
// The server requires API keys (--api-keys-file): an unlimited admin key,
// a read key, a write key limited to "c", an admin key limited to "c" and
// "n1". Each input picks the key it is sent with, or none, an unknown or
// malformed one; the harness's own calls use the unlimited admin key.
//
// Input: byte 0 picks the method (every v1 RPC, SnapshotService's and the
// alias RPCs included,
// the health check, and a method that does not exist), byte 1 % 3 the way
// the rest becomes a request, byte 1 / 3 % 8 the key (0: the unlimited
// admin key, so seeds written before keys keep their meaning):
//   0: the bytes themselves are the serialized request (the seed corpus,
//      tests/fuzz/rpc_fuzz_corpus/, holds valid requests in this form);
//      for RestoreSnapshot, a client stream, a series of messages each
//      preceded by its length (2 bytes, little-endian);
//   1: a request built field by field from the bytes (FuzzedDataProvider),
//      with names, dimensions, values, filters and limits drawn from sets
//      that reach past validation (the collection "c" exists, its fields
//      are "v" and "d", its attributes a, b, c, s, e), and hostile ones (NaN,
//      16385, empty, huge);
//   2: such a request, serialized, then its bytes mutated (overwritten,
//      cut, spliced with a varint), so it is mostly well-formed.
// Snapshots: a snapshot "base" of "c" is kept on the server; restores name
// it (or other names) or upload its file, mutated (bytes flipped, cut,
// spliced) and sent in chunks of fuzzed sizes.
// Invariants beyond "no crash, sanitizer report or leak": every RPC is
// answered within its deadline (a hang is DEADLINE_EXCEEDED, which traps;
// libFuzzer's -timeout catches a server that never answers), no answer is
// UNKNOWN, INTERNAL or DATA_LOSS (a request, however bad, is the client's
// error; an internal error means quiverd broke) except DATA_LOSS for a
// restore of an uploaded file (a damaged snapshot), a call without a valid
// key never succeeds (but the health check), and no error message quotes a
// key.
//
// State: "c" is re-created whenever an input dropped it, collections an
// input created or restored are dropped after it, snapshots it created
// under a generated name are deleted, and "c" (and "base") is rebuilt every
// 2000 inputs so memory and disk stay bounded. Built with the ASan build (deploy/asan.sh
// --build rpc_fuzz, QUIVER_ASAN=ON QUIVER_FUZZ=ON: the whole server carries
// coverage counters) and run by deploy/fuzz.sh. Replay an input with
//   build-asan/tests/fuzz/rpc_fuzz build-asan/tests/fuzz/rpc_fuzz-artifacts/crash-...
// The seeds are written by tests/fuzz/make_seeds.py.
#include <fuzzer/FuzzedDataProvider.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.pb.h"
#include "quiver/v1/collections.pb.h"
#include "quiver/v1/points.pb.h"
#include "quiver/v1/search.pb.h"
#include "quiver/v1/snapshots.pb.h"
#include "server/auth.h"
#include "server/config.h"
#include "server/server.h"
#include "spdlog/spdlog.h"

namespace quiver::fuzz {
namespace {

// New methods go at the end: the seeds name methods by their index.
enum Method {
  kCreate, kGetCollection, kList, kDrop, kUpdate, kVerify,
  kUpsert, kGetPoints, kDelete, kCount, kSearch, kHealth, kNoSuchMethod,
  kCreateSnapshot, kListSnapshots, kDeleteSnapshot, kDownloadSnapshot, kRestoreSnapshot,
  kScrollPoints, kUpdatePoints,
  kCreateAlias, kSwitchAlias, kDeleteAlias, kListAliases,
  kMethods
};
constexpr const char* kPaths[kMethods] = {
    "/quiver.v1.CollectionService/CreateCollection",
    "/quiver.v1.CollectionService/GetCollection",
    "/quiver.v1.CollectionService/ListCollections",
    "/quiver.v1.CollectionService/DropCollection",
    "/quiver.v1.CollectionService/UpdateCollection",
    "/quiver.v1.CollectionService/VerifyCollection",
    "/quiver.v1.PointService/UpsertPoints",
    "/quiver.v1.PointService/GetPoints",
    "/quiver.v1.PointService/DeletePoints",
    "/quiver.v1.PointService/CountPoints",
    "/quiver.v1.SearchService/Search",
    "/grpc.health.v1.Health/Check",
    "/quiver.v1.PointService/NoSuchMethod",
    "/quiver.v1.SnapshotService/CreateSnapshot",
    "/quiver.v1.SnapshotService/ListSnapshots",
    "/quiver.v1.SnapshotService/DeleteSnapshot",
    "/quiver.v1.SnapshotService/DownloadSnapshot",
    "/quiver.v1.SnapshotService/RestoreSnapshot",
    "/quiver.v1.PointService/ScrollPoints",
    "/quiver.v1.PointService/UpdatePoints",
    "/quiver.v1.CollectionService/CreateAlias",
    "/quiver.v1.CollectionService/SwitchAlias",
    "/quiver.v1.CollectionService/DeleteAlias",
    "/quiver.v1.CollectionService/ListAliases",
};

// The next_cursor of the last ScrollPoints that answered one, so inputs
// also page on with cursors the server issued (the fuzzer runs one input
// at a time).
std::string last_scroll_cursor;

// The keys of the server's --api-keys-file, and what an input may send:
// index 0 (the harness's own key) first.
constexpr const char* kAdminKey = "fuzz-admin-key";
constexpr int kKeyChoices = 8;
// The authorization header an input sends; empty: none.
std::string AuthHeader(int choice) {
  switch (choice % kKeyChoices) {
    case 0: return absl::StrCat("Bearer ", kAdminKey);
    case 1: return "Bearer fuzz-read-key";
    case 2: return "Bearer fuzz-write-c-key";
    case 3: return "Bearer fuzz-admin-c-key";
    case 4: return "Bearer fuzz-unknown-key";
    case 5: return "";
    case 6: return absl::StrCat("Basic ", kAdminKey);
    // No space after the scheme. (A lower-case scheme and extra spaces are
    // valid, as in HTTP: "bearer  KEY" is the admin key.)
    default: return absl::StrCat("Bearer", kAdminKey);
  }
}
// Whether a call with this header may succeed at all.
bool ValidKey(int choice) { return choice % kKeyChoices <= 3; }

std::string KeyLine(const std::string& key, const std::string& rest) {
  const server::Sha256Digest d = server::Sha256(key);
  std::string hex;
  for (uint8_t b : d) absl::StrAppend(&hex, absl::Hex(b, absl::kZeroPad2));
  return absl::StrCat(hex, " ", rest, "\n");
}

constexpr uint32_t kDimV = 4, kDimD = 8;

v1::CollectionSchema BaseSchema() {
  v1::CollectionSchema s;
  auto* v = s.add_vectors();
  v->set_name("v");
  v->set_dim(kDimV);
  v->set_metric(v1::L2);
  v->mutable_index()->set_type("HNSW");
  auto* d = s.add_vectors();
  d->set_name("d");
  d->set_dim(kDimD);
  d->set_metric(v1::COSINE);
  d->mutable_index()->set_type("IVF_SQ8");
  d->set_storage(v1::DISK);
  const std::pair<const char*, v1::AttributeType> attrs[] = {
      {"a", v1::INT64}, {"b", v1::DOUBLE}, {"c", v1::BOOL}, {"s", v1::STRING},
      {"e", v1::STRING_LIST}};
  for (const auto& [name, type] : attrs) {
    auto* a = s.add_attributes();
    a->set_name(name);
    a->set_type(type);
    a->set_indexed(type != v1::BOOL);
  }
  // Full text and a sparse field, so sparse_vectors, texts and their hybrid
  // parts reach a field that exists.
  auto* tx = s.add_attributes();
  tx->set_name("tx");
  tx->set_type(v1::STRING);
  tx->mutable_text()->set_language("english");
  s.add_sparse_vectors()->set_name("sp");
  return s;
}

// ------------------------------------------------------------ the server
class Harness {
 public:
  Harness() {
    spdlog::set_level(spdlog::level::off);
    // Removed at exit; fuzz.sh also points TMPDIR at a directory it
    // removes, for runs that end in a crash.
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = absl::StrCat(tmp != nullptr && *tmp != 0 ? tmp : "/tmp", "/rpc-fuzz-XXXXXX");
    if (mkdtemp(tmpl.data()) == nullptr) std::abort();
    dir_ = tmpl;
    const std::string keys = dir_ + "/api-keys";
    std::ofstream(keys) << KeyLine(kAdminKey, "admin") << KeyLine("fuzz-read-key", "read")
                        << KeyLine("fuzz-write-c-key", "write c")
                        << KeyLine("fuzz-admin-c-key", "admin c,n1");
    server::ServerConfig config;
    config.api_keys_file = keys;
    config.listen = "127.0.0.1:0";
    config.data_dir = dir_ + "/data";
    config.log_level = "off";
    config.segment_max_rows = 64;
    config.seal_idle_ms = 50;
    config.max_message_bytes = 4 << 20;
    config.shutdown_grace_seconds = 1;
    config.expensive_workers = 2;
    config.index_check_samples = 4;
    auto s = server::Server::Start(config);
    if (!s.ok()) {
      std::fprintf(stderr, "rpc_fuzz: cannot start the server: %s\n", s.status().ToString().c_str());
      std::abort();
    }
    server_ = *std::move(s);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    channel_ = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                         grpc::InsecureChannelCredentials(), args);
    stub_ = std::make_unique<grpc::GenericStub>(channel_);
    ResetBase();
  }

  // Shuts the server down (its threads joined) and removes its data.
  ~Harness() {
    stub_.reset();
    channel_.reset();
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Sends `request` to `path` with the authorization header `auth` (none
  // if empty); the status.
  grpc::Status Call(const char* path, const std::string& request, std::string* response,
                    const std::string& auth = AuthHeader(0)) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!auth.empty()) ctx.AddMetadata("authorization", auth);
    grpc::Slice slice(request);
    grpc::ByteBuffer req(&slice, 1), resp;
    std::promise<grpc::Status> done;
    stub_->UnaryCall(&ctx, path, grpc::StubOptions(), &req, &resp,
                     [&done](grpc::Status s) { done.set_value(std::move(s)); });
    grpc::Status s = done.get_future().get();
    if (s.ok() && response != nullptr) {
      std::vector<grpc::Slice> slices;
      (void)resp.Dump(&slices);
      response->clear();
      for (const auto& sl : slices) response->append(reinterpret_cast<const char*>(sl.begin()), sl.size());
    }
    return s;
  }

  // A streaming call (DownloadSnapshot, RestoreSnapshot) as a generic
  // bidirectional stream: `requests` are written in order, then the
  // writes are closed, and every response is read. The status.
  grpc::Status Stream(const char* path, const std::vector<std::string>& requests,
                      const std::string& auth = AuthHeader(0)) {
    StreamCall call(stub_.get(), path, requests, auth);
    return call.Wait();
  }

  // The server's data directory: no answer may quote it.
  std::string data_dir() const { return dir_ + "/data"; }

  // "c" with a few points in sealed and growing segments, and "base", a
  // snapshot of it, whose file's bytes uploads start from.
  void ResetBase() {
    v1::DropCollectionRequest drop;
    drop.set_name("c");
    (void)Call(kPaths[kDrop], drop.SerializeAsString(), nullptr);
    v1::CreateCollectionRequest create;
    create.set_name("c");
    *create.mutable_schema() = BaseSchema();
    Must(Call(kPaths[kCreate], create.SerializeAsString(), nullptr), "create c");
    v1::UpsertPointsRequest up;
    up.set_collection("c");
    for (int i = 0; i < 100; ++i) {
      v1::Point* p = up.add_points();
      p->set_id(absl::StrCat("p", i));
      for (uint32_t j = 0; j < kDimV; ++j) (*p->mutable_vectors())["v"].add_values((i * 7 + j) % 11);
      for (uint32_t j = 0; j < kDimD; ++j) (*p->mutable_vectors())["d"].add_values((i + j) % 5 + 1);
      auto& a = *p->mutable_attributes();
      a["a"].set_int_value(i % 10);
      a["b"].set_double_value(i * 0.5);
      a["c"].set_bool_value(i % 2 == 0);
      a["s"].set_string_value(absl::StrCat("s", i % 3));
      a["e"].mutable_string_list_value()->add_values(absl::StrCat("t", i % 4));
      a["tx"].set_string_value(absl::StrCat("point number ", i, " runs ", i % 7, " times"));
      v1::SparseVector& sp = (*p->mutable_sparse_vectors())["sp"];
      for (uint32_t j = 0; j < 3; ++j) {
        sp.add_indices(static_cast<uint32_t>(i * 3 + j * 1000));
        sp.add_values(1.0f + j);
      }
    }
    Must(Call(kPaths[kUpsert], up.SerializeAsString(), nullptr), "upsert into c");
    v1::DeleteSnapshotRequest del;
    del.set_name("base");
    (void)Call(kPaths[kDeleteSnapshot], del.SerializeAsString(), nullptr);
    v1::CreateSnapshotRequest snap;
    snap.set_collection("c");
    snap.set_name("base");
    Must(Call(kPaths[kCreateSnapshot], snap.SerializeAsString(), nullptr), "snapshot c");
    std::ifstream in(dir_ + "/data/snapshots/base.qsnap", std::ios::binary);
    base_snapshot_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (base_snapshot_.empty()) {
      std::fprintf(stderr, "rpc_fuzz: cannot read the snapshot \"base\"\n");
      std::abort();
    }
  }

  const std::string& base_snapshot() const { return base_snapshot_; }

  bool BaseExists() {
    v1::GetCollectionRequest get;
    get.set_name("c");
    return Call(kPaths[kGetCollection], get.SerializeAsString(), nullptr).ok();
  }

 private:
  class StreamCall final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
   public:
    StreamCall(grpc::GenericStub* stub, const char* path, const std::vector<std::string>& requests,
               const std::string& auth)
        : requests_(requests) {
      ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      if (!auth.empty()) ctx_.AddMetadata("authorization", auth);
      stub->PrepareBidiStreamingCall(&ctx_, path, grpc::StubOptions(), this);
      StartRead(&in_);
      WriteNext();
      StartCall();
    }
    grpc::Status Wait() { return done_.get_future().get(); }

    void OnWriteDone(bool ok) override {
      if (ok) WriteNext();  // else the server ended the call: stop writing
    }
    void OnReadDone(bool ok) override {
      if (ok) StartRead(&in_);
    }
    void OnDone(const grpc::Status& s) override { done_.set_value(s); }

   private:
    void WriteNext() {
      if (next_ == requests_.size()) return StartWritesDone();
      grpc::Slice slice(requests_[next_++]);
      out_ = grpc::ByteBuffer(&slice, 1);
      StartWrite(&out_);
    }

    grpc::ClientContext ctx_;
    const std::vector<std::string>& requests_;
    size_t next_ = 0;
    grpc::ByteBuffer out_, in_;
    std::promise<grpc::Status> done_;
  };

  static void Must(const grpc::Status& s, const char* what) {
    if (!s.ok()) {
      std::fprintf(stderr, "rpc_fuzz: %s: %d %s\n", what, s.error_code(), s.error_message().c_str());
      std::abort();
    }
  }

  std::string dir_;
  std::unique_ptr<server::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<grpc::GenericStub> stub_;
  std::string base_snapshot_;
};

Harness* harness = nullptr;
uint64_t inputs = 0;

}  // namespace
}  // namespace quiver::fuzz

// ------------------------------------------------------------ structured requests
namespace quiver::fuzz {
namespace {

// Draws request fields from the input: mostly from small sets of values
// that get past validation, sometimes hostile ones, sometimes raw bytes.
class Gen {
 public:
  explicit Gen(FuzzedDataProvider* p) : p_(*p) {}

  bool Bool() { return p_.ConsumeBool(); }
  uint32_t Small(uint32_t max) { return p_.ConsumeIntegralInRange<uint32_t>(0, max); }
  std::string Bytes(size_t max) { return p_.ConsumeRandomLengthString(max); }
  std::string Pick(std::initializer_list<const char*> values) {
    const size_t i = p_.ConsumeIntegralInRange<size_t>(0, values.size());
    if (i == values.size()) return Bytes(64);  // anything at all
    return *(values.begin() + i);
  }
  std::string Collection() { return Pick({"c", "c", "c", "c", "x", "", "C", "c2"}); }
  std::string AliasName() { return Pick({"al", "al", "c", "n1", "", "bad name", "c2"}); }
  std::string Field() { return Pick({"v", "v", "d", "", "a", "nope"}); }
  std::string Attr() { return Pick({"a", "b", "c", "s", "e", "zz", ""}); }
  std::string Id() {
    if (Bool()) return absl::StrCat("p", Small(120));
    return Pick({"", "p0", "new", "\xff\xfe"});
  }
  uint32_t K() {
    switch (Small(4)) {
      case 0: return Small(20);
      case 1: return 16384;
      case 2: return 16385;
      case 3: return std::numeric_limits<uint32_t>::max();
      default: return p_.ConsumeIntegral<uint32_t>();
    }
  }
  float Float() {
    switch (Small(7)) {
      case 0: return std::numeric_limits<float>::quiet_NaN();
      case 1: return std::numeric_limits<float>::infinity();
      case 2: return -0.0f;
      case 3: return std::numeric_limits<float>::max();
      case 4: return std::numeric_limits<float>::denorm_min();
      default: return static_cast<float>(p_.ConsumeIntegralInRange<int>(-50, 50)) / 4;
    }
  }
  void Vector(const std::string& field, v1::Vector* v) {
    uint32_t dim = field == "d" ? kDimD : kDimV;
    if (Small(5) == 0) dim = Small(3) == 0 ? Small(70000) : Small(12);
    for (uint32_t i = 0; i < dim; ++i) v->add_values(Small(8) == 0 ? Float() : Small(10));
  }
  std::string Filter() {
    if (Small(6) == 0) return "";
    std::string f;
    const int terms = 1 + Small(3);
    for (int t = 0; t < terms; ++t) {
      if (t > 0) f += Pick({" AND ", " OR ", " AND NOT ", ") OR (", " "});
      f += Pick({"a = 3", "a < 5", "a IN (1, 2, 9)", "b BETWEEN 1 AND 20.5", "c", "NOT c",
                 "s = \"s1\"", "s != \"s2\"", "e CONTAINS \"t1\"", "e CONTAINS ANY (\"t0\", \"t3\")",
                 "a >= 9223372036854775807", "(a = 1", "zz = 1", "b = 1e400", "s IN ()"});
    }
    return f;
  }
  void Value(v1::Value* v) {
    switch (Small(6)) {
      case 0: v->set_int_value(p_.ConsumeIntegral<int64_t>()); break;
      case 1: v->set_double_value(Bool() ? Float() : p_.ConsumeFloatingPoint<double>()); break;
      case 2: v->set_bool_value(Bool()); break;
      case 3: v->set_string_value(Bytes(40)); break;
      case 4: {
        const int n = Small(4);
        for (int i = 0; i < n; ++i) v->mutable_string_list_value()->add_values(Bytes(10));
        break;
      }
      default: break;  // a Value with nothing set
    }
  }
  void Point(v1::Point* p) {
    p->set_id(Id());
    const int fields = Small(3);
    for (int i = 0; i < fields; ++i) {
      const std::string f = i == 0 ? "v" : i == 1 ? "d" : Field();
      Vector(f, &(*p->mutable_vectors())[f]);
    }
    if (Small(10) == 0) {
      auto& mv = (*p->mutable_multi_vectors())[Field()];
      const int n = Small(3);
      for (int i = 0; i < n; ++i) Vector("v", mv.add_vectors());
    }
    const int attrs = Small(6);
    for (int i = 0; i < attrs; ++i) Value(&(*p->mutable_attributes())[Attr()]);
  }
  void Index(v1::IndexSpec* s) {
    s->set_type(Pick({"HNSW", "FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW_SQ8", "hnsw", ""}));
    const int n = Small(3);
    for (int i = 0; i < n; ++i) {
      (*s->mutable_params())[Pick({"M", "ef_construction", "nlist", "m", "bogus"})] =
          Pick({"2", "16", "0", "-1", "100000", "4096", "1.5", "9999999999999999999"});
    }
  }
  void Schema(v1::CollectionSchema* s) {
    const int vectors = Small(3);
    for (int i = 0; i < vectors; ++i) {
      auto* v = s->add_vectors();
      v->set_name(Pick({"v", "w", "d", "1x", ""}));
      v->set_dim(Small(3) == 0 ? p_.ConsumeIntegral<uint32_t>() : Small(16));
      v->set_metric(static_cast<v1::Metric>(Small(4)));
      if (Bool()) Index(v->mutable_index());
      v->set_storage(static_cast<v1::StorageMode>(Small(2)));
      if (Small(6) == 0) {
        auto* mv = v->mutable_multi_vector();
        mv->set_max_vectors_per_point(Small(600));
        if (Bool()) (*mv->mutable_encoding_params())[Pick({"r_reps", "k_sim", "x"})] = Bytes(6);
        mv->set_candidates(static_cast<v1::MultiVectorOptions::Candidates>(Small(1)));
      }
    }
    const int attrs = Small(4);
    for (int i = 0; i < attrs; ++i) {
      auto* a = s->add_attributes();
      a->set_name(Attr());
      a->set_type(static_cast<v1::AttributeType>(Small(5)));
      a->set_indexed(Bool());
      a->set_window(Small(4) == 0);
    }
  }
  void Params(v1::SearchParams* p) {
    if (Bool()) p->set_ef(K());
    if (Bool()) p->set_nprobe(K());
    p->set_exact(Small(3) == 0);
    if (Bool()) p->set_refine_factor(Float());
    p->set_filter_strategy(static_cast<v1::FilterStrategy>(Small(5)));
  }
  void Search(v1::SearchRequest* r) {
    r->set_collection(Collection());
    const std::string field = Field();
    if (Small(3) != 0) r->set_field(field);
    const int queries = Small(3) == 0 ? Small(1100) : 1 + Small(2);
    for (int i = 0; i < queries && p_.remaining_bytes() > 0; ++i) Vector(field, r->add_vectors());
    r->set_k(K());
    r->set_filter(Filter());
    const int outs = Small(3);
    for (int i = 0; i < outs; ++i) r->add_output_attributes(Bool() ? "*" : Attr());
    r->set_with_vectors(Small(4) == 0);
    if (Bool()) Params(r->mutable_params());
    r->set_explain(Small(4) == 0);
    if (Small(5) == 0) {
      const int n = 1 + Small(2);
      for (int i = 0; i < n; ++i) {
        auto* fq = r->add_field_queries();
        fq->set_field(Field());
        Vector(fq->field(), fq->mutable_vector());
        fq->set_k(Bool() ? 0 : K());
        if (Bool()) Params(fq->mutable_params());
        fq->set_weight(Float());
      }
      r->set_fusion(static_cast<v1::FusionMethod>(Small(2)));
      r->set_rrf_k(Float());
      r->set_with_field_results(Bool());
    }
  }

  // The request for `m`, serialized.
  std::string Request(Method m) {
    switch (m) {
      case kCreate: {
        v1::CreateCollectionRequest r;
        r.set_name(Pick({"n1", "n2", "c", "", "bad name", "_x"}));
        if (Small(3) == 0) *r.mutable_schema() = BaseSchema();
        else Schema(r.mutable_schema());
        return r.SerializeAsString();
      }
      case kGetCollection: {
        v1::GetCollectionRequest r;
        r.set_name(Collection());
        return r.SerializeAsString();
      }
      case kList: return v1::ListCollectionsRequest().SerializeAsString();
      case kDrop: {
        v1::DropCollectionRequest r;
        r.set_name(Pick({"n1", "x", "", "c"}));
        return r.SerializeAsString();
      }
      case kUpdate: {
        v1::UpdateCollectionRequest r;
        r.set_name(Collection());
        const int n = Small(2);
        for (int i = 0; i <= n; ++i) {
          auto* u = r.add_vectors();
          u->set_field(Field());
          Index(u->mutable_index());
        }
        return r.SerializeAsString();
      }
      case kVerify: {
        v1::VerifyCollectionRequest r;
        r.set_name(Collection());
        r.set_index_samples(Bool() ? Small(20) : p_.ConsumeIntegral<uint32_t>());
        r.set_skip_index_check(Bool());
        r.set_vector_sample_rows(Small(50));
        r.set_seed(p_.ConsumeIntegral<uint64_t>());
        return r.SerializeAsString();
      }
      case kUpsert: {
        v1::UpsertPointsRequest r;
        r.set_collection(Collection());
        const int n = Small(8);
        for (int i = 0; i < n && p_.remaining_bytes() > 0; ++i) Point(r.add_points());
        return r.SerializeAsString();
      }
      case kGetPoints: {
        v1::GetPointsRequest r;
        r.set_collection(Collection());
        const int n = Small(6);
        for (int i = 0; i < n; ++i) r.add_ids(Id());
        r.set_with_vectors(Bool());
        const int a = Small(2);
        for (int i = 0; i < a; ++i) r.add_attributes(Attr());
        return r.SerializeAsString();
      }
      case kDelete: {
        v1::DeletePointsRequest r;
        r.set_collection(Collection());
        const int n = Small(4);
        for (int i = 0; i < n; ++i) r.add_ids(Id());
        if (n == 0 || Small(4) == 0) r.set_filter(Filter());
        return r.SerializeAsString();
      }
      case kCount: {
        v1::CountPointsRequest r;
        r.set_collection(Collection());
        r.set_filter(Filter());
        return r.SerializeAsString();
      }
      case kSearch: {
        v1::SearchRequest r;
        Search(&r);
        return r.SerializeAsString();
      }
      case kCreateSnapshot: {
        v1::CreateSnapshotRequest r;
        r.set_collection(Pick({"c", "", "", "x", "C"}));
        r.set_name(SnapshotName());
        return r.SerializeAsString();
      }
      case kListSnapshots: return v1::ListSnapshotsRequest().SerializeAsString();
      case kDeleteSnapshot: {
        v1::DeleteSnapshotRequest r;
        r.set_name(SnapshotName());
        return r.SerializeAsString();
      }
      case kDownloadSnapshot: {
        v1::DownloadSnapshotRequest r;
        r.set_name(SnapshotName());
        return r.SerializeAsString();
      }
      case kScrollPoints: {
        v1::ScrollPointsRequest r;
        r.set_collection(Collection());
        if (Bool()) r.set_filter(Filter());
        r.set_page_size(Small(3) == 0 ? p_.ConsumeIntegral<uint32_t>() : Small(20));
        // An empty cursor, fuzzed bytes, or a cursor the server issued.
        switch (Small(3)) {
          case 0: break;
          case 1: r.set_cursor(Bytes(60)); break;
          default: r.set_cursor(last_scroll_cursor); break;
        }
        r.set_with_vectors(Bool());
        const int a = Small(2);
        for (int i = 0; i < a; ++i) r.add_attributes(Attr());
        return r.SerializeAsString();
      }
      case kUpdatePoints: {
        v1::UpdatePointsRequest r;
        r.set_collection(Collection());
        r.set_upsert(Small(4) == 0);
        const int n = Small(5);
        for (int i = 0; i < n && p_.remaining_bytes() > 0; ++i) {
          v1::PointUpdate* u = r.add_updates();
          u->set_id(Id());
          const int set = Small(3);
          for (int j = 0; j < set; ++j) Value(&(*u->mutable_set_attributes())[Attr()]);
          if (Small(3) == 0) u->add_remove_attributes(Attr());
          if (Bool()) {
            const std::string f = Bool() ? "v" : Field();
            Vector(f, &(*u->mutable_vectors())[f]);
          }
          if (Small(5) == 0) u->add_remove_vectors(Bool() ? "d" : Field());
        }
        return r.SerializeAsString();
      }
      // Aliases: names that clash with "c" and "n1", bad ones, and targets
      // that are missing or aliases themselves.
      case kCreateAlias: {
        v1::CreateAliasRequest r;
        r.set_alias(AliasName());
        r.set_collection(Pick({"c", "c", "al", "x", "", "n1"}));
        return r.SerializeAsString();
      }
      case kSwitchAlias: {
        v1::SwitchAliasRequest r;
        r.set_alias(AliasName());
        r.set_collection(Pick({"c", "al", "x", ""}));
        return r.SerializeAsString();
      }
      case kDeleteAlias: {
        v1::DeleteAliasRequest r;
        r.set_alias(AliasName());
        return r.SerializeAsString();
      }
      case kListAliases: {
        v1::ListAliasesRequest r;
        r.set_collection(Pick({"", "", "c", "al", "x"}));
        return r.SerializeAsString();
      }
      case kHealth: {
        grpc::health::v1::HealthCheckRequest r;
        r.set_service(Pick({"", "quiver.v1.SearchService", "nope"}));
        return r.SerializeAsString();
      }
      default: return Bytes(256);
    }
  }

  std::string SnapshotName() {
    return Pick({"base", "base", "s1", "s1", "", "nope", "../x", "a.tmp", ".hidden", "base.qsnap"});
  }

  // RestoreSnapshot's client stream: a first message naming the target
  // and a snapshot on the server, or starting an upload of `file` (the
  // "base" snapshot) mutated and cut into chunks; sometimes a stray field
  // in a later message, an empty stream or an empty upload.
  std::vector<std::string> RestoreStream(const std::string& file) {
    std::vector<std::string> out;
    if (Small(15) == 0) return out;
    v1::RestoreSnapshotRequest first;
    first.set_new_collection(Pick({"r1", "r1", "r2", "c", "", "bad name"}));
    if (Small(3) == 0) first.set_source_collection(Pick({"c", "x", ""}));
    const bool upload = Bool();
    if (!upload || Small(10) == 0) first.set_snapshot(SnapshotName());
    std::string data;
    if (upload) {
      data = file;
      if (Small(3) != 0) Mutate(&data);
    }
    const size_t chunk = Small(3) == 0 ? 64 + Small(960) : 1 + Small(1 << 16);
    first.set_chunk(data.substr(0, std::min(data.size(), chunk)));
    size_t at = first.chunk().size();
    out.push_back(first.SerializeAsString());
    while (at < data.size() && out.size() < 4096) {
      v1::RestoreSnapshotRequest r;
      r.set_chunk(data.substr(at, chunk));
      at += r.chunk().size();
      if (Small(50) == 0) r.set_new_collection("r3");
      out.push_back(r.SerializeAsString());
    }
    if (Small(20) == 0) out.push_back(Bytes(32));
    return out;
  }

  // Overwrites, cuts and splices bytes of `s` as the input says.
  void Mutate(std::string* s) {
    const int edits = 1 + Small(4);
    for (int e = 0; e < edits && !s->empty(); ++e) {
      const size_t at = p_.ConsumeIntegralInRange<size_t>(0, s->size() - 1);
      switch (Small(3)) {
        case 0: (*s)[at] = static_cast<char>(p_.ConsumeIntegral<uint8_t>()); break;
        case 1: s->resize(at); break;
        case 2: {
          std::string varint;
          for (uint64_t v = p_.ConsumeIntegral<uint64_t>() >> Small(63); ; v >>= 7) {
            varint.push_back(static_cast<char>((v & 0x7f) | (v >= 0x80 ? 0x80 : 0)));
            if (v < 0x80) break;
          }
          s->insert(at, varint);
          break;
        }
        default: s->insert(at, Bytes(16)); break;
      }
    }
  }

 private:
  FuzzedDataProvider& p_;
};

// The name of the collection a CreateCollection request asks for, if it
// parses (to drop it after the input).
std::string CreatedName(const std::string& request) {
  v1::CreateCollectionRequest r;
  return r.ParseFromString(request) ? r.name() : "";
}

// The raw form of a client stream: messages each preceded by its length
// (2 bytes, little-endian; a length past the end takes what is left).
std::vector<std::string> SplitMessages(const uint8_t* data, size_t size) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at + 2 <= size) {
    const size_t n = std::min<size_t>(data[at] | (data[at + 1] << 8), size - at - 2);
    out.emplace_back(reinterpret_cast<const char*>(data + at + 2), n);
    at += 2 + n;
  }
  return out;
}

// The first message of a RestoreSnapshot stream, parsed (an empty message
// if there is none or it does not parse).
v1::RestoreSnapshotRequest FirstRestoreMessage(const std::vector<std::string>& stream) {
  v1::RestoreSnapshotRequest r;
  if (stream.empty() || !r.ParseFromString(stream[0])) r.Clear();
  return r;
}

// Sends one input's request(s); what it made that is not "c" or "base"
// is removed afterwards by the caller.
grpc::Status Send(Method method, const std::string& request,
                  const std::vector<std::string>& stream, const std::string& auth) {
  if (method == kRestoreSnapshot) return harness->Stream(kPaths[method], stream, auth);
  if (method == kDownloadSnapshot) return harness->Stream(kPaths[method], {request}, auth);
  if (method == kScrollPoints) {
    std::string response;
    const grpc::Status s = harness->Call(kPaths[method], request, &response, auth);
    v1::ScrollPointsResponse page;
    if (s.ok() && page.ParseFromString(response) && !page.next_cursor().empty()) {
      last_scroll_cursor = page.next_cursor();
    }
    return s;
  }
  return harness->Call(kPaths[method], request, nullptr, auth);
}

[[noreturn]] void Trap(Method method, const grpc::Status& s, const char* why) {
  std::fprintf(stderr, "rpc_fuzz: %s answered %d (%s): %s\n", kPaths[method], s.error_code(), why,
               s.error_message().c_str());
  __builtin_trap();
}

}  // namespace
}  // namespace quiver::fuzz

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  quiver::fuzz::harness = new quiver::fuzz::Harness();
  // libFuzzer ends with exit(): stop the server's threads first, before
  // static destructors (spdlog's registry among them) run under them. An
  // atexit handler registered now runs before the destructors of statics
  // constructed earlier.
  std::atexit([] {
    delete quiver::fuzz::harness;
    quiver::fuzz::harness = nullptr;
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quiver::fuzz;
  if (size < 2) return 0;
  const auto method = static_cast<Method>(data[0] % kMethods);
  const int mode = data[1] % 3;
  const int key = data[1] / 3 % kKeyChoices;
  std::string request;
  std::vector<std::string> stream;
  if (mode == 0) {
    if (method == kRestoreSnapshot) stream = SplitMessages(data + 2, size - 2);
    else request.assign(reinterpret_cast<const char*>(data + 2), size - 2);
  } else {
    FuzzedDataProvider p(data + 2, size - 2);
    Gen g(&p);
    if (method == kRestoreSnapshot) {
      stream = g.RestoreStream(harness->base_snapshot());
      if (mode == 2 && !stream.empty()) g.Mutate(&stream[0]);
    } else {
      request = g.Request(method);
      if (mode == 2) g.Mutate(&request);
    }
  }
  const grpc::Status s = Send(method, request, stream, AuthHeader(key));
  const quiver::v1::RestoreSnapshotRequest restore =
      method == kRestoreSnapshot ? FirstRestoreMessage(stream) : quiver::v1::RestoreSnapshotRequest();
  switch (s.error_code()) {
    case grpc::StatusCode::DATA_LOSS:
      // A damaged upload is reported as such.
      if (method == kRestoreSnapshot && restore.snapshot().empty()) break;
      [[fallthrough]];
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      Trap(method, s, "a server error");
    default: break;
  }
  if (s.ok() && !ValidKey(key) && method != kHealth) Trap(method, s, "without a valid key");
  // No key in a message, unless the request itself held that text: a
  // message may quote what the client sent (a collection named like a key),
  // never what only the server or the auth header knows. (The word
  // "Bearer" may appear: an UNAUTHENTICATED answer says how to send a key.)
  auto sent = [&](const char* k) {
    if (request.find(k) != std::string::npos) return true;
    for (const std::string& m : stream) {
      if (m.find(k) != std::string::npos) return true;
    }
    return false;
  };
  for (const char* k : {kAdminKey, "fuzz-read-key", "fuzz-write-c-key", "fuzz-admin-c-key",
                        "fuzz-unknown-key"}) {
    if (s.error_message().find(k) != std::string::npos && !sent(k)) {
      Trap(method, s, "a key quoted");
    }
  }
  // Nor the server's own paths (the data directory, an upload's file).
  if (s.error_message().find(harness->data_dir()) != std::string::npos) {
    Trap(method, s, "a server path quoted");
  }
  if (method == kCreate && s.ok()) {
    const std::string name = CreatedName(request);
    if (name != "c") {
      quiver::v1::DropCollectionRequest drop;
      drop.set_name(name);
      (void)harness->Call(kPaths[kDrop], drop.SerializeAsString(), nullptr);
    }
  }
  if (method == kCreateAlias && s.ok()) {
    // No alias outlives its input: "c" stays droppable and rebuildable.
    quiver::v1::CreateAliasRequest created;
    if (created.ParseFromString(request)) {
      quiver::v1::DeleteAliasRequest del;
      del.set_alias(created.alias());
      (void)harness->Call(kPaths[kDeleteAlias], del.SerializeAsString(), nullptr);
    }
  }
  if (method == kRestoreSnapshot && s.ok()) {
    quiver::v1::DropCollectionRequest drop;
    drop.set_name(restore.new_collection());
    (void)harness->Call(kPaths[kDrop], drop.SerializeAsString(), nullptr);
  }
  if (method == kCreateSnapshot && s.ok()) {
    // Generated names would pile up; named ones are few ("s1", "base").
    quiver::v1::CreateSnapshotRequest r;
    if (r.ParseFromString(request) && r.name().empty()) {
      const std::string all = quiver::v1::ListSnapshotsRequest().SerializeAsString();
      std::string listed;
      quiver::v1::ListSnapshotsResponse list;
      if (harness->Call(kPaths[kListSnapshots], all, &listed).ok() &&
          list.ParseFromString(listed)) {
        for (const auto& info : list.snapshots()) {
          if (info.name().rfind("snap-", 0) != 0) continue;
          quiver::v1::DeleteSnapshotRequest del;
          del.set_name(info.name());
          (void)harness->Call(kPaths[kDeleteSnapshot], del.SerializeAsString(), nullptr);
        }
      }
    }
  }
  const bool base_changed = s.ok() && (method == kDrop || method == kCreate ||
                                       (method == kDeleteSnapshot && request.find("base") !=
                                                                         std::string::npos));
  if (++inputs % 2000 == 0 || base_changed) {
    if (!harness->BaseExists() || inputs % 2000 == 0 || method == kDeleteSnapshot) {
      harness->ResetBase();
    }
  }
  return 0;
}
