// quiverd: the Quiver vector database server.
#include <csignal>
#include <iostream>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "base/sanitizers.h"
#include "query/cpu_kernels.h"
#include "server/config.h"
#include "server/log_limit.h"
#include "server/server.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  // Debian's abseil is compiled without NDEBUG, so its Mutex runs deadlock
  // detection on every Lock: a process-wide graph of lock ids under one
  // global spin lock, and a stack trace per new edge. gRPC's own locks are
  // absl Mutexes too, so every RPC pays it several times over and concurrent
  // RPCs contend on that one spin lock. The sanitizer builds that run the
  // test suite keep it (a lock-order cycle aborts there); the unit tests,
  // which take the same locks in process, keep abseil's default.
  if (!quiver::kAddressSanitizer && !quiver::kThreadSanitizer) {
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  }
  auto config = quiver::server::ParseConfig(argc, argv);
  if (!config.ok()) {
    if (absl::IsCancelled(config.status())) return 0;  // --help / --version
    std::cerr << "quiverd: " << config.status().message() << "\n";
    return 2;
  }
  spdlog::set_level(spdlog::level::from_str(config->log_level));
  quiver::server::RouteLibraryLogs();
  // Before anything searches: the distance kernels for this CPU.
  auto kernels = quiver::SelectCpuKernels();
  if (!kernels.ok()) {
    std::cerr << "quiverd: " << kernels.status().message() << "\n";
    return 2;
  }

  // Block the shutdown signals and SIGHUP in every thread (threads inherit
  // the mask); one thread waits for them with sigwait, so no handler runs in
  // an arbitrary thread.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = quiver::server::Server::Start(*config);
  if (!server.ok()) {
    spdlog::critical("cannot start: {}", server.status().ToString());
    return 1;
  }
  // Logged once started, so a refused start stays one line.
  spdlog::info("distance kernels: {}", *kernels);
  std::thread waiter([&] {
    int sig = 0;
    while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) {
      spdlog::info("received SIGHUP: reloading API keys and TLS files");
      (*server)->Reload();
    }
    spdlog::info("received {}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    (*server)->Shutdown();
  });
  (*server)->Wait();
  waiter.join();
  return 0;
}
