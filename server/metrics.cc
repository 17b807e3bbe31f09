#include "server/metrics.h"

#include <exception>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"
#include "server/metrics_collector.h"
#include "spdlog/spdlog.h"

namespace quiver::server {

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                                    Engine* engine) {
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-listen: \"", listen, "\" is not HOST:PORT"));
  }
  std::unique_ptr<MetricsServer> m(new MetricsServer());
  m->registry_ = std::make_shared<prometheus::Registry>();
  m->rpc_ = std::make_unique<RpcMetrics>(*m->registry_);
  m->collector_ = std::make_shared<EngineCollector>(engine);
  try {
    // civetweb takes "host:port" (IPv6 as "[::1]:port"); two threads serve
    // scrapes, which are rare and cheap.
    m->exposer_ = std::make_unique<prometheus::Exposer>(listen, 2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("--metrics-listen: cannot listen on ", listen, ": ", e.what()));
  }
  m->exposer_->RegisterCollectable(m->registry_);
  m->exposer_->RegisterCollectable(m->collector_);
  const std::vector<int> ports = m->exposer_->GetListeningPorts();
  m->port_ = ports.empty() ? port : ports.front();
  spdlog::info("metrics on http://{}/metrics (port {})", listen, m->port_);
  return m;
}

MetricsServer::~MetricsServer() {
  // The exposer first: its threads run collectors that use the rest.
  exposer_.reset();
}

}  // namespace quiver::server
