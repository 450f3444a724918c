// A small HTTPS/1.1 server (OpenSSL, TLS 1.2+) for the admission webhook: one thread per
// connection up to a bound, every request read within a deadline so that a slow or
// stalled client holds one thread for a bounded time and never blocks the others.
// Keep-alive is honoured; a malformed request gets 400 and the connection is closed,
// a body over the limit 413.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "node/http_message.h"
#include "node/tls_stream.h"

namespace cellar::node {

struct HttpRequest {
  std::string method;
  std::string target;  // the path and query as sent
  HttpHead head;
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpsServerOptions {
  std::string listen;  // HOST:PORT, :PORT or [IPv6]:PORT (ParseHostPort); port 0 picks one
  std::filesystem::path cert;
  std::filesystem::path key;
  HttpLimits limits;
  // From the first byte of a request (or of the handshake) to its last one; also how
  // long an idle keep-alive connection stays open.
  std::chrono::milliseconds request_timeout{10'000};
  size_t max_connections = 64;  // beyond: accepted and closed at once
};

class HttpsServer {
 public:
  // Loads the certificate and key, listens, and serves `handler` on its own threads.
  // Errors: InvalidArgument (address, certificate, key), Unavailable (cannot listen).
  static Result<std::unique_ptr<HttpsServer>> Start(HttpsServerOptions options,
                                                    HttpHandler handler);
  // Stops accepting, cuts the open connections and joins every thread.
  ~HttpsServer();

  int port() const { return port_; }

 private:
  HttpsServer() = default;
  void AcceptLoop();
  void Serve(int id, UniqueFd fd);
  // Serves requests on one connection until it closes, fails or times out.
  void ServeRequests(TlsStream& stream);
  void Finish(int id);

  HttpsServerOptions options_;
  HttpHandler handler_;
  SslCtx ctx_;
  UniqueFd listener_;
  UniqueFd stop_;  // eventfd, readable once stopping: ends the accept loop and every wait
  int port_ = 0;
  std::thread acceptor_;

  std::mutex mu_;
  int next_id_ = 0;                     // guarded by mu_
  std::map<int, std::thread> threads_;  // guarded by mu_: the connections being served
  std::vector<std::thread> finished_;   // guarded by mu_: threads done serving, to join
};

}  // namespace cellar::node
