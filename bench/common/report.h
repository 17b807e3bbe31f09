// Report: the JSON a benchmark writes next to its binary
// (<exe dir>/bench_results/<name>.json), with the facts needed to compare
// runs: when, which commit, which machine, BLAS, command line.
#ifndef QUIVER_BENCH_COMMON_REPORT_H_
#define QUIVER_BENCH_COMMON_REPORT_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace quiver::bench {

// {"benchmark": name, "started_utc": ..., "git": ..., "host": {...},
//  "command": "..."}; add results to it and call WriteReport.
nlohmann::json NewReport(const std::string& name, int argc, char** argv);

// Writes `report` to `path`, or to <exe dir>/bench_results/<name>.json when
// `path` is empty. Returns the path written ("" and a message on stderr on
// failure).
std::string WriteReport(const nlohmann::json& report, const std::string& path = "");

// The end of a run: records the load average at the end in the report's
// "host", writes it (WriteReport) and prints "JSON: <path>".
void FinishReport(nlohmann::json* report, const std::string& path);

// <folder of `json_out`, or <exe dir>/bench_results>/<name>, the folder
// created: where a benchmark's curves (.dat, .gp, .png) go.
std::string ResultsStem(const std::string& json_out, const std::string& name);

// Draws <stem>.gp into <stem>.png; returns the PNG's path, or "" with a
// note in `out` when there is no gnuplot (the .dat file stays).
std::string RunGnuplot(const std::string& stem, std::ostream& out);

// Prints "<program>: <what>: <status>" to stderr and exits 1: a benchmark
// whose setup fails has nothing to report.
[[noreturn]] void Die(const std::string& what, const absl::Status& s);

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_COMMON_REPORT_H_
