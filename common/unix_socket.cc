#include "common/unix_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "common/logging.h"

namespace cellar {
namespace {

constexpr size_t kMaxText = 4096;

Result<sockaddr_un> AddressOf(const std::filesystem::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.string().size() >= sizeof(addr.sun_path)) {
    return InvalidArgument(fmt::format("socket path {} is too long", path.string()));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.string().size() + 1);
  return addr;
}

}  // namespace

Status PrepareSocketPath(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) {
    return Status::FromErrno(
        ec.value(), fmt::format("create socket directory {}", path.parent_path().string()));
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoError("stat socket {}", path.string());
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Error(Code::kInvalidArgument,
                 "{} exists and is not a unix socket; refusing to replace it", path.string());
  }
  ASSIGN_OR_RETURN(sockaddr_un addr, AddressOf(path));
  // A socket of either type may be there; a live listener of any type answers one of them.
  for (int type : {SOCK_STREAM, SOCK_SEQPACKET}) {
    UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
    if (!fd) return ErrnoError("socket");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      return Error(Code::kFailedPrecondition, "another process is serving {}; stop it first",
                   path.string());
    }
  }
  spdlog::info("replacing stale socket {}", path.string());
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError("remove stale socket {}", path.string());
  }
  return Status::Ok();
}

Result<UniqueFd> ListenSeqpacket(const std::filesystem::path& path, unsigned mode) {
  RETURN_IF_ERROR(PrepareSocketPath(path));
  ASSIGN_OR_RETURN(sockaddr_un addr, AddressOf(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoError("socket");
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return ErrnoError("bind {}", path.string());
  }
  ::chmod(path.c_str(), mode);
  if (::listen(fd.get(), 16) != 0) return ErrnoError("listen {}", path.string());
  return fd;
}

Result<UniqueFd> ConnectSeqpacket(const std::filesystem::path& path) {
  ASSIGN_OR_RETURN(sockaddr_un addr, AddressOf(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoError("socket");
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    if (err == ENOENT)
      return Status(Code::kNotFound, fmt::format("no socket at {}", path.string()), err);
    if (err == ECONNREFUSED) {
      return Status(Code::kUnavailable, fmt::format("nobody listens on {}", path.string()), err);
    }
    return Status::FromErrno(err, fmt::format("connect {}", path.string()));
  }
  return fd;
}

Status SendMessage(int socket, const std::string& text, const std::vector<int>& fds) {
  if (fds.size() > kMaxFdsPerMessage) {
    return InvalidArgument(
        fmt::format("{} fds in one message (at most {})", fds.size(), kMaxFdsPerMessage));
  }
  if (text.size() > kMaxText) return InvalidArgument("message text too long");
  // A zero-length record reads as the peer closing the socket; never send one.
  if (text.empty()) return InvalidArgument("message without text");
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * std::max<size_t>(fds.size(), 1)));
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do {
    n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError("sendmsg");
  return Status::Ok();
}

Result<FdMessage> ReceiveMessage(int socket, int timeout_ms) {
  pollfd pfd{socket, POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&pfd, 1, timeout_ms);
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) return ErrnoError("poll");
  if (ready == 0) return Status(Code::kDeadlineExceeded, "no answer in time");
  std::vector<char> text(kMaxText);
  std::vector<char> control(CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage));
  iovec iov{text.data(), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n;
  do {
    n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError("recvmsg");
  FdMessage out;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      out.fds.emplace_back(fd);
    }
  }
  if (n == 0 && out.fds.empty()) return Status(Code::kUnavailable, "the peer closed the socket");
  if (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) {
    return Status(Code::kInvalidArgument, "message truncated");
  }
  out.text.assign(text.data(), static_cast<size_t>(n));
  return out;
}

}  // namespace cellar
