// The fd holder's client and protocol. The holder (node/fd_holder.h, `cellar fd-holder`)
// is a process that does nothing but keep file descriptors open, so that a FUSE
// connection (its /dev/fuse files) outlives a crash of `cellar node`. The kernel aborts a
// FUSE connection when the last file of it closes; while the holder keeps a duplicate,
// pods' mounts stay alive and their pending requests wait in the kernel for the next
// daemon. FuseServer (fuse_server.h) gives the holder its connection, and drops it when it
// unmounts.
//
// Protocol (SOCK_SEQPACKET, one record each way per request):
//   "PUT <key>" + fds  -> "OK"           replaces what was held under key
//   "GET <key>"        -> "OK" + fds, or "NONE"
//   "HAS <key>"        -> "OK" or "NONE"
//   "DROP <key>"       -> "OK"
// Errors answer "ERR <message>".
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "common/unix_socket.h"

namespace cellar::mount {

class FdHolderClient {
 public:
  explicit FdHolderClient(std::filesystem::path socket) : socket_(std::move(socket)) {}
  const std::filesystem::path& socket() const { return socket_; }

  Status Put(const std::string& key, const std::vector<int>& fds) const;
  // The fds held under key; empty if none. Unavailable/NotFound if no holder runs.
  Result<std::vector<UniqueFd>> Get(const std::string& key) const;
  Result<bool> Has(const std::string& key) const;
  Status Drop(const std::string& key) const;

 private:
  Result<FdMessage> Call(const std::string& text, const std::vector<int>& fds) const;
  std::filesystem::path socket_;
};

}  // namespace cellar::mount
