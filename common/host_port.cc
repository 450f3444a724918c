#include "common/host_port.h"

#include <charconv>

namespace cellar {

Result<HostPort> ParseHostPort(std::string_view flag, std::string_view value,
                               const HostPortRules& rules) {
  auto bad = [&](std::string_view why) {
    return Error(Code::kInvalidArgument, "{} \"{}\" {}: give {} (e.g. {})", flag, value, why,
                 rules.bare_port ? "HOST:PORT, :PORT or PORT" : "HOST:PORT", rules.example);
  };
  // The last colon: an IPv6 host has colons of its own.
  const auto colon = value.rfind(':');
  if (colon == std::string_view::npos && !rules.bare_port) return bad("has no port");
  const std::string_view host = colon == std::string_view::npos ? "" : value.substr(0, colon);
  const std::string_view port = colon == std::string_view::npos ? value : value.substr(colon + 1);
  if (port.empty()) return bad("has no port");
  unsigned number = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (ec != std::errc() || end != port.data() + port.size() || number > 65535 ||
      (number == 0 && !rules.port_zero)) {
    return bad("has no valid port");
  }
  if (host.find_first_of("/ ") != std::string_view::npos) return bad("is not a host and port");
  return HostPort{std::string(host), static_cast<uint16_t>(number)};
}

}  // namespace cellar
