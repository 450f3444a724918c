#include "node/tls_stream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <csignal>
#include <mutex>

#include <cstring>

#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace cellar::node {

namespace {

// The queued OpenSSL errors as one line, and the queue emptied.
std::string SslErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no OpenSSL error queued" : out;
}

int MillisLeft(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left.count(), 1 << 30));
}

// Waits until `fd` is ready for `events`, the deadline passes or `cancel_fd` (-1: none)
// is readable.
Status WaitFor(int fd, short events, Deadline deadline, std::string_view what, int cancel_fd = -1) {
  for (;;) {
    int left = MillisLeft(deadline);
    if (left == 0) return Error(Code::kDeadlineExceeded, "{}: timed out", what);
    pollfd p[2] = {{fd, events, 0}, {cancel_fd, POLLIN, 0}};
    int n = ::poll(p, cancel_fd >= 0 ? 2 : 1, left);
    if (n > 0 && cancel_fd >= 0 && p[1].revents != 0) {
      return Error(Code::kCancelled, "{}: cancelled", what);
    }
    if (n > 0) return Status::Ok();  // errors and hang-ups show in the next call
    if (n < 0 && errno != EINTR) return ErrnoError("{}: poll", what);
  }
}

Status SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return ErrnoError("fcntl O_NONBLOCK");
  }
  return Status::Ok();
}

// Runs an SSL call until it completes, waiting on the socket as OpenSSL asks. Returns
// its positive result, or 0 for a clean close by the peer.
template <typename Op>
Result<int> Drive(SSL* ssl, int fd, int cancel_fd, Deadline deadline, std::string_view what,
                  Op op) {
  for (;;) {
    ERR_clear_error();
    errno = 0;
    int r = op();
    if (r > 0) return r;
    switch (int e = SSL_get_error(ssl, r)) {
      case SSL_ERROR_WANT_READ:
        RETURN_IF_ERROR(WaitFor(fd, POLLIN, deadline, what, cancel_fd));
        break;
      case SSL_ERROR_WANT_WRITE:
        RETURN_IF_ERROR(WaitFor(fd, POLLOUT, deadline, what, cancel_fd));
        break;
      case SSL_ERROR_ZERO_RETURN: return 0;
      case SSL_ERROR_SYSCALL:
        if (errno == 0) return 0;  // EOF without close_notify
        return Status(Code::kUnavailable, fmt::format("{}: {}", what, std::strerror(errno)), errno);
      default: return Error(Code::kUnavailable, "{}: TLS error {}: {}", what, e, SslErrors());
    }
  }
}

Result<SslCtx> NewContext(const SSL_METHOD* method) {
  // OpenSSL writes to the socket with write(2), which raises SIGPIPE once the peer has
  // gone; the error must come back as EPIPE instead of killing the process.
  static std::once_flag ignore_sigpipe;
  std::call_once(ignore_sigpipe, [] { std::signal(SIGPIPE, SIG_IGN); });
  SslCtx ctx(SSL_CTX_new(method));
  if (!ctx) return Internal("SSL_CTX_new: " + SslErrors());
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // A peer that closes without close_notify ends the stream like any EOF; HTTP framing
  // (Content-Length, chunks) tells a truncated message apart.
  SSL_CTX_set_options(ctx.get(), SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE);
  return ctx;
}

}  // namespace

Result<SslCtx> ServerTlsContext(const std::filesystem::path& cert,
                                const std::filesystem::path& key) {
  ASSIGN_OR_RETURN(SslCtx ctx, NewContext(TLS_server_method()));
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert.c_str()) != 1) {
    return InvalidArgument("certificate " + cert.string() + ": " + SslErrors());
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return InvalidArgument("key " + key.string() + ": " + SslErrors());
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return InvalidArgument("key " + key.string() + " does not match " + cert.string());
  }
  return ctx;
}

Result<SslCtx> ClientTlsContext(const std::filesystem::path& ca) {
  ASSIGN_OR_RETURN(SslCtx ctx, NewContext(TLS_client_method()));
  if (SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr) != 1) {
    return InvalidArgument("CA " + ca.string() + ": " + SslErrors());
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  return ctx;
}

