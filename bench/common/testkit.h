// The benchmarks' view of the scaffolding they share with the tests
// (tests/common, library quiver_testkit): the quiverd launcher, the
// Fashion-MNIST loader, recall@k and the table printer under the names the
// benchmarks use, plus how a benchmark runs quiverd and waits on it.
//
// Thread-safety: as the functions they wrap. Errors: the waits end the
// benchmark (Die) -- a benchmark whose server never settles has nothing to
// report.
#ifndef QUIVER_BENCH_COMMON_TESTKIT_H_
#define QUIVER_BENCH_COMMON_TESTKIT_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "client/client.h"
#include "tests/common/fashion_mnist.h"
#include "tests/common/fashion_patches.h"
#include "tests/common/quiverd_process.h"
#include "tests/common/recall.h"
#include "tests/common/server_wait.h"
#include "tests/common/table.h"

namespace quiver::bench {

using ::quiver::testing::CountLines;
using ::quiver::testing::FashionMnist;
using ::quiver::testing::FileTail;
using ::quiver::testing::Fixed;
using ::quiver::testing::HashFloats;
using ::quiver::testing::kFashionDir;
using ::quiver::testing::LoadFashionMnist;
using ::quiver::testing::Matrix;
using ::quiver::testing::QuiverdOptions;
using ::quiver::testing::QuiverdProcess;
using ::quiver::testing::RpcTimesFromLog;
using ::quiver::testing::Segments;
using ::quiver::testing::SegmentsState;
using ::quiver::testing::Table;
using ::quiver::testing::Thousands;

// quiverd as the benchmarks run it: sync durability and one search thread
// unless the benchmark sets otherwise; its log captured in the temporary
// directory (build and RPC times are read from it); ready when the gRPC
// health check answers; a minute to start and to stop.
QuiverdOptions BenchQuiverdOptions();

// testing::WaitIndexed, ending the benchmark when it times out.
double WaitIndexedOrDie(client::Client& c, const std::vector<std::string>& colls,
                        double timeout_s, int poll_ms);

// Waits until the process uses (almost) no CPU for two 0.5 s periods, or
// `timeout_s` passed: measurements start on a quiet server.
void WaitQuiet(pid_t pid, double timeout_s = 120);

}  // namespace quiver::bench

#endif  // QUIVER_BENCH_COMMON_TESTKIT_H_
