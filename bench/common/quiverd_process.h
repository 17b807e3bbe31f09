// QuiverdProcess: runs the real quiverd binary for a benchmark — fork/execv
// on a free loopback port with a fresh temporary data directory, waits until
// the gRPC health service answers SERVING, and stops it with SIGTERM
// (graceful shutdown), removing the directory afterwards.
#ifndef QUIVER_BENCH_COMMON_QUIVERD_PROCESS_H_
#define QUIVER_BENCH_COMMON_QUIVERD_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace quiver::bench {

struct QuiverdOptions {
  // Path of the quiverd binary. Default: the one built with the benchmarks.
  std::string binary = QUIVER_BENCH_QUIVERD;
  std::string durability = "sync";  // --durability
  int search_threads = 1;           // --search-threads
  std::string log_level = "warn";   // --log-level
  // The temporary directory (data dir + log) is created under this. It
  // should be on the same filesystem as the storage-only baseline's.
  std::string tmp_root = "/tmp";
  // Use this existing data directory instead of a fresh one under the
  // temporary directory (to restart on another server's data; it is not
  // removed with this process's directory).
  std::string data_dir;
  std::vector<std::string> extra_args;
  // Extra environment for quiverd, "NAME=value" (e.g. OMP_NUM_THREADS=1);
  // the rest of the environment is inherited.
  std::vector<std::string> env;
  // Seconds to wait for health before giving up.
  double start_timeout_s = 60;
};

class QuiverdProcess {
 public:
  static absl::StatusOr<std::unique_ptr<QuiverdProcess>> Start(const QuiverdOptions& options);
  // Stops the server (if running) and removes its directory.
  ~QuiverdProcess();

  // SIGTERM, wait up to `timeout_s` for exit, then SIGKILL. Returns the
  // exit status as waitpid reports it (or an error on timeout).
  absl::Status Stop(double timeout_s = 60);

  pid_t pid() const { return pid_; }
  // "127.0.0.1:<port>"
  const std::string& target() const { return target_; }
  const std::string& data_dir() const { return data_dir_; }
  // quiverd's stdout+stderr.
  const std::string& log_path() const { return log_path_; }
  // The command line used, for reports.
  const std::vector<std::string>& argv() const { return argv_; }

 private:
  QuiverdProcess() = default;

  pid_t pid_ = -1;
  std::string dir_;
  std::string data_dir_;
  std::string log_path_;
  std::string target_;
  std::vector<std::string> argv_;
};

// A loopback TCP port that was free a moment ago.
absl::StatusOr<int> FreeLoopbackPort();

// Handler times quiverd logs at --log-level debug, one line per RPC
// ("... <Method> 12.345ms OK", server/services.cc LogRpc), for lines after
// the first `skip_lines` of the log. The handler time runs from the handler's
// start (request received and parsed) to its reply being handed to gRPC, so
// client latency minus it is transport, (de)serialization and queueing.
std::vector<double> RpcTimesFromLog(const std::string& log_path, const std::string& method,
                                    size_t skip_lines = 0);
size_t CountLines(const std::string& path);

// Last `max_bytes` of a file (for error messages).
std::string FileTail(const std::string& path, size_t max_bytes = 2000);

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_COMMON_QUIVERD_PROCESS_H_
