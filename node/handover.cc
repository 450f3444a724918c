#include "node/handover.h"

#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/unix_socket.h"

namespace cellar::node {

namespace fs = std::filesystem;

Result<std::vector<UniqueFd>> TakeOverFrom(const fs::path& socket) {
  auto conn = ConnectSeqpacket(socket);
  if (!conn.ok()) {
    if (conn.status().code() == Code::kNotFound || conn.status().code() == Code::kUnavailable) {
      return std::vector<UniqueFd>{};  // nobody serves: a fresh start or after a crash
    }
    return conn.status();
  }
  spdlog::info("a cellar node serves {}: asking it to hand over", socket.string());
  RETURN_IF_ERROR(SendMessage(conn->get(), "HANDOVER"));
  auto reply = ReceiveMessage(conn->get(), 60'000);
  if (!reply.ok()) {
    return Status(
        Code::kUnavailable,
        fmt::format("hand-over from the running cellar node failed: {}", reply.status().message()));
  }
  if (reply->text != "OK") {
    return Status(Code::kUnavailable,
                  fmt::format("the running cellar node refused to hand over: {}", reply->text));
  }
  spdlog::info("predecessor handed over ({} files of its FUSE connection)", reply->fds.size());
  return std::move(reply->fds);
}

Result<HandoverListener> HandoverListener::Listen(fs::path socket) {
  ASSIGN_OR_RETURN(UniqueFd fd, ListenSeqpacket(socket, 0600));
  return HandoverListener(std::move(socket), std::move(fd));
}

UniqueFd HandoverListener::Accept() const {
  UniqueFd conn(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn) return {};
  auto request = ReceiveMessage(conn.get(), 5000);
  if (!request.ok() || request->text != "HANDOVER") return {};
  return conn;
}

void HandoverListener::Close() {
  if (!fd_) return;
  fd_.Reset();
  ::unlink(path_.c_str());
}

Status AnswerHandover(int successor, const std::vector<int>& fds) {
  return SendMessage(successor, "OK", fds);
}

}  // namespace cellar::node
