#include "bench/common/report.h"

#include <unistd.h>

#include <cerrno>  // program_invocation_short_name
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bench/common/sysinfo.h"

namespace quiver::bench {
namespace {

std::string Run(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (f == nullptr) return out;
  char buf[256];
  while (fgets(buf, sizeof(buf), f) != nullptr) out += buf;
  pclose(f);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

nlohmann::json NewReport(const std::string& name, int argc, char** argv) {
  nlohmann::json r;
  r["benchmark"] = name;
  char ts[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  r["started_utc"] = ts;
  const std::string src = QUIVER_BENCH_SOURCE_DIR;
  r["git"] = {
      {"commit", Run("git -C '" + src + "' rev-parse HEAD 2>/dev/null")},
      {"dirty", !Run("git -C '" + src + "' status --porcelain 2>/dev/null | head -1").empty()}};
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  r["host"] = {{"hostname", host},
               {"cpu", CpuModel()},
               {"cores", std::thread::hardware_concurrency()},
               {"blas", BlasConfig()},
               {"loadavg_at_start", LoadAverage()}};
  std::string cmd;
  for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + std::string(argv[i]);
  r["command"] = cmd;
  return r;
}

std::string WriteReport(const nlohmann::json& report, const std::string& path) {
  std::string out = path;
  if (out.empty()) {
    out = ExeDir() + "/bench_results/" + report.value("benchmark", "bench") + ".json";
  }
  std::error_code ec;
  const auto parent = std::filesystem::path(out).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  std::ofstream f(out, std::ios::trunc);
  f << report.dump(2) << "\n";
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", out.c_str());
    return "";
  }
  return out;
}

void FinishReport(nlohmann::json* report, const std::string& path) {
  (*report)["host"]["loadavg_at_end"] = LoadAverage();
  const std::string written = WriteReport(*report, path);
  if (!written.empty()) std::printf("JSON: %s\n", written.c_str());
}

std::string ResultsStem(const std::string& json_out, const std::string& name) {
  std::string dir = json_out.empty() ? ExeDir() + "/bench_results"
                                     : std::filesystem::path(json_out).parent_path().string();
  if (dir.empty()) dir = ".";
  std::filesystem::create_directories(dir);
  return dir + "/" + name;
}

std::string RunGnuplot(const std::string& stem, std::ostream& out) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    out << "\n(gnuplot not found: apt-get install gnuplot-nox; data in " << stem << ".dat)\n";
    return "";
  }
  return std::system(("gnuplot '" + stem + ".gp'").c_str()) == 0 ? stem + ".png" : "";
}

void Die(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what.c_str(),
               s.ToString().c_str());
  std::exit(1);
}

}  // namespace quiver::bench
