// ServerFixture: the gtest fixture of the end-to-end tests that talk to one
// quiverd through the C++ client: a fresh temporary directory, the server
// on <dir>/data started with the test's flags, and a client connected to it.
//
// The fixture owns the directory, the server and the client; they go away
// with the test (the server is stopped first, then the directory removed).
// Not thread-safe: call StartServer from the test's thread. Errors are test
// failures (a server that does not start fails the test where it is
// started).
#ifndef QUIVER_TESTS_COMMON_SERVER_FIXTURE_H_
#define QUIVER_TESTS_COMMON_SERVER_FIXTURE_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "client/client.h"
#include "tests/common/quiverd_process.h"
#include "tests/common/test_util.h"

namespace quiver::testing {

class ServerFixture : public ::testing::Test {
 protected:
  // Starts quiverd on dir_/data with `args` (and `options`: its log kept,
  // say) and connects client_ to it.
  void StartServer(std::vector<std::string> args = {}, QuiverdOptions options = {}) {
    server_ = std::make_unique<QuiverdProcess>(std::move(options));
    QUIVER_ASSERT_OK(server_->Start(dir_.path() + "/data", std::move(args)));
    client_ = std::make_unique<client::Client>(server_->address());
  }

  // Declared first so it is destroyed last, after the server.
  TempDir dir_;
  std::unique_ptr<QuiverdProcess> server_;
  std::unique_ptr<client::Client> client_;
};

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_COMMON_SERVER_FIXTURE_H_
