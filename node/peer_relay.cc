#include "node/peer_relay.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <list>
#include <memory>
#include <thread>

#include <spdlog/spdlog.h>

#include "common/tcp_listen.h"
#include "common/termination_signals.h"

namespace cellar::node {
namespace {

constexpr size_t kChunk = 1 << 20;

Result<UniqueFd> ConnectStream(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof(addr.sun_path)) {
    return InvalidArgument(fmt::format("socket path {} is too long", path.string()));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.native().size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoError("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoError("connect {}", path.string());
  }
  return fd;
}

// A dead remote end must not pin a connection forever: the relay holds no state worth
// waiting for, the peer client retries.
void BoundIdleTcp(int fd) {
  int on = 1, idle = 10, interval = 5, count = 3;
  unsigned user_timeout_ms = 30'000;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof(user_timeout_ms));
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

// Moves bytes from `in` to `out` through a pipe (splice: no copy to user space) until
// `in` ends or either side fails; then ends `out`'s writing half so the other side
// sees the end too.
void Pump(int in, int out) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    ::shutdown(in, SHUT_RDWR);
    ::shutdown(out, SHUT_RDWR);
    return;
  }
  UniqueFd pipe_r(pipe_fds[0]), pipe_w(pipe_fds[1]);
  ::fcntl(pipe_w.get(), F_SETPIPE_SZ, static_cast<int>(kChunk));  // best effort
  for (;;) {
    ssize_t n = ::splice(in, nullptr, pipe_w.get(), nullptr, kChunk, SPLICE_F_MOVE | SPLICE_F_MORE);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      ::shutdown(in, SHUT_RDWR);
      ::shutdown(out, SHUT_RDWR);
      return;
    }
    while (n > 0) {
      ssize_t m = ::splice(pipe_r.get(), nullptr, out, nullptr, static_cast<size_t>(n),
                           SPLICE_F_MOVE | SPLICE_F_MORE);
      if (m < 0 && errno == EINTR) continue;
      if (m <= 0) {
        ::shutdown(in, SHUT_RDWR);
        ::shutdown(out, SHUT_RDWR);
        return;
      }
      n -= m;
    }
  }
  ::shutdown(out, SHUT_WR);
}

// Both directions of one relayed connection, each on a thread of its own.
class Connection {
 public:
  Connection(UniqueFd remote, UniqueFd local)
      : remote_(std::move(remote)), local_(std::move(local)) {
    to_local_ = std::thread([this] { Run(remote_.get(), local_.get()); });
    to_remote_ = std::thread([this] { Run(local_.get(), remote_.get()); });
  }
  ~Connection() {
    Abort();
    to_local_.join();
    to_remote_.join();
  }
  bool done() const { return running_.load() == 0; }
  void Abort() {
    ::shutdown(remote_.get(), SHUT_RDWR);
    ::shutdown(local_.get(), SHUT_RDWR);
  }

 private:
  void Run(int in, int out) {
    Pump(in, out);
    running_.fetch_sub(1);
  }
  UniqueFd remote_, local_;
  std::atomic<int> running_{2};
  std::thread to_local_, to_remote_;
};

}  // namespace

Result<UniqueFd> ListenForPeers(const std::string& listen) {
  return ListenTcp("--listen", listen);
}

Status RunPeerRelay(int listener, const std::filesystem::path& target, int stop_fd) {
  std::list<std::unique_ptr<Connection>> connections;
  auto last_warning = std::chrono::steady_clock::time_point{};
  for (;;) {
    pollfd fds[2] = {{stop_fd, POLLIN, 0}, {listener, POLLIN, 0}};
    if (::poll(fds, 2, 1000) < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("poll");
    }
    connections.remove_if([](const auto& c) { return c->done(); });
    if (fds[0].revents & POLLIN) break;
    if (!(fds[1].revents & POLLIN)) continue;
    UniqueFd remote(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
    if (!remote) {
      if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED) continue;
      spdlog::warn("peer relay: accept: {}", std::strerror(errno));
      continue;  // EMFILE and the like pass; the listener stays
    }
    BoundIdleTcp(remote.get());
    auto local = ConnectStream(target);
    if (!local.ok()) {
      // Every client retries; one line per 10 s says why they fail.
      auto now = std::chrono::steady_clock::now();
      if (now - last_warning > std::chrono::seconds(10)) {
        spdlog::warn("peer relay: no `cellar node` serves {}: {}", target.string(),
                     local.status().message());
        last_warning = now;
      }
      continue;
    }
    connections.push_back(std::make_unique<Connection>(std::move(remote), std::move(*local)));
  }
  spdlog::info("peer relay: stopping, {} connection(s) closed", connections.size());
  connections.clear();
  return Status::Ok();
}

Status RunPeerRelayCommand(const std::string& listen, const std::filesystem::path& target) {
  if (!target.is_absolute()) {
    return InvalidArgument(
        fmt::format("--to \"{}\" is not an absolute socket path", target.string()));
  }
  // Before the relay's threads exist, so that none of them takes the signal.
  ASSIGN_OR_RETURN(TerminationSignals signals, TerminationSignals::Open());
  // splice has no MSG_NOSIGNAL: a peer gone mid-write must be EPIPE, not the end of the
  // relay and of every other connection with it.
  ::signal(SIGPIPE, SIG_IGN);
  ASSIGN_OR_RETURN(UniqueFd listener, ListenForPeers(listen));
  spdlog::info("peer relay: {} -> {}", listen, target.string());
  return RunPeerRelay(listener.get(), target, signals.fd());
}

}  // namespace cellar::node
