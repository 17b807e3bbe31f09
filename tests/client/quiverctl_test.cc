// End-to-end tests of quiverctl: each test starts a real quiverd on a free
// loopback port with a fresh data dir, runs the quiverctl binary against it
// and checks its output and exit status.
//
// Data files (fvecs, npy, gzip'd IDX, jsonl) are generated here, so every
// expected answer is known: a query equal to an imported vector has that
// point as its nearest neighbour at (squared L2) distance ~0.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/common/quiverd_process.h"

extern char** environ;

namespace quiver {
namespace {

using nlohmann::json;

// ------------------------------------------------------------ running commands

struct CmdResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `args` (args[0] is the binary) with stdout and stderr captured in
// files under `scratch` (files rather than pipes: no deadlock when a child
// writes a lot to both). `env` entries ("K=V") are added to the environment.
CmdResult RunCommand(const std::vector<std::string>& args, const std::string& scratch,
                     const std::vector<std::string>& env = {}) {
  static int counter = 0;
  const std::string base = absl::StrCat(scratch, "/cmd", ++counter);
  const std::string out_path = base + ".out", err_path = base + ".err";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> args_copy = args;
  std::vector<char*> argv;
  for (auto& a : args_copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_copy;
  for (char** e = environ; *e != nullptr; ++e) env_copy.emplace_back(*e);
  env_copy.insert(env_copy.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& e : env_copy) envp.push_back(e.data());
  envp.push_back(nullptr);

  CmdResult r;
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    r.err = absl::StrCat("posix_spawn ", args[0], ": ", std::strerror(rc));
    return r;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  std::remove(out_path.c_str());
  std::remove(err_path.c_str());
  return r;
}

std::ostream& operator<<(std::ostream& os, const CmdResult& r) {
  return os << "exit " << r.exit_code << "\n--- stdout\n" << r.out << "--- stderr\n" << r.err;
}

// ------------------------------------------------------------ data files

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void WriteGz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

template <typename T>
void Append(std::string* s, T v) {
  s->append(reinterpret_cast<const char*>(&v), sizeof(v));  // little-endian host
}

void AppendBE32(std::string* s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s->push_back(static_cast<char>((v >> shift) & 0xFF));
}

using Rows = std::vector<std::vector<float>>;

Rows RandomRows(int n, int dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Rows rows(static_cast<size_t>(n), std::vector<float>(static_cast<size_t>(dim)));
  for (auto& r : rows) {
    for (auto& x : r) x = u(rng);
  }
  return rows;
}

std::string FvecsBytes(const Rows& rows) {
  std::string s;
  for (const auto& r : rows) {
    Append(&s, static_cast<int32_t>(r.size()));
    for (float x : r) Append(&s, x);
  }
  return s;
}

// An npy v1.0 file: magic, version, header dict padded so data starts at a
// multiple of 64, then `data`.
std::string NpyBytes(const std::string& descr, const std::string& shape, const std::string& data,
                     bool fortran = false) {
  std::string dict =
      absl::StrCat("{'descr': '", descr, "', 'fortran_order': ", fortran ? "True" : "False",
                   ", 'shape': ", shape, ", }");
  while ((10 + dict.size() + 1) % 64 != 0) dict.push_back(' ');
  dict.push_back('\n');
  std::string s = "\x93NUMPY";
  s.push_back(1);
  s.push_back(0);
  Append(&s, static_cast<uint16_t>(dict.size()));
  return s + dict + data;
}

std::string F32Data(const Rows& rows) {
  std::string s;
  for (const auto& r : rows) {
    for (float x : r) Append(&s, x);
  }
  return s;
}

// Exact text of a float: parsing it gives back the same float, so a query
// built from it equals the imported vector bit for bit.
std::string FloatText(float v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, end);
}

std::string VectorArg(const std::vector<float>& v) {
  std::vector<std::string> parts;
  for (float x : v) parts.push_back(FloatText(x));
  return absl::StrJoin(parts, ",");
}

// ------------------------------------------------------------ fixture

class QuiverctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "quiverctl_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    testing::QuiverdOptions o;
    o.binary = QUIVERD_PATH;
    // Ready means `quiverctl health` succeeds: the same path users take.
    o.ready = [this](const std::string& addr) {
      return RunCommand({QUIVERCTL_PATH, "--addr", addr, "--timeout", "1", "health"}, dir_)
                 .exit_code == 0;
    };
    server_ = std::make_unique<testing::QuiverdProcess>(o);
    absl::Status s = server_->Start(dir_ + "/data");
    ASSERT_TRUE(s.ok()) << s;
  }

