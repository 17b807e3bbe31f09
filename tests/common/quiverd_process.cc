// QuiverdProcess: start, probe, stop and kill a quiverd child process.
#include "tests/common/quiverd_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/client.h"

namespace quiver::testing {
namespace {

constexpr absl::Duration kPollInterval = absl::Milliseconds(5);
constexpr int kStartAttempts = 5;

bool TcpConnects(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("killed by signal ", WTERMSIG(status));
  return absl::StrCat("ended with wait status ", status);
}

bool KeepTmp() { return std::getenv("QUIVER_BENCH_KEEP_TMP") != nullptr; }

// Servers still running and temporary directories still present, so that a
// program leaving through exit() (a benchmark's error path) does not leave
// them behind. Guarded by a mutex because exit() may run on any thread.
std::mutex g_live_mu;
std::vector<std::pair<pid_t*, const std::string*>>* g_live = nullptr;

void CleanUpAtExit() {
  std::lock_guard<std::mutex> lock(g_live_mu);
  if (g_live == nullptr) return;
  for (auto& [pid, dir] : *g_live) {
    if (*pid > 0) {
      kill(*pid, SIGKILL);
      waitpid(*pid, nullptr, 0);
      *pid = -1;
    }
    if (!dir->empty() && !KeepTmp()) {
      std::error_code ec;
      std::filesystem::remove_all(*dir, ec);
    }
  }
  g_live->clear();
}

// `dir` is read at exit: the object may make its directory after this.
void Register(pid_t* pid, const std::string* dir) {
  std::lock_guard<std::mutex> lock(g_live_mu);
  if (g_live == nullptr) {
    g_live = new std::vector<std::pair<pid_t*, const std::string*>>();
    std::atexit(CleanUpAtExit);
  }
  g_live->emplace_back(pid, dir);
}

void Unregister(pid_t* pid) {
  std::lock_guard<std::mutex> lock(g_live_mu);
  if (g_live == nullptr) return;
  for (size_t i = 0; i < g_live->size(); ++i) {
    if ((*g_live)[i].first == pid) {
      g_live->erase(g_live->begin() + static_cast<long>(i));
      return;
    }
  }
}

// The environment with `extra` ("NAME=value") replacing or adding entries.
std::vector<std::string> MergedEnvironment(const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    bool overridden = false;
    for (const auto& x : extra) {
      const size_t eq = x.find('=');
      if (eq != std::string::npos && kv.compare(0, eq + 1, x, 0, eq + 1) == 0) overridden = true;
    }
    if (!overridden) out.push_back(kv);
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

}  // namespace

int PickFreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string FileTail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > max_bytes ? s.substr(s.size() - max_bytes) : s;
}

std::pair<int, std::string> RunQuiverdToExit(const std::vector<std::string>& args,
                                             const std::string& log_path,
                                             absl::Duration timeout) {
  std::vector<std::string> copy = {QUIVERD_PATH};
  copy.insert(copy.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  const absl::Time deadline = absl::Now() + timeout;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return {-1, "did not exit: " + FileTail(log_path, 1 << 20)};
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, FileTail(log_path, 1 << 20)};
}

size_t CountLines(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

std::vector<double> RpcTimesFromLog(const std::string& log_path, const std::string& method,
                                    size_t skip_lines) {
  std::vector<double> out;
  std::ifstream in(log_path);
  std::string line;
  const std::string needle = " " + method + " ";
  for (size_t n = 0; std::getline(in, line); ++n) {
    if (n < skip_lines) continue;
    const size_t at = line.find(needle);
    if (at == std::string::npos) continue;
    const size_t num = at + needle.size();
    const size_t ms = line.find("ms", num);
    if (ms == std::string::npos) continue;
    char* end = nullptr;
    const std::string text = line.substr(num, ms - num);
    const double v = std::strtod(text.c_str(), &end);
    if (end != text.c_str()) out.push_back(v);
  }
  return out;
}

QuiverdProcess::QuiverdProcess(QuiverdOptions options) : options_(std::move(options)) {
  Register(&pid_, &tmp_dir_);
}

QuiverdProcess::~QuiverdProcess() {
  (void)Stop();
  Unregister(&pid_);
  if (!tmp_dir_.empty() && !KeepTmp()) {
    std::error_code ec;
    std::filesystem::remove_all(tmp_dir_, ec);
  }
}

absl::StatusOr<std::unique_ptr<QuiverdProcess>> QuiverdProcess::Launch(QuiverdOptions options) {
  auto p = std::make_unique<QuiverdProcess>(std::move(options));
  if (absl::Status s = p->Start(); !s.ok()) return s;
  return p;
}

std::string QuiverdProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

std::string QuiverdProcess::LogTail() const {
  if (log_path_.empty()) return "";
  return absl::StrCat("; log:\n", FileTail(log_path_));
}

absl::Status QuiverdProcess::Start(const std::string& data_dir,
                                   std::vector<std::string> extra_args) {
  if (running()) return absl::FailedPreconditionError("quiverd is already running");
  options_.data_dir = data_dir;
  options_.extra_args = std::move(extra_args);
  return Start();
}

absl::Status QuiverdProcess::PrepareDirectories() {
  const bool need_tmp =
      options_.data_dir.empty() || (options_.capture_log && options_.log_file.empty());
  if (need_tmp && tmp_dir_.empty()) {
    std::error_code ec;
    const std::string root = options_.tmp_root.empty()
                                 ? std::filesystem::temp_directory_path(ec).string()
                                 : options_.tmp_root;
    std::filesystem::create_directories(root, ec);
    std::string tmpl = root + "/quiverd-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      return absl::InternalError(absl::StrCat("mkdtemp under ", root, ": ", std::strerror(errno)));
    }
    tmp_dir_ = tmpl;
  }
  if (options_.data_dir.empty()) options_.data_dir = tmp_dir_ + "/data";
  if (!options_.log_file.empty()) {
    log_path_ = options_.log_file;
  } else if (options_.capture_log) {
    log_path_ = tmp_dir_ + "/quiverd.log";
  }
  return absl::OkStatus();
}

absl::Status QuiverdProcess::Start() {
  if (running()) return absl::FailedPreconditionError("quiverd is already running");
  if (access(options_.binary.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("quiverd binary not executable: ", options_.binary));
  }
  if (absl::Status s = PrepareDirectories(); !s.ok()) return s;
  absl::Status last;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    port_ = PickFreePort();
    if (port_ == 0) return absl::InternalError("cannot find a free port");
    bool port_taken = false;
    last = Launch(&port_taken);
    if (last.ok() || !port_taken) return last;
  }
  return last;
}

