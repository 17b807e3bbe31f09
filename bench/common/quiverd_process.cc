#include "bench/common/quiverd_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/client.h"

namespace quiver::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Servers still running and directories still present, so that a benchmark
// leaving through exit() (an error path) does not leave them behind.
std::mutex g_live_mu;
std::vector<std::pair<pid_t*, std::string>>* g_live = nullptr;

void CleanUpAtExit() {
  std::lock_guard<std::mutex> lock(g_live_mu);
  if (g_live == nullptr) return;
  for (auto& [pid, dir] : *g_live) {
    if (*pid > 0) {
      kill(*pid, SIGKILL);
      waitpid(*pid, nullptr, 0);
      *pid = -1;
    }
    if (std::getenv("QUIVER_BENCH_KEEP_TMP") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }
  }
  g_live->clear();
}

void Register(pid_t* pid, const std::string& dir) {
  std::lock_guard<std::mutex> lock(g_live_mu);
  if (g_live == nullptr) {
    g_live = new std::vector<std::pair<pid_t*, std::string>>();
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

}  // namespace

absl::StatusOr<int> FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string err = std::strerror(errno);
    close(fd);
    return absl::InternalError(absl::StrCat("bind/getsockname: ", err));
  }
  const int port = ntohs(addr.sin_port);
  close(fd);
  return port;
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
    try {
      out.push_back(std::stod(line.substr(num, ms - num)));
    } catch (...) {
    }
  }
  return out;
}

size_t CountLines(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

std::string FileTail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > max_bytes ? s.substr(s.size() - max_bytes) : s;
}

absl::StatusOr<std::unique_ptr<QuiverdProcess>> QuiverdProcess::Start(
    const QuiverdOptions& options) {
  if (access(options.binary.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("quiverd binary not executable: ", options.binary));
  }
  std::error_code ec;
  std::filesystem::create_directories(options.tmp_root, ec);
  std::string tmpl = options.tmp_root + "/quiverd-bench-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp under ", options.tmp_root, ": ",
                                            std::strerror(errno)));
  }
  std::unique_ptr<QuiverdProcess> p(new QuiverdProcess());
  p->dir_ = tmpl;
  Register(&p->pid_, p->dir_);
  p->data_dir_ = options.data_dir.empty() ? tmpl + "/data" : options.data_dir;
  p->log_path_ = tmpl + "/quiverd.log";

  // The port may be taken between FreeLoopbackPort and the server's bind;
  // then quiverd exits and we try another.
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto port = FreeLoopbackPort();
    if (!port.ok()) return port.status();
    p->target_ = absl::StrCat("127.0.0.1:", *port);
    p->argv_ = {options.binary,
                "--listen", p->target_,
                "--data-dir", p->data_dir_,
                "--durability", options.durability,
                "--search-threads", std::to_string(options.search_threads),
                "--log-level", options.log_level};
    for (const auto& a : options.extra_args) p->argv_.push_back(a);

    // Everything the child needs is prepared before fork: after fork in a
    // multi-threaded process only async-signal-safe calls are allowed.
    std::vector<char*> args;
    for (auto& a : p->argv_) args.push_back(a.data());
    args.push_back(nullptr);
    const char* log_path = p->log_path_.c_str();
    std::vector<std::string> env_store;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string kv = *e;
      bool overridden = false;
      for (const auto& x : options.env) {
        const size_t eq = x.find('=');
        if (eq != std::string::npos && kv.compare(0, eq + 1, x, 0, eq + 1) == 0) overridden = true;
      }
      if (!overridden) env_store.push_back(kv);
    }
    for (const auto& x : options.env) env_store.push_back(x);
    std::vector<char*> envp;
    for (auto& kv : env_store) envp.push_back(kv.data());
    envp.push_back(nullptr);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
    if (pid == 0) {
      // Child: die with the benchmark, log to a file, exec.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      const int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
      }
      execve(args[0], args.data(), envp.data());
      _exit(127);
    }
    p->pid_ = pid;

    // Wait for the port to accept TCP connections before creating a gRPC
    // channel: a channel that first tried while nothing listened goes
    // through reconnect backoff (and re-resolution), and answered only ~5 s
    // later here, so start-up times (restart benchmarks) measured the
    // client instead of the server.
    const int port_num = std::stoi(p->target_.substr(p->target_.rfind(':') + 1));
    auto port_open = [port_num] {
      const int fd = socket(AF_INET, SOCK_STREAM, 0);
      if (fd < 0) return false;
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<uint16_t>(port_num));
      const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
      close(fd);
      return ok;
    };
    std::unique_ptr<client::Client> client;
    auto healthy = [&] {
      if (client == nullptr) {
        if (!port_open()) return false;
        client::ClientOptions co;
        co.timeout = absl::Milliseconds(500);
        client = std::make_unique<client::Client>(p->target_, co);
      }
      return client->Health().ok();
    };
    const auto start = Clock::now();
    bool exited = false;
    while (Since(start) < options.start_timeout_s) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        p->pid_ = -1;
        break;
      }
      if (healthy()) return p;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!exited) {
      (void)p->Stop(5);
      return absl::DeadlineExceededError(
          absl::StrCat("quiverd did not become healthy within ", options.start_timeout_s,
                       " s; log:\n", FileTail(p->log_path_)));
    }
    const std::string log = FileTail(p->log_path_);
    if (log.find("cannot listen") == std::string::npos &&
        log.find("ddress already in use") == std::string::npos) {
      return absl::InternalError(absl::StrCat("quiverd exited during start-up: ",
                                              absl::StrJoin(p->argv_, " "), "\nlog:\n", log));
    }
  }
  return absl::UnavailableError("could not find a free port for quiverd");
}

absl::Status QuiverdProcess::Stop(double timeout_s) {
  if (pid_ <= 0) return absl::OkStatus();
  kill(pid_, SIGTERM);
  const auto start = Clock::now();
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) {
      pid_ = -1;
      return absl::InternalError(absl::StrCat("waitpid: ", std::strerror(errno)));
    }
    if (Since(start) > timeout_s) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      pid_ = -1;
      return absl::DeadlineExceededError(
          absl::StrCat("quiverd did not exit within ", timeout_s, " s of SIGTERM; killed"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("quiverd exited with status ", status, "; log:\n",
                                          FileTail(log_path_)));
}

QuiverdProcess::~QuiverdProcess() {
  (void)Stop();
  Unregister(&pid_);
  if (!dir_.empty() && std::getenv("QUIVER_BENCH_KEEP_TMP") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

}  // namespace quiver::bench
