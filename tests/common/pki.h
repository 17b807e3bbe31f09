// MakeTestPki: a throw-away certificate authority and certificates signed
// by it, made with the openssl command (as an operator would), for the TLS
// tests of quiverd, quiverctl and the client library.
//
// Stateless; each call writes its own files. Errors: absl::Status with the
// openssl output.
#ifndef QUIVER_TESTS_COMMON_PKI_H_
#define QUIVER_TESTS_COMMON_PKI_H_

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace quiver::testing {

// Writes, in `dir`: <name>-ca.{crt,key}, a CA; <name>-server.{crt,key}, a
// server certificate for 127.0.0.1 and localhost (subjectAltName); and
// <name>-client.{crt,key}, a client certificate. EC P-256 keys, valid 2
// days, unencrypted PEM.
inline absl::Status MakeTestPki(const std::string& dir, const std::string& name) {
  const std::string p = dir + "/" + name;
  {
    std::ofstream ext(p + ".ext");
    ext << "[server]\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
           "extendedKeyUsage=serverAuth\n"
           "[client]\nextendedKeyUsage=clientAuth\n";
  }
  const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  const std::string script = absl::StrCat(
      "set -e; exec >", p, ".openssl.log 2>&1; ",
      "openssl req -x509 ", ec, " -keyout ", p, "-ca.key -out ", p,
      "-ca.crt -days 2 -subj /CN=quiver-test-ca-", name, "; ",
      "for who in server client; do ",
      "openssl req ", ec, " -keyout ", p, "-$who.key -out ", p, "-$who.csr -subj /CN=", name,
      "-$who; ",
      "openssl x509 -req -in ", p, "-$who.csr -CA ", p, "-ca.crt -CAkey ", p,
      "-ca.key -CAcreateserial -days 2 -out ", p, "-$who.crt -extfile ", p,
      ".ext -extensions $who; ",
      "done");
  const std::string cmd = "sh -c '" + script + "'";
  if (std::system(cmd.c_str()) != 0) {
    std::ifstream log(p + ".openssl.log");
    std::stringstream out;
    out << log.rdbuf();
    return absl::InternalError(absl::StrCat("openssl failed: ", out.str()));
  }
  return absl::OkStatus();
}

}  // namespace quiver::testing

#endif  // QUIVER_TESTS_COMMON_PKI_H_
