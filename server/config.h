// ServerConfig: quiverd's settings, from command-line flags and/or a config
// file (INI/TOML, same keys as the long flags, via --config). ParseConfig
// reports --help/--version as CANCELLED and bad flags as INVALID_ARGUMENT;
// it keeps no global state (safe from any thread), and the ServerConfig it
// returns is a plain value its caller owns.
#ifndef QUIVER_SERVER_CONFIG_H_
#define QUIVER_SERVER_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace quiver::server {

struct ServerConfig {
  // host:port to serve gRPC on. Default: 127.0.0.1:50051 (loopback only;
  // use 0.0.0.0:50051 to serve other hosts, as the Docker image does, which
  // needs API keys or TLS, or allow_insecure).
  std::string listen = "127.0.0.1:50051";
  // Directory for the database; created if missing. Default: ./quiver-data
  std::string data_dir = "./quiver-data";
  // "sync": acknowledged writes survive power loss (WAL fsync, group
  // committed); "async": they survive a crash of quiverd (kill -9) but the
  // last ones may be lost on power loss. Default: sync.
  std::string durability = "sync";
  // Threads one search may use for its matrix products (OpenMP/BLAS).
  // Concurrent requests already run on separate gRPC threads, so more than
  // 1 pays off mainly for large batched searches. Default: 1.
  int search_threads = 1;
  // Reads estimated expensive (filters over many rows, large batches, exact
  // scans; Engine::IsExpensive) run on this many worker threads, so no more
  // run at once; the rest wait in a queue while cheap requests go on
  // inline. Default 0: one per core.
  int expensive_workers = 0;
  // Read DISK fields' rerank tables with O_DIRECT (benchmarks of the device).
  bool rerank_direct_io = false;
  // Read HNSW index files in place through a read-only mapping at start-up
  // instead of copying them into memory.
  bool index_mmap = true;
  // Largest request or response message. Default: 64 MiB. Reads whose
  // response would be larger are refused with RESOURCE_EXHAUSTED before
  // the response is built.
  int64_t max_message_bytes = 64ll << 20;
  // trace, debug, info, warn, error. Default: info.
  std::string log_level = "info";
  // Seconds in-flight requests get to finish on SIGTERM/SIGINT. Default: 30.
  int shutdown_grace_seconds = 30;
  // RocksDB block cache in MiB. Default: 256.
  int64_t block_cache_mb = 256;
  // Rows at which a growing segment is sealed and indexed. Default: 65536.
  int64_t segment_max_rows = 65536;
  // Sealed segments are merged (4 at a time, tier by tier) into segments of
  // up to this many MiB of vectors. 0: no merging by size. -1 (default): a
  // quarter of the memory quiverd may use, at least 256 MiB, resolved at
  // start-up (ResolveLimits). A merge holds its inputs and the merged
  // segment's new index at once, and the vectors in memory may reach
  // --memory-budget-mb (half), so a quarter keeps the largest merge in what
  // is left. Larger is faster to search: a 1 GiB target left 1M x 784
  // points as four graphs, searched at 0.2-0.4x one hnswlib graph's QPS.
  int64_t merge_target_mb = -1;
  // After this long without writes, adjacent segments of any size merge up
  // to merge_target_mb too. Default: 30 s.
  int64_t merge_idle_s = 30;
  // A growing segment that sees no write for this long is sealed and
  // indexed. Default: 1000 ms.
  int64_t seal_idle_ms = 1000;
  // Concurrent index builds / compactions, and threads each may use.
  // Default: 1 and 0, all cores quiverd may use but one (server/cpu_limit.h;
  // at least 1), the one left to serving. Build threads run at a lower CPU
  // priority (nice 10), so searches go first.
  int index_build_workers = 1;
  int index_build_threads = 0;
  // Rows a new index is checked on (recall against exact search) before it
  // is served; 0 turns the check off. Default: 32.
  uint32_t index_check_samples = 32;
  // Rows (at most) each new index's recall is calibrated on, for
  // target_recall searches (query/recall_calibration.h); 0 turns it off.
  // Default: 500.
  uint32_t calibration_samples = 500;
  // A sealed segment with this share of deleted rows is compacted.
  // Default: 0.2.
  double compact_deleted_ratio = 0.2;
  // Start even if the RocksDB write-ahead log is damaged before its tail:
  // copy the WAL files to DATA_DIR/damaged-wal-<time>/, recover up to the
  // damage and discard the rest (logged). Without it quiverd refuses to
  // start and names the damage. Default: false.
  bool accept_wal_loss = false;

