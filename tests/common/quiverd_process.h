// QuiverdProcess: the real quiverd binary run as a child process, for
// end-to-end tests (quiverctl, non-C++ clients, crash and restart tests).
//
// It picks a free loopback port, starts
//   quiverd --listen 127.0.0.1:PORT --data-dir DIR --log-level LEVEL [extra...]
// with fork/execv, and waits until the server answers a readiness probe.
// Stop() is the graceful path (SIGTERM, then SIGKILL after a grace period);
// Kill9() is a crash. The child also gets SIGKILL if the test process dies,
// so a crashed test leaves no stray server behind.
//
// To use it from another test target, compile this file into it:
//   add_executable(my_e2e_test my_e2e_test.cc
//                  ${CMAKE_SOURCE_DIR}/tests/common/quiverd_process.cc)
//   target_include_directories(my_e2e_test PRIVATE ${CMAKE_SOURCE_DIR})
//   target_link_libraries(my_e2e_test PRIVATE absl::status absl::statusor
//                         absl::strings absl::time ...)
//   target_compile_definitions(my_e2e_test PRIVATE
//                              QUIVERD_PATH="$<TARGET_FILE:quiverd>")
//   add_dependencies(my_e2e_test quiverd)
//
// Thread-safety: none; use one object from one thread. The destructor kills
// a still-running server.
#ifndef QUIVER_TESTS_COMMON_QUIVERD_PROCESS_H_
#define QUIVER_TESTS_COMMON_QUIVERD_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace quiver::testing {

struct QuiverdOptions {
  // Path of the quiverd binary (usually the QUIVERD_PATH definition).
  std::string binary;
  // Passed as --log-level. Default: "warn", so test logs stay readable.
  std::string log_level = "warn";
  // Returns true once the server at `address` ("127.0.0.1:PORT") is ready.
  // Default (empty): a TCP connection to the port succeeds; quiverd opens its
  // port only after storage is open, so that is enough for most tests. Pass
  // a gRPC health check for a stricter probe.
  std::function<bool(const std::string& address)> ready;
  // How long Start() waits for the probe. Default: 10 s.
  absl::Duration start_timeout = absl::Seconds(10);
  // How long Stop() waits after SIGTERM before SIGKILL. Default: 10 s.
  absl::Duration stop_timeout = absl::Seconds(10);
  // Empty (default): the child shares the test's stdout/stderr. Otherwise
  // its output is appended to this file.
  std::string log_file;
};

class QuiverdProcess {
 public:
  explicit QuiverdProcess(QuiverdOptions options);
  ~QuiverdProcess();
  QuiverdProcess(const QuiverdProcess&) = delete;
  QuiverdProcess& operator=(const QuiverdProcess&) = delete;

  // Starts quiverd on a free port with its data in `data_dir` (quiverd
  // creates it) and `extra_args` appended, and waits until ready. If the
  // server exits during start-up (say another process took the port in the
  // meantime) it retries twice with a fresh port. FAILED_PRECONDITION if
  // already running; UNAVAILABLE if it does not come up (the server is then
  // killed); INTERNAL if fork/exec fails.
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
  // The waitpid() status of the last exit; -1 before one.
  int last_wait_status() const { return last_wait_status_; }

 private:
  // Launches on `port_` and waits for readiness; UNAVAILABLE with
  // `*exited_early` set when the child died during start-up.
  absl::Status Launch(bool* exited_early);
  absl::Status WaitExit(absl::Duration timeout, bool* exited);

  QuiverdOptions options_;
  std::string data_dir_;
  std::vector<std::string> extra_args_;
  int port_ = 0;
  pid_t pid_ = -1;
  int last_wait_status_ = -1;
};

// A port on 127.0.0.1 that was free a moment ago (bound to port 0, then
// released). 0 on failure.
int PickFreePort();

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_COMMON_QUIVERD_PROCESS_H_
