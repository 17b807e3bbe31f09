#include "server/tls.h"

#include <grpc/grpc.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace quiver::server {
namespace {

// ServerCredentials over SSL credentials made with gRPC's C API, the one
// that takes a certificate-config fetcher (the C++ SslServerCredentials
// takes fixed PEM strings). grpc::Server hands the listening port to
// AddPortToServer, which every ServerCredentials implements.
class FetchedSslCredentials final : public grpc::ServerCredentials {
 public:
  explicit FetchedSslCredentials(grpc_server_credentials* creds) : creds_(creds) {}
  ~FetchedSslCredentials() override { grpc_server_credentials_release(creds_); }
  // quiverd checks API keys in its handlers, not through gRPC's processor.
  void SetAuthMetadataProcessor(const std::shared_ptr<grpc::AuthMetadataProcessor>&) override {}

 private:
  int AddPortToServer(const std::string& addr, grpc_server* server) override {
    return grpc_server_add_http2_port(server, addr.c_str(), creds_);
  }
  grpc_server_credentials* const creds_;
};

absl::StatusOr<std::string> ReadFile(const std::string& what, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    const std::string why = absl::StrCat("cannot read ", what, " ", path, ": ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(why) : absl::PermissionDeniedError(why);
  }
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", what, " ", path));
  return text.str();
}

std::string OpenSslError() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "not PEM";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

// The first certificate of a PEM text.
absl::StatusOr<std::unique_ptr<X509, X509Free>> ParseCerts(const std::string& what,
                                                           const std::string& path,
                                                           const std::string& pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  std::unique_ptr<X509, X509Free> first(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (first == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", path,
                                                   " holds no PEM certificate (",
                                                   OpenSslError(), ")"));
  }
  ERR_clear_error();
  return first;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerTls>> ServerTls::Load(std::string cert_path,
                                                           std::string key_path,
                                                           std::string client_ca_path) {
  if (cert_path.empty() != key_path.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  std::unique_ptr<ServerTls> t(
      new ServerTls(std::move(cert_path), std::move(key_path), std::move(client_ca_path)));
  absl::Status s = t->Reload();
  if (!s.ok()) return s;
  return t;
}

ServerTls::~ServerTls() = default;

absl::StatusOr<ServerTls::Material> ServerTls::Read() const {
  Material m;
  auto cert = ReadFile("TLS certificate", cert_path_);
  if (!cert.ok()) return cert.status();
  auto key = ReadFile("TLS key", key_path_);
  if (!key.ok()) return key.status();
  m.cert_chain = *std::move(cert);
  m.private_key = *std::move(key);
  auto leaf = ParseCerts("TLS certificate", cert_path_, m.cert_chain);
  if (!leaf.ok()) return leaf.status();
  std::unique_ptr<BIO, BioFree> kbio(
      BIO_new_mem_buf(m.private_key.data(), static_cast<int>(m.private_key.size())));
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey(
      PEM_read_bio_PrivateKey(kbio.get(), nullptr, nullptr, nullptr));
  if (pkey == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("TLS key ", key_path_,
                                                   " holds no unencrypted PEM private key (",
                                                   OpenSslError(), ")"));
  }
  if (X509_check_private_key(leaf->get(), pkey.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("TLS key ", key_path_,
                                                   " does not match the certificate in ",
                                                   cert_path_));
  }
  if (!client_ca_path_.empty()) {
    auto ca = ReadFile("TLS client CA", client_ca_path_);
    if (!ca.ok()) return ca.status();
    m.client_ca = *std::move(ca);
    auto first = ParseCerts("TLS client CA", client_ca_path_, m.client_ca);
    if (!first.ok()) return first.status();
  }
  return m;
}

absl::Status ServerTls::Reload() {
  absl::StatusOr<Material> m = Read();
  if (!m.ok()) return m.status();
  MutexLock lock(&mu_);
  material_ = *std::move(m);
  ++generation_;
  return absl::OkStatus();
}

grpc_ssl_certificate_config_reload_status ServerTls::FetchConfig(
    void* self, grpc_ssl_server_certificate_config** config) {
  auto* t = static_cast<ServerTls*>(self);
  MutexLock lock(&t->mu_);
  if (t->served_generation_ == t->generation_) return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
  grpc_ssl_pem_key_cert_pair pair{t->material_.private_key.c_str(),
                                  t->material_.cert_chain.c_str()};
  // gRPC 1.51 asserts that a fetched config has root certificates, even
  // when clients are not asked for certificates (then they are never used):
  // without mutual TLS the server's own chain stands in.
  const std::string& roots =
      t->material_.client_ca.empty() ? t->material_.cert_chain : t->material_.client_ca;
  *config = grpc_ssl_server_certificate_config_create(roots.c_str(), &pair, 1);
  if (*config == nullptr) return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
  if (t->served_generation_ != 0) spdlog::info("TLS: new certificate in use for new connections");
  t->served_generation_ = t->generation_;
  return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}

std::shared_ptr<grpc::ServerCredentials> ServerTls::Credentials() {
  grpc_ssl_server_credentials_options* opts =
      grpc_ssl_server_credentials_create_options_using_config_fetcher(
          mutual() ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                   : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
          &ServerTls::FetchConfig, this);
  return std::make_shared<FetchedSslCredentials>(
      grpc_ssl_server_credentials_create_with_options(opts));
}

}  // namespace quiver::server