  // Limits (README "Operations > Limits"). -1 means the default derived
  // at start-up (ResolveLimits), 0 no limit.
  // Vector data in memory (vectors and indexes, as describe reports them)
  // past which upserts are refused with RESOURCE_EXHAUSTED. Default: half
  // the memory quiverd may use (RAM or its cgroup's limit, the smaller).
  int64_t memory_budget_mb = -1;
  // Memory one request may take to prepare or run (an upsert's copies and
  // encodings, a search's candidate lists). Default: 1/16 of the memory
  // quiverd may use, at least 64 MiB.
  int64_t max_request_memory_mb = -1;
  // Requests of one RPC method in flight at once; more are refused at once
  // with RESOURCE_EXHAUSTED. Default: 256. method_concurrency overrides it
  // per method ("Search=32").
  int max_concurrent_requests = 256;
  std::vector<std::string> method_concurrency;
  // Write backpressure: rows of sealed segments waiting for their index,
  // and deleted rows waiting for compaction, at which upserts are refused
  // with UNAVAILABLE and a retry hint; from half of it they are delayed, up
  // to max_write_delay_ms. Default: 4 x segment_max_rows each, at least
  // 65536.
  int64_t max_unindexed_rows = -1;
  int64_t max_compaction_debt_rows = -1;
  int64_t max_write_delay_ms = 250;

  // Access control (server/auth.h, server/tls.h; reloaded on SIGHUP).
  // API keys by SHA-256 with a role; empty: no keys required.
  std::string api_keys_file;
  // TLS certificate chain and key (PEM); both or neither. With
  // tls_client_ca, clients must present a certificate it signed.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  // Serve on a non-loopback address without API keys or TLS.
  bool allow_insecure = false;
  // Serve gRPC server reflection (it describes the API, never data).
  bool reflection = false;

  // A snapshot file (server/snapshot_service.h) to restore into --data-dir
  // before serving; the data directory must be missing or empty. Default:
  // none.
  std::string restore_from;

  // host:port to serve Prometheus metrics on, at /metrics
  // (server/metrics.h). Empty: no metrics. Default: empty.
  std::string metrics_listen;
  // host:port to serve the API as HTTP/JSON on (server/http_gateway.h):
  // the same services, keys, TLS and limits as gRPC. Empty: off. Default:
  // empty.
  std::string http_listen;
  // Share of ANN searches re-run exactly in the background to measure
  // their recall (query/recall_audit.h); 0 turns the audit off.
  // Default: 0.001.
  double recall_audit_rate = 0.001;
  // The average share of one core the audits may use: an exact re-run over
  // a large collection takes tens of milliseconds, so the rate alone would
  // cost a share of a core that grows with the collection. 1: no limit.
  double recall_audit_cpu = 0.01;
};

// Replaces the -1 ("derived") limits by their defaults for a machine whose
// quiverd may use `memory_bytes` (0: unknown, taken as 8 GiB).
void ResolveLimits(ServerConfig* c, uint64_t memory_bytes);

// Parses argv. On --help/--version prints and returns a status with code
// CANCELLED (exit 0); on bad flags returns INVALID_ARGUMENT with the message.
absl::StatusOr<ServerConfig> ParseConfig(int argc, char** argv);

}  // namespace quiver::server

#endif  // QUIVER_SERVER_CONFIG_H_
