// quiverctl against a quiverd that wants API keys or TLS: `key hash` makes
// the keys the server is started with, and the key travels by --api-key or
// by QUIVER_API_KEY; --tls-ca (or QUIVER_TLS_CA) connects over TLS with
// certificates made by the openssl command.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/api_key.h"
#include "tests/common/pki.h"
#include "tests/common/quiverd_process.h"
#include "tests/common/test_util.h"

extern char** environ;

namespace quiver {
namespace {

struct CmdResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::ostream& operator<<(std::ostream& os, const CmdResult& r) {
  return os << "exit " << r.exit_code << "\n--- stdout\n" << r.out << "--- stderr\n" << r.err;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string Sha256Hex(const std::string& key) { return client::ApiKeySha256Hex(key); }

class QuiverctlAuthTest : public ::testing::Test {
 protected:
  // Runs quiverctl with `args`, `env` ("K=V") added to an environment
  // without QUIVER_* variables, and `stdin_text` on its standard input.
  CmdResult Run(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                const std::string& stdin_text = "") {
    const std::string base = absl::StrCat(dir_.path(), "/cmd", ++counter_);
    WriteFile(base + ".in", stdin_text);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, (base + ".in").c_str(), O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, (base + ".out").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, (base + ".err").c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> argv_s = {QUIVERCTL_PATH};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_s;
    for (char** e = environ; *e != nullptr; ++e) {
      if (!absl::StartsWith(*e, "QUIVER_")) env_s.emplace_back(*e);
    }
    env_s.insert(env_s.end(), env.begin(), env.end());
    std::vector<char*> envp;
    for (auto& e : env_s) envp.push_back(e.data());
    envp.push_back(nullptr);
    CmdResult r;
    pid_t pid = 0;
    const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return r;
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = ReadFile(base + ".out");
    r.err = ReadFile(base + ".err");
    return r;
  }

  void StartServer(std::vector<std::string> args) {
    server_ = std::make_unique<testing::QuiverdProcess>(testing::QuiverdOptions{});
    QUIVER_ASSERT_OK(server_->Start(dir_.path() + "/data", std::move(args)));
    addr_ = server_->address();
  }

