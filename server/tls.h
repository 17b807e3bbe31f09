// ServerTls: quiverd's TLS certificate, key and (for mutual TLS) client CA,
// reloadable without a restart.
//
// --tls-cert and --tls-key name PEM files (the certificate chain, server
// certificate first, and its private key); --tls-client-ca a PEM bundle of
// the CAs that sign client certificates: with it, every client must present
// a certificate they signed (mutual TLS). Files are read and checked with
// OpenSSL (PEM parses, the key matches the certificate) before use.
//
// Reload() re-reads the files (quiverd calls it on SIGHUP). gRPC asks for
// the configuration at every new TLS handshake (the SSL server credentials'
// certificate-config fetcher), so connections opened after a successful
// reload get the new certificate; open connections keep theirs. A file that
// fails to read or check leaves the previous files in force.
//
// Ownership: the Server owns its ServerTls, which must outlive the gRPC
// server (gRPC calls back into it). Thread-safety: Reload may run
// concurrently with gRPC's handshakes; the material is swapped under a lock.
// Errors: absl::Status; INVALID_ARGUMENT naming the file and what is wrong
// (never any key material), NOT_FOUND/PERMISSION_DENIED when unreadable.
#ifndef QUIVER_SERVER_TLS_H_
#define QUIVER_SERVER_TLS_H_

#include <memory>
#include <string>

#include <grpc/grpc_security.h>
#include <grpcpp/security/server_credentials.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"

namespace quiver::server {

class ServerTls {
 public:
  // Reads and checks the files. `client_ca_path` empty: clients are not
  // asked for certificates.
  static absl::StatusOr<std::unique_ptr<ServerTls>> Load(std::string cert_path,
                                                         std::string key_path,
                                                         std::string client_ca_path);
  ~ServerTls();

  // Re-reads the files; on error the previous ones stay in force.
  absl::Status Reload();

  // Credentials for ServerBuilder::AddListeningPort; they call back into
  // this object.
  std::shared_ptr<grpc::ServerCredentials> Credentials();

  bool mutual() const { return !client_ca_path_.empty(); }

  // The PEM texts in force, and a number that grows with each successful
  // load, for other TLS endpoints (the HTTP gateway) to follow reloads.
  struct Pem {
    std::string cert_chain;
    std::string private_key;
    std::string client_ca;  // "" without mutual TLS
    uint64_t generation = 0;
  };
  Pem CurrentPem() {
    MutexLock lock(&mu_);
    return Pem{material_.cert_chain, material_.private_key, material_.client_ca, generation_};
  }

 private:
  struct Material {
    std::string cert_chain;
    std::string private_key;
    std::string client_ca;  // "" without mutual TLS
  };
  ServerTls(std::string cert_path, std::string key_path, std::string client_ca_path)
      : cert_path_(std::move(cert_path)),
        key_path_(std::move(key_path)),
        client_ca_path_(std::move(client_ca_path)) {}
  absl::StatusOr<Material> Read() const;
  // gRPC's certificate-config callback, called at each handshake.
  static grpc_ssl_certificate_config_reload_status FetchConfig(
      void* self, grpc_ssl_server_certificate_config** config);

  const std::string cert_path_;
  const std::string key_path_;
  const std::string client_ca_path_;
  Mutex mu_;
  Material material_ ABSL_GUARDED_BY(mu_);
  // Bumped by each successful load; gRPC is handed a new config when the
  // generation it last got is older.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t served_generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace quiver::server

#endif  // QUIVER_SERVER_TLS_H_
