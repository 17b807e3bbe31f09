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
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace quiver::testing {
namespace {

constexpr absl::Duration kPollInterval = absl::Milliseconds(25);

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

QuiverdProcess::QuiverdProcess(QuiverdOptions options) : options_(std::move(options)) {}

QuiverdProcess::~QuiverdProcess() { (void)Kill9(); }

std::string QuiverdProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

absl::Status QuiverdProcess::Start(const std::string& data_dir,
                                   std::vector<std::string> extra_args) {
  if (running()) return absl::FailedPreconditionError("quiverd is already running");
  data_dir_ = data_dir;
  extra_args_ = std::move(extra_args);
  absl::Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = PickFreePort();
    if (port_ == 0) return absl::InternalError("cannot find a free port");
    bool exited_early = false;
    last = Launch(&exited_early);
    if (last.ok() || !exited_early) return last;
  }
  return last;
}

absl::Status QuiverdProcess::Launch(bool* exited_early) {
  *exited_early = false;
  // Everything the child needs is built before fork: between fork and exec
  // only async-signal-safe calls are allowed (the parent may have threads).
  std::vector<std::string> args = {options_.binary, "--listen",    address(),         "--data-dir",
                                   data_dir_,       "--log-level", options_.log_level};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int log_fd = -1;
  if (!options_.log_file.empty()) {
    log_fd = open(options_.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      return absl::InternalError(
          absl::StrCat("cannot open ", options_.log_file, ": ", std::strerror(errno)));
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
    // Die with the test process, so a crashed test leaves no server behind.
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
    execv(argv[0], argv.data());
    _exit(127);
  }
  if (log_fd >= 0) close(log_fd);
  pid_ = pid;

  const absl::Time deadline = absl::Now() + options_.start_timeout;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      last_wait_status_ = status;
      *exited_early = true;
      return absl::UnavailableError(absl::StrCat("quiverd (", options_.binary, ") ",
                                                 DescribeWaitStatus(status), " during start-up on ",
                                                 address()));
    }
    const bool ready = options_.ready ? options_.ready(address()) : TcpConnects(port_);
    if (ready) return absl::OkStatus();
    if (absl::Now() > deadline) {
      (void)Kill9();
      return absl::UnavailableError(absl::StrCat("quiverd did not become ready on ", address(),
                                                 " within ",
                                                 absl::FormatDuration(options_.start_timeout)));
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
    return absl::InternalError(
        absl::StrCat("quiverd ", DescribeWaitStatus(last_wait_status_), " after SIGTERM"));
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
  bool exited_early = false;
  return Launch(&exited_early);
}

}  // namespace quiver::testing
