#include "csi/metrics_server.h"

#include <exception>

#include <prometheus/exposer.h>

#include "common/host_port.h"

namespace cellar::csi {

Result<std::string> ParseMetricsAddress(const std::string& address) {
  ASSIGN_OR_RETURN(HostPort hp,
                   ParseHostPort("metrics address", address,
                                 {.bare_port = true, .port_zero = true, .example = ":9808"}));
  // civetweb listens on every address for a bare port.
  return hp.host.empty() ? std::to_string(hp.port) : fmt::format("{}:{}", hp.host, hp.port);
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& address, std::vector<std::shared_ptr<prometheus::Collectable>> sources) {
  ASSIGN_OR_RETURN(std::string listen, ParseMetricsAddress(address));
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->sources_ = std::move(sources);
  try {
    // civetweb reports a port it cannot bind by throwing; errors stop here as values.
    // No keep-alive and short request and linger timeouts: stopping waits for the
    // connections civetweb's workers hold (a scraper's keep-alive connection would hold
    // one for the request timeout), and a hand-over or restart waits for the stop.
    server->exposer_ = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
        "listening_ports", listen, "num_threads", "2", "request_timeout_ms", "500",
        "linger_timeout_ms", "0", "enable_keep_alive", "no"});
  } catch (const std::exception& e) {
    return Error(Code::kUnavailable, "cannot serve metrics on {}: {}", address, e.what());
  }
  for (const auto& source : server->sources_) server->exposer_->RegisterCollectable(source);
  auto ports = server->exposer_->GetListeningPorts();
  server->port_ = ports.empty() ? 0 : ports.front();
  return server;
}

MetricsServer::~MetricsServer() = default;

}  // namespace cellar::csi
