#include "node/fd_holder.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "common/logging.h"
#include "common/termination_signals.h"
#include "common/unique_fd.h"
#include "common/unix_socket.h"

namespace cellar::node {
namespace {

// "VERB key" -> {verb, key}; key may be empty.
std::pair<std::string, std::string> SplitRequest(const std::string& text) {
  auto space = text.find(' ');
  if (space == std::string::npos) return {text, ""};
  return {text.substr(0, space), text.substr(space + 1)};
}

class Holder {
 public:
  // Answers one request record on `client`.
  void Serve(int client) {
    auto msg = ReceiveMessage(client, 5000);
    if (!msg.ok()) return;  // a peer that connects and goes away (PrepareSocketPath's probe)
    auto [verb, key] = SplitRequest(msg->text);
    Status st;
    if (key.empty()) {
      st = SendMessage(client, "ERR request without a key");
    } else if (verb == "PUT") {
      held_[key] = std::move(msg->fds);
      spdlog::info("holding {} fds for {}", held_[key].size(), key);
      st = SendMessage(client, "OK");
    } else if (verb == "GET" || verb == "HAS") {
      auto it = held_.find(key);
      if (it == held_.end()) {
        st = SendMessage(client, "NONE");
      } else {
        std::vector<int> fds;
        if (verb == "GET") {
          for (const auto& fd : it->second) fds.push_back(fd.get());
        }
        st = SendMessage(client, "OK", fds);
        if (verb == "GET") spdlog::info("handed {} fds for {}", fds.size(), key);
      }
    } else if (verb == "DROP") {
      held_.erase(key);
      spdlog::info("dropped {}", key);
      st = SendMessage(client, "OK");
    } else {
      st = SendMessage(client, "ERR unknown request " + verb);
    }
    if (!st.ok()) spdlog::warn("answering {}: {}", verb, st.ToString());
  }

 private:
  std::map<std::string, std::vector<UniqueFd>> held_;
};

}  // namespace

Status RunFdHolder(const std::filesystem::path& socket) {
  ASSIGN_OR_RETURN(TerminationSignals signals, TerminationSignals::Open());
  ASSIGN_OR_RETURN(UniqueFd listener, ListenSeqpacket(socket, 0600));
  spdlog::info("fd holder serving {}", socket.string());
  Holder holder;
  for (;;) {
    pollfd fds[2] = {{listener.get(), POLLIN, 0}, {signals.fd(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("poll");
    }
    if (fds[1].revents & POLLIN) {
      spdlog::info("signal: fd holder stopping; connections it held close with it");
      break;
    }
    if (fds[0].revents & POLLIN) {
      UniqueFd client(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (client) holder.Serve(client.get());
    }
  }
  ::unlink(socket.c_str());
  return Status::Ok();
}

}  // namespace cellar::node
