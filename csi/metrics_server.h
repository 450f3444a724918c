// The node's /metrics endpoint: prometheus-cpp's Exposer (an embedded civetweb HTTP
// server) serving the collectables given. Off unless --metrics-address is set.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>

#include "common/status.h"

namespace prometheus {
class Exposer;
}

namespace cellar::csi {

// "HOST:PORT", ":PORT" or "PORT" -> civetweb's "HOST:PORT" / "PORT". InvalidArgument for
// anything else (a port outside 0..65535, a missing port, a scheme or a path).
Result<std::string> ParseMetricsAddress(const std::string& address);

class MetricsServer {
 public:
  // Listens on `address` (as ParseMetricsAddress accepts) and serves /metrics.
  // InvalidArgument for a bad address, Unavailable when it cannot listen (port taken).
  static Result<std::unique_ptr<MetricsServer>> Start(
      const std::string& address, std::vector<std::shared_ptr<prometheus::Collectable>> sources);
  ~MetricsServer();  // stops serving; no scrape runs after it returns

  int port() const { return port_; }

 private:
  MetricsServer() = default;
  std::vector<std::shared_ptr<prometheus::Collectable>> sources_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace cellar::csi
