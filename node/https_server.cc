#include "node/https_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <spdlog/spdlog.h>

#include "common/tcp_listen.h"

namespace cellar::node {

namespace {

using Clock = std::chrono::steady_clock;

std::string_view Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 500: return "Internal Server Error";
    default: return "Status";
  }
}

std::string Render(const HttpResponse& r, bool keep_alive) {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{}",
      r.status, Reason(r.status), r.content_type, r.body.size(),
      keep_alive ? "keep-alive" : "close", r.body);
}

}  // namespace

Result<std::unique_ptr<HttpsServer>> HttpsServer::Start(HttpsServerOptions options,
                                                        HttpHandler handler) {
  std::unique_ptr<HttpsServer> server(new HttpsServer());
  ASSIGN_OR_RETURN(server->ctx_, ServerTlsContext(options.cert, options.key));
  ASSIGN_OR_RETURN(server->listener_,
                   ListenTcp("--listen", options.listen, {.port_zero = true, .example = ":8443"}));
  server->port_ = BoundPort(server->listener_.get());
  server->stop_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!server->stop_) return ErrnoError("eventfd");
  server->options_ = std::move(options);
  server->handler_ = std::move(handler);
  server->acceptor_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

HttpsServer::~HttpsServer() {
  if (stop_) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(stop_.get(), &one, sizeof(one));
  }
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, t] : threads_) all.push_back(std::move(t));
    for (auto& t : finished_) all.push_back(std::move(t));
    threads_.clear();
    finished_.clear();
  }
  for (auto& t : all) t.join();
}

void HttpsServer::AcceptLoop() {
  for (;;) {
    pollfd p[2] = {{listener_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    int n = ::poll(p, 2, 1000);
    std::vector<std::thread> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      done.swap(finished_);
    }
    for (auto& t : done) t.join();
    if (n < 0 && errno != EINTR) {
      spdlog::error("webhook server: poll: {}", std::strerror(errno));
      return;
    }
    if (n <= 0) continue;
    if (p[1].revents != 0) return;
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!fd) {
      if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
        spdlog::warn("webhook server: accept: {}", std::strerror(errno));
        // EMFILE and the like: wait a little instead of spinning.
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (threads_.size() >= options_.max_connections) {
      spdlog::warn("webhook server: {} connections open, refusing another",
                   options_.max_connections);
      continue;  // closes fd
    }
    int id = next_id_++;
    threads_.emplace(
        id, std::thread([this, id, f = std::move(fd)]() mutable { Serve(id, std::move(f)); }));
  }
}

void HttpsServer::Finish(int id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = threads_.find(id);
  if (it == threads_.end()) return;  // the destructor holds this thread already
  finished_.push_back(std::move(it->second));
  threads_.erase(it);
}

void HttpsServer::Serve(int id, UniqueFd fd) {
  {
    auto stream = TlsStream::Accept(ctx_.get(), std::move(fd),
                                    Clock::now() + options_.request_timeout, stop_.get());
    if (!stream.ok()) {
      spdlog::debug("webhook server: {}", stream.status().message());
    } else {
      ServeRequests(*stream);
    }
  }
  Finish(id);
}

void HttpsServer::ServeRequests(TlsStream& stream) {
  std::string buffered;
  for (;;) {
    const Deadline deadline = Clock::now() + options_.request_timeout;
    auto msg = ReadHttpMessage(stream, buffered, options_.limits, false, deadline);
    HttpResponse response;
    bool keep_alive = false;
    if (!msg.ok()) {
      const Status& st = msg.status();
      if (st.code() == Code::kResourceExhausted) {
        response = {413, "text/plain", st.message() + "\n"};
      } else if (st.code() == Code::kInvalidArgument) {
        response = {400, "text/plain", st.message() + "\n"};
      } else {
        // Closed, timed out, cancelled or broken: nobody to answer.
        if (st.code() != Code::kAborted) spdlog::debug("webhook server: {}", st.message());
        return;
      }
    } else {
      HttpRequest request;
      const std::string& line = msg->head.start_line;
      size_t sp1 = line.find(' ');
      size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
      std::string version = sp2 == std::string::npos ? "" : line.substr(sp2 + 1);
      if (sp2 == std::string::npos || version.rfind("HTTP/1.", 0) != 0) {
        response = {400, "text/plain", "bad request line\n"};
      } else {
        request.method = line.substr(0, sp1);
        request.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        request.head = std::move(msg->head);
        request.body = std::move(msg->body);
        std::string_view connection = request.head.Header("Connection");
        keep_alive = version == "HTTP/1.1" && connection != "close" && connection != "Close";
        response = handler_(request);
      }
    }
    Status st = stream.WriteAll(Render(response, keep_alive), deadline);
    if (!st.ok()) {
      spdlog::debug("webhook server: {}", st.message());
      return;
    }
    if (!keep_alive) return;
  }
}

}  // namespace cellar::node
