#include "server/http_gateway.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/mutex.h"
#include "base/truncate.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace quiver::server {
namespace {

using google::protobuf::Message;

// Answers `res` with the JSON error body and the status's HTTP status (or
// `http_status` when given: 404/405/413 have no gRPC call behind them).
void SetError(httplib::Response& res, grpc::StatusCode code, const std::string& message,
              int http_status = 0) {
  nlohmann::json body = {{"code", static_cast<int>(code)},
                         {"status", absl::StatusCodeToString(static_cast<absl::StatusCode>(code))},
                         {"message", message}};
  res.status = http_status != 0 ? http_status : HttpStatusOf(code);
  // Messages quote user input, which need not be UTF-8.
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                  "application/json");
}

// What gRPC accepts as a metadata value: printable ASCII.
bool IsLegalMetadataValue(absl::string_view v) {
  return std::all_of(v.begin(), v.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

std::string HostOf(const std::string& listen, int* port) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), port) ||
      *port < 0 || *port > 65535) {
    return "";
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

// ----------------------------------------------------------------- HTTPS
// The TLS contexts of the HTTPS endpoint, following ServerTls's reloads:
// every handshake's ClientHello callback moves the connection to the
// context of the current files, built anew when ServerTls's generation
// changed. Thread-safe (handshakes run on the gateway's threads).
class HttpsContexts {
 public:
  explicit HttpsContexts(ServerTls* tls) : tls_(tls) {}

  // httplib's SSL_CTX setup: the current files, and the callback.
  bool Setup(SSL_CTX& ctx) {
    const ServerTls::Pem pem = tls_->CurrentPem();
    if (!Configure(&ctx, pem)) return false;
    {
      MutexLock lock(&mu_);
      generation_ = pem.generation;  // the base context serves these files
    }
    SSL_CTX_set_client_hello_cb(&ctx, &HttpsContexts::OnClientHello, this);
    return true;
  }

 private:
  struct CtxFree {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
  };

  static bool Configure(SSL_CTX* ctx, const ServerTls::Pem& pem) {
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    BIO* certs = BIO_new_mem_buf(pem.cert_chain.data(), static_cast<int>(pem.cert_chain.size()));
    X509* leaf = PEM_read_bio_X509(certs, nullptr, nullptr, nullptr);
    bool ok = leaf != nullptr && SSL_CTX_use_certificate(ctx, leaf) == 1;
    X509_free(leaf);
    SSL_CTX_clear_chain_certs(ctx);
    while (ok) {
      X509* extra = PEM_read_bio_X509(certs, nullptr, nullptr, nullptr);
      if (extra == nullptr) break;
      ok = SSL_CTX_add0_chain_cert(ctx, extra) == 1;
    }
    BIO_free(certs);
    BIO* kbio = BIO_new_mem_buf(pem.private_key.data(), static_cast<int>(pem.private_key.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(kbio, nullptr, nullptr, nullptr);
    ok = ok && key != nullptr && SSL_CTX_use_PrivateKey(ctx, key) == 1;
    EVP_PKEY_free(key);
    BIO_free(kbio);
    if (ok && !pem.client_ca.empty()) {
      BIO* cas = BIO_new_mem_buf(pem.client_ca.data(), static_cast<int>(pem.client_ca.size()));
      X509_STORE* store = X509_STORE_new();
      int n = 0;
      while (X509* ca = PEM_read_bio_X509(cas, nullptr, nullptr, nullptr)) {
        X509_STORE_add_cert(store, ca);
        SSL_CTX_add_client_CA(ctx, ca);
        X509_free(ca);
        ++n;
      }
      BIO_free(cas);
      SSL_CTX_set_cert_store(ctx, store);  // takes the store
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
      ok = n > 0;
    }
    ERR_clear_error();  // the end of each PEM list leaves an error queued
    return ok;
  }

  static int OnClientHello(SSL* ssl, int* /*alert*/, void* arg) {
    SSL_CTX* current = static_cast<HttpsContexts*>(arg)->Current();
    if (current != nullptr && current != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, current);
    return SSL_CLIENT_HELLO_SUCCESS;
  }

  // The context for the files in force; null until the first reload (the
  // base context, set up by Setup, serves until then).
  SSL_CTX* Current() {
    const ServerTls::Pem pem = tls_->CurrentPem();
    MutexLock lock(&mu_);
    if (pem.generation != generation_) {
      std::unique_ptr<SSL_CTX, CtxFree> ctx(SSL_CTX_new(TLS_server_method()));
      if (ctx != nullptr && Configure(ctx.get(), pem)) {
        current_ = std::move(ctx);
        spdlog::info("HTTPS: new certificate in use for new connections");
      } else {
        spdlog::error("HTTPS: the reloaded TLS files do not load; keeping the previous ones");
      }
      generation_ = pem.generation;
    }
    return current_.get();
  }

  ServerTls* const tls_;
  Mutex mu_;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  // SSL_set_SSL_CTX takes its own reference, so replacing this is safe
  // while connections still use the previous one.
  std::unique_ptr<SSL_CTX, CtxFree> current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

int HttpStatusOf(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return 200;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
    case grpc::StatusCode::OUT_OF_RANGE: return 400;
    case grpc::StatusCode::UNAUTHENTICATED: return 401;
    case grpc::StatusCode::PERMISSION_DENIED: return 403;
    case grpc::StatusCode::NOT_FOUND: return 404;
    case grpc::StatusCode::ALREADY_EXISTS:
    case grpc::StatusCode::ABORTED: return 409;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return 429;
    case grpc::StatusCode::CANCELLED: return 499;
    case grpc::StatusCode::UNIMPLEMENTED: return 501;
    case grpc::StatusCode::UNAVAILABLE: return 503;
    case grpc::StatusCode::DEADLINE_EXCEEDED: return 504;
    default: return 500;
  }
}

// Translates one HTTP request into its RPC and back (see the header).
class HttpGateway::Handler {
 public:
  Handler(HttpRouter router, ServerTls* tls) : router_(std::move(router)), https_(tls) {}

  // Before the accept loop starts, which orders it before every Handle.
  void SetChannel(std::shared_ptr<grpc::Channel> channel) {
    stub_ = std::make_unique<grpc::GenericStub>(std::move(channel));
  }

  HttpsContexts* https() { return &https_; }

  void Handle(const httplib::Request& req, httplib::Response& res) {
    absl::StatusOr<HttpRouter::Match> match = router_.Find(req.method, req.path);
    if (!match.ok()) {
      const bool other_method = absl::IsFailedPrecondition(match.status());
      return SetError(res, other_method ? grpc::StatusCode::UNIMPLEMENTED : grpc::StatusCode::NOT_FOUND,
                      std::string(match.status().message()), other_method ? 405 : 404);
    }
    const HttpRoute& route = *match->route;
    const auto* rpc = route.rpc;
    if (route.streaming) {
      return SetError(res, grpc::StatusCode::UNIMPLEMENTED,
                      absl::StrCat(rpc->full_name(),
                                   " streams its messages, which the HTTP/JSON endpoint does not "
                                   "do: call it over gRPC (quiverctl snapshot ...)"));
    }
    std::unique_ptr<Message> request(route.request_prototype->New());
    if (std::string error = ParseBody(req, route, match->path_value, request.get()); !error.empty()) {
      return SetError(res, grpc::StatusCode::INVALID_ARGUMENT, error);
    }
    Call(req, route, *request, res);
  }

 private:
  // Fills `request` from the JSON body and the path; the error, or "".
  static std::string ParseBody(const httplib::Request& req, const HttpRoute& route,
                               const std::string& path_value, Message* request) {
    const bool blank = absl::StripAsciiWhitespace(req.body).empty();
    google::protobuf::util::JsonParseOptions opts;
    opts.ignore_unknown_fields = false;  // a misspelt field must not be dropped silently
    const auto parsed =
        google::protobuf::util::JsonStringToMessage(blank ? "{}" : req.body, request, opts);
    if (!parsed.ok()) {
      const auto msg = parsed.message();
      return absl::StrCat("the request body is not JSON of a ",
                          request->GetDescriptor()->full_name(), ": ",
                          TruncateForMessage(absl::string_view(msg.data(), msg.size()), 1000));
    }
    if (route.path_field == nullptr) return "";
    const auto* refl = request->GetReflection();
    const std::string in_body = refl->GetString(*request, route.path_field);
    if (!in_body.empty() && in_body != path_value) {
      return absl::StrCat("the path names \"", TruncateForMessage(path_value, 200),
                          "\" but the body's \"", route.path_field->name(), "\" is \"",
                          TruncateForMessage(in_body, 200), "\"");
    }
    refl->SetString(request, route.path_field, path_value);
    return "";
  }

  void Call(const httplib::Request& req, const HttpRoute& route, const Message& request,
            httplib::Response& res) {
    const google::protobuf::MethodDescriptor& rpc = *route.rpc;
    grpc::ClientContext ctx;
    const std::string auth = req.get_header_value("Authorization");
    if (!auth.empty()) {
      if (!IsLegalMetadataValue(auth)) {
        return SetError(res, grpc::StatusCode::UNAUTHENTICATED,
                        "the Authorization header holds characters other than printable ASCII");
      }
      ctx.AddMetadata("authorization", auth);
    }
    if (stub_ == nullptr) {
      return SetError(res, grpc::StatusCode::UNAVAILABLE, "quiverd is not serving");
    }
    std::string wire;
    request.SerializeToString(&wire);
    grpc::Slice slice(wire);
    grpc::ByteBuffer in(&slice, 1);
    grpc::ByteBuffer out;
    std::promise<grpc::Status> done;
    stub_->UnaryCall(&ctx, route.grpc_method, grpc::StubOptions(), &in, &out,
                     [&done](grpc::Status s) { done.set_value(std::move(s)); });
    const grpc::Status status = done.get_future().get();
    AddRetryAfter(ctx, res);
    if (!status.ok()) return SetError(res, status.error_code(), status.error_message());
    std::unique_ptr<Message> response(route.response_prototype->New());
    grpc::ProtoBufferReader reader(&out);
    if (!response->ParseFromZeroCopyStream(&reader)) {
      return SetError(res, grpc::StatusCode::INTERNAL,
                      absl::StrCat("the response of ", rpc.full_name(), " did not parse"));
    }
    google::protobuf::util::JsonPrintOptions print;
    print.preserve_proto_field_names = true;
    print.always_print_primitive_fields = true;
    std::string json;
    const auto printed = google::protobuf::util::MessageToJsonString(*response, &json, print);
    if (!printed.ok()) {
      return SetError(res, grpc::StatusCode::INTERNAL,
                      absl::StrCat("the response of ", rpc.full_name(), " cannot be printed as JSON"));
    }
    json.push_back('\n');
    res.status = 200;
    res.set_content(std::move(json), "application/json");
  }

  static void AddRetryAfter(const grpc::ClientContext& ctx, httplib::Response& res) {
    const auto& trailers = ctx.GetServerTrailingMetadata();
    const auto it = trailers.find("retry-after-ms");
    if (it == trailers.end()) return;
    const std::string ms(it->second.data(), it->second.size());
    int64_t v = 0;
    if (!absl::SimpleAtoi(ms, &v) || v < 0) return;
    res.set_header("retry-after-ms", ms);
    res.set_header("Retry-After", std::to_string((v + 999) / 1000));
  }

  const HttpRouter router_;
  std::unique_ptr<grpc::GenericStub> stub_;
  HttpsContexts https_;
};

absl::StatusOr<std::unique_ptr<HttpGateway>> HttpGateway::Bind(const HttpGatewayOptions& options,
                                                               ServerTls* tls) {
  int port = 0;
  const std::string host = HostOf(options.listen, &port);
  if (host.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--http-listen ", TruncateForMessage(options.listen, 200), " is not HOST:PORT"));
  }
  std::vector<const google::protobuf::ServiceDescriptor*> services;
  for (const std::string& name : options.services) {
    const auto* s = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(name);
    if (s == nullptr) return absl::InternalError(absl::StrCat("no descriptor for service ", name));
    services.push_back(s);
  }
  std::unique_ptr<HttpGateway> g(new HttpGateway());
  g->handler_ = std::make_unique<Handler>(HttpRouter::Build(services), tls);
  if (tls != nullptr) {
    HttpsContexts* contexts = g->handler_->https();
    g->http_ = std::make_unique<httplib::SSLServer>(
        [contexts](SSL_CTX& ctx) { return contexts->Setup(ctx); });
    g->https_ = true;
  } else {
    g->http_ = std::make_unique<httplib::Server>();
  }
  httplib::Server& http = *g->http_;
  if (!http.is_valid()) return absl::InternalError("the HTTPS endpoint's TLS setup failed");
  const int threads = std::max(1, options.threads);
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(static_cast<size_t>(options.max_body_bytes));
  // An idle keep-alive connection holds a thread, and shutdown waits for it.
  http.set_keep_alive_timeout(2);
  // httplib writes a response's headers and body apart; with Nagle's
  // algorithm the body then waits for the client's delayed ACK (40 ms a
  // request on a kept-alive connection, measured by bench/http_bench.py).
  http.set_tcp_nodelay(true);
  Handler* handler = g->handler_.get();
  const auto handle = [handler](const httplib::Request& req, httplib::Response& res) {
    handler->Handle(req, res);
  };
  http.Get(".*", handle);
  http.Post(".*", handle);
  http.Put(".*", handle);
  http.Patch(".*", handle);
  http.Delete(".*", handle);
  const int64_t max_body = options.max_body_bytes;
  http.set_error_handler([max_body](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // ours, already JSON
    if (res.status == 413) {
      return SetError(res, grpc::StatusCode::RESOURCE_EXHAUSTED,
                      absl::StrCat("the request body is larger than the limit of ", max_body,
                                   " bytes (--max-message-bytes)"),
                      413);
    }
    SetError(res, grpc::StatusCode::INVALID_ARGUMENT,
             absl::StrCat("HTTP ", res.status, " for ", TruncateForMessage(req.method, 20), " ",
                          TruncateForMessage(req.path, 200)),
             res.status);
  });
  if (port == 0) {
    port = http.bind_to_any_port(host);
  } else if (!http.bind_to_port(host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on --http-listen ", TruncateForMessage(options.listen, 200)));
  }
  g->port_ = port;
  return g;
}

void HttpGateway::Serve(std::shared_ptr<grpc::Channel> channel) {
  handler_->SetChannel(std::move(channel));
  RunLoop();
}

void HttpGateway::RunLoop() {
  httplib::Server& http = *http_;
  thread_ = std::thread([&http] { http.listen_after_bind(); });
  // stop() is a no-op until the loop runs; a gateway stopped right after
  // Serve must not leave it running.
  for (int i = 0; i < 5000 && !http.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void HttpGateway::StopListening() {
  if (http_ != nullptr) http_->stop();
}

HttpGateway::~HttpGateway() {
  // httplib closes the listening socket only in stop(), which acts only on
  // a running loop: a gateway bound but never served (quiverd failed to
  // start after Bind) runs the loop just to close it; one that never bound
  // (port_ 0) has nothing to close. A request it reads
  // meanwhile has no channel to go to and gets UNAVAILABLE (Call).
  if (!thread_.joinable() && http_ != nullptr && port_ > 0) RunLoop();
  StopListening();
  if (thread_.joinable()) thread_.join();
}

}  // namespace quiver::server
