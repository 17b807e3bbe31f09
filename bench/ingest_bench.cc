// ingest_bench: is durable gRPC ingest at least 0.5x of storage-only ingest
// of the same bytes?
//
// Ingests the Fashion-MNIST training set (60,000 x 784 float32, with its
// class as the INT64 attribute "label") two ways, in the same run and
// interleaved round by round:
//   grpc     through quiver::client::Client into a fresh quiverd
//            (UpsertPoints, `--batch` points per request, N client threads);
//   storage  straight into a fresh quiver::storage::Store with the same
//            durability, writing per request what the server writes
//            (PointRecord + vector + id map per point via PutPoint, the
//            next-iid counter and an UPSERT OpRecord via LogOp), one
//            Store::Write per batch, N writer threads.
// Reports the median of `--rounds` rounds: vectors/s, MB/s of raw float
// bytes (MB = 10^6 bytes) and the ratio grpc/storage (median of the per-round
// ratios). Requests are built before the clock starts; start-up and shutdown
// of quiverd and of the store are not timed.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/common/report.h"
#include "bench/common/sysinfo.h"
#include "bench/common/testkit.h"
#include "client/client.h"
#include "query/bind/wire_schema.h"
#include "storage/store.h"

namespace quiver::bench {
namespace {

constexpr char kCollection[] = "fmnist";
constexpr char kVectorField[] = "image";
constexpr char kLabel[] = "label";

struct Args {
  size_t rows = 60000;
  size_t batch = 1000;
  std::string durability = "sync";
  std::vector<int> threads = {1, 2};
  int rounds = 3;
  std::string quiverd = QUIVERD_PATH;
  std::string tmp_dir;
  std::string dataset_dir = kFashionDir;
  std::string json_out;
  std::vector<std::string> quiverd_env;
  bool server_timing = false;
};

struct Sample {
  double seconds = 0;
  double server_cpu_s = -1;  // quiverd (grpc only)
  double client_cpu_s = 0;   // this process
  int64_t server_hwm_kb = -1;
  double other_cores = 0;    // CPU used by other processes meanwhile / wall
  std::vector<double> latency_ms;  // per request / per batch write
  std::vector<double> server_ms;   // quiverd's handler time per request (--server-timing)
  double probe_ms = -1;  // one request to a missing collection: transport + parse only
};

v1::CollectionSchema Schema(size_t dim) {
  v1::CollectionSchema s;
  v1::VectorField* v = s.add_vectors();
  v->set_name(kVectorField);
  v->set_dim(static_cast<uint32_t>(dim));
  v->set_metric(v1::L2);
  v->mutable_index()->set_type("FLAT");
  v1::AttributeField* a = s.add_attributes();
  a->set_name(kLabel);
  a->set_type(v1::INT64);
  return s;
}

// The point ids: "0".."59999" (the row number).
std::string PointId(size_t row) { return std::to_string(row); }

std::vector<v1::UpsertPointsRequest> BuildRequests(const Matrix& x,
                                                   const std::vector<uint8_t>& labels,
                                                   size_t batch) {
  std::vector<v1::UpsertPointsRequest> reqs;
  for (size_t b = 0; b < x.n; b += batch) {
    v1::UpsertPointsRequest& req = reqs.emplace_back();
    req.set_collection(kCollection);
    for (size_t i = b; i < std::min(x.n, b + batch); ++i) {
      v1::Point* p = req.add_points();
      p->set_id(PointId(i));
      auto* vals = (*p->mutable_vectors())[kVectorField].mutable_values();
      vals->Add(x.row(i), x.row(i) + x.dim);
      (*p->mutable_attributes())[kLabel].set_int_value(labels[i]);
    }
  }
  return reqs;
}

Sample RunGrpc(const Args& args, const std::vector<v1::UpsertPointsRequest>& reqs,
               size_t dim, int threads, size_t expect_rows) {
  QuiverdOptions qo = BenchQuiverdOptions();
  qo.binary = args.quiverd;
  qo.durability = args.durability;
  qo.tmp_root = args.tmp_dir;
  qo.env = args.quiverd_env;
  qo.log_level = args.server_timing ? "debug" : "warn";
  auto server = QuiverdProcess::Launch(qo);
  if (!server.ok()) Die("start quiverd", server.status());
  {
    client::Client admin((*server)->address());
    auto created = admin.CreateCollection(kCollection, Schema(dim));
    if (!created.ok()) Die("CreateCollection", created.status());
  }
  std::vector<std::unique_ptr<client::Client>> clients;
  for (int t = 0; t < threads; ++t) {
    clients.push_back(std::make_unique<client::Client>((*server)->address()));
    if (absl::Status h = clients.back()->Health(); !h.ok()) Die("health", h);
  }
  Sample s;
  if (args.server_timing) {
    // The same bytes to a collection that does not exist: the server parses
    // the request, finds no collection and answers NOT_FOUND, so this is the
    // cost of moving and parsing one request, without validation or commit.
    v1::UpsertPointsRequest probe = reqs[0];
    probe.set_collection("no_such_collection");
    std::vector<double> ms;
    for (int i = 0; i < 11; ++i) {
      const double c0 = NowSeconds();
      auto r = clients[0]->Upsert(probe);
      ms.push_back((NowSeconds() - c0) * 1e3);
      if (r.ok() || !absl::IsNotFound(r.status())) {
        Die("transport probe", r.ok() ? absl::InternalError("probe succeeded") : r.status());
      }
    }
    s.probe_ms = Median(ms);
  }
  const size_t log_lines = args.server_timing ? CountLines((*server)->log_path()) : 0;
  std::vector<std::vector<double>> lat(threads);
  const double server_cpu0 = ProcessCpuSeconds((*server)->pid());
  const double client_cpu0 = ProcessCpuSeconds();
  const double busy0 = MachineBusySeconds();
  const double t0 = NowSeconds();
  std::vector<std::thread> pool;
  std::vector<absl::Status> errors(threads);
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (size_t b = t; b < reqs.size(); b += threads) {
        const double c0 = NowSeconds();
        auto r = clients[t]->Upsert(reqs[b]);
        lat[t].push_back((NowSeconds() - c0) * 1e3);
        if (!r.ok()) {
          errors[t] = r.status();
          return;
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  s.seconds = NowSeconds() - t0;
  s.client_cpu_s = ProcessCpuSeconds() - client_cpu0;
  s.server_cpu_s = ProcessCpuSeconds((*server)->pid()) - server_cpu0;
  s.other_cores = (MachineBusySeconds() - busy0 - s.client_cpu_s - s.server_cpu_s) / s.seconds;
  s.server_hwm_kb = ReadMemory((*server)->pid()).hwm_kb;
  for (const auto& l : lat) s.latency_ms.insert(s.latency_ms.end(), l.begin(), l.end());
  for (const auto& e : errors) {
    if (!e.ok()) Die("Upsert", e);
  }
  auto count = clients[0]->Count(kCollection);
  if (!count.ok()) Die("Count", count.status());
  if (*count != expect_rows) {
    Die("Count", absl::DataLossError(absl::StrCat("expected ", expect_rows, " got ", *count)));
  }
  if (absl::Status st = (*server)->Stop(); !st.ok()) Die("stop quiverd", st);
  if (args.server_timing) s.server_ms = RpcTimesFromLog((*server)->log_path(), "UpsertPoints", log_lines);
  return s;
}

Sample RunStorage(const Args& args, const Matrix& x, const std::vector<uint8_t>& labels,
                  int threads) {
  std::string dir = args.tmp_dir + "/storage-bench-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) Die("mkdtemp", absl::InternalError(args.tmp_dir));
  Sample s;
  {
    storage::StoreOptions so;
    so.path = dir + "/data";
    so.durability = args.durability == "async" ? storage::Durability::kAsync
                                               : storage::Durability::kSync;
    // quiverd's default block cache (--block-cache-mb 256).
    so.block_cache_bytes = 256u << 20;
    auto store = storage::Store::Open(so);
    if (!store.ok()) Die("Store::Open", store.status());

    // The collection, as the server creates it (catalog record + op log).
    storage::CollectionRecord rec;
    rec.set_id((*store)->next_collection_id());
    rec.set_name(kCollection);
    absl::StatusOr<quiver::Schema> bound = bind::BindSchema(Schema(x.dim));
    if (!bound.ok()) Die("BindSchema", bound.status());
    *rec.mutable_schema() = SchemaToRecord(*bound);
    rec.set_created_at_unix_ms(absl::ToUnixMillis(absl::Now()));
    const uint32_t cid = rec.id();
    {
      auto b = (*store)->NewBatch();
      b->PutCollection(rec);
      b->PutNextCollectionId(cid + 1);
      storage::OpRecord op;
      op.set_type(storage::OpRecord::CREATE_COLLECTION);
      op.set_collection_id(cid);
      op.set_unix_ms(rec.created_at_unix_ms());
      b->LogOp(1, op);
      if (absl::Status st = (*store)->Write(*b); !st.ok()) Die("Store::Write", st);
    }

    std::atomic<uint64_t> next_seq{2};
    std::vector<std::vector<double>> lat(threads);
    const size_t nbatches = (x.n + args.batch - 1) / args.batch;
    const uint32_t dim = static_cast<uint32_t>(x.dim);
    std::vector<absl::Status> errors(threads);
    const double client_cpu0 = ProcessCpuSeconds();
    const double busy0 = MachineBusySeconds();
    const double t0 = NowSeconds();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        for (size_t b = t; b < nbatches; b += threads) {
          // What Collection::PrepareUpsert puts in the batch for a request of
          // new points (ids are fresh, so no DeletePointData).
          const double w0 = NowSeconds();
          auto batch = (*store)->NewBatch();
          storage::OpRecord op;
          op.set_type(storage::OpRecord::UPSERT);
          op.set_collection_id(cid);
          op.set_unix_ms(absl::ToUnixMillis(absl::Now()));
          const size_t end = std::min(x.n, (b + 1) * args.batch);
          for (size_t i = b * args.batch; i < end; ++i) {
            storage::PointRecord pr;
            pr.set_id(PointId(i));
            pr.add_attributes()->set_int_value(labels[i]);
            const float* vec = x.row(i);
            batch->PutPoint(cid, i, pr, absl::MakeConstSpan(&vec, 1),
                            absl::MakeConstSpan(&dim, 1));
            op.add_ids(pr.id());
            op.add_added_iids(i);
          }
          batch->PutNextInternalId(cid, end);
          batch->LogOp(next_seq.fetch_add(1), op);
          if (absl::Status st = (*store)->Write(*batch); !st.ok()) {
            errors[t] = st;
            return;
          }
          lat[t].push_back((NowSeconds() - w0) * 1e3);
        }
      });
    }
    for (auto& th : pool) th.join();
    s.seconds = NowSeconds() - t0;
    s.client_cpu_s = ProcessCpuSeconds() - client_cpu0;
    s.other_cores = (MachineBusySeconds() - busy0 - s.client_cpu_s) / s.seconds;
    for (const auto& l : lat) s.latency_ms.insert(s.latency_ms.end(), l.begin(), l.end());
    for (const auto& e : errors) {
      if (!e.ok()) Die("Store::Write", e);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return s;
}

std::string FilesystemOf(const std::string& path) {
  std::string cmd = "df -T '" + path + "' 2>/dev/null | tail -1 | awk '{print $1\" \"$2}'";
  std::string out;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char buf[256];
    while (fgets(buf, sizeof(buf), f)) out += buf;
    pclose(f);
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

int Main(int argc, char** argv) {
  Args args;
  args.tmp_dir = ExeDir() + "/bench_tmp";
  std::string threads_csv = "1,2";
  CLI::App app{"ingest_bench: durable gRPC ingest vs storage-only ingest of the same bytes"};
  app.add_option("--rows", args.rows, "training rows to ingest (max 60000)");
  app.add_option("--batch", args.batch, "points per request / per storage batch");
  app.add_option("--durability", args.durability, "sync or async (server and store)")
      ->check(CLI::IsMember({"sync", "async"}));
  app.add_option("--threads", threads_csv, "client/writer thread counts, comma-separated");
  app.add_option("--rounds", args.rounds, "interleaved rounds; the median is reported");
  app.add_option("--quiverd", args.quiverd, "quiverd binary");
  app.add_option("--quiverd-env", args.quiverd_env,
                 "extra NAME=value in quiverd's environment (repeatable), e.g. "
                 "OMP_NUM_THREADS=1");
  app.add_option("--tmp-dir", args.tmp_dir,
                 "where the fresh data dirs go (same filesystem for both paths)");
  app.add_option("--dataset-dir", args.dataset_dir, "Fashion-MNIST IDX folder");
  app.add_flag("--server-timing", args.server_timing,
               "run quiverd at --log-level debug and report its own UpsertPoints handler time");
  app.add_option("--json", args.json_out, "JSON output (default <exe dir>/bench_results/)");
  CLI11_PARSE(app, argc, argv);
  args.threads.clear();
  for (absl::string_view t : absl::StrSplit(threads_csv, ',', absl::SkipEmpty())) {
    args.threads.push_back(std::stoi(std::string(t)));
  }
  std::filesystem::create_directories(args.tmp_dir);

  auto ds = LoadFashionMnist(args.dataset_dir, args.rows, 1);
  if (!ds.ok()) Die("load dataset", ds.status());
  const Matrix& x = ds->train;
  const double raw_mb = static_cast<double>(x.bytes()) / 1e6;
  const auto reqs = BuildRequests(x, ds->train_labels, args.batch);

  std::printf("ingest_bench: %zu x %zu float32 (%.1f MB raw), batch %zu (%zu requests), "
              "durability %s, %d rounds\n",
              x.n, x.dim, raw_mb, args.batch, reqs.size(), args.durability.c_str(),
              args.rounds);
  std::printf("  quiverd: %s (--search-threads 1)\n  data dirs under: %s [%s]\n",
              args.quiverd.c_str(), args.tmp_dir.c_str(), FilesystemOf(args.tmp_dir).c_str());
  std::printf("  cores: %u; threads = client threads (grpc) / writer threads (storage); "
              "load average %s\n\n",
              std::thread::hardware_concurrency(), LoadAverage().c_str());
  std::fflush(stdout);

  nlohmann::json report = NewReport("ingest_bench", argc, argv);
  report["config"] = {{"rows", x.n},
                      {"dim", x.dim},
                      {"raw_mb", raw_mb},
                      {"batch", args.batch},
                      {"durability", args.durability},
                      {"rounds", args.rounds},
                      {"threads", args.threads},
                      {"quiverd", args.quiverd},
                      {"quiverd_env", args.quiverd_env},
                      {"tmp_dir", args.tmp_dir},
                      {"filesystem", FilesystemOf(args.tmp_dir)}};

  // samples[{path, threads}] = one Sample per round.
  std::map<std::pair<std::string, int>, std::vector<Sample>> samples;
  for (int r = 0; r < args.rounds; ++r) {
    for (size_t ti = 0; ti < args.threads.size(); ++ti) {
      const int th = args.threads[ti];
      // Alternate which path goes first so drift hits both alike.
      const bool grpc_first = (r + ti) % 2 == 0;
      for (int step = 0; step < 2; ++step) {
        const bool grpc = (step == 0) == grpc_first;
        Sample s = grpc ? RunGrpc(args, reqs, x.dim, th, x.n)
                        : RunStorage(args, x, ds->train_labels, th);
        samples[{grpc ? "grpc" : "storage", th}].push_back(s);
        std::printf("  round %d  %-7s threads %d: %.2f s  %s vectors/s\n", r + 1,
                    grpc ? "grpc" : "storage", th, s.seconds,
                    Thousands(static_cast<double>(x.n) / s.seconds).c_str());
        std::fflush(stdout);
      }
    }
  }

  Table table({"path", "threads", "durability", "median s", "vectors/s", "MB/s",
               "p50 ms/batch",
               "client CPU s", "server CPU s", "server peak RSS MB", "others' cores",
               "grpc/storage", ">= 0.5x?"});
  nlohmann::json results = nlohmann::json::array();
  std::vector<std::string> timing_lines;
  for (int th : args.threads) {
    const auto& g = samples[{"grpc", th}];
    const auto& st = samples[{"storage", th}];
    std::vector<double> ratios;
    for (size_t r = 0; r < g.size() && r < st.size(); ++r) {
      ratios.push_back(st[r].seconds / g[r].seconds);  // throughput ratio
    }
    const double ratio = Median(ratios);
    for (const char* path : {"storage", "grpc"}) {
      const auto& v = samples[{path, th}];
      std::vector<double> secs, ccpu, scpu, hwm, others, lat, srv_ms, probe;
      for (const Sample& s : v) {
        secs.push_back(s.seconds);
        ccpu.push_back(s.client_cpu_s);
        scpu.push_back(s.server_cpu_s);
        hwm.push_back(static_cast<double>(s.server_hwm_kb) / 1024.0);
        others.push_back(s.other_cores);
        lat.insert(lat.end(), s.latency_ms.begin(), s.latency_ms.end());
        srv_ms.insert(srv_ms.end(), s.server_ms.begin(), s.server_ms.end());
        if (s.probe_ms >= 0) probe.push_back(s.probe_ms);
      }
      const double med = Median(secs);
      const bool is_grpc = std::string(path) == "grpc";
      table.AddRow({path, std::to_string(th), args.durability, Fixed(med, 2),
                    Thousands(static_cast<double>(x.n) / med), Fixed(raw_mb / med, 1),
                    Fixed(Percentile(lat, 50), 1),
                    Fixed(Median(ccpu), 2), is_grpc ? Fixed(Median(scpu), 2) : "-",
                    is_grpc ? Thousands(Median(hwm)) : "-", Fixed(std::max(0.0, Median(others)), 2),
                    is_grpc ? Fixed(ratio, 2) + "x" : "",
                    is_grpc ? (ratio >= 0.5 ? "yes" : "NO") : ""});
      nlohmann::json j = {{"path", path},
                          {"threads", th},
                          {"durability", args.durability},
                          {"seconds", secs},
                          {"median_seconds", med},
                          {"vectors_per_s", static_cast<double>(x.n) / med},
                          {"mb_per_s", raw_mb / med},
                          {"client_cpu_s", ccpu},
                          {"others_cores_busy", others},
                          {"p50_ms_per_batch", Percentile(lat, 50)},
                          {"p99_ms_per_batch", Percentile(lat, 99)}};
      if (is_grpc && !srv_ms.empty()) {
        j["server_handler_p50_ms"] = Percentile(srv_ms, 50);
        timing_lines.push_back(absl::StrCat(
            "  grpc, ", th, " thread(s): client p50 ", Fixed(Percentile(lat, 50), 1),
            " ms per request; quiverd handler (queue + commit + apply) p50 ",
            Fixed(Percentile(srv_ms, 50), 1), " ms -> send/receive/parse ~",
            Fixed(Percentile(lat, 50) - Percentile(srv_ms, 50), 1), " ms"));
        timing_lines.push_back(absl::StrCat(
            "    (the same request to a missing collection, i.e. send + receive + parse + "
            "NOT_FOUND, takes ", Fixed(Median(probe), 1), " ms)"));
        j["transport_probe_ms"] = Median(probe);
      }
      if (is_grpc) {
        j["server_cpu_s"] = scpu;
        j["server_peak_rss_mb"] = hwm;
        j["ratio_grpc_over_storage_per_round"] = ratios;
        j["ratio_grpc_over_storage"] = ratio;
      }
      results.push_back(j);
    }
  }
  std::printf("\nQuestion: is durable gRPC ingest at least 0.5x of storage-only ingest of the "
              "same bytes?\n(ratio = median over rounds of storage_seconds / grpc_seconds; "
              "MB = 10^6 bytes of raw float32; p50 ms/batch = per UpsertPoints call (grpc) or per batch built and written (storage); CPU s = CPU seconds, client = this process; "
              "others' cores = CPU used by other processes meanwhile / wall)\n\n");
  std::ostringstream out;
  table.Print(out);
  std::printf("%s", out.str().c_str());
  if (!timing_lines.empty()) {
    std::printf("\nWhere a request's time goes (storage p50 above = one batch built + Store::Write):\n");
    for (const auto& l : timing_lines) std::printf("%s\n", l.c_str());
  }
  report["results"] = results;
  report["table"] = out.str();
  FinishReport(&report, args.json_out);
  return 0;
}

}  // namespace
}  // namespace quiver::bench

int main(int argc, char** argv) { return quiver::bench::Main(argc, argv); }
