#include "server/config.h"

#include <algorithm>
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
  app.add_option("--index-mmap", c.index_mmap,
                 "Use HNSW index files in place through a read-only mapping at start-up "
                 "(page cache, nothing copied) instead of reading them into memory")
      ->capture_default_str();
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
  app.add_option("--merge-target-mb", c.merge_target_mb,
                 "Merge sealed segments, 4 at a time, into segments of up to this many MiB of "
                 "vectors, so large collections are searched as a few graphs (-1: a quarter of "
                 "the memory quiverd may use, at least 256; 0: never by size)")
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 30))
      ->capture_default_str();
  app.add_option("--merge-idle-s", c.merge_idle_s,
                 "After this many seconds without writes to a collection, also merge adjacent "
                 "segments of different sizes that together fit --merge-target-mb")
      ->check(CLI::Range(int64_t{0}, int64_t{86400 * 365}))
      ->capture_default_str();
  app.add_option("--seal-idle-ms", c.seal_idle_ms,
                 "Seal and index a growing segment after this long without writes")
      ->check(CLI::Range(int64_t{10}, int64_t{86400000}))
      ->capture_default_str();
  app.add_option("--index-build-workers", c.index_build_workers,
                 "Concurrent background index builds and compactions")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--index-build-threads", c.index_build_threads,
                 "Threads per index build or compaction (0: the cores quiverd may use, by its "
                 "CPU affinity and cgroup quota, but one, at least 1); builds run at nice 10, "
                 "behind searches")
      ->check(CLI::Range(0, 256))
      ->capture_default_str();
  app.add_option("--index-check-samples", c.index_check_samples,
                 "Rows each new index is checked on against exact search before it is served "
                 "(0: off)")
      ->check(CLI::Range(0u, 4096u))
      ->capture_default_str();
  app.add_option("--calibration-samples", c.calibration_samples,
                 "Rows each new index's recall is calibrated on, for target_recall searches "
                 "(at most; a segment gets one per 16 rows, at least 100; 0: off, and "
                 "target_recall searches scan exactly)")
      ->check(CLI::Range(0u, 10000u))
      ->capture_default_str();
  app.add_option("--compact-deleted-ratio", c.compact_deleted_ratio,
                 "Compact a sealed segment once this share of its rows is deleted")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  app.add_flag("--accept-wal-loss", c.accept_wal_loss,
               "If the write-ahead log is damaged (quiverd then refuses to start and says "
               "where), start anyway: copy the WAL files to DATA_DIR/damaged-wal-<time>/, "
               "recover the writes before the damage and discard the rest");
  app.add_option("--memory-budget-mb", c.memory_budget_mb,
                 "Vector data in memory past which upserts are refused (-1: half the memory "
                 "quiverd may use, RAM or cgroup limit; 0: none)")
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--max-request-memory-mb", c.max_request_memory_mb,
                 "Memory one request may take to prepare or run (-1: 1/16 of the memory "
                 "quiverd may use, at least 64; 0: none)")
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--max-concurrent-requests", c.max_concurrent_requests,
                 "Requests of one RPC method in flight at once; more are refused (0: none)")
      ->check(CLI::Range(0, 1 << 20))
      ->capture_default_str();
  app.add_option("--method-concurrency", c.method_concurrency,
                 "Per-method override of --max-concurrent-requests: METHOD=N[,METHOD=N...]");
  app.add_option("--max-unindexed-rows", c.max_unindexed_rows,
                 "Rows waiting for their index build at which upserts are refused, delayed "
                 "from half of it (-1: 4 x --segment-max-rows, at least 65536; 0: none)")
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--max-compaction-debt-rows", c.max_compaction_debt_rows,
                 "Deleted rows waiting for compaction at which upserts are refused, delayed "
                 "from half of it (-1: 4 x --segment-max-rows, at least 65536; 0: none)")
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--max-write-delay-ms", c.max_write_delay_ms,
                 "Longest delay write backpressure adds to one upsert")
      ->check(CLI::Range(int64_t{0}, int64_t{60000}))
      ->capture_default_str();

  app.add_option("--api-keys-file", c.api_keys_file,
                 "API keys by SHA-256, one per line: <sha256-hex> <role> [collection,...] "
                 "(role read|write|admin); clients send 'authorization: Bearer <key>'. "
                 "Reloaded on SIGHUP");
  app.add_option("--tls-cert", c.tls_cert, "TLS certificate chain (PEM); reloaded on SIGHUP");
  app.add_option("--tls-key", c.tls_key, "TLS private key (PEM) of --tls-cert");
  app.add_option("--tls-client-ca", c.tls_client_ca,
                 "Mutual TLS: require client certificates signed by these CAs (PEM)");
  app.add_flag("--allow-insecure", c.allow_insecure,
               "Serve on a non-loopback address without API keys or TLS");
  app.add_flag("--reflection", c.reflection,
               "Serve gRPC server reflection (describes the API to tools; no key needed)");

  app.add_option("--restore-from", c.restore_from,
                 "Restore this snapshot file into --data-dir (which must be empty or missing), "
                 "then serve it");

  app.add_option("--metrics-listen", c.metrics_listen,
                 "Serve Prometheus metrics at http://HOST:PORT/metrics (empty: off)")
      ->capture_default_str();
  app.add_option("--http-listen", c.http_listen,
                 "Serve the API as HTTP/JSON on HOST:PORT (same keys, TLS and limits as gRPC; "
                 "empty: off)")
      ->capture_default_str();
  app.add_option("--recall-audit-rate", c.recall_audit_rate,
                 "Share of ANN searches re-run exactly in the background to measure recall "
                 "(0: off)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  app.add_option("--recall-audit-cpu", c.recall_audit_cpu,
                 "Average share of one core the recall audits may use; searches sampled while "
                 "they pause are skipped (1: no limit)")
      ->check(CLI::Range(0.0001, 1.0))
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
  if (c.tls_cert.empty() != c.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (!c.tls_client_ca.empty() && c.tls_cert.empty()) {
    return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
  }
  return c;
}

void ResolveLimits(ServerConfig* c, uint64_t memory_bytes) {
  const int64_t mib = static_cast<int64_t>((memory_bytes > 0 ? memory_bytes : 8ull << 30) >> 20);
  if (c->memory_budget_mb < 0) c->memory_budget_mb = std::max<int64_t>(1, mib / 2);
  if (c->max_request_memory_mb < 0) c->max_request_memory_mb = std::max<int64_t>(64, mib / 16);
  if (c->merge_target_mb < 0) c->merge_target_mb = std::max<int64_t>(256, mib / 4);
  // A growing segment of up to segment_max_rows is scanned exactly anyway;
  // the floor keeps tiny test segments from throttling small imports.
  const int64_t rows = std::max<int64_t>(65536, 4 * c->segment_max_rows);
  if (c->max_unindexed_rows < 0) c->max_unindexed_rows = rows;
  if (c->max_compaction_debt_rows < 0) c->max_compaction_debt_rows = rows;
}

}  // namespace quiver::server