std::vector<std::string> QuiverdProcess::BuildArgv() const {
  std::vector<std::string> args = {options_.binary, "--listen", address(), "--data-dir",
                                   options_.data_dir};
  if (!options_.durability.empty()) {
    args.insert(args.end(), {"--durability", options_.durability});
  }
  if (options_.search_threads > 0) {
    args.insert(args.end(), {"--search-threads", std::to_string(options_.search_threads)});
  }
  args.insert(args.end(), {"--log-level", options_.log_level});
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  return args;
}

absl::Status QuiverdProcess::Launch(bool* port_taken) {
  *port_taken = false;
  // Everything the child needs is built before fork: between fork and exec
  // only async-signal-safe calls are allowed (the parent may have threads).
  argv_ = BuildArgv();
  std::vector<std::string> args = argv_;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = MergedEnvironment(options_.env);
  std::vector<char*> envp;
  for (auto& kv : env) envp.push_back(kv.data());
  envp.push_back(nullptr);

  int log_fd = -1;
  if (!log_path_.empty()) {
    log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      return absl::InternalError(
          absl::StrCat("cannot open ", log_path_, ": ", std::strerror(errno)));
    }
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    if (log_fd >= 0) close(log_fd);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(err)));
  }
  if (pid == 0) {
    // Die with the parent, so a crashed test or benchmark leaves no server.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    if (log_fd >= 0) {
      dup2(log_fd, STDOUT_FILENO);
      dup2(log_fd, STDERR_FILENO);
    }
    // The test runner may have blocked signals; quiverd sets its own mask.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  if (log_fd >= 0) close(log_fd);
  pid_ = pid;
  health_client_.reset();
  return WaitReady(port_taken);
}

