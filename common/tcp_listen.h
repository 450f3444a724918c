// Listening TCP sockets for the flags that take HOST:PORT (`cellar peer-relay --listen`,
// `cellar webhook --listen`).
#pragma once

#include <string>
#include <string_view>

#include "common/host_port.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace cellar {

// A listening socket (close-on-exec, SO_REUSEADDR) on `address` as ParseHostPort reads
// it with `rules` (brackets around an IPv6 host; an empty host is every address).
// InvalidArgument naming `flag` for a bad address; the errno of bind otherwise
// (EADDRINUSE: another program has the port).
Result<UniqueFd> ListenTcp(std::string_view flag, const std::string& address,
                           const HostPortRules& rules = {});

// The port a bound socket got (the kernel's choice for port 0); 0 if it cannot tell.
int BoundPort(int fd);

// A host as ParseHostPort keeps it ("[::1]") as getaddrinfo wants it ("::1").
std::string Unbracketed(const std::string& host);

}  // namespace cellar
