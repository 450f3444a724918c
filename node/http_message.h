// HTTP/1.1 messages as the webhook's server and its API client exchange them: a head
// (start line and headers), then a body framed by Content-Length, by chunks, or (a
// response only) by the end of the connection. Reading is bounded in size and time.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "node/tls_stream.h"

namespace cellar::node {

struct HttpHead {
  std::string start_line;  // "POST /mutate HTTP/1.1" or "HTTP/1.1 200 OK"
  std::vector<std::pair<std::string, std::string>> headers;

  // The first header of that name (case-insensitive), value trimmed; "" if absent.
  std::string_view Header(std::string_view name) const;
};

struct HttpMessage {
  HttpHead head;
  std::string body;
};

struct HttpLimits {
  size_t max_head = 16 * 1024;
  size_t max_body = 4 * 1024 * 1024;
};

// Parses a head (everything before the blank line, without it).
// Errors: InvalidArgument (no start line, a header without a colon).
Result<HttpHead> ParseHttpHead(std::string_view text);

// Reads one message from `stream`. `buffered` holds bytes already read past the previous
// message, and keeps those read past this one (keep-alive). `body_until_close` allows a
// body with neither Content-Length nor chunks (responses only).
// Errors: Aborted (the peer closed before the first byte: no message),
// InvalidArgument (malformed, or truncated), ResourceExhausted (head or body over the
// limits; the message says which), DeadlineExceeded, Unavailable (the connection).
Result<HttpMessage> ReadHttpMessage(TlsStream& stream, std::string& buffered,
                                    const HttpLimits& limits, bool body_until_close,
                                    Deadline deadline);

}  // namespace cellar::node
