// Access control end to end, against the real quiverd: API keys (roles,
// collection limits, rotation on SIGHUP, a bad file on reload), TLS and
// mutual TLS with certificates made by the openssl command at test time
// (and rotated on SIGHUP), and the refusal to serve a network address
// unprotected.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/api_key.h"
#include "client/client.h"
#include "client/snapshot_client.h"
#include "tests/common/pki.h"
#include "tests/common/quiverd_process.h"
#include "tests/common/server_fixture.h"
#include "tests/common/test_util.h"

namespace quiver {
namespace {

using ::quiver::testing::QuiverdOptions;
using ::quiver::testing::QuiverdProcess;
using ::quiver::testing::RunQuiverdToExit;
using ::quiver::testing::StatusIs;
using ::quiver::testing::TempDir;

constexpr char kAdminKey[] = "qk_admin-key-for-tests-0123456789";
constexpr char kWriteKey[] = "qk_write-key-for-tests-0123456789";
constexpr char kReadKey[] = "qk_read-key-for-tests-0123456789";
constexpr char kLimitedKey[] = "qk_limited-key-for-tests-0123456789";

std::string Sha256Hex(const std::string& key) { return client::ApiKeySha256Hex(key); }

// A line of the keys file.
std::string Line(const std::string& key, const std::string& role, const std::string& colls = "") {
  return absl::StrCat(Sha256Hex(key), " ", role, colls.empty() ? "" : " ", colls, "\n");
}

void WriteFile(const std::string& path, const std::string& text) {
  // Written aside and renamed, as an operator's tooling would, so a reload
  // never sees half a file.
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
  }
  std::filesystem::rename(tmp, path);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

v1::CollectionSchema Schema() {
  v1::CollectionSchema s;
  *s.add_vectors() = ::quiver::testing::VectorField("v", 4);
  return s;
}

v1::UpsertPointsRequest Points(const std::string& coll) {
  v1::UpsertPointsRequest req;
  req.set_collection(coll);
  for (int i = 0; i < 5; ++i) {
    v1::Point* p = req.add_points();
    p->set_id(absl::StrCat("p", i));
    auto* v = (*p->mutable_vectors())["v"].mutable_values();
    for (int d = 0; d < 4; ++d) v->Add(static_cast<float>(i + d));
  }
  return req;
}

v1::SearchRequest Query(const std::string& coll) {
  v1::SearchRequest req;
  req.set_collection(coll);
  req.set_k(3);
  auto* q = req.add_vectors();
  for (int d = 0; d < 4; ++d) q->add_values(static_cast<float>(d));
  return req;
}

client::ClientOptions Opts(const std::string& key = "") {
  client::ClientOptions o;
  o.timeout = absl::Seconds(10);
  o.api_key = key;
  return o;
}

// Polls `ok` every 50 ms for up to 10 s.
bool Eventually(const std::function<bool()>& ok) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    if (ok()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return false;
}

// The server's log is kept (at info) so tests can read what it said.
class AuthTest : public ::quiver::testing::ServerFixture {
 protected:
  void StartServer(std::vector<std::string> args) {
    QuiverdOptions o;
    o.capture_log = true;
    o.log_level = "info";
    ServerFixture::StartServer(std::move(args), std::move(o));
  }
  void StartWithKeys(const std::string& keys_text) {
    keys_ = dir_.path() + "/api-keys";
    WriteFile(keys_, keys_text);
    StartServer({"--api-keys-file", keys_});
  }
  client::Client As(const std::string& key) {
    return client::Client(server_->address(), Opts(key));
  }
  size_t LogCount(const std::string& needle) {
    const std::string log = ReadFile(server_->log_path());
    size_t n = 0;
    for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) ++n;
    return n;
  }

