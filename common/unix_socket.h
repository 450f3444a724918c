// Unix sockets for Cellar's local control channels (the CSI socket's path checks, the
// fd holder, the hand-over between an old and a new `cellar node`). Messages are
// SOCK_SEQPACKET records: one text line plus, optionally, file descriptors passed with
// SCM_RIGHTS, so a record is never split or merged.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace cellar {

// A message on a seqpacket socket: text and the fds that travel with it.
struct FdMessage {
  std::string text;
  std::vector<UniqueFd> fds;
};

// Removes a stale socket left by a dead process. FailedPrecondition if a live process
// serves it, InvalidArgument if the path is something other than a socket.
Status PrepareSocketPath(const std::filesystem::path& path);

// Binds and listens on `path` (SOCK_SEQPACKET, close-on-exec), replacing a stale
// socket; `mode` is applied to the socket file. Errors as PrepareSocketPath, or the
// errno of socket/bind/listen.
Result<UniqueFd> ListenSeqpacket(const std::filesystem::path& path, unsigned mode = 0600);

// Connects to `path`. NotFound if nothing is there, Unavailable if nobody listens
// (a stale socket), the errno status otherwise.
Result<UniqueFd> ConnectSeqpacket(const std::filesystem::path& path);

// Sends one record: non-empty text (an empty record would read as the peer closing) and at
// most kMaxFdsPerMessage fds. InvalidArgument otherwise.
inline constexpr size_t kMaxFdsPerMessage = 250;
Status SendMessage(int socket, const std::string& text, const std::vector<int>& fds = {});

// Receives one record, waiting at most `timeout_ms` (-1: forever). Unavailable when the
// peer closed, DeadlineExceeded on timeout.
Result<FdMessage> ReceiveMessage(int socket, int timeout_ms = -1);

}  // namespace cellar
