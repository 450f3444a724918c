// The HOST:PORT addresses the node's flags take: "10.0.0.5:7443", ":9808", "[::1]:9808".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cellar {

struct HostPort {
  std::string host;  // as written, IPv6 brackets kept; empty: every address
  uint16_t port = 0;
};

// What a flag accepts beyond HOST:PORT and :PORT, and the example its errors give.
struct HostPortRules {
  bool bare_port = false;  // "9808" alone is a port
  bool port_zero = false;  // port 0: the kernel picks one
  std::string_view example = "10.0.0.5:7443";
};

// InvalidArgument naming `flag` and `value` when the port is missing, not a number, out of
// range (0 unless rules.port_zero) or when the host has a slash or a space (a URL, a path).
// The host is not resolved.
Result<HostPort> ParseHostPort(std::string_view flag, std::string_view value,
                               const HostPortRules& rules = {});

}  // namespace cellar
