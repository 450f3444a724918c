// Reading a node's /metrics as Prometheus does: an HTTP GET, then the text format's
// samples looked up by name and labels.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace cellar::testing {

// A TCP port nothing listens on right now (bound to 0, read back, released).
int FreeTcpPort();

// The body of GET http://127.0.0.1:<port><path>; empty when the request fails or the
// status is not 200.
std::string HttpGet(int port, const std::string& path = "/metrics");

// The value of the sample `name` whose labels include every one of `labels` (other
// labels may be present); nullopt when there is none. Comments and other samples are
// skipped; the first match wins.
std::optional<double> SampleValue(const std::string& exposition, const std::string& name,
                                  const std::map<std::string, std::string>& labels = {});

}  // namespace cellar::testing
