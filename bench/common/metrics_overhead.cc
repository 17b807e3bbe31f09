#include "bench/common/metrics_overhead.h"

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <numeric>
#include <thread>

#include "absl/strings/str_cat.h"
#include "bench/common/driver.h"
#include "bench/common/report.h"
#include "bench/common/sysinfo.h"
#include "client/client.h"
#include "tests/common/http_get.h"

namespace quiver::bench {
namespace {

// A sample's value in Prometheus text ("name{labels} value" line), or -1.
double SampleValue(const std::string& text, const std::string& key) {
  const size_t at = text.find("\n" + key + " ");
  if (at == std::string::npos) return -1;
  return std::atof(text.c_str() + at + key.size() + 2);
}

struct Server {
  std::unique_ptr<QuiverdProcess> proc;
  std::vector<std::unique_ptr<client::Client>> clients;  // one per thread
  int metrics_port = 0;
  std::vector<double> qps;
  std::vector<double> cpu_us;  // server CPU per search, per block
  std::vector<double> latency_ms;
};

}  // namespace

nlohmann::json MeasureMetricsOverhead(const QuiverdOptions& server, const std::string& data_dir,
                                      const std::vector<std::string>& collections,
                                      const std::vector<v1::SearchRequest>& reqs,
                                      const MetricsOverheadOptions& options) {
  // The second server gets a copy, so neither holds the other's RocksDB lock.
  const std::string copy = data_dir + "-metrics-on";
  std::filesystem::remove_all(copy);
  std::filesystem::copy(data_dir, copy, std::filesystem::copy_options::recursive);

  Server servers[2];  // [0] off, [1] on
  for (int i = 0; i < 2; ++i) {
    QuiverdOptions o = server;
    o.data_dir = i == 0 ? data_dir : copy;
    if (i == 0) {
      o.extra_args.insert(o.extra_args.end(), {"--recall-audit-rate", "0"});
    } else {
      servers[i].metrics_port = testing::PickFreePort();
      o.extra_args.insert(o.extra_args.end(), {"--metrics-listen", absl::StrCat(
                                                  "127.0.0.1:", servers[i].metrics_port)});
    }
    auto p = QuiverdProcess::Launch(o);
    if (!p.ok()) Die(i == 0 ? "start quiverd (metrics off)" : "start quiverd (metrics on)",
                     p.status());
    servers[i].proc = *std::move(p);
    client::Client admin(servers[i].proc->address());
    WaitIndexedOrDie(admin, collections, 900, 50);
    for (int t = 0; t < options.threads; ++t) {
      servers[i].clients.push_back(std::make_unique<client::Client>(servers[i].proc->address()));
    }
  }
  for (Server& s : servers) WaitQuiet(s.proc->pid(), 60);

  // Prometheus' part: a scrape of the "on" server every interval.
  std::atomic<bool> stop{false};
  std::atomic<int> scrapes{0}, scrape_errors{0};
  std::thread scraper([&] {
    while (!stop.load()) {
      if (testing::HttpGet(servers[1].metrics_port, "/metrics").ok()) ++scrapes;
      else ++scrape_errors;
      for (double w = 0; w < options.scrape_interval_s && !stop.load(); w += 0.05) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  });

  auto block = [&](Server& s, size_t offset) {
    const double cpu0 = ProcessCpuSeconds(s.proc->pid());
    Run run = Drive(options.calls_per_block, options.threads, 0, 0,
                    [&](size_t c, int t, Run*) {
                      auto r = s.clients[t]->Search(reqs[(offset + c) % reqs.size()]);
                      if (!r.ok()) Die("Search", r.status());
                    });
    s.qps.push_back(static_cast<double>(options.calls_per_block) / run.seconds);
    s.cpu_us.push_back((ProcessCpuSeconds(s.proc->pid()) - cpu0) * 1e6 /
                       static_cast<double>(options.calls_per_block));
    s.latency_ms.insert(s.latency_ms.end(), run.latency_ms.begin(), run.latency_ms.end());
  };
  // Warm-up: both servers once, untimed.
  for (Server& s : servers) {
    block(s, 0);
    s.qps.clear();
    s.cpu_us.clear();
    s.latency_ms.clear();
  }
  std::vector<double> ratios, cpu_ratios;
  for (int r = 0; r < options.rounds; ++r) {
    const size_t offset = static_cast<size_t>(r) * options.calls_per_block;
    if (r % 2 == 0) {
      block(servers[0], offset);
      block(servers[1], offset);
    } else {
      block(servers[1], offset);
      block(servers[0], offset);
    }
    ratios.push_back(servers[1].qps.back() / servers[0].qps.back());
    cpu_ratios.push_back(servers[1].cpu_us.back() / servers[0].cpu_us.back());
  }
  stop = true;
  scraper.join();

  const absl::StatusOr<std::string> last = testing::HttpGet(servers[1].metrics_port, "/metrics");
  double audited = 0;
  if (last.ok()) {
    for (const std::string& c : collections) {
      const double v = SampleValue(
          *last, absl::StrCat("quiver_recall_audit_searches_total{collection=\"", c,
                              "\",field=\"", reqs.front().field(), "\"}"));
      if (v > 0) audited += v;
    }
  }
  const double ratio = Median(ratios);
  // CPU time comes in clock ticks (10 ms), coarse for one block: the ratio
  // of the totals over all rounds.
  const double cpu_ratio =
      std::accumulate(servers[1].cpu_us.begin(), servers[1].cpu_us.end(), 0.0) /
      std::accumulate(servers[0].cpu_us.begin(), servers[0].cpu_us.end(), 0.0);
  Table t({"quiverd", "QPS (median)", "p50 ms", "p99 ms", "QPS / off", "server CPU us/search",
           "CPU / off"});
  const char* names[] = {"off (no --metrics-listen, --recall-audit-rate 0)",
                         "on (--metrics-listen, scraped every 1 s; audit rate 0.001)"};
  for (int i = 0; i < 2; ++i) {
    t.AddRow({names[i], Fixed(Median(servers[i].qps), 0),
              Fixed(Percentile(servers[i].latency_ms, 50), 3),
              Fixed(Percentile(servers[i].latency_ms, 99), 3), i == 0 ? "1.000" : Fixed(ratio, 3),
              Fixed(std::accumulate(servers[i].cpu_us.begin(), servers[i].cpu_us.end(), 0.0) /
                        static_cast<double>(std::max<size_t>(1, servers[i].cpu_us.size())),
                    1),
              i == 0 ? "1.000" : Fixed(cpu_ratio, 3)});
  }
  t.Print(std::cout);
  std::printf("  %d rounds x %zu single-query searches per server, %d client threads; median of "
              "per-round ratios: QPS %.3f (overhead %.1f%%); server CPU per search, all rounds: %.3f (%+.1f%%); "
              "%d scrapes (%d failed); %.0f searches audited\n",
              options.rounds, options.calls_per_block, options.threads, ratio, (1 - ratio) * 100,
              cpu_ratio, (cpu_ratio - 1) * 100, scrapes.load(), scrape_errors.load(), audited);
  std::fflush(stdout);
  nlohmann::json j = {{"rounds", options.rounds},
                      {"calls_per_block", options.calls_per_block},
                      {"threads", options.threads},
                      {"scrape_interval_s", options.scrape_interval_s},
                      {"qps_off", servers[0].qps},
                      {"qps_on", servers[1].qps},
                      {"ratios", ratios},
                      {"median_ratio", ratio},
                      {"cpu_us_off", servers[0].cpu_us},
                      {"cpu_us_on", servers[1].cpu_us},
                      {"cpu_ratios", cpu_ratios},
                      {"cpu_ratio_all_rounds", cpu_ratio},
                      {"overhead_percent", (1 - ratio) * 100},
                      {"p50_ms_off", Percentile(servers[0].latency_ms, 50)},
                      {"p50_ms_on", Percentile(servers[1].latency_ms, 50)},
                      {"scrapes", scrapes.load()},
                      {"audited_searches", audited},
                      {"argv_off", servers[0].proc->argv()},
                      {"argv_on", servers[1].proc->argv()}};
  for (Server& s : servers) (void)s.proc->Stop();
  std::filesystem::remove_all(copy);
  return j;
}

}  // namespace quiver::bench