  void TearDown() override {
    if (server_ != nullptr) {
      absl::Status s = server_->Stop();
      EXPECT_TRUE(s.ok()) << s;
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // quiverctl --addr <server> args...
  CmdResult Ctl(const std::vector<std::string>& args) {
    std::vector<std::string> full = {QUIVERCTL_PATH, "--addr", server_->address()};
    full.insert(full.end(), args.begin(), args.end());
    return RunCommand(full, dir_);
  }

  // Runs and expects success; returns stdout.
  std::string CtlOk(const std::vector<std::string>& args) {
    CmdResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(args, " ") << "\n" << r;
    return r.out;
  }

  json CtlJson(std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    const std::string out = CtlOk(args);
    json j = json::parse(out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << out;
    return j;
  }

  uint64_t Count(const std::string& collection, const std::string& filter = "") {
    std::vector<std::string> args = {"count", collection};
    if (!filter.empty()) {
      args.push_back("--filter");
      args.push_back(filter);
    }
    const std::string out = CtlOk(args);
    return std::strtoull(out.c_str(), nullptr, 10);
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
  std::unique_ptr<testing::QuiverdProcess> server_;
};

// ------------------------------------------------------------ cases

TEST_F(QuiverctlTest, HealthReportsServingAndFailsWhenNoServer) {
  CmdResult r = Ctl({"health"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.out, "SERVING\n");

  // The address also comes from QUIVER_ADDR.
  r = RunCommand({QUIVERCTL_PATH, "health"}, dir_, {"QUIVER_ADDR=" + server_->address()});
  EXPECT_EQ(r.exit_code, 0) << r;

  const int dead = testing::PickFreePort();
  r = RunCommand(
      {QUIVERCTL_PATH, "--addr", absl::StrCat("127.0.0.1:", dead), "--timeout", "2", "health"},
      dir_);
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("error: UNAVAILABLE"), std::string::npos) << r;
}

TEST_F(QuiverctlTest, CreateListDescribeDrop) {
  std::string out = CtlOk({"collection", "create", "docs", "--vector", "emb:4:L2", "--attr",
                           "price:double", "--attr", "tags:string_list:indexed", "--attr",
                           "ts:int64:window"});
  EXPECT_NE(out.find("created collection docs"), std::string::npos) << out;

  WriteFile(Path("schema.json"), R"({
    "vectors": [{"name": "img", "dim": 8, "metric": "COSINE", "index": {"type": "FLAT"}}],
    "attributes": [{"name": "label", "type": "INT64", "indexed": true}]
  })");
  CtlOk({"collection", "create", "imgs", "--schema", Path("schema.json")});

  out = CtlOk({"collection", "list"});
  EXPECT_NE(out.find("docs"), std::string::npos) << out;
  EXPECT_NE(out.find("imgs"), std::string::npos) << out;
  EXPECT_NE(out.find("emb:4:L2"), std::string::npos) << out;

  out = CtlOk({"collection", "describe", "docs"});
  for (const char* want : {"docs", "emb", "L2", "FLAT", "price", "double", "tags", "string_list",
                           "yes", "window", "points", "last sequence", "MEMORY"}) {
    EXPECT_NE(out.find(want), std::string::npos) << want << " in\n" << out;
  }

  json j = CtlJson({"collection", "describe", "imgs"});
  EXPECT_EQ(j["name"], "imgs");
  EXPECT_EQ(j["schema"]["vectors"][0]["dim"], 8);
  EXPECT_EQ(j["schema"]["vectors"][0]["metric"], "COSINE");
  EXPECT_EQ(j["schema"]["attributes"][0]["type"], "INT64");
  EXPECT_EQ(j["schema"]["attributes"][0]["indexed"], true);
  // proto3 JSON prints 64-bit integers as strings.
  EXPECT_EQ(j["stats"]["pointCount"], "0");

  json list = CtlJson({"collection", "list"});
  ASSERT_EQ(list["collections"].size(), 2u);
  EXPECT_EQ(list["collections"][0]["name"], "docs");  // sorted by name

  // Taken name: the server's code and message, exit 1.
  CmdResult r = Ctl({"collection", "create", "docs", "--vector", "emb:4:L2"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("ALREADY_EXISTS"), std::string::npos) << r;

  // Bad flag values are usage errors, exit 2, and nothing reaches the server.
  r = Ctl({"collection", "create", "x", "--vector", "emb:abc:L2"});
  EXPECT_EQ(r.exit_code, 2) << r;
  r = Ctl({"collection", "create", "x", "--vector", "emb:4:HAMMING"});
  EXPECT_EQ(r.exit_code, 2) << r;
  r = Ctl({"collection", "create", "x", "--vector", "emb:4:L2", "--attr", "a:float"});
  EXPECT_EQ(r.exit_code, 2) << r;
  r = Ctl({"collection", "frobnicate"});
  EXPECT_EQ(r.exit_code, 2) << r;

  out = CtlOk({"collection", "drop", "imgs"});
  EXPECT_NE(out.find("dropped collection imgs"), std::string::npos) << out;
  out = CtlOk({"collection", "list"});
  EXPECT_EQ(out.find("imgs"), std::string::npos) << out;
}

TEST_F(QuiverctlTest, AliasCreateSwitchListDelete) {
  CtlOk({"collection", "create", "v1", "--vector", "emb:2:L2"});
  CtlOk({"collection", "create", "v2", "--vector", "emb:2:L2"});
  WriteFile(Path("p.jsonl"), R"({"id": "a", "vectors": {"emb": [1, 0]}})" "\n"
                             R"({"id": "b", "vectors": {"emb": [0, 1]}})" "\n");
  CtlOk({"import", "v2", Path("p.jsonl")});
  std::string out = CtlOk({"alias", "create", "live", "v1"});
  EXPECT_NE(out.find("created alias live -> v1 (sequence "), std::string::npos) << out;
  EXPECT_EQ(Count("live"), 0u);
  json j = CtlJson({"alias", "switch", "live", "v2"});
  EXPECT_EQ(j["alias"], "live");
  EXPECT_EQ(j["collection"], "v2");
  EXPECT_TRUE(j["sequence"].is_number()) << j;
  EXPECT_EQ(Count("live"), 2u);
  out = CtlOk({"alias", "list"});
  EXPECT_NE(out.find("ALIAS"), std::string::npos) << out;
  EXPECT_NE(out.find("live"), std::string::npos) << out;
  json list = CtlJson({"alias", "list", "--collection", "v2"});
  ASSERT_EQ(list.size(), 1u) << list;
  EXPECT_EQ(list[0]["alias"], "live");
  EXPECT_EQ(list[0]["collection"], "v2");
  EXPECT_EQ(CtlJson({"alias", "list", "--collection", "v1"}).size(), 0u);

  CmdResult r = Ctl({"collection", "drop", "v2"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("FAILED_PRECONDITION"), std::string::npos) << r;
  EXPECT_NE(r.err.find("live"), std::string::npos) << r;
  r = Ctl({"alias", "create", "v1", "v2"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("ALREADY_EXISTS"), std::string::npos) << r;
  r = Ctl({"alias", "switch", "nope", "v2"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("NOT_FOUND"), std::string::npos) << r;
  r = Ctl({"alias", "create", "only_one_arg"});
  EXPECT_EQ(r.exit_code, 2) << r;

  out = CtlOk({"alias", "delete", "live"});
  EXPECT_NE(out.find("deleted alias live"), std::string::npos) << out;
  r = Ctl({"count", "live"});
  EXPECT_EQ(r.exit_code, 1) << r;
  CtlOk({"collection", "drop", "v2"});
}

TEST_F(QuiverctlTest, ImportFvecsThenSearchGetStats) {
  CtlOk({"collection", "create", "vec", "--vector", "emb:8:L2"});
  const Rows rows = RandomRows(250, 8, 1);
  WriteFile(Path("base.fvecs"), FvecsBytes(rows));
  std::string out =
      CtlOk({"import", "vec", Path("base.fvecs"), "--id-prefix", "v", "--batch", "100"});
  EXPECT_NE(out.find("imported 250 points"), std::string::npos) << out;
  EXPECT_EQ(Count("vec"), 250u);

  json j = CtlJson({"search", "vec", "--vector", VectorArg(rows[17]), "-k", "3"});
  ASSERT_EQ(j["results"].size(), 1u);
  ASSERT_EQ(j["results"][0]["hits"].size(), 3u);
  EXPECT_EQ(j["results"][0]["hits"][0]["id"], "v17");
  EXPECT_NEAR(j["results"][0]["hits"][0]["score"].get<double>(), 0.0, 1e-4);

  out = CtlOk({"search", "vec", "--vector", VectorArg(rows[17]), "-k", "3"});
  EXPECT_NE(out.find("RANK"), std::string::npos) << out;
  EXPECT_NE(out.find("v17"), std::string::npos) << out;

  // Queries straight from the file: one row, then a batch.
  j = CtlJson({"search", "vec", "--vector-file", Path("base.fvecs"), "--row", "42", "-k", "1"});
  EXPECT_EQ(j["results"][0]["hits"][0]["id"], "v42");
  j = CtlJson({"search", "vec", "--vector-file", Path("base.fvecs"), "--rows", "10:13", "-k", "1",
               "--exact"});
  ASSERT_EQ(j["results"].size(), 3u);
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(j["results"][i]["hits"][0]["id"], absl::StrCat("v", 10 + i));

  out = CtlOk({"get", "vec", "v17", "v18", "--vectors"});
  EXPECT_NE(out.find("v17"), std::string::npos) << out;
  EXPECT_NE(out.find("v18"), std::string::npos) << out;
  j = CtlJson({"get", "vec", "v17", "--vectors"});
  ASSERT_EQ(j["points"].size(), 1u);
  const json& values = j["points"][0]["vectors"]["emb"]["values"];
  ASSERT_EQ(values.size(), 8u);
  for (size_t i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(values[i].get<float>(), rows[17][i]);

  CmdResult r = Ctl({"get", "vec", "v17", "nope"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.out.find("v17"), std::string::npos) << r;
  EXPECT_NE(r.err.find("NOT_FOUND"), std::string::npos) << r;
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r;

  out = CtlOk({"stats", "vec"});
  EXPECT_NE(out.find("250"), std::string::npos) << out;
  j = CtlJson({"stats", "vec"});
  EXPECT_EQ(j["pointCount"], "250");

  // A query of the wrong dimension is the server's INVALID_ARGUMENT.
  r = Ctl({"search", "vec", "--vector", "1,2,3"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("INVALID_ARGUMENT"), std::string::npos) << r;
}

// Also exercises QuiverdProcess's Restart and Kill9 for the other e2e tests.
TEST_F(QuiverctlTest, ImportedPointsSurviveRestartAndKill9) {
  CtlOk({"collection", "create", "vec", "--vector", "emb:8:L2"});
  const Rows rows = RandomRows(50, 8, 9);
  WriteFile(Path("base.fvecs"), FvecsBytes(rows));
  CtlOk({"import", "vec", Path("base.fvecs"), "--id-prefix", "v"});

  const int port = server_->port();
  absl::Status s = server_->Restart();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(server_->port(), port);
  EXPECT_EQ(Count("vec"), 50u);

  s = server_->Kill9();
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_FALSE(server_->running());
  CmdResult r = Ctl({"--timeout", "2", "count", "vec"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("UNAVAILABLE"), std::string::npos) << r;

  s = server_->Start(dir_ + "/data");
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(Count("vec"), 50u);
  json j = CtlJson({"search", "vec", "--vector", VectorArg(rows[49]), "-k", "1"});
  EXPECT_EQ(j["results"][0]["hits"][0]["id"], "v49");
}

TEST_F(QuiverctlTest, ImportNpyFloat32AndUint8) {
  CtlOk({"collection", "create", "npf", "--vector", "emb:6:L2"});
  const Rows rows = RandomRows(30, 6, 2);
  WriteFile(Path("f32.npy"), NpyBytes("<f4", "(30, 6)", F32Data(rows)));
  CtlOk({"import", "npf", Path("f32.npy"), "--id-prefix", "f", "--start-id", "100"});
  EXPECT_EQ(Count("npf"), 30u);
  json j = CtlJson({"search", "npf", "--vector", VectorArg(rows[5]), "-k", "1"});
  EXPECT_EQ(j["results"][0]["hits"][0]["id"], "f105");

  CtlOk({"collection", "create", "npu", "--vector", "emb:5:L2"});
  std::mt19937 rng(3);
  std::string u8;
  Rows as_float(20, std::vector<float>(5));
  for (int i = 0; i < 20; ++i) {
    for (int d = 0; d < 5; ++d) {
      const unsigned char b = static_cast<unsigned char>(rng() & 0xFF);
      u8.push_back(static_cast<char>(b));
      as_float[i][d] = b;
    }
  }
  WriteFile(Path("u8.npy"), NpyBytes("|u1", "(20, 5)", u8));
  CtlOk({"import", "npu", Path("u8.npy"), "--id-prefix", "u"});
  EXPECT_EQ(Count("npu"), 20u);
  j = CtlJson({"search", "npu", "--query-json", "[" + VectorArg(as_float[3]) + "]", "-k", "1"});
  EXPECT_EQ(j["results"][0]["hits"][0]["id"], "u3");
  EXPECT_NEAR(j["results"][0]["hits"][0]["score"].get<double>(), 0.0, 1e-3);

  // Layouts and dtypes we do not read are refused by name, nothing imported.
  WriteFile(Path("fortran.npy"), NpyBytes("<f4", "(30, 6)", F32Data(rows), /*fortran=*/true));
  CmdResult r = Ctl({"import", "npf", Path("fortran.npy")});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("fortran_order"), std::string::npos) << r;
  WriteFile(Path("f64.npy"), NpyBytes("<f8", "(30, 3)", std::string(30 * 3 * 8, '\0')));
  r = Ctl({"import", "npf", Path("f64.npy")});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("dtype '<f8'"), std::string::npos) << r;
  EXPECT_EQ(Count("npf"), 30u);
}

TEST_F(QuiverctlTest, ImportGzippedIdxWithLabels) {
  CtlOk(
      {"collection", "create", "mnist", "--vector", "img:16:L2", "--attr", "label:int64:indexed"});
  constexpr int kN = 40;
  std::mt19937 rng(4);
  std::string images;
  AppendBE32(&images, 0x00000803);
  AppendBE32(&images, kN);
  AppendBE32(&images, 4);
  AppendBE32(&images, 4);
  for (int i = 0; i < kN * 16; ++i) images.push_back(static_cast<char>(rng() & 0xFF));
  std::string labels;
  AppendBE32(&labels, 0x00000801);
  AppendBE32(&labels, kN);
  for (int i = 0; i < kN; ++i) labels.push_back(static_cast<char>(i % 4));
  WriteGz(Path("train-images-idx3-ubyte.gz"), images);
  WriteGz(Path("train-labels-idx1-ubyte.gz"), labels);

  std::string out = CtlOk({"import", "mnist", Path("train-images-idx3-ubyte.gz"), "--labels",
                           Path("train-labels-idx1-ubyte.gz"), "--id-prefix", "img"});
  EXPECT_NE(out.find("imported 40 points"), std::string::npos) << out;
  EXPECT_EQ(Count("mnist"), 40u);
  EXPECT_EQ(Count("mnist", "label = 2"), 10u);

  // Row 6 has label 2: with a matching filter it finds itself...
  json j = CtlJson({"search", "mnist", "--vector-file", Path("train-images-idx3-ubyte.gz"), "--row",
                    "6", "-k", "3", "--filter", "label = 2", "--output-attrs", "label"});
  EXPECT_EQ(j["results"][0]["hits"][0]["id"], "img6");
  EXPECT_NEAR(j["results"][0]["hits"][0]["score"].get<double>(), 0.0, 1e-2);
  // ...with another label, only points of that label come back.
  j = CtlJson({"search", "mnist", "--vector-file", Path("train-images-idx3-ubyte.gz"), "--row", "6",
               "-k", "5", "--filter", "label = 1", "--output-attrs", "*"});
  ASSERT_EQ(j["results"][0]["hits"].size(), 5u);
  for (const auto& hit : j["results"][0]["hits"]) {
    EXPECT_NE(hit["id"], "img6");
    EXPECT_EQ(hit["attributes"]["label"]["intValue"], "1") << hit.dump();
  }

  // A file that is not IDX at all.
  WriteGz(Path("bogus-idx3-ubyte.gz"), "this is not an IDX file at all");
  CmdResult r = Ctl({"import", "mnist", Path("bogus-idx3-ubyte.gz")});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("not an IDX file"), std::string::npos) << r;
  EXPECT_NE(r.err.find("bogus-idx3-ubyte.gz"), std::string::npos) << r;
}

constexpr char kShopJsonl[] =
    R"({"id": "p1", "vectors": {"emb": [1, 0, 0]}, "attributes": {"price": 5.5, "color": "red", "tags": ["a", "b"], "instock": true, "qty": 3}}
{"id": "p2", "vectors": {"emb": [0, 1, 0]}, "attributes": {"price": 20, "color": "blue", "tags": ["b"], "instock": false, "qty": 0}}

{"id": "p3", "vector": [0, 0, 1], "attributes": {"price": 7.25, "color": "red", "tags": [], "qty": 12}}
{"id": "p4", "vector": [1, 1, 0], "attributes": {"price": 99, "color": "green", "qty": 1.0}}
{"id": "p5", "vector": [0, 1, 1], "attributes": {"price": 3, "color": "blue", "instock": null}}
{"id": "p6", "vector": [1, 0, 1], "attributes": {}}
)";

class QuiverctlShopTest : public QuiverctlTest {
 protected:
  void SetUp() override {
    QuiverctlTest::SetUp();
    if (HasFatalFailure()) return;
    CtlOk({"collection", "create", "shop", "--vector", "emb:3:L2", "--attr", "price:double",
           "--attr", "color:string:indexed", "--attr", "tags:string_list", "--attr", "instock:bool",
           "--attr", "qty:int64"});
    WriteFile(Path("shop.jsonl"), kShopJsonl);
    const std::string out = CtlOk({"import", "shop", Path("shop.jsonl")});
    EXPECT_NE(out.find("imported 6 points"), std::string::npos) << out;
  }
};

TEST_F(QuiverctlShopTest, JsonlAttributesFilterAndGet) {
  EXPECT_EQ(Count("shop"), 6u);
  EXPECT_EQ(Count("shop", R"(color = "red")"), 2u);
  EXPECT_EQ(Count("shop", R"(tags CONTAINS "b")"), 2u);
  EXPECT_EQ(Count("shop", "qty >= 1"), 3u);

  // Nearest to [1,0,0] is p1, but p1 costs 5.5: the filter leaves p5 (3).
  json j = CtlJson({"search", "shop", "--vector", "1,0,0", "-k", "1"});
  EXPECT_EQ(j["results"][0]["hits"][0]["id"], "p1");
  j = CtlJson({"search", "shop", "--vector", "1,0,0", "-k", "3", "--filter", "price < 5",
               "--output-attrs", "*"});
  ASSERT_EQ(j["results"][0]["hits"].size(), 1u);
  EXPECT_EQ(j["results"][0]["hits"][0]["id"], "p5");
  EXPECT_EQ(j["results"][0]["hits"][0]["attributes"]["color"]["stringValue"], "blue");

  std::string out = CtlOk(
      {"search", "shop", "--vector", "[1, 0, 0]", "-k", "2", "--output-attrs", "color,price"});
  EXPECT_NE(out.find("color"), std::string::npos) << out;
  EXPECT_NE(out.find("red"), std::string::npos) << out;

  // The plan: one segment, the filter on the indexed `color`, counted.
  out = CtlOk({"search", "shop", "--vector", "1,0,0", "-k", "1", "--filter", R"(color = "red")",
               "--explain"});
  EXPECT_NE(out.find("explain:"), std::string::npos) << out;
  EXPECT_NE(out.find("PRE_FILTER"), std::string::npos) << out;
  EXPECT_NE(out.find(R"(color = "red")"), std::string::npos) << out;
  j = CtlJson({"search", "shop", "--vector", "1,0,0", "-k", "1", "--filter", "qty >= 1",
               "--strategy", "post_filter", "--explain"});
  ASSERT_FALSE(j["explain"]["segments"].empty()) << j.dump();
  EXPECT_EQ(j["results"][0]["hits"].size(), 1u);
  auto bad = Ctl({"search", "shop", "--vector", "1,0,0", "--filter", "qty >= 1", "--strategy", "fast"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--strategy"), std::string::npos) << bad.err;

  out = CtlOk({"get", "shop", "p1", "--attrs", "price,tags"});
  EXPECT_NE(out.find("5.5"), std::string::npos) << out;
  EXPECT_NE(out.find("[a, b]"), std::string::npos) << out;
  EXPECT_EQ(out.find("red"), std::string::npos) << out;  // color not asked for
  j = CtlJson({"get", "shop", "p4"});
  EXPECT_EQ(j["points"][0]["attributes"]["qty"]["intValue"], "1");
  EXPECT_EQ(j["points"][0]["attributes"]["price"]["doubleValue"], 99);
}

// Range, grouped and exhaustive search from the command line, and the line
// that says why a list is short of k. Distances from [1,0,0] (L2): p1 0,
// p4 1, p6 1, p2 2, p3 2, p5 3.
TEST_F(QuiverctlShopTest, RangeGroupedAndExhaustiveSearch) {
  json j = CtlJson({"search", "shop", "--vector", "1,0,0", "-k", "5", "--score-threshold", "1"});
  const json& r = j["results"][0];
  ASSERT_EQ(r["hits"].size(), 3u) << j.dump();
  for (const auto& hit : r["hits"]) EXPECT_LE(hit["score"].get<double>(), 1.0 + 1e-6);
  EXPECT_EQ(r["shortfall"], "SHORTFALL_SCORE_THRESHOLD") << j.dump();
  std::string out = CtlOk({"search", "shop", "--vector", "1,0,0", "-k", "5", "--score-threshold", "1"});
  EXPECT_NE(out.find("3 hits of k=5"), std::string::npos) << out;
  EXPECT_NE(out.find("outside --score-threshold"), std::string::npos) << out;

  // Groups by colour, best group first: red (p1 0, p3 2), then green (p4).
  j = CtlJson({"search", "shop", "--vector", "1,0,0", "-k", "2", "--group-by", "color",
               "--group-size", "2"});
  const json& groups = j["results"][0]["groups"];
  ASSERT_EQ(groups.size(), 2u) << j.dump();
  EXPECT_EQ(groups[0]["key"]["stringValue"], "red");
  ASSERT_EQ(groups[0]["hits"].size(), 2u);
  EXPECT_EQ(groups[0]["hits"][0]["id"], "p1");
  EXPECT_EQ(groups[0]["hits"][1]["id"], "p3");
  EXPECT_EQ(groups[1]["key"]["stringValue"], "green");
  out = CtlOk({"search", "shop", "--vector", "1,0,0", "-k", "2", "--group-by", "color"});
  EXPECT_NE(out.find("group red:"), std::string::npos) << out;
  EXPECT_NE(out.find("group green:"), std::string::npos) << out;
  EXPECT_EQ(out.find("group blue:"), std::string::npos) << out;

  // k past the collection: every point, said to be all there is.
  j = CtlJson({"search", "shop", "--vector", "1,0,0", "-k", "10", "--exhaustive"});
  EXPECT_EQ(j["results"][0]["hits"].size(), 6u);
  EXPECT_EQ(j["results"][0]["exhaustive"], true) << j.dump();
  EXPECT_EQ(j["results"][0]["shortfall"], "SHORTFALL_FEWER_MATCHES") << j.dump();
  out = CtlOk({"search", "shop", "--vector", "1,0,0", "-k", "10", "--min-results", "10"});
  EXPECT_NE(out.find("6 hits of k=10, 6 matching points: fewer points match than k"),
            std::string::npos)
      << out;

  CmdResult bad = Ctl({"search", "shop", "--vector", "1,0,0", "--group-size", "2"});
  EXPECT_EQ(bad.exit_code, 2) << bad;
  EXPECT_NE(bad.err.find("--group-size needs --group-by"), std::string::npos) << bad;
  bad = Ctl({"search", "shop", "--vector", "1,0,0", "--group-by", "price"});
  EXPECT_EQ(bad.exit_code, 1) << bad;
  EXPECT_NE(bad.err.find("INVALID_ARGUMENT"), std::string::npos) << bad;
}

// Two fields that disagree: by `a` the nearest to [0, 0] is h1, by `b` it is
// h3; h2 is second in both, so RRF puts it first.
constexpr char kHybridJsonl[] =
    R"({"id": "h1", "vectors": {"a": [0, 0], "b": [9, 9, 9]}, "attributes": {"n": 1}}
{"id": "h2", "vectors": {"a": [1, 0], "b": [1, 0, 0]}, "attributes": {"n": 2}}
{"id": "h3", "vectors": {"a": [9, 9], "b": [0, 0, 0]}, "attributes": {"n": 3}}
{"id": "h4", "vectors": {"a": [5, 5], "b": [5, 5, 5]}, "attributes": {"n": 4}}
)";

TEST_F(QuiverctlTest, HybridSearchFusesFields) {
  CtlOk({"collection", "create", "hy", "--vector", "a:2:L2", "--vector", "b:3:L2", "--attr",
         "n:int64"});
  WriteFile(Path("hy.jsonl"), kHybridJsonl);
  CtlOk({"import", "hy", Path("hy.jsonl")});
  json j = CtlJson({"search", "hy", "--field-vector", "a=0,0", "--field-vector", "b=0,0,0", "-k",
                    "3", "--field-results"});
  ASSERT_EQ(j["results"][0]["hits"].size(), 3u) << j.dump();
  EXPECT_EQ(j["results"][0]["hits"][0]["id"], "h2");
  ASSERT_EQ(j["fieldResults"].size(), 2u) << j.dump();
  EXPECT_EQ(j["fieldResults"][0]["field"], "a");
  EXPECT_EQ(j["fieldResults"][0]["hits"][0]["id"], "h1");
  EXPECT_EQ(j["fieldResults"][1]["hits"][0]["id"], "h3");

  // Weighting `b` heavily makes its nearest win; a filter applies to both.
  j = CtlJson({"search", "hy", "--field-vector", "a=0,0", "--field-vector", "b=0,0,0", "-k", "1",
               "--weight", "b=10", "--fusion", "weighted"});
  EXPECT_EQ(j["results"][0]["hits"][0]["id"], "h3");
  j = CtlJson({"search", "hy", "--field-vector", "a=0,0", "--field-vector", "b=0,0,0", "-k", "4",
               "--filter", "n >= 3", "--field-k", "a=1"});
  // Under the filter `a` ranks h4 first and `b` ranks h3 first, then h4.
  ASSERT_EQ(j["results"][0]["hits"].size(), 2u) << j.dump();
  EXPECT_EQ(j["results"][0]["hits"][0]["id"], "h4");
  EXPECT_EQ(j["results"][0]["hits"][1]["id"], "h3");

  // The table output.
  std::string out = CtlOk({"search", "hy", "--field-vector", "a=0,0", "--field-vector",
                           "b=0,0,0", "--field-results", "--explain"});
  EXPECT_NE(out.find("fused (RRF)"), std::string::npos) << out;
  EXPECT_NE(out.find("field b:"), std::string::npos) << out;
  EXPECT_NE(out.find("HybridSearch("), std::string::npos) << out;

  auto bad = Ctl({"search", "hy", "--field-vector", "a=0,0", "--vector", "0,0"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("replace --vector"), std::string::npos) << bad.err;
  bad = Ctl({"search", "hy", "--field-vector", "a=0,0", "--fusion", "max"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--fusion"), std::string::npos) << bad.err;
  bad = Ctl({"search", "hy", "--field-vector", "a=0,0", "--weight", "c=1"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("\"c\""), std::string::npos) << bad.err;
  bad = Ctl({"search", "hy", "--vector", "0,0", "--field", "a", "--fusion", "rrf"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("hybrid"), std::string::npos) << bad.err;
  // The server's own checks come back as its message.
  bad = Ctl({"search", "hy", "--field-vector", "a=0,0,0"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("expected 2 values"), std::string::npos) << bad.err;
}

// Sparse vectors in both JSON forms: s1 . {7: 1, 9: 1} = 2 + 0.5, s2 = 1,
// s3 shares no index (no hit), s4 has no sparse vector.
constexpr char kSparseJsonl[] =
    R"({"id": "s1", "vectors": {"d": [0, 0]}, "sparse_vectors": {"sp": {"indices": [9, 7], "values": [0.5, 2]}}}
{"id": "s2", "vectors": {"d": [1, 1]}, "sparse_vectors": {"sp": {"7": 1}}}
{"id": "s3", "vectors": {"d": [2, 2]}, "sparse_vectors": {"sp": {"indices": [4000000000], "values": [3]}}}
{"id": "s4", "vectors": {"d": [3, 3]}}
)";

TEST_F(QuiverctlTest, SparseFieldsCreateImportSearchAndFuse) {
  CtlOk({"collection", "create", "sv", "--vector", "d:2:L2", "--sparse", "sp"});
  WriteFile(Path("sv.jsonl"), kSparseJsonl);
  CtlOk({"import", "sv", Path("sv.jsonl")});
  json j = CtlJson({"search", "sv", "--field", "sp", "--sparse", "7:1,9:1", "-k", "10",
                    "--with-vectors"});
  ASSERT_EQ(j["results"][0]["hits"].size(), 2u) << j.dump();
  EXPECT_EQ(j["results"][0]["hits"][0]["id"], "s1");
  EXPECT_DOUBLE_EQ(j["results"][0]["hits"][0]["score"].get<double>(), 2.5);
  EXPECT_EQ(j["results"][0]["hits"][0]["sparseVectors"]["sp"]["indices"][0], 7);
  EXPECT_EQ(j["results"][0]["hits"][1]["id"], "s2");
  EXPECT_EQ(j["results"][0]["shortfall"], "SHORTFALL_FEWER_MATCHES") << j.dump();
  // A batch of two queries; an index past 2^31.
  j = CtlJson({"search", "sv", "--field", "sp", "--sparse", "7:1", "--sparse", "4000000000:1"});
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["results"][1]["hits"][0]["id"], "s3");
  // Hybrid with the dense field, fused by DBSF.
  j = CtlJson({"search", "sv", "--field-sparse", "sp=7:1", "--field-vector", "d=3,3",
               "--fusion", "dbsf", "-k", "4", "--field-results"});
  ASSERT_EQ(j["fieldResults"].size(), 2u) << j.dump();
  EXPECT_EQ(j["fieldResults"][0]["field"], "sp");
  EXPECT_EQ(j["results"][0]["hits"].size(), 4u) << j.dump();
  // Table output and explain.
  std::string out = CtlOk({"search", "sv", "--field", "sp", "--sparse", "7:1", "--explain"});
  EXPECT_NE(out.find("SparseSearch("), std::string::npos) << out;
  // A field added later (with the IDF modifier), and mistakes.
  CtlOk({"collection", "update", "sv", "--add-sparse", "sp2:idf"});
  j = CtlJson({"collection", "describe", "sv"});
  EXPECT_EQ(j["schema"]["sparseVectors"].size(), 2u) << j.dump();
  EXPECT_EQ(j["schema"]["sparseVectors"][1]["modifier"], "IDF") << j.dump();
  CmdResult idf_bad = Ctl({"collection", "create", "sv3", "--sparse", "x:bm42"});
  EXPECT_NE(idf_bad.exit_code, 0);
  EXPECT_NE(idf_bad.err.find("expected NAME or NAME:idf"), std::string::npos) << idf_bad.err;
  auto bad = Ctl({"search", "sv", "--sparse", "7:1"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--sparse needs --field"), std::string::npos) << bad.err;
  bad = Ctl({"search", "sv", "--field", "sp", "--sparse", "7=1"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("INDEX:VALUE"), std::string::npos) << bad.err;
  bad = Ctl({"search", "sv", "--field", "sp", "--sparse", "7:1,7:2"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("given twice"), std::string::npos) << bad.err;
  WriteFile(Path("bad.jsonl"), R"({"id": "x", "vectors": {"d": [0, 0]}, "sparse_vectors": {"sp": {"indices": [1], "values": [1, 2]}}})" "\n");
  bad = Ctl({"import", "sv", Path("bad.jsonl")});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("same length"), std::string::npos) << bad.err;
}

// Full text: t1 mentions running twice, t2 once, t3 not at all.
constexpr char kTextJsonl[] =
    R"({"id": "t1", "vectors": {"d": [0, 0]}, "attributes": {"body": "Running runners run", "n": 1}}
{"id": "t2", "vectors": {"d": [1, 1]}, "attributes": {"body": "a long text about how one runs a database", "n": 2}}
{"id": "t3", "vectors": {"d": [2, 2]}, "attributes": {"body": "nothing of the sort", "n": 3}}
)";

TEST_F(QuiverctlTest, TextAttributesCreateImportSearchAndFuse) {
  CtlOk({"collection", "create", "tx", "--vector", "d:2:L2", "--attr", "body:string:text",
         "--attr", "n:int64"});
  WriteFile(Path("tx.jsonl"), kTextJsonl);
  CtlOk({"import", "tx", Path("tx.jsonl")});
  json j = CtlJson({"search", "tx", "--field", "body", "--text", "RUN", "-k", "5",
                    "--output-attrs", "*"});
  ASSERT_EQ(j["results"][0]["hits"].size(), 2u) << j.dump();
  EXPECT_EQ(j["results"][0]["hits"][0]["id"], "t1");
  EXPECT_EQ(j["results"][0]["hits"][1]["id"], "t2");
  EXPECT_EQ(j["results"][0]["hits"][0]["attributes"]["body"]["stringValue"],
            "Running runners run");
  j = CtlJson({"search", "tx", "--field-text", "body=run", "--field-vector", "d=2,2", "-k", "3",
               "--fusion", "dbsf", "--field-results"});
  EXPECT_EQ(j["fieldResults"][0]["field"], "body") << j.dump();
  EXPECT_EQ(j["results"][0]["hits"].size(), 3u) << j.dump();
  std::string out = CtlOk({"search", "tx", "--field", "body", "--text", "run", "--explain"});
  EXPECT_NE(out.find("TextSearch("), std::string::npos) << out;
  // Multi-stage: BM25 finds t1 and t2 (t1 first), the vectors' exact L2 to
  // (2, 2) re-ranks them: t2 (distance 2), then t1 (8).
  j = CtlJson({"search", "tx", "--field-text", "body=run", "--stage", "vector:d=2,2",
               "--stage-limits", "5", "-k", "5"});
  ASSERT_EQ(j["results"][0]["hits"].size(), 2u) << j.dump();
  EXPECT_EQ(j["results"][0]["hits"][0]["id"], "t2") << j.dump();
  EXPECT_FLOAT_EQ(j["results"][0]["hits"][0]["score"].get<float>(), 2.0f) << j.dump();
  EXPECT_EQ(j["results"][0]["hits"][1]["id"], "t1") << j.dump();
  out = CtlOk({"search", "tx", "--field-vector", "d=0,0", "--field-k", "d=3", "--stage",
               "text:body=running", "-k", "1", "--candidates", "2", "--explain"});
  EXPECT_NE(out.find("stage 1 (body):"), std::string::npos) << out;
  EXPECT_NE(out.find("Rescore(field=\"body\", BM25(k1=1.2, b=0.75), limit=1)"),
            std::string::npos)
      << out;
  // Diversity: t2 (1, 1) and t3 (2, 2) are the nearest to (1.9, 1.9), but
  // MMR with a low lambda takes t1 (0, 0), far from t3, second.
  j = CtlJson({"search", "tx", "--vector", "1.9,1.9", "-k", "2", "--diversity", "0.2",
               "--fetch-k", "3"});
  ASSERT_EQ(j["results"][0]["hits"].size(), 2u) << j.dump();
  EXPECT_EQ(j["results"][0]["hits"][0]["id"], "t3") << j.dump();
  EXPECT_EQ(j["results"][0]["hits"][1]["id"], "t1") << j.dump();
  CmdResult wrong =
      Ctl({"search", "tx", "--field", "body", "--text", "run", "--stage", "vector:d=1,1"});
  EXPECT_NE(wrong.err.find("re-score a hybrid search's candidates"), std::string::npos)
      << wrong.err;
  wrong = Ctl({"search", "tx", "--field-text", "body=run", "--stage", "dense:d=1,1"});
  EXPECT_NE(wrong.err.find("unknown kind \"dense\""), std::string::npos) << wrong.err;
  wrong = Ctl({"search", "tx", "--vector", "1,1", "--fetch-k", "5"});
  EXPECT_NE(wrong.err.find("--fetch-k needs --diversity"), std::string::npos) << wrong.err;
  j = CtlJson({"collection", "describe", "tx"});
  EXPECT_EQ(j["schema"]["attributes"][0]["text"]["language"], "english") << j.dump();
  auto bad = Ctl({"collection", "create", "tx2", "--vector", "d:2:L2", "--attr",
                  "body:string:text:klingon"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("klingon"), std::string::npos) << bad.err;
  bad = Ctl({"search", "tx", "--text", "run"});
  EXPECT_NE(bad.err.find("--text needs --field"), std::string::npos) << bad.err;
  bad = Ctl({"search", "tx", "--field", "n", "--text", "run"});
  EXPECT_NE(bad.err.find("no text attribute"), std::string::npos) << bad.err;
}

// Late interaction: a multi-vector field created, filled from jsonl sets
// and from npy + offsets, searched with a query set by MaxSim.
TEST_F(QuiverctlTest, MultiVectorFieldsImportAndSearch) {
  CtlOk({"collection", "create", "lv", "--multi-vector", "tok:4:IP:HNSW", "--max-vectors", "8",
         "--encoding", "r_reps=8,final_dim=0", "--attr", "n:int64"});
  json info = CtlJson({"collection", "describe", "lv"});
  const json& mv = info["schema"]["vectors"][0]["multiVector"];
  EXPECT_EQ(mv["maxVectorsPerPoint"], 8) << info.dump();
  EXPECT_EQ(mv["encodingParams"]["r_reps"], "8") << info.dump();
  EXPECT_EQ(mv["encodingParams"]["k_sim"], "4") << info.dump();  // resolved default

  WriteFile(Path("lv.jsonl"),
            R"({"id": "a", "vectors": {"tok": [[1, 0, 0, 0], [0, 1, 0, 0]]}, "attributes": {"n": 1}}
{"id": "b", "vectors": {"tok": [[0, 0, 1, 0]]}, "attributes": {"n": 2}}
)");
  CtlOk({"import", "lv", Path("lv.jsonl")});
  // Tokens of three more points: c = rows 0-1, d = row 2, e = rows 3-5.
  const Rows tokens = {{0, 0, 0, 1}, {0, 0, 0.5f, 0}, {0.9f, 0.1f, 0, 0},
                       {0, 0.2f, 0, 0}, {0, 0, 0, 0.3f}, {0.1f, 0, 0, 0}};
  WriteFile(Path("tok.npy"), NpyBytes("<f4", "(6, 4)", F32Data(tokens)));
  std::string offsets;
  for (int64_t o : {0, 2, 3, 6}) Append(&offsets, o);
  WriteFile(Path("off.npy"), NpyBytes("<i8", "(4,)", offsets));
  std::string out = CtlOk({"import", "lv", Path("tok.npy"), "--field", "tok", "--offsets",
                           Path("off.npy"), "--id-prefix", "p", "--no-progress"});
  EXPECT_NE(out.find("imported 3 points"), std::string::npos) << out;
  EXPECT_EQ(Count("lv"), 5u);

  // MaxSim of {[1,0,0,0], [0,0,0,1]}: a 1 + 0, b 0, p0 (c) 0 + 1, p1 (d) 0.9,
  // p2 (e) 0.1 + 0.3.
  for (const char* exact : {"", "--exact"}) {
    std::vector<std::string> args = {"search", "lv", "--field", "tok", "--query-set-json",
                                     "[[1, 0, 0, 0], [0, 0, 0, 1]]", "-k", "5"};
    if (*exact) args.push_back(exact);
    json j = CtlJson(args);
    ASSERT_EQ(j["results"][0]["hits"].size(), 5u) << j.dump();
    EXPECT_EQ(j["results"][0]["hits"][2]["id"], "p1") << j.dump();
    EXPECT_NEAR(j["results"][0]["hits"][2]["score"].get<double>(), 0.9, 1e-5);
    EXPECT_NEAR(j["results"][0]["hits"][3]["score"].get<double>(), 0.4, 1e-5);
  }
  // A query set from a file, with a filter, returning the sets.
  WriteFile(Path("q.npy"), NpyBytes("<f4", "(1, 4)", F32Data({{0, 0, 1, 0}})));
  json j = CtlJson({"search", "lv", "--field", "tok", "--query-set-file", Path("q.npy"), "-k",
                    "1", "--filter", "n = 2", "--with-vectors"});
  ASSERT_EQ(j["results"][0]["hits"].size(), 1u) << j.dump();
  EXPECT_EQ(j["results"][0]["hits"][0]["id"], "b");
  EXPECT_EQ(j["results"][0]["hits"][0]["multiVectors"]["tok"]["vectors"].size(), 1u) << j.dump();

  // Memory and disk per field once sealed (the sets go to a table).
  CtlOk({"collection", "describe", "lv", "--wait-indexed", "--timeout-s", "60"});
  info = CtlJson({"collection", "describe", "lv"});
  EXPECT_GT(std::stoull(info["stats"]["vectors"][0]["memoryBytes"].get<std::string>()), 0u)
      << info.dump();
  EXPECT_GT(std::stoull(info["stats"]["vectors"][0]["diskBytes"].get<std::string>()), 0u)
      << info.dump();

  // Usage and server errors.
  CmdResult r = Ctl({"collection", "create", "bad", "--vector", "v:2:L2", "--encoding", "r_reps=2"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--multi-vector"), std::string::npos) << r.err;
  r = Ctl({"import", "lv", Path("tok.npy"), "--field", "tok", "--no-progress"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--offsets"), std::string::npos) << r.err;
  std::string bad_offsets;
  for (int64_t o : {0, 4, 2, 6}) Append(&bad_offsets, o);
  WriteFile(Path("bad_off.npy"), NpyBytes("<i8", "(4,)", bad_offsets));
  r = Ctl({"import", "lv", Path("tok.npy"), "--field", "tok", "--offsets", Path("bad_off.npy")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("never decrease"), std::string::npos) << r.err;
  r = Ctl({"search", "lv", "--field", "tok", "--query-set-json", "[[1, 0, 0]]"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("expected 4 values"), std::string::npos) << r.err;
  WriteFile(Path("big.jsonl"),
            R"({"id": "big", "vectors": {"tok": [[1,0,0,0],[1,0,0,0],[1,0,0,0],[1,0,0,0],[1,0,0,0],[1,0,0,0],[1,0,0,0],[1,0,0,0],[1,0,0,0]]}})"
            "\n");
  r = Ctl({"import", "lv", Path("big.jsonl")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("at most 8"), std::string::npos) << r.err;
  EXPECT_EQ(Count("lv"), 5u);
}

TEST_F(QuiverctlShopTest, DeleteByIdAndByFilter) {
  std::string out = CtlOk({"delete", "shop", "p1", "p2", "missing"});
  EXPECT_NE(out.find("deleted 2 points"), std::string::npos) << out;
  EXPECT_EQ(Count("shop"), 4u);
  out = CtlOk({"delete", "shop", "--filter", R"(color = "blue")"});  // p5 (p2 is gone)
  EXPECT_NE(out.find("deleted 1 points"), std::string::npos) << out;
  EXPECT_EQ(Count("shop"), 3u);
  CmdResult r = Ctl({"get", "shop", "p5"});
  EXPECT_EQ(r.exit_code, 1) << r;

  // Exactly one of ids and --filter.
  r = Ctl({"delete", "shop"});
  EXPECT_EQ(r.exit_code, 2) << r;
  r = Ctl({"delete", "shop", "p3", "--filter", "qty > 1"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_EQ(Count("shop"), 3u);
}

TEST_F(QuiverctlShopTest, ServerErrorsKeepCodeAndMessage) {
  CmdResult r = Ctl({"count", "nosuchcoll"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("error: NOT_FOUND"), std::string::npos) << r;
  EXPECT_NE(r.err.find("nosuchcoll"), std::string::npos) << r;
  r = Ctl({"collection", "describe", "nosuchcoll"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("NOT_FOUND"), std::string::npos) << r;
  r = Ctl({"import", "nosuchcoll", Path("shop.jsonl")});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("NOT_FOUND"), std::string::npos) << r;

  r = Ctl({"count", "shop", "--filter", "price <"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("INVALID_ARGUMENT"), std::string::npos) << r;
  EXPECT_NE(r.err.find("position"), std::string::npos) << r;
  r = Ctl({"search", "shop", "--vector", "1,0,0", "--filter", "color = = 1"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("position"), std::string::npos) << r;
}

TEST_F(QuiverctlShopTest, BadJsonlNamesTheLineAndStopsThere) {
  // Line 3 is not JSON; lines 1-2 are fine but share its batch, so nothing
  // reaches the server.
  WriteFile(Path("bad.jsonl"), R"({"id": "n1", "vector": [1, 2, 3]}
{"id": "n2", "vector": [1, 2, 4]}
{"id": "n3", "vector": [1, 2,
)");
  CmdResult r = Ctl({"import", "shop", Path("bad.jsonl")});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("bad.jsonl: line 3"), std::string::npos) << r;
  EXPECT_NE(r.err.find("invalid JSON"), std::string::npos) << r;

  WriteFile(Path("badtype.jsonl"),
            "{\"id\": \"n1\", \"vector\": [1, 2, 3]}\n"
            "{\"id\": \"n2\", \"vector\": [1, 2, 3], \"attributes\": {\"qty\": \"many\"}}\n");
  r = Ctl({"import", "shop", Path("badtype.jsonl")});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("line 2"), std::string::npos) << r;
  EXPECT_NE(r.err.find("qty"), std::string::npos) << r;

  WriteFile(Path("baddim.jsonl"), "{\"id\": \"n1\", \"vector\": [1, 2]}\n");
  r = Ctl({"import", "shop", Path("baddim.jsonl")});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("line 1"), std::string::npos) << r;
  EXPECT_NE(r.err.find("dimension is 3"), std::string::npos) << r;

  EXPECT_EQ(Count("shop"), 6u);
}

// Segments: an import lands in a growing segment, which the server seals
// ~2 s after the last write and indexes in the background; set-index
// re-indexes sealed segments. --wait-indexed waits for both.
TEST_F(QuiverctlTest, SegmentsWaitIndexedAndSetIndex) {
  CtlOk({"collection", "create", "seg", "--vector", "v:16:L2:HNSW,M=8"});
  const Rows rows = RandomRows(2000, 16, 11);
  WriteFile(Path("seg.fvecs"), FvecsBytes(rows));
  CtlOk({"import", "seg", Path("seg.fvecs"), "--id-prefix", "v", "--no-progress"});

  // Just written: one growing segment, shown in the table...
  std::string out = CtlOk({"collection", "describe", "seg"});
  for (const char* want : {"SEGMENT", "STATE", "ROWS", "DELETED", "INDEX", "growing",
                           "1 segment (0 indexed, 0 building, 0 sealed waiting, 1 growing)"}) {
    EXPECT_NE(out.find(want), std::string::npos) << want << " in\n" << out;
  }
  // ...and not indexed within a short --timeout-s: exit 1, saying so.
  CmdResult r = Ctl({"collection", "describe", "seg", "--wait-indexed", "--timeout-s", "0.3"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("DEADLINE_EXCEEDED"), std::string::npos) << r;
  EXPECT_NE(r.err.find("growing"), std::string::npos) << r;
  EXPECT_EQ(r.out, "") << r;

  auto expect_all_indexed = [&](const json& j, const std::string& index) {
    const json& segs = j["stats"]["segments"];
    ASSERT_GE(segs.size(), 1u) << j.dump(2);
    uint64_t rows_total = 0;
    for (const auto& seg : segs) {
      EXPECT_EQ(seg["state"], "INDEXED") << seg.dump();
      rows_total += std::stoull(seg["rows"].get<std::string>());
      ASSERT_EQ(seg["fields"].size(), 1u) << seg.dump();
      EXPECT_EQ(seg["fields"][0]["name"], "v");
      EXPECT_NE(seg["fields"][0]["index"].get<std::string>().find(index), std::string::npos)
          << seg.dump();
      EXPECT_NE(seg["fields"][0]["memoryBytes"], "0") << seg.dump();
    }
    EXPECT_EQ(rows_total, 2000u);
  };
  json j = CtlJson({"collection", "describe", "seg", "--wait-indexed", "--timeout-s", "20"});
  expect_all_indexed(j, "HNSW(M=8");
  EXPECT_EQ(j["schema"]["vectors"][0]["index"]["type"], "HNSW");

  out = CtlOk({"collection", "describe", "seg"});
  EXPECT_NE(out.find("indexed"), std::string::npos) << out;
  EXPECT_NE(out.find("HNSW(M=8, ef_construction="), std::string::npos) << out;
  EXPECT_NE(out.find("(1 indexed, 0 building, 0 sealed waiting, 0 growing)"), std::string::npos)
      << out;
  out = CtlOk({"stats", "seg"});
  EXPECT_NE(out.find("SEGMENT"), std::string::npos) << out;
  EXPECT_NE(out.find("1 segment ("), std::string::npos) << out;
  j = CtlJson({"stats", "seg"});
  ASSERT_GE(j["segments"].size(), 1u) << j.dump(2);
  EXPECT_EQ(j["segments"][0]["state"], "INDEXED");

  // The only vector field needs no --field. The answer is the new describe.
  out = CtlOk({"collection", "set-index", "seg", "--index", "IVF_FLAT,nlist=8"});
  EXPECT_NE(out.find("IVF_FLAT(nlist=8)"), std::string::npos) << out;
  EXPECT_NE(out.find("SEGMENT"), std::string::npos) << out;
  j = CtlJson({"collection", "describe", "seg", "--wait-indexed", "--timeout-s", "20"});
  expect_all_indexed(j, "IVF_FLAT");
  EXPECT_EQ(j["schema"]["vectors"][0]["index"]["type"], "IVF_FLAT");
  EXPECT_EQ(j["schema"]["vectors"][0]["index"]["params"]["nlist"], "8");

  j = CtlJson({"search", "seg", "--vector", VectorArg(rows[123]), "-k", "3"});
  ASSERT_GE(j["results"][0]["hits"].size(), 1u) << j.dump(2);
  EXPECT_EQ(j["results"][0]["hits"][0]["id"], "v123");
  EXPECT_NEAR(j["results"][0]["hits"][0]["score"].get<double>(), 0.0, 1e-4);

  // --json set-index prints the CollectionInfo, as describe --json does.
  j = CtlJson({"collection", "set-index", "seg", "--field", "v", "--index", "hnsw,M=12"});
  EXPECT_EQ(j["name"], "seg");
  EXPECT_EQ(j["schema"]["vectors"][0]["index"]["type"], "HNSW");
  EXPECT_EQ(j["schema"]["vectors"][0]["index"]["params"]["M"], "12");
  ASSERT_GE(j["stats"]["segments"].size(), 1u) << j.dump(2);

  // Values and names the server refuses: its INVALID_ARGUMENT, exit 1.
  r = Ctl({"collection", "set-index", "seg", "--field", "v", "--index", "HNSW,M=0"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("error: INVALID_ARGUMENT"), std::string::npos) << r;
  EXPECT_NE(r.err.find("\"M\""), std::string::npos) << r;
  r = Ctl({"collection", "set-index", "seg", "--index", "IVF_FLAT,bogus=1"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("error: INVALID_ARGUMENT"), std::string::npos) << r;
  r = Ctl({"collection", "set-index", "seg", "--field", "nope", "--index", "FLAT"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("nope"), std::string::npos) << r;
  r = Ctl({"collection", "set-index", "nosuch", "--index", "FLAT"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("NOT_FOUND"), std::string::npos) << r;
  // Malformed flags are usage errors: exit 2.
  r = Ctl({"collection", "set-index", "seg", "--index", "HNSW,M"});
  EXPECT_EQ(r.exit_code, 2) << r;
  r = Ctl({"collection", "set-index", "seg"});
  EXPECT_EQ(r.exit_code, 2) << r;
  r = Ctl({"collection", "describe", "seg", "--timeout-s", "5"});
  EXPECT_EQ(r.exit_code, 2) << r;
  // Nothing refused changed the index.
  j = CtlJson({"collection", "describe", "seg"});
  EXPECT_EQ(j["schema"]["vectors"][0]["index"]["params"]["M"], "12");
}

TEST_F(QuiverctlTest, SetIndexNeedsFieldWhenSeveral) {
  CtlOk({"collection", "create", "two", "--vector", "a:4:L2", "--vector", "b:4:IP"});
  CmdResult r = Ctl({"collection", "set-index", "two", "--index", "HNSW"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("pass --field"), std::string::npos) << r;
  // No points, no segments: nothing to wait for.
  std::string out = CtlOk({"collection", "set-index", "two", "--field", "b", "--index", "HNSW"});
  EXPECT_NE(out.find("0 segments"), std::string::npos) << out;
  json j = CtlJson({"collection", "describe", "two", "--wait-indexed", "--timeout-s", "1"});
  EXPECT_EQ(j["stats"]["segments"].size(), 0u) << j.dump(2);
  // Several fields: the segment columns name their field.
  WriteFile(Path("two.jsonl"), R"({"id": "x", "vectors": {"a": [1, 0, 0, 0], "b": [0, 1, 0, 0]}})"
                               "\n");
  CtlOk({"import", "two", Path("two.jsonl"), "--no-progress"});
  out = CtlOk({"collection", "describe", "two"});
  for (const char* want : {"a INDEX", "a MEMORY", "a DISK", "b INDEX", "growing"}) {
    EXPECT_NE(out.find(want), std::string::npos) << want << " in\n" << out;
  }
  j = CtlJson({"collection", "describe", "two"});
  EXPECT_EQ(j["schema"]["vectors"][0]["index"]["type"], "FLAT");
  EXPECT_EQ(j["schema"]["vectors"][1]["index"]["type"], "HNSW");
}

TEST_F(QuiverctlTest, BadVectorFilesImportNothing) {
  CtlOk({"collection", "create", "vec", "--vector", "emb:8:L2"});

  // Dimension 4 into a dimension-8 field.
  WriteFile(Path("d4.fvecs"), FvecsBytes(RandomRows(10, 4, 5)));
  CmdResult r = Ctl({"import", "vec", Path("d4.fvecs")});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("dimension 4"), std::string::npos) << r;
  EXPECT_NE(r.err.find("d4.fvecs"), std::string::npos) << r;
  EXPECT_EQ(Count("vec"), 0u);

  // Cut off in the middle of row 7.
  std::string bytes = FvecsBytes(RandomRows(10, 8, 6));
  bytes.resize(7 * 36 + 20);
  WriteFile(Path("cut.fvecs"), bytes);
  r = Ctl({"import", "vec", Path("cut.fvecs")});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r;
  EXPECT_NE(r.err.find("row 7"), std::string::npos) << r;
  EXPECT_EQ(Count("vec"), 0u);

  // Truncated npy, caught from the header before any write.
  std::string npy = NpyBytes("<f4", "(10, 8)", F32Data(RandomRows(10, 8, 7)));
  npy.resize(npy.size() - 10);
  WriteFile(Path("cut.npy"), npy);
  r = Ctl({"import", "vec", Path("cut.npy")});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("row 9 is incomplete"), std::string::npos) << r;
  EXPECT_EQ(Count("vec"), 0u);

  // Garbage where an fvecs dimension should be.
  WriteFile(Path("junk.fvecs"), std::string("\xff\xff\xff\x7f junk junk", 14));
  r = Ctl({"import", "vec", Path("junk.fvecs")});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("implausible dimension"), std::string::npos) << r;

  // Missing file.
  r = Ctl({"import", "vec", Path("nope.fvecs")});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("nope.fvecs"), std::string::npos) << r;
  EXPECT_NE(r.err.find("No such file"), std::string::npos) << r;

  // A name that says no format is a usage error.
  WriteFile(Path("data.bin"), "x");
  r = Ctl({"import", "vec", Path("data.bin")});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_NE(r.err.find("--format"), std::string::npos) << r;
  EXPECT_EQ(Count("vec"), 0u);
}

// `verify`: a clean collection exits 0; files damaged under the running
// server exit 3 with each finding in the table and in --json.
TEST_F(QuiverctlTest, VerifyFindsDamagedFiles) {
  ASSERT_TRUE(server_->Stop().ok());
  absl::Status s = server_->Start(dir_ + "/data", {"--segment-max-rows", "400"});
  ASSERT_TRUE(s.ok()) << s;
  CtlOk({"collection", "create", "dk", "--vector", "v:8:L2:IVF_SQ8:disk"});
  WriteFile(Path("base.fvecs"), FvecsBytes(RandomRows(1000, 8, 3)));
  CtlOk({"import", "dk", Path("base.fvecs"), "--id-prefix", "v"});
  CtlOk({"collection", "describe", "dk", "--wait-indexed"});

  // Indexed segments are written to disk just after: wait for their files.
  json clean;
  for (int tries = 0; tries < 100; ++tries) {
    clean = CtlJson({"verify", "dk", "--vector-sample", "50"});
    if (clean["filesChecked"] == 9) break;
    usleep(100 * 1000);
  }
  std::string out = CtlOk({"verify", "dk"});
  EXPECT_NE(out.find("defects"), std::string::npos) << out;
  EXPECT_EQ(out.find("FILE_"), std::string::npos) << out;
  EXPECT_EQ(clean["defectsTotal"], "0") << clean.dump();
  EXPECT_EQ(clean["segmentsChecked"], 3) << clean.dump();
  EXPECT_EQ(clean["rowsChecked"], "1000") << clean.dump();
  EXPECT_EQ(clean["vectorsChecked"], "150") << clean.dump();
  EXPECT_EQ(clean["filesChecked"], 9) << clean.dump();  // MANIFEST, index, table x 3

  // One rerank table's record bytes changed in place, one MANIFEST gone.
  std::vector<std::string> tables, manifests;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_ + "/data/segments")) {
    if (e.path().extension() == ".rrt") tables.push_back(e.path().string());
    if (e.path().filename() == "MANIFEST") manifests.push_back(e.path().string());
  }
  std::sort(tables.begin(), tables.end());
  std::sort(manifests.begin(), manifests.end());
  ASSERT_EQ(tables.size(), 3u);
  ASSERT_EQ(manifests.size(), 3u);
  {
    std::fstream f(tables[0], std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096 + 3 * 8 * 4);
    const float x = 1e6f;
    f.write(reinterpret_cast<const char*>(&x), sizeof(x));
  }
  std::filesystem::remove(manifests[2]);

  CmdResult r = Ctl({"verify", "dk"});
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_NE(r.err.find("3 defects found"), std::string::npos) << r;
  for (const char* want : {"FILE_CORRUPT", "VECTOR_MISMATCH", "FILE_MISSING", "MANIFEST",
                           "rerank table", "checksum"}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << want << " in\n" << r;
  }
  r = Ctl({"--json", "verify", "dk"});
  EXPECT_EQ(r.exit_code, 3) << r;
  json j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r;
  EXPECT_EQ(j["defectsTotal"], "3") << j.dump();
  std::multiset<std::string> kinds;
  for (const auto& d : j["defects"]) kinds.insert(d["kind"].get<std::string>());
  EXPECT_EQ(kinds, (std::multiset<std::string>{"FILE_CORRUPT", "FILE_MISSING",
                                               "VECTOR_MISMATCH"}))
      << j.dump();

  r = Ctl({"verify", "nosuch"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("NOT_FOUND"), std::string::npos) << r;
}

// quiverd --recall-audit-rate 1 re-runs every ANN search exactly in the
// background; `stats` shows the measured recall per field once one was
// audited, and nothing about it before.
TEST_F(QuiverctlTest, StatsShowsTheRecallAudit) {
  absl::Status s = server_->Stop();
  ASSERT_TRUE(s.ok()) << s;
  // No CPU budget: every search is audited, none skipped for a pause.
  s = server_->Start(dir_ + "/data", {"--recall-audit-rate", "1", "--recall-audit-cpu", "1",
                                      "--seal-idle-ms", "100"});
  ASSERT_TRUE(s.ok()) << s;
  CtlOk({"collection", "create", "aud", "--vector", "v:16:L2:HNSW"});
  const Rows rows = RandomRows(2000, 16, 5);
  WriteFile(Path("aud.fvecs"), FvecsBytes(rows));
  CtlOk({"import", "aud", Path("aud.fvecs"), "--id-prefix", "v", "--no-progress"});
  CtlOk({"collection", "describe", "aud", "--wait-indexed"});
  std::string out = CtlOk({"stats", "aud"});
  EXPECT_EQ(out.find("RECALL AUDIT"), std::string::npos) << out;
  for (int row = 0; row < 5; ++row) {
    CtlOk({"search", "aud", "--vector-file", Path("aud.fvecs"), "--row", std::to_string(row),
           "-k", "10"});
  }
  // Searches that ask for a recall print the recall their list should have,
  // and explain says how each segment meant to reach it.
  for (int row = 5; row < 8; ++row) {
    out = CtlOk({"search", "aud", "--vector-file", Path("aud.fvecs"), "--row",
                 std::to_string(row), "-k", "10", "--target-recall", "0.95", "--explain"});
    EXPECT_NE(out.find("predicted recall@10: "), std::string::npos) << out;
    EXPECT_NE(out.find("recall: target_recall 0.95: "), std::string::npos) << out;
  }
  const CmdResult bad = Ctl({"search", "aud", "--vector-file", Path("aud.fvecs"), "--row", "0",
                             "--target-recall", "0.95", "--ef", "64"});
  EXPECT_EQ(bad.exit_code, 1) << bad;
  EXPECT_NE(bad.err.find("INVALID_ARGUMENT"), std::string::npos) << bad;
  // The audit thread runs at the lowest priority: on a busy machine it waits.
  const absl::Time until = absl::Now() + absl::Seconds(120);
  // All eight audited: the three with a target show beside the others.
  while ((out = CtlOk({"stats", "aud"})).find("RECALL AUDIT") == std::string::npos ||
         CtlJson({"stats", "aud"})["vectors"][0].value("recallAuditSearches", "0") != "8") {
    ASSERT_LT(absl::Now(), until) << out;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_NE(out.find("AUDITED SEARCHES"), std::string::npos) << out;
  const json j = CtlJson({"stats", "aud"});
  const json& v = j["vectors"][0];
  EXPECT_EQ(v["name"], "v");
  EXPECT_GE(std::stoull(v["recallAuditSearches"].get<std::string>()), 1u) << v.dump();
  // Each query is a stored row: HNSW finds nearly all of its exact top 10.
  EXPECT_GE(v["recallAudit"].get<double>(), 0.9) << v.dump();
  EXPECT_EQ(v["recallAuditTargetSearches"], "3") << v.dump();
  EXPECT_NEAR(v["recallAuditTarget"].get<double>(), 0.95, 1e-6) << v.dump();
  EXPECT_GE(v["recallAuditTargetAchieved"].get<double>(), 0.9) << v.dump();
  EXPECT_NE(out.find("TARGET RECALL"), std::string::npos) << out;
}

// collection update: attributes added and their indexes turned on and off
// (built in the background, shown by describe); a type change is refused.
TEST_F(QuiverctlTest, CollectionUpdateEvolvesAttributes) {
  CtlOk({"collection", "create", "evo", "--vector", "v:3:L2", "--attr", "qty:int64"});
  std::string lines;
  for (int i = 0; i < 40; ++i) {
    lines += absl::StrCat("{\"id\": \"p", i, "\", \"vector\": [", i, ", 1, 2], \"attributes\": "
                          "{\"qty\": ", i, "}}\n");
  }
  WriteFile(Path("evo.jsonl"), lines);
  CtlOk({"import", "evo", Path("evo.jsonl"), "--no-progress"});

  std::string out = CtlOk({"collection", "update", "evo", "--add-attribute", "tag:string:indexed",
                           "--index-attribute", "qty"});
  EXPECT_NE(out.find("updated"), std::string::npos) << out;
  EXPECT_NE(out.find("tag"), std::string::npos) << out;
  json j = CtlJson({"collection", "describe", "evo", "--wait-indexed", "--timeout-s", "20"});
  ASSERT_EQ(j["schema"]["attributes"].size(), 2u) << j.dump(2);
  EXPECT_EQ(j["schema"]["attributes"][0]["indexed"], true);
  EXPECT_EQ(j["schema"]["attributes"][1]["name"], "tag");
  EXPECT_EQ(j["schema"]["attributes"][1]["type"], "STRING");
  ASSERT_GE(j["stats"]["segments"].size(), 1u) << j.dump(2);
  for (const auto& seg : j["stats"]["segments"]) {
    EXPECT_EQ(seg["indexedAttributes"], json({"qty", "tag"})) << seg.dump();
  }
  EXPECT_EQ(Count("evo", "tag IS NULL"), 40u);

  // A type change: the server's FAILED_PRECONDITION, exit 1, nothing changed.
  CmdResult r = Ctl({"collection", "update", "evo", "--add-attribute", "qty:double",
                     "--add-attribute", "more:bool"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("FAILED_PRECONDITION"), std::string::npos) << r;
  EXPECT_NE(r.err.find("is INT64"), std::string::npos) << r;
  r = Ctl({"collection", "update", "evo"});
  EXPECT_EQ(r.exit_code, 2) << r;
  r = Ctl({"collection", "update", "evo", "--index-attribute", "qty:bogus"});
  EXPECT_EQ(r.exit_code, 2) << r;

  CtlOk({"collection", "update", "evo", "--unindex-attribute", "qty"});
  j = CtlJson({"collection", "describe", "evo", "--wait-indexed", "--timeout-s", "20"});
  ASSERT_EQ(j["schema"]["attributes"].size(), 2u) << j.dump(2);
  EXPECT_EQ(j["schema"]["attributes"][0]["indexed"], false) << j.dump(2);
  for (const auto& seg : j["stats"]["segments"]) {
    EXPECT_EQ(seg["indexedAttributes"], json({"tag"})) << seg.dump();
  }
  // Vector fields: one added (optional, in describe), one dropped.
  out = CtlOk({"collection", "update", "evo", "--add-vector", "w:2:ip:hnsw"});
  EXPECT_NE(out.find("w (optional)"), std::string::npos) << out;
  out = CtlOk({"collection", "update", "evo", "--drop-vector", "v"});
  j = CtlJson({"collection", "describe", "evo", "--wait-indexed", "--timeout-s", "20"});
  ASSERT_EQ(j["schema"]["vectors"].size(), 1u) << j.dump(2);
  EXPECT_EQ(j["schema"]["vectors"][0]["name"], "w");
  EXPECT_EQ(j["schema"]["vectors"][0]["optional"], true);
  EXPECT_EQ(Count("evo", ""), 40u);
  // The last vector field cannot go.
  r = Ctl({"collection", "update", "evo", "--drop-vector", "w"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_NE(r.err.find("FAILED_PRECONDITION"), std::string::npos) << r;
}

}  // namespace
}  // namespace quiver
