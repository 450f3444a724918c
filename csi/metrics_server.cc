#include "csi/metrics_server.h"

#include <charconv>
#include <exception>

#include <prometheus/exposer.h>

namespace cellar::csi {

Result<std::string> ParseMetricsAddress(const std::string& address) {
  auto bad = [&](const char* why) {
    return Error(Code::kInvalidArgument,
                 "metrics address \"{}\" {}: give HOST:PORT, :PORT or PORT (e.g. :9808)", address,
                 why);
  };
  const auto colon = address.rfind(':');
  const std::string host = colon == std::string::npos ? "" : address.substr(0, colon);
  const std::string port = colon == std::string::npos ? address : address.substr(colon + 1);
  if (port.empty()) return bad("has no port");
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return bad("has no valid port");
  }
  if (host.find_first_of("/ ") != std::string::npos) {
    return bad("is not a host and port");
  }
  // civetweb listens on every address for a bare port.
  return host.empty() ? port : host + ":" + port;
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
