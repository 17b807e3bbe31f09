#include "server/config.h"

#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"

namespace quiver::server {

absl::StatusOr<ServerConfig> ParseConfig(int argc, char** argv) {
  ServerConfig c;
  CLI::App app{"quiverd: the Quiver vector database server"};
  app.set_version_flag("--version", "quiverd 0.1.0");
  app.set_config("--config", "", "Read settings from an INI/TOML file (keys = long flag names)");
  app.add_option("--listen", c.listen, "gRPC listen address host:port")->capture_default_str();
  app.add_option("--data-dir", c.data_dir, "Data directory")->capture_default_str();
  app.add_option("--durability", c.durability,
                 "sync (fsync before ack) or async (survives kill -9, not power loss)")
      ->check(CLI::IsMember({"sync", "async"}))
      ->capture_default_str();
  app.add_option("--search-threads", c.search_threads, "BLAS/OpenMP threads per search")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--expensive-workers", c.expensive_workers,
                 "Expensive reads (large filters, batches, exact scans) run at once; 0: one per "
                 "core")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  app.add_flag("--rerank-direct-io", c.rerank_direct_io,
               "Read DISK fields' rerank tables with O_DIRECT, bypassing the page cache");
  app.add_option("--max-message-bytes", c.max_message_bytes, "Largest gRPC message")
      ->check(CLI::Range(int64_t{4096}, int64_t{2000000000}))
      ->capture_default_str();
  app.add_option("--log-level", c.log_level, "trace|debug|info|warn|error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--shutdown-grace-seconds", c.shutdown_grace_seconds,
                 "Time in-flight requests get on SIGTERM")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  app.add_option("--block-cache-mb", c.block_cache_mb, "RocksDB block cache (MiB)")
      ->check(CLI::Range(int64_t{8}, int64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--segment-max-rows", c.segment_max_rows,
                 "Rows at which a growing segment is sealed and indexed")
      ->check(CLI::Range(int64_t{16}, int64_t{1} << 24))
      ->capture_default_str();
  app.add_option("--seal-idle-ms", c.seal_idle_ms,
                 "Seal and index a growing segment after this long without writes")
      ->check(CLI::Range(int64_t{10}, int64_t{86400000}))
      ->capture_default_str();
  app.add_option("--index-build-workers", c.index_build_workers,
                 "Concurrent background index builds and compactions")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--index-build-threads", c.index_build_threads, "Threads per index build")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--index-check-samples", c.index_check_samples,
                 "Rows each new index is checked on against exact search before it is served "
                 "(0: off)")
      ->check(CLI::Range(0u, 4096u))
      ->capture_default_str();
  app.add_option("--compact-deleted-ratio", c.compact_deleted_ratio,
                 "Compact a sealed segment once this share of its rows is deleted")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  app.add_flag("--accept-wal-loss", c.accept_wal_loss,
               "If the write-ahead log is damaged (quiverd then refuses to start and says "
               "where), start anyway: copy the WAL files to DATA_DIR/damaged-wal-<time>/, "
               "recover the writes before the damage and discard the rest");
  app.add_option("--metrics-listen", c.metrics_listen,
                 "Serve Prometheus metrics at http://HOST:PORT/metrics (empty: off)")
      ->capture_default_str();
  app.add_option("--recall-audit-rate", c.recall_audit_rate,
                 "Share of ANN searches re-run exactly in the background to measure recall "
                 "(0: off)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    std::cout << app.help();
    return absl::CancelledError("help");
  } catch (const CLI::CallForVersion& e) {
    std::cout << app.version() << "\n";
    return absl::CancelledError("version");
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  return c;
}

}  // namespace quiver::server
