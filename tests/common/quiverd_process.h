// QuiverdProcess: the real quiverd binary run as a child process, for the
// end-to-end tests (quiverctl, crash, restart and durability tests) and for
// the benchmarks. It is the only quiverd launcher in the repository; it is
// part of the quiver_testkit library (tests/common/CMakeLists.txt), which
// also defines QUIVERD_PATH, the quiverd built by the same build.
//
// Start() picks a free loopback port and runs
//   quiverd --listen 127.0.0.1:PORT --data-dir DIR [--durability D]
//           [--search-threads N] --log-level LEVEL [extra...]
// with fork/execve, then waits until the server is ready: its port accepts
// TCP connections (quiverd opens it only after storage is open), or the
// gRPC health service answers SERVING (wait_healthy), or a probe of the
// caller's. Without a data directory it makes a fresh temporary one.
// Stop() is the graceful path (SIGTERM, then SIGKILL after a grace period);
// Kill9() is a crash. The child gets SIGKILL if this process dies, and a
// process leaving through exit() kills its servers and removes their
// temporary directories, so no stray server or directory is left behind.
//
// Ownership: the object owns the child and the temporary directory it made
// (removed when the object goes away, unless QUIVER_BENCH_KEEP_TMP is set in
// the environment); a data directory passed in belongs to the caller.
// Thread-safety: none; use one object from one thread.
// Errors: absl::Status; a failed start's message ends with the tail of the
// server's log when the log is captured.
#ifndef QUIVER_TESTS_COMMON_QUIVERD_PROCESS_H_
#define QUIVER_TESTS_COMMON_QUIVERD_PROCESS_H_

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace quiver::client {
class Client;
}  // namespace quiver::client

namespace quiver::testing {

struct QuiverdOptions {
  // Path of the quiverd binary. Default: the one this build made.
  std::string binary = QUIVERD_PATH;
  // Passed as --log-level. Default "warn", so test logs stay readable.
  std::string log_level = "warn";
  // --durability and --search-threads; empty / 0: not passed (quiverd's
  // defaults).
  std::string durability;
  int search_threads = 0;
  // The data directory. Empty: "data" in a fresh temporary directory.
  std::string data_dir;
  // Appended to the command line.
  std::vector<std::string> extra_args;
  // Extra environment, "NAME=value" (e.g. OMP_NUM_THREADS=1); the rest of
  // the environment is inherited.
  std::vector<std::string> env;
  // Where the temporary directory is made. Empty: the system's temporary
  // directory. Benchmarks put it on the same file system as their baselines.
  std::string tmp_root;
  // The server's stdout and stderr: appended to `log_file` if set, else to
  // quiverd.log in the temporary directory if `capture_log`, else shared
  // with this process.
  std::string log_file;
  bool capture_log = false;
  // Readiness: `ready(address)` if set; else the gRPC health check if
  // `wait_healthy`; else a TCP connection to the port.
  std::function<bool(const std::string& address)> ready;
  bool wait_healthy = false;
  // How long Start() waits for readiness, and Stop() after SIGTERM before
  // SIGKILL.
  absl::Duration start_timeout = absl::Seconds(60);
  absl::Duration stop_timeout = absl::Seconds(10);
};

class QuiverdProcess {
 public:
  explicit QuiverdProcess(QuiverdOptions options);
  // Stops a still-running server (Stop()), then removes the temporary
  // directory.
  ~QuiverdProcess();
  QuiverdProcess(const QuiverdProcess&) = delete;
  QuiverdProcess& operator=(const QuiverdProcess&) = delete;

  // A new object with `options`, started: the form for code that keeps the
  // server behind a pointer.
  static absl::StatusOr<std::unique_ptr<QuiverdProcess>> Launch(QuiverdOptions options);

  // Starts quiverd and waits until ready. If the server exits during
  // start-up because another process took the port meanwhile, it retries
  // with a fresh port. FAILED_PRECONDITION if already running; UNAVAILABLE
  // or DEADLINE_EXCEEDED if it does not come up (the server is then
  // killed); INTERNAL if fork/exec or the temporary directory fails.
  absl::Status Start();
  // The same with this data directory and extra arguments.
  absl::Status Start(const std::string& data_dir, std::vector<std::string> extra_args = {});

  // SIGTERM, then waits up to stop_timeout and falls back to SIGKILL. OK when
  // the server exited with status 0 on its own; otherwise an error saying how
  // it ended (non-zero exit, signal, or that SIGKILL was needed). OK if not
  // running.
  absl::Status Stop();

  // SIGKILL and reap, as a crash would end it. OK if not running.
  absl::Status Kill9();

  // Stop() then start again with the same data dir, arguments and port (so
  // clients can reconnect to the same address). Returns the first error.
  absl::Status Restart();

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // The port of the last Start(); 0 before.
  int port() const { return port_; }
  // "127.0.0.1:PORT".
  std::string address() const;
  const std::string& data_dir() const { return options_.data_dir; }
  // Where the server's output goes; "" when it is not captured.
  const std::string& log_path() const { return log_path_; }
  // The command line of the last start, for reports.
  const std::vector<std::string>& argv() const { return argv_; }
  // The waitpid() status of the last exit; -1 before one.
  int last_wait_status() const { return last_wait_status_; }

 private:
  absl::Status PrepareDirectories();
  std::vector<std::string> BuildArgv() const;
  // Launches on `port_` and waits for readiness; UNAVAILABLE with
  // `*port_taken` set when the child died during start-up, possibly because
  // the port was taken.
  absl::Status Launch(bool* port_taken);
  absl::Status WaitReady(bool* port_taken);
  bool Ready();
  absl::Status WaitExit(absl::Duration timeout, bool* exited);
  std::string LogTail() const;

  QuiverdOptions options_;
  std::string tmp_dir_;  // made by this object; "" if none
  std::string log_path_;
  std::vector<std::string> argv_;
  int port_ = 0;
  pid_t pid_ = -1;
  int last_wait_status_ = -1;
  // For wait_healthy: made once the port is open (see Ready()).
  std::unique_ptr<client::Client> health_client_;
};

// A port on 127.0.0.1 that was free a moment ago (bound to port 0, then
// released). 0 on failure.
int PickFreePort();

// Last `max_bytes` of a file ("" if unreadable), for error messages.
std::string FileTail(const std::string& path, size_t max_bytes = 2000);

// Lines in a file (0 if unreadable).
size_t CountLines(const std::string& path);

// Runs quiverd (QUIVERD_PATH) with `args` until it exits, for starts that
// are expected to fail: no port is picked and no readiness awaited. Its
// stdout and stderr go to `log_path`. Returns its exit code (-1 if a
// signal ended it, or it was still running after `timeout` and was killed)
// and its output.
std::pair<int, std::string> RunQuiverdToExit(const std::vector<std::string>& args,
                                             const std::string& log_path,
                                             absl::Duration timeout = absl::Seconds(60));

// Handler times quiverd logs at --log-level debug, one line per RPC
// ("... <Method> 12.345ms OK", server/services.cc LogRpc), for lines after
// the first `skip_lines` of the log. The handler time runs from the handler's
// start (request received and parsed) to its reply being handed to gRPC, so
// client latency minus it is transport, (de)serialization and queueing.
std::vector<double> RpcTimesFromLog(const std::string& log_path, const std::string& method,
                                    size_t skip_lines = 0);

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_COMMON_QUIVERD_PROCESS_H_