bool QuiverdProcess::Ready() {
  if (options_.ready) return options_.ready(address());
  // Even with a health check, wait for the port to accept TCP connections
  // before making a gRPC channel: a channel that first tried while nothing
  // listened goes through reconnect backoff and answers only seconds later,
  // so start-up times (restart benchmarks) would measure the client.
  if (health_client_ == nullptr) {
    if (!TcpConnects(port_)) return false;
    if (!options_.wait_healthy) return true;
    client::ClientOptions co;
    co.timeout = absl::Milliseconds(500);
    health_client_ = std::make_unique<client::Client>(address(), co);
  }
  return health_client_->Health().ok();
}

absl::Status QuiverdProcess::WaitReady(bool* port_taken) {
  const absl::Time deadline = absl::Now() + options_.start_timeout;
  while (true) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      last_wait_status_ = status;
      health_client_.reset();
      const std::string log = log_path_.empty() ? "" : FileTail(log_path_);
      // Without a log there is no telling why; trying another port is cheap.
      *port_taken = log_path_.empty() || log.find("cannot listen") != std::string::npos ||
                    log.find("ddress already in use") != std::string::npos;
      return absl::UnavailableError(absl::StrCat("quiverd ", DescribeWaitStatus(status),
                                                 " during start-up on ", address(), ": ",
                                                 absl::StrJoin(argv_, " "), LogTail()));
    }
    if (Ready()) {
      health_client_.reset();
      return absl::OkStatus();
    }
    if (absl::Now() > deadline) {
      (void)Kill9();
      return absl::DeadlineExceededError(absl::StrCat(
          "quiverd did not become ready on ", address(), " within ",
          absl::FormatDuration(options_.start_timeout), LogTail()));
    }
    absl::SleepFor(kPollInterval);
  }
}

absl::Status QuiverdProcess::WaitExit(absl::Duration timeout, bool* exited) {
  *exited = false;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      last_wait_status_ = status;
      *exited = true;
      return absl::OkStatus();
    }
    if (r < 0 && errno != EINTR) {
      const int err = errno;
      pid_ = -1;
      return absl::InternalError(absl::StrCat("waitpid: ", std::strerror(err)));
    }
    if (absl::Now() >= deadline) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(10));
  }
}

absl::Status QuiverdProcess::Stop() {
  if (!running()) return absl::OkStatus();
  kill(pid_, SIGTERM);
  bool exited = false;
  if (absl::Status s = WaitExit(options_.stop_timeout, &exited); !s.ok()) return s;
  if (!exited) {
    kill(pid_, SIGKILL);
    if (absl::Status s = WaitExit(absl::InfiniteDuration(), &exited); !s.ok()) return s;
    return absl::DeadlineExceededError(absl::StrCat("quiverd did not exit within ",
                                                    absl::FormatDuration(options_.stop_timeout),
                                                    " of SIGTERM; killed it"));
  }
  if (!WIFEXITED(last_wait_status_) || WEXITSTATUS(last_wait_status_) != 0) {
    return absl::InternalError(absl::StrCat(
        "quiverd ", DescribeWaitStatus(last_wait_status_), " after SIGTERM", LogTail()));
  }
  return absl::OkStatus();
}

absl::Status QuiverdProcess::Kill9() {
  if (!running()) return absl::OkStatus();
  kill(pid_, SIGKILL);
  bool exited = false;
  return WaitExit(absl::InfiniteDuration(), &exited);
}

absl::Status QuiverdProcess::Restart() {
  if (absl::Status s = Stop(); !s.ok()) return s;
  bool port_taken = false;
  return Launch(&port_taken);
}

}  // namespace quiver::testing
