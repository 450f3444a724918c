// TLS over a TCP socket with OpenSSL, every operation bounded by a deadline: what the
// admission webhook's HTTPS server (node/https_server.h) and its Kubernetes API client
// (node/kube_api.h) share. gRPC brings its own TLS for the peer protocol; these two speak
// plain HTTP/1.1, which gRPC cannot.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <openssl/ssl.h>

#include "common/status.h"
#include "common/unique_fd.h"

namespace cellar::node {

using Deadline = std::chrono::steady_clock::time_point;

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtx = std::unique_ptr<SSL_CTX, SslCtxFree>;

// Making the first context sets SIGPIPE to be ignored in the process (a peer that goes
// away must fail a write with EPIPE, not kill the process).
//
// A server context (TLS 1.2 or later) with the PEM certificate chain and key. Errors:
// InvalidArgument naming the file OpenSSL refused and why.
Result<SslCtx> ServerTlsContext(const std::filesystem::path& cert,
                                const std::filesystem::path& key);

// A client context (TLS 1.2 or later) that trusts exactly the CAs of the PEM file `ca`.
// Errors: InvalidArgument naming the file.
Result<SslCtx> ClientTlsContext(const std::filesystem::path& ca);

// TCP connection to host:port (a name or an IP address) within the deadline.
// Errors: Unavailable (refused, unreachable, no address), DeadlineExceeded.
Result<UniqueFd> ConnectTcp(const std::string& host, const std::string& port, Deadline deadline);

class TlsStream {
 public:
  // The server side of a TLS handshake on an accepted socket (made non-blocking here).
  // Errors: Unavailable (handshake failed), DeadlineExceeded.
  // `cancel_fd`, if not -1, is polled beside the socket by every operation of the
  // stream: once it is readable they fail with Cancelled (a server stopping).
  static Result<TlsStream> Accept(SSL_CTX* ctx, UniqueFd fd, Deadline deadline, int cancel_fd = -1);
  // The client side, verifying the server's certificate against the context's CAs and
  // its subject alternative names against `host` (DNS name or IP address).
  // Errors: Unavailable (handshake or verification failed), DeadlineExceeded.
  static Result<TlsStream> Connect(SSL_CTX* ctx, UniqueFd fd, const std::string& host,
                                   Deadline deadline);

  TlsStream(TlsStream&&) = default;
  TlsStream& operator=(TlsStream&&) = default;
  ~TlsStream();

  // Up to `size` bytes into `buf`: how many, 0 once the peer closed.
  // Errors: DeadlineExceeded, Unavailable (reset, TLS error), Cancelled.
  Result<size_t> Read(char* buf, size_t size, Deadline deadline);
  // All of `data`. Errors: DeadlineExceeded, Unavailable, Cancelled.
  Status WriteAll(std::string_view data, Deadline deadline);

 private:
  struct SslFree {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
  };
  TlsStream(std::unique_ptr<SSL, SslFree> ssl, UniqueFd fd, int cancel_fd)
      : ssl_(std::move(ssl)), fd_(std::move(fd)), cancel_fd_(cancel_fd) {}

  std::unique_ptr<SSL, SslFree> ssl_;
  UniqueFd fd_;  // after ssl_ in the class, so destroyed after it
  int cancel_fd_ = -1;
};

}  // namespace cellar::node