Result<UniqueFd> ConnectTcp(const std::string& host, const std::string& port, Deadline deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int e = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); e != 0) {
    return Error(Code::kUnavailable, "resolve {}:{}: {}", host, port, ::gai_strerror(e));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list(found, ::freeaddrinfo);
  Status last = Error(Code::kUnavailable, "{}:{}: no address", host, port);
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    UniqueFd fd(
        ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol));
    if (!fd) return ErrnoError("socket");
    if (::connect(fd.get(), a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last = ErrnoError("connect {}:{}", host, port);
        continue;
      }
      RETURN_IF_ERROR(WaitFor(fd.get(), POLLOUT, deadline, "connect " + host + ":" + port));
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last = Status(Code::kUnavailable,
                      fmt::format("connect {}:{}: {}", host, port, std::strerror(err)), err);
        continue;
      }
    }
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
  }
  return last;
}

Result<TlsStream> TlsStream::Accept(SSL_CTX* ctx, UniqueFd fd, Deadline deadline, int cancel_fd) {
  RETURN_IF_ERROR(SetNonBlocking(fd.get()));
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx));
  if (!ssl || SSL_set_fd(ssl.get(), fd.get()) != 1) return Internal("SSL_new: " + SslErrors());
  SSL* raw = ssl.get();
  auto r =
      Drive(raw, fd.get(), cancel_fd, deadline, "TLS handshake", [raw] { return SSL_accept(raw); });
  if (!r.ok()) return r.status();
  if (*r == 0) return Error(Code::kUnavailable, "TLS handshake: the client closed");
  return TlsStream(std::move(ssl), std::move(fd), cancel_fd);
}

Result<TlsStream> TlsStream::Connect(SSL_CTX* ctx, UniqueFd fd, const std::string& host,
                                     Deadline deadline) {
  RETURN_IF_ERROR(SetNonBlocking(fd.get()));
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx));
  if (!ssl || SSL_set_fd(ssl.get(), fd.get()) != 1) return Internal("SSL_new: " + SslErrors());
  in6_addr addr;
  const bool is_ip = ::inet_pton(AF_INET, host.c_str(), &addr) == 1 ||
                     ::inet_pton(AF_INET6, host.c_str(), &addr) == 1;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
  if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) != 1
            : (X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0) != 1 ||
               SSL_set_tlsext_host_name(ssl.get(), host.c_str()) != 1)) {
    return InvalidArgument("TLS: cannot verify host " + host + ": " + SslErrors());
  }
  SSL* raw = ssl.get();
  auto r = Drive(raw, fd.get(), -1, deadline, "TLS handshake with " + host,
                 [raw] { return SSL_connect(raw); });
  if (!r.ok()) return r.status();
  if (*r == 0) return Error(Code::kUnavailable, "TLS handshake with {}: closed", host);
  return TlsStream(std::move(ssl), std::move(fd), -1);
}

TlsStream::~TlsStream() {
  // close_notify, best effort: the socket is non-blocking, nothing waits here.
  if (ssl_) SSL_shutdown(ssl_.get());
}

Result<size_t> TlsStream::Read(char* buf, size_t size, Deadline deadline) {
  SSL* raw = ssl_.get();
  int n = static_cast<int>(std::min<size_t>(size, 1 << 20));
  auto r = Drive(raw, fd_.get(), cancel_fd_, deadline, "TLS read",
                 [&] { return SSL_read(raw, buf, n); });
  if (!r.ok()) return r.status();
  return static_cast<size_t>(*r);
}

Status TlsStream::WriteAll(std::string_view data, Deadline deadline) {
  SSL* raw = ssl_.get();
  while (!data.empty()) {
    int n = static_cast<int>(std::min<size_t>(data.size(), 1 << 20));
    auto r = Drive(raw, fd_.get(), cancel_fd_, deadline, "TLS write",
                   [&] { return SSL_write(raw, data.data(), n); });
    if (!r.ok()) return r.status();
    if (*r == 0) return Error(Code::kUnavailable, "TLS write: the peer closed");
    data.remove_prefix(static_cast<size_t>(*r));
  }
  return Status::Ok();
}

}  // namespace cellar::node
