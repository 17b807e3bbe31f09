// export_bench: how fast do points come out of Quiver (ScrollPoints, and
// `quiverctl export` to a file) next to how fast they go in (UpsertPoints)?
//
// Fashion-MNIST's training set (60,000 x 784 float32, its class as the
// INT64 attribute "label"), in each round against a fresh quiverd:
//   import       UpsertPoints through quiver::client::Client, `--batch`
//                points a request, one client thread (requests built before
//                the clock starts);
//   scroll       ScrollPoints with vectors and attributes, `--page` points
//                a page, one thread, every page decoded (no file written);
//   export-npy   `quiverctl export --format npy` to a file (vectors + meta);
//   export-jsonl `quiverctl export --format jsonl` to a file.
// The three exports of a round run in an order that rotates round by round,
// on the quiet server (indexes built, no write going on), and each checks it
// got every point. Reports the median of `--rounds` rounds: points/s and
// MB/s of raw float bytes (MB = 10^6 bytes), and the load average.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "bench/common/report.h"
#include "bench/common/sysinfo.h"
#include "bench/common/testkit.h"
#include "client/client.h"

namespace quiver::bench {
namespace {

constexpr char kCollection[] = "fmnist";

struct Args {
  size_t rows = 60000;
  size_t batch = 1000;
  uint32_t page = 1000;
  int rounds = 3;
  std::string quiverd = QUIVERD_PATH;
  std::string quiverctl;
  std::string tmp_dir;
  std::string dataset_dir = kFashionDir;
  std::string json_out;
};

v1::CollectionSchema Schema(size_t dim) {
  v1::CollectionSchema s;
  v1::VectorField* v = s.add_vectors();
  v->set_name("image");
  v->set_dim(static_cast<uint32_t>(dim));
  v->set_metric(v1::L2);
  v1::AttributeField* a = s.add_attributes();
  a->set_name("label");
  a->set_type(v1::INT64);
  return s;
}

std::vector<v1::UpsertPointsRequest> BuildRequests(const Matrix& x,
                                                   const std::vector<uint8_t>& labels,
                                                   size_t batch) {
  std::vector<v1::UpsertPointsRequest> reqs;
  for (size_t b = 0; b < x.n; b += batch) {
    v1::UpsertPointsRequest& req = reqs.emplace_back();
    req.set_collection(kCollection);
    for (size_t i = b; i < std::min(x.n, b + batch); ++i) {
      v1::Point* p = req.add_points();
      p->set_id(absl::StrCat("img-", i));
      (*p->mutable_vectors())["image"].mutable_values()->Add(x.row(i), x.row(i) + x.dim);
      (*p->mutable_attributes())["label"].set_int_value(labels[i]);
    }
  }
  return reqs;
}

double TimeImport(client::Client& c, const std::vector<v1::UpsertPointsRequest>& reqs) {
  const double t0 = NowSeconds();
  for (const auto& r : reqs) {
    if (auto s = c.Upsert(r); !s.ok()) Die("Upsert", s.status());
  }
  return NowSeconds() - t0;
}

double TimeScroll(client::Client& c, const Args& args, size_t expect) {
  v1::ScrollPointsRequest req;
  req.set_collection(kCollection);
  req.set_page_size(args.page);
  req.set_with_vectors(true);
  size_t got = 0;
  const double t0 = NowSeconds();
  for (;;) {
    absl::StatusOr<v1::ScrollPointsResponse> page = c.Scroll(req);
    if (!page.ok()) Die("ScrollPoints", page.status());
    got += static_cast<size_t>(page->points_size());
    if (page->next_cursor().empty()) break;
    req.set_cursor(page->next_cursor());
  }
  const double secs = NowSeconds() - t0;
  if (got != expect) Die("ScrollPoints", absl::DataLossError(absl::StrCat("got ", got, " points")));
  return secs;
}

double TimeQuiverctl(const Args& args, const std::string& address, const std::string& format,
                     const std::string& out, size_t expect) {
  const std::string cmd = absl::StrCat("'", args.quiverctl, "' --addr ", address, " export ",
                                       kCollection, " --format ", format, " -o '", out,
                                       "' --page-size ", args.page, " --no-progress >/dev/null");
  const double t0 = NowSeconds();
  if (std::system(cmd.c_str()) != 0) Die("quiverctl export", absl::InternalError(cmd));
  const double secs = NowSeconds() - t0;
  // Lines of the jsonl file, or of the npy export's meta file: one a point.
  const std::string lines_of = format == "jsonl" ? out : out.substr(0, out.size() - 4) + ".meta.jsonl";
  std::FILE* f = std::fopen(lines_of.c_str(), "r");
  size_t lines = 0;
  for (int ch; f != nullptr && (ch = std::fgetc(f)) != EOF;) lines += ch == '\n';
  if (f != nullptr) std::fclose(f);
  if (lines != expect) {
    Die("quiverctl export", absl::DataLossError(absl::StrCat(lines_of, " has ", lines, " lines")));
  }
  return secs;
}

int Main(int argc, char** argv) {
  Args args;
  args.tmp_dir = ExeDir() + "/bench_tmp";
  args.quiverctl = std::filesystem::path(args.quiverd).parent_path().string() + "/quiverctl";
  CLI::App app{"export_bench: ScrollPoints and quiverctl export next to UpsertPoints import"};
  app.add_option("--rows", args.rows, "training rows (max 60000)");
  app.add_option("--batch", args.batch, "points per UpsertPoints request");
  app.add_option("--page", args.page, "points per ScrollPoints page");
  app.add_option("--rounds", args.rounds, "rounds; the median is reported");
  app.add_option("--quiverd", args.quiverd, "quiverd binary");
  app.add_option("--quiverctl", args.quiverctl, "quiverctl binary (default: beside quiverd)");
  app.add_option("--tmp-dir", args.tmp_dir, "where data dirs and exported files go");
  app.add_option("--dataset-dir", args.dataset_dir, "Fashion-MNIST IDX folder");
  app.add_option("--json", args.json_out, "JSON output (default <exe dir>/bench_results/)");
  CLI11_PARSE(app, argc, argv);
  std::filesystem::create_directories(args.tmp_dir);
  auto ds = LoadFashionMnist(args.dataset_dir, args.rows, 1);
  if (!ds.ok()) Die("load dataset", ds.status());
  const Matrix& x = ds->train;
  const double raw_mb = static_cast<double>(x.bytes()) / 1e6;
  const auto reqs = BuildRequests(x, ds->train_labels, args.batch);
  std::printf("export_bench: %zu x %zu float32 (%.1f MB raw), import batch %zu, page %u, "
              "%d rounds; load average %s\n\n",
              x.n, x.dim, raw_mb, args.batch, args.page, args.rounds, LoadAverage().c_str());
  std::fflush(stdout);

  const std::vector<std::string> paths = {"import", "scroll", "export-npy", "export-jsonl"};
  std::map<std::string, std::vector<double>> secs;
  for (int r = 0; r < args.rounds; ++r) {
    QuiverdOptions qo = BenchQuiverdOptions();
    qo.binary = args.quiverd;
    qo.tmp_root = args.tmp_dir;
    auto server = QuiverdProcess::Launch(qo);
    if (!server.ok()) Die("start quiverd", server.status());
    client::Client c((*server)->address());
    if (auto s = c.CreateCollection(kCollection, Schema(x.dim)); !s.ok()) Die("create", s.status());
    secs["import"].push_back(TimeImport(c, reqs));
    WaitQuiet((*server)->pid());
    for (int i = 0; i < 3; ++i) {
      const int which = (i + r) % 3;
      const std::string out = absl::StrCat(args.tmp_dir, "/export-", r);
      if (which == 0) secs["scroll"].push_back(TimeScroll(c, args, x.n));
      if (which == 1) {
        secs["export-npy"].push_back(
            TimeQuiverctl(args, (*server)->address(), "npy", out + ".npy", x.n));
      }
      if (which == 2) {
        secs["export-jsonl"].push_back(
            TimeQuiverctl(args, (*server)->address(), "jsonl", out + ".jsonl", x.n));
      }
    }
    for (const char* ext : {".npy", ".meta.jsonl", ".jsonl"}) {
      std::filesystem::remove(absl::StrCat(args.tmp_dir, "/export-", r, ext));
    }
    if (absl::Status st = (*server)->Stop(); !st.ok()) Die("stop quiverd", st);
    std::printf("  round %d:", r + 1);
    for (const auto& p : paths) std::printf("  %s %.2f s", p.c_str(), secs[p].back());
    std::printf("\n");
    std::fflush(stdout);
  }

  Table table({"path", "median s", "points/s", "MB/s", "vs import"});
  nlohmann::json report = NewReport("export_bench", argc, argv);
  nlohmann::json results = nlohmann::json::array();
  const double import_s = Median(secs["import"]);
  for (const auto& p : paths) {
    const double med = Median(secs[p]);
    table.AddRow({p, Fixed(med, 2), Thousands(static_cast<double>(x.n) / med),
                  Fixed(raw_mb / med, 1), Fixed(import_s / med, 2) + "x"});
    results.push_back({{"path", p}, {"seconds", secs[p]}, {"median_seconds", med},
                       {"points_per_s", static_cast<double>(x.n) / med}});
  }
  std::ostringstream out;
  table.Print(out);
  std::printf("\n%s\nload average at the end: %s\n", out.str().c_str(), LoadAverage().c_str());
  report["results"] = results;
  report["table"] = out.str();
  FinishReport(&report, args.json_out);
  return 0;
}

}  // namespace
}  // namespace quiver::bench

int main(int argc, char** argv) { return quiver::bench::Main(argc, argv); }