  std::string keys_;
};

TEST_F(AuthTest, WithoutAKeyDataRpcsAreUnauthenticatedButHealthWorks) {
  StartWithKeys(Line(kAdminKey, "admin"));
  client::Client anon(server_->address(), Opts());
  QUIVER_ASSERT_OK(anon.Health());
  EXPECT_THAT(anon.ListCollections(), StatusIs(absl::StatusCode::kUnauthenticated, "API key"));
  EXPECT_THAT(anon.CreateCollection("c", Schema()),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(anon.Search(Query("c")), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(anon.Upsert(Points("c")), StatusIs(absl::StatusCode::kUnauthenticated));

  const std::string wrong = "qk_not-a-key-the-server-knows";
  client::Client bad(server_->address(), Opts(wrong));
  absl::StatusOr<uint64_t> n = bad.Count("c");
  EXPECT_THAT(n, StatusIs(absl::StatusCode::kUnauthenticated, "unknown API key"));
  EXPECT_EQ(n.status().message().find(wrong), std::string::npos) << n.status();
  EXPECT_EQ(n.status().message().find(Sha256Hex(wrong)), std::string::npos);
  // Nothing was created by the refused calls.
  client::Client admin = As(kAdminKey);
  auto list = admin.ListCollections();
  QUIVER_ASSERT_OK(list);
  EXPECT_TRUE(list->empty());
  // The log names the refusals, never the key.
  EXPECT_GT(LogCount("refused"), 0u);
  EXPECT_EQ(LogCount(wrong), 0u);
}

// The key is checked before the request is bound: a big request that would
// not even bind (wrong dimension) is refused for its key, not its content.
TEST_F(AuthTest, AnUnauthenticatedSearchIsRefusedBeforeItsContentIsLookedAt) {
  StartWithKeys(Line(kAdminKey, "admin") + Line(kLimitedKey, "read", "a"));
  QUIVER_ASSERT_OK(As(kAdminKey).CreateCollection("a", Schema()));
  QUIVER_ASSERT_OK(As(kAdminKey).CreateCollection("b", Schema()));
  v1::SearchRequest big;
  big.set_collection("b");
  big.set_k(10);
  for (int i = 0; i < 1000; ++i) {  // about 1 MB
    auto* q = big.add_vectors();
    for (int d = 0; d < 256; ++d) q->add_values(1.0f);  // the collection has 4 dims
  }
  client::Client anon(server_->address(), Opts());
  EXPECT_THAT(anon.Search(big), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(As(kLimitedKey).Search(big), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(As(kAdminKey).Search(big), StatusIs(absl::StatusCode::kInvalidArgument));
}

// A refused key is the client's doing: one warn line each, never an error.
TEST_F(AuthTest, KeyRefusalsAreLoggedOnceAndNotAsServerErrors) {
  StartWithKeys(Line(kAdminKey, "admin") + Line(kReadKey, "read"));
  client::Client anon(server_->address(), Opts());
  EXPECT_THAT(anon.ListCollections(), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(As(kReadKey).CreateCollection("c", Schema()),
              StatusIs(absl::StatusCode::kPermissionDenied));
  ASSERT_TRUE(Eventually([&] { return LogCount("refused") >= 2; }));
  EXPECT_EQ(LogCount("refused"), 2u) << ReadFile(server_->log_path());
  EXPECT_EQ(LogCount("[error]"), 0u) << ReadFile(server_->log_path());
}

TEST_F(AuthTest, MalformedAuthorizationIsUnauthenticated) {
  StartWithKeys(Line(kAdminKey, "admin"));
  client::Client anon(server_->address(), Opts());
  auto stub = v1::CollectionService::NewStub(anon.channel());
  for (const std::string& value : {std::string("Basic ") + kAdminKey, std::string(kAdminKey),
                                  std::string("Bearer ")}) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", value);
    v1::ListCollectionsResponse resp;
    const grpc::Status s = stub->ListCollections(&ctx, {}, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << value;
    EXPECT_EQ(s.error_message().find(kAdminKey), std::string::npos) << s.error_message();
  }
  // The scheme is case-insensitive, as HTTP's is.
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", std::string("bearer ") + kAdminKey);
  v1::ListCollectionsResponse resp;
  EXPECT_TRUE(stub->ListCollections(&ctx, {}, &resp).ok());
}

TEST_F(AuthTest, RolesLimitWhatAKeyMayDo) {
  StartWithKeys(Line(kAdminKey, "admin") + Line(kWriteKey, "write") + Line(kReadKey, "read"));
  client::Client admin = As(kAdminKey), writer = As(kWriteKey), reader = As(kReadKey);
  EXPECT_THAT(writer.CreateCollection("c", Schema()),
              StatusIs(absl::StatusCode::kPermissionDenied, "needs admin"));
  QUIVER_ASSERT_OK(admin.CreateCollection("c", Schema()));
  auto denied = reader.Upsert(Points("c"));
  EXPECT_THAT(denied, StatusIs(absl::StatusCode::kPermissionDenied, "role is read"));
  EXPECT_EQ(denied.status().message().find(kReadKey), std::string::npos);
  QUIVER_ASSERT_OK(writer.Upsert(Points("c")));

  // read: search, count, get, describe, list.
  auto hits = reader.Search(Query("c"));
  QUIVER_ASSERT_OK(hits);
  ASSERT_EQ(hits->results_size(), 1);
  EXPECT_EQ(hits->results(0).hits_size(), 3);
  auto n = reader.Count("c");
  QUIVER_ASSERT_OK(n);
  EXPECT_EQ(*n, 5u);
  v1::GetPointsRequest get;
  get.set_collection("c");
  get.add_ids("p1");
  QUIVER_ASSERT_OK(reader.GetPoints(get));
  QUIVER_ASSERT_OK(reader.GetCollection("c"));
  QUIVER_ASSERT_OK(reader.ListCollections());

  v1::DeletePointsRequest del;
  del.set_collection("c");
  del.add_ids("p1");
  EXPECT_THAT(reader.Delete(del), StatusIs(absl::StatusCode::kPermissionDenied));
  QUIVER_ASSERT_OK(writer.Delete(del));
  v1::VerifyCollectionRequest verify;
  verify.set_name("c");
  EXPECT_THAT(writer.VerifyCollection(verify), StatusIs(absl::StatusCode::kPermissionDenied));
  QUIVER_ASSERT_OK(admin.VerifyCollection(verify));
  EXPECT_THAT(writer.DropCollection("c"), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(reader.DropCollection("c"), StatusIs(absl::StatusCode::kPermissionDenied));
  // The refused writes changed nothing.
  n = reader.Count("c");
  QUIVER_ASSERT_OK(n);
  EXPECT_EQ(*n, 4u);
  QUIVER_ASSERT_OK(admin.DropCollection("c"));
}

TEST_F(AuthTest, ACollectionLimitedKeySeesAndTouchesOnlyItsCollections) {
  StartWithKeys(Line(kAdminKey, "admin") + Line(kLimitedKey, "write", "a,c"));
  client::Client admin = As(kAdminKey), limited = As(kLimitedKey);
  QUIVER_ASSERT_OK(admin.CreateCollection("a", Schema()));
  QUIVER_ASSERT_OK(admin.CreateCollection("b", Schema()));
  QUIVER_ASSERT_OK(limited.Upsert(Points("a")));
  QUIVER_ASSERT_OK(limited.Search(Query("a")));
  EXPECT_THAT(limited.Upsert(Points("b")),
              StatusIs(absl::StatusCode::kPermissionDenied, "collection \"b\""));
  EXPECT_THAT(limited.Search(Query("b")), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(limited.GetCollection("b"), StatusIs(absl::StatusCode::kPermissionDenied));
  // A collection it may use but that does not exist: the engine's answer.
  EXPECT_THAT(limited.Count("c"), StatusIs(absl::StatusCode::kNotFound));
  // A denied name is denied whether or not it exists: no probing.
  EXPECT_THAT(limited.Count("zzz"), StatusIs(absl::StatusCode::kPermissionDenied));
  auto list = limited.ListCollections();
  QUIVER_ASSERT_OK(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name(), "a");
  auto all = admin.ListCollections();
  QUIVER_ASSERT_OK(all);
  EXPECT_EQ(all->size(), 2u);
}

// Snapshots hold every collection's data: each SnapshotService RPC needs an
// admin key that is not limited to collections, and the snapshot client
// sends the key it was given.
TEST_F(AuthTest, SnapshotRpcsNeedAnUnlimitedAdminKey) {
  StartWithKeys(Line(kAdminKey, "admin") + Line(kWriteKey, "write") +
                Line(kLimitedKey, "admin", "a"));
  client::Client admin = As(kAdminKey), writer = As(kWriteKey), limited = As(kLimitedKey);
  client::Client anon(server_->address(), Opts());
  QUIVER_ASSERT_OK(admin.CreateCollection("a", Schema()));
  QUIVER_ASSERT_OK(admin.Upsert(Points("a")));
  const absl::Duration t = absl::Seconds(60);
  EXPECT_THAT(client::CreateSnapshot(anon, "a", "s1", t),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(client::CreateSnapshot(writer, "a", "s1", t),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(client::CreateSnapshot(limited, "a", "s1", t),
              StatusIs(absl::StatusCode::kPermissionDenied));
  auto none = client::ListSnapshots(admin, t);
  QUIVER_ASSERT_OK(none);
  EXPECT_EQ(none->snapshots_size(), 0) << "a refused CreateSnapshot made one";

  QUIVER_ASSERT_OK(client::CreateSnapshot(admin, "a", "s1", t));
  EXPECT_THAT(client::ListSnapshots(writer, t), StatusIs(absl::StatusCode::kPermissionDenied));
  const std::string file = dir_.path() + "/s1.qsnap";
  EXPECT_THAT(client::DownloadSnapshot(anon, "s1", file, t),
              StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_THAT(client::RestoreSnapshot(writer, "s1", "", "", "b", t),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(client::DeleteSnapshot(limited, "s1", t),
              StatusIs(absl::StatusCode::kPermissionDenied));
  QUIVER_ASSERT_OK(client::DownloadSnapshot(admin, "s1", file, t));
  QUIVER_ASSERT_OK(client::RestoreSnapshot(admin, "s1", "", "", "b", t));
  auto n = admin.Count("b");
  QUIVER_ASSERT_OK(n);
  EXPECT_EQ(*n, 5u);
  QUIVER_ASSERT_OK(client::DeleteSnapshot(admin, "s1", t));
}

TEST_F(AuthTest, SighupRotatesKeysWithoutARestart) {
  const std::string old_key = "qk_old-key-0123456789", new_key = "qk_new-key-0123456789";
  StartWithKeys(Line(old_key, "admin"));
  const pid_t pid = server_->pid();
  client::Client old_client = As(old_key), new_client = As(new_key);
  QUIVER_ASSERT_OK(old_client.ListCollections());
  EXPECT_THAT(new_client.ListCollections(), StatusIs(absl::StatusCode::kUnauthenticated));

  WriteFile(keys_, "# rotated\n" + Line(new_key, "admin"));
  ASSERT_EQ(kill(pid, SIGHUP), 0);
  EXPECT_TRUE(Eventually([&] { return new_client.ListCollections().ok(); }));
  EXPECT_THAT(old_client.ListCollections(), StatusIs(absl::StatusCode::kUnauthenticated));
  EXPECT_EQ(server_->pid(), pid);
  QUIVER_ASSERT_OK(new_client.CreateCollection("after", Schema()));
}

TEST_F(AuthTest, ABadFileOnReloadKeepsTheOldKeys) {
  StartWithKeys(Line(kAdminKey, "admin") + Line(kReadKey, "read"));
  client::Client admin = As(kAdminKey);
  QUIVER_ASSERT_OK(admin.CreateCollection("c", Schema()));
  // A key pasted in clear instead of its hash: refused, and not echoed.
  const std::string clear = "qk_pasted-in-clear-0123456789";
  WriteFile(keys_, Line(kAdminKey, "admin") + clear + " read\n");
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  ASSERT_TRUE(Eventually([&] { return LogCount("keeping the 2 API keys") > 0; }))
      << ReadFile(server_->log_path());
  EXPECT_GT(LogCount("line 2"), 0u);
  EXPECT_EQ(LogCount(clear), 0u);
  QUIVER_ASSERT_OK(admin.ListCollections());
  QUIVER_ASSERT_OK(As(kReadKey).Count("c"));
  // A missing file is kept out the same way.
  std::filesystem::remove(keys_);
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  ASSERT_TRUE(Eventually([&] { return LogCount("keeping the 2 API keys") > 1; }));
  QUIVER_ASSERT_OK(admin.ListCollections());
}

TEST_F(AuthTest, AStartWithABadKeysFileFailsAndSaysWhere) {
  const std::string keys = dir_.path() + "/keys";
  WriteFile(keys, Line(kAdminKey, "admin") + Line(kReadKey, "superuser"));
  auto [code, out] = RunQuiverdToExit({"--listen", "127.0.0.1:0", "--data-dir", dir_.path() + "/d",
                                "--api-keys-file", keys},
                               dir_.path() + "/out");
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("line 2: unknown role \"superuser\""), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/d")) << "changed nothing";
}

TEST(ExposureTest, ANetworkAddressWithoutKeysOrTlsIsRefusedInOneLine) {
  TempDir dir;
  const int port = ::quiver::testing::PickFreePort();
  for (const std::string host : {"0.0.0.0", "[::]", "192.0.2.1"}) {
    const std::string listen = absl::StrCat(host, ":", port);
    auto [code, out] = RunQuiverdToExit({"--listen", listen, "--data-dir", dir.path() + "/d"},
                                 dir.path() + "/out");
    EXPECT_NE(code, 0) << out;
    EXPECT_NE(out.find("refusing to serve " + listen + " without authentication"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("--allow-insecure"), std::string::npos) << out;
    // One line, and nothing done before it.
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
    EXPECT_FALSE(std::filesystem::exists(dir.path() + "/d"));
  }
}

TEST(ExposureTest, NetworkMetricsAreRefusedEvenWithKeys) {
  TempDir dir;
  const std::string keys = dir.path() + "/api-keys";
  WriteFile(keys, Line(kAdminKey, "admin"));
  const std::string metrics = absl::StrCat("0.0.0.0:", ::quiver::testing::PickFreePort());
  auto [code, out] =
      RunQuiverdToExit({"--listen", absl::StrCat("127.0.0.1:", ::quiver::testing::PickFreePort()),
                 "--api-keys-file", keys, "--metrics-listen", metrics, "--data-dir",
                 dir.path() + "/d"},
                dir.path() + "/out");
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(out.find("refusing to serve metrics on " + metrics), std::string::npos) << out;
  EXPECT_NE(out.find("collection"), std::string::npos) << out;
  EXPECT_NE(out.find("--allow-insecure"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/d"));
}

// quiverd on 0.0.0.0:PORT (the launcher always passes --listen
// 127.0.0.1:PORT), stopped with SIGTERM when the object goes away.
class WildcardServer {
 public:
  WildcardServer(const std::string& dir, std::vector<std::string> extra)
      : port_(::quiver::testing::PickFreePort()) {
    std::vector<std::string> args = {QUIVERD_PATH, "--listen", absl::StrCat("0.0.0.0:", port_),
                                     "--data-dir", dir + "/data", "--log-level", "warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string log = dir + "/wildcard.log";
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~WildcardServer() {
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  // Reached through the loopback interface, which 0.0.0.0 includes.
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int port_;
  pid_t pid_;
};

bool ServesWithin(const std::string& address, const std::string& key, absl::Duration limit) {
  const absl::Time deadline = absl::Now() + limit;
  while (absl::Now() < deadline) {
    if (client::Client(address, Opts(key)).ListCollections().ok()) return true;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return false;
}

TEST(ExposureTest, AllowInsecureOrAKeyFileLetsItServeANetworkAddress) {
  TempDir dir;
  {
    std::filesystem::create_directories(dir.path() + "/open");
    WildcardServer server(dir.path() + "/open", {"--allow-insecure"});
    EXPECT_TRUE(ServesWithin(server.address(), "", absl::Seconds(60)))
        << ReadFile(dir.path() + "/open/wildcard.log");
  }
  {
    std::filesystem::create_directories(dir.path() + "/keys");
    const std::string keys = dir.path() + "/keys/api-keys";
    WriteFile(keys, Line(kAdminKey, "admin"));
    WildcardServer server(dir.path() + "/keys", {"--api-keys-file", keys});
    EXPECT_TRUE(ServesWithin(server.address(), kAdminKey, absl::Seconds(60)))
        << ReadFile(dir.path() + "/keys/wildcard.log");
    EXPECT_THAT(client::Client(server.address(), Opts()).ListCollections(),
                StatusIs(absl::StatusCode::kUnauthenticated));
  }
}

// ------------------------------------------------------------ TLS

client::ClientOptions TlsOpts(const std::string& dir, const std::string& ca,
                              const std::string& client = "") {
  client::ClientOptions o = Opts();
  o.timeout = absl::Seconds(5);
  const std::string cert = client.empty() ? "" : dir + "/" + client + "-client.crt";
  const std::string key = client.empty() ? "" : dir + "/" + client + "-client.key";
  const absl::Status s = client::LoadClientTls(dir + "/" + ca + "-ca.crt", cert, key, &o);
  EXPECT_TRUE(s.ok()) << s;
  return o;
}

class TlsTest : public AuthTest {
 protected:
  void SetUp() override {
    pki_ = dir_.path() + "/pki";
    std::filesystem::create_directories(pki_);
    QUIVER_ASSERT_OK(::quiver::testing::MakeTestPki(pki_, "one"));
  }
  std::vector<std::string> TlsArgs(const std::string& name) {
    return {"--tls-cert", pki_ + "/" + name + "-server.crt", "--tls-key",
            pki_ + "/" + name + "-server.key"};
  }
  std::string pki_;
};

TEST_F(TlsTest, AClientTrustingTheCaConnectsAndAPlaintextClientCannot) {
  StartServer(TlsArgs("one"));
  client::Client tls(server_->address(), TlsOpts(pki_, "one"));
  QUIVER_ASSERT_OK(tls.Health());
  QUIVER_ASSERT_OK(tls.CreateCollection("c", Schema()));
  QUIVER_ASSERT_OK(tls.Upsert(Points("c")));
  QUIVER_ASSERT_OK(tls.Search(Query("c")));
  // By host name too, as the certificate carries DNS:localhost.
  client::Client by_name(absl::StrCat("localhost:", server_->port()), TlsOpts(pki_, "one"));
  QUIVER_ASSERT_OK(by_name.Count("c"));

  client::ClientOptions plain_opts = Opts();
  plain_opts.timeout = absl::Seconds(5);
  client::Client plain(server_->address(), plain_opts);
  EXPECT_THAT(plain.Health(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(plain.ListCollections(), StatusIs(absl::StatusCode::kUnavailable));
  // A client trusting another CA refuses the server.
  QUIVER_ASSERT_OK(::quiver::testing::MakeTestPki(pki_, "other"));
  client::Client stranger(server_->address(), TlsOpts(pki_, "other"));
  EXPECT_THAT(stranger.ListCollections(), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(TlsTest, MutualTlsRefusesAClientWithoutACertificate) {
  QUIVER_ASSERT_OK(::quiver::testing::MakeTestPki(pki_, "other"));
  std::vector<std::string> args = TlsArgs("one");
  args.insert(args.end(), {"--tls-client-ca", pki_ + "/one-ca.crt"});
  StartServer(args);
  client::Client with_cert(server_->address(), TlsOpts(pki_, "one", "one"));
  QUIVER_ASSERT_OK(with_cert.ListCollections());
  client::Client without(server_->address(), TlsOpts(pki_, "one"));
  EXPECT_THAT(without.ListCollections(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(without.Health(), StatusIs(absl::StatusCode::kUnavailable));
  // A certificate from a CA the server does not trust is refused too.
  client::Client foreign(server_->address(), TlsOpts(pki_, "one", "other"));
  EXPECT_THAT(foreign.ListCollections(), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(TlsTest, SighupServesANewCertificateAndABadOneIsNotTaken) {
  QUIVER_ASSERT_OK(::quiver::testing::MakeTestPki(pki_, "two"));
  const std::string cert = dir_.path() + "/server.crt", key = dir_.path() + "/server.key";
  std::filesystem::copy_file(pki_ + "/one-server.crt", cert);
  std::filesystem::copy_file(pki_ + "/one-server.key", key);
  StartServer({"--tls-cert", cert, "--tls-key", key});
  QUIVER_ASSERT_OK(client::Client(server_->address(), TlsOpts(pki_, "one")).ListCollections());

  // A key that does not match the certificate: the old pair stays.
  WriteFile(key, ReadFile(pki_ + "/two-server.key"));
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  ASSERT_TRUE(Eventually([&] { return LogCount("keeping the TLS certificate") > 0; }))
      << ReadFile(server_->log_path());
  EXPECT_GT(LogCount("does not match the certificate"), 0u);
  QUIVER_ASSERT_OK(client::Client(server_->address(), TlsOpts(pki_, "one")).ListCollections());

  // The matching certificate: new connections get it.
  WriteFile(cert, ReadFile(pki_ + "/two-server.crt"));
  ASSERT_EQ(kill(server_->pid(), SIGHUP), 0);
  EXPECT_TRUE(Eventually([&] {
    return client::Client(server_->address(), TlsOpts(pki_, "two")).ListCollections().ok();
  })) << ReadFile(server_->log_path());
  EXPECT_THAT(client::Client(server_->address(), TlsOpts(pki_, "one")).ListCollections(),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(TlsTest, KeysAndTlsTogether) {
  std::vector<std::string> args = TlsArgs("one");
  keys_ = dir_.path() + "/api-keys";
  WriteFile(keys_, Line(kReadKey, "read"));
  args.insert(args.end(), {"--api-keys-file", keys_});
  StartServer(args);
  client::ClientOptions o = TlsOpts(pki_, "one");
  EXPECT_THAT(client::Client(server_->address(), o).ListCollections(),
              StatusIs(absl::StatusCode::kUnauthenticated));
  o.api_key = kReadKey;
  QUIVER_ASSERT_OK(client::Client(server_->address(), o).ListCollections());
}

}  // namespace
}  // namespace quiver