  testing::TempDir dir_;
  int counter_ = 0;
  std::unique_ptr<testing::QuiverdProcess> server_;
  std::string addr_;
};

TEST_F(QuiverctlAuthTest, KeyHashMakesRandomKeysAndHashesGivenOnes) {
  CmdResult a = Run({"key", "hash"});
  ASSERT_EQ(a.exit_code, 0) << a;
  CmdResult b = Run({"--json", "key", "hash", "--role", "read", "--collections", "x,y"});
  ASSERT_EQ(b.exit_code, 0) << b;
  const nlohmann::json j = nlohmann::json::parse(b.out);
  const std::string key = j["key"];
  EXPECT_TRUE(absl::StartsWith(key, "qk_")) << key;
  EXPECT_GE(key.size(), 40u);
  EXPECT_EQ(j["sha256"], Sha256Hex(key));
  EXPECT_EQ(j["line"], Sha256Hex(key) + " read x,y");
  // The table form: key, sha256 and line, and a new key each time.
  std::vector<std::string> lines = absl::StrSplit(a.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << a;
  ASSERT_TRUE(absl::StartsWith(lines[0], "key     qk_")) << a;
  const std::string key_a = lines[0].substr(8);
  EXPECT_NE(key_a, key);
  EXPECT_EQ(lines[1], "sha256  " + Sha256Hex(key_a));
  EXPECT_EQ(lines[2], "line    " + Sha256Hex(key_a) + " admin");

  CmdResult c = Run({"key", "hash", "--stdin", "--role", "write"}, {}, "my secret key\n");
  ASSERT_EQ(c.exit_code, 0) << c;
  // A known digest (sha256sum of the same bytes), so the hash itself is checked,
  // not only that quiverctl and this test agree.
  EXPECT_EQ(c.out, "b16920894899c7780b5fc7161560a4120e26723be4f187462291225157ba82c4 write\n");
  EXPECT_EQ(c.out.find("my secret key"), std::string::npos);
  CmdResult empty = Run({"key", "hash", "--stdin"}, {}, "");
  EXPECT_EQ(empty.exit_code, 1) << empty;
  CmdResult bad_role = Run({"key", "hash", "--role", "root"});
  EXPECT_EQ(bad_role.exit_code, 2) << bad_role;
}

TEST_F(QuiverctlAuthTest, TheKeyTravelsByFlagOrEnvironment) {
  CmdResult admin = Run({"--json", "key", "hash"});
  CmdResult reader = Run({"--json", "key", "hash", "--role", "read"});
  ASSERT_EQ(admin.exit_code, 0) << admin;
  ASSERT_EQ(reader.exit_code, 0) << reader;
  const nlohmann::json ja = nlohmann::json::parse(admin.out);
  const nlohmann::json jr = nlohmann::json::parse(reader.out);
  const std::string keys = dir_.path() + "/keys";
  WriteFile(keys, ja["line"].get<std::string>() + "\n" + jr["line"].get<std::string>() + "\n");
  StartServer({"--api-keys-file", keys});
  const std::string admin_key = ja["key"], read_key = jr["key"];

  CmdResult health = Run({"--addr", addr_, "health"});
  EXPECT_EQ(health.exit_code, 0) << health;
  CmdResult anon = Run({"--addr", addr_, "collection", "list"});
  EXPECT_EQ(anon.exit_code, 1) << anon;
  EXPECT_NE(anon.err.find("UNAUTHENTICATED"), std::string::npos) << anon;

  CmdResult by_flag = Run({"--addr", addr_, "--api-key", admin_key, "collection", "create", "c",
                           "--vector", "v:2:L2"});
  EXPECT_EQ(by_flag.exit_code, 0) << by_flag;
  CmdResult by_env =
      Run({"--addr", addr_, "collection", "list"}, {"QUIVER_API_KEY=" + read_key});
  EXPECT_EQ(by_env.exit_code, 0) << by_env;
  EXPECT_NE(by_env.out.find("c"), std::string::npos) << by_env;
  CmdResult denied = Run({"--addr", addr_, "collection", "drop", "c"},
                         {"QUIVER_API_KEY=" + read_key});
  EXPECT_EQ(denied.exit_code, 1) << denied;
  EXPECT_NE(denied.err.find("PERMISSION_DENIED"), std::string::npos) << denied;
  EXPECT_EQ(denied.err.find(read_key), std::string::npos) << denied;
  // The flag wins over the environment.
  CmdResult both = Run({"--addr", addr_, "--api-key", admin_key, "collection", "drop", "c"},
                       {"QUIVER_API_KEY=" + read_key});
  EXPECT_EQ(both.exit_code, 0) << both;
}

TEST_F(QuiverctlAuthTest, TlsCaByFlagOrEnvironment) {
  const std::string pki = dir_.path() + "/pki";
  std::filesystem::create_directories(pki);
  QUIVER_ASSERT_OK(testing::MakeTestPki(pki, "one"));
  StartServer({"--tls-cert", pki + "/one-server.crt", "--tls-key", pki + "/one-server.key",
               "--tls-client-ca", pki + "/one-ca.crt"});
  const std::vector<std::string> mtls = {"--tls-cert", pki + "/one-client.crt", "--tls-key",
                                         pki + "/one-client.key"};
  std::vector<std::string> args = {"--addr", addr_, "--timeout", "5", "--tls-ca",
                                   pki + "/one-ca.crt"};
  args.insert(args.end(), mtls.begin(), mtls.end());
  args.insert(args.end(), {"collection", "list"});
  CmdResult ok = Run(args);
  EXPECT_EQ(ok.exit_code, 0) << ok;
  CmdResult by_env = Run({"--addr", addr_, "--timeout", "5", "health"},
                         {"QUIVER_TLS_CA=" + pki + "/one-ca.crt",
                          "QUIVER_TLS_CERT=" + pki + "/one-client.crt",
                          "QUIVER_TLS_KEY=" + pki + "/one-client.key"});
  EXPECT_EQ(by_env.exit_code, 0) << by_env;
  CmdResult plain = Run({"--addr", addr_, "--timeout", "5", "collection", "list"});
  EXPECT_EQ(plain.exit_code, 1) << plain;
  EXPECT_NE(plain.err.find("UNAVAILABLE"), std::string::npos) << plain;
  CmdResult no_cert = Run({"--addr", addr_, "--timeout", "5", "--tls-ca", pki + "/one-ca.crt",
                           "collection", "list"});
  EXPECT_EQ(no_cert.exit_code, 1) << no_cert;
  CmdResult missing = Run({"--addr", addr_, "--tls-ca", pki + "/nope.crt", "health"});
  EXPECT_EQ(missing.exit_code, 1) << missing;
  EXPECT_NE(missing.err.find("nope.crt"), std::string::npos) << missing;
}

}  // namespace
}  // namespace quiver
