#include "mount/fd_holder.h"

#include <fmt/format.h>

namespace cellar::mount {

Result<FdMessage> FdHolderClient::Call(const std::string& text, const std::vector<int>& fds) const {
  ASSIGN_OR_RETURN(UniqueFd conn, ConnectSeqpacket(socket_));
  RETURN_IF_ERROR(SendMessage(conn.get(), text, fds));
  ASSIGN_OR_RETURN(FdMessage reply, ReceiveMessage(conn.get(), 5000));
  if (reply.text.rfind("ERR", 0) == 0) {
    return Status(Code::kInternal, fmt::format("fd holder {}: {}", socket_.string(), reply.text));
  }
  return reply;
}

Status FdHolderClient::Put(const std::string& key, const std::vector<int>& fds) const {
  ASSIGN_OR_RETURN(FdMessage reply, Call("PUT " + key, fds));
  return Status::Ok();
}

Result<std::vector<UniqueFd>> FdHolderClient::Get(const std::string& key) const {
  ASSIGN_OR_RETURN(FdMessage reply, Call("GET " + key, {}));
  if (reply.text != "OK") return std::vector<UniqueFd>{};
  return std::move(reply.fds);
}

Result<bool> FdHolderClient::Has(const std::string& key) const {
  ASSIGN_OR_RETURN(FdMessage reply, Call("HAS " + key, {}));
  return reply.text == "OK";
}

Status FdHolderClient::Drop(const std::string& key) const {
  ASSIGN_OR_RETURN(FdMessage reply, Call("DROP " + key, {}));
  return Status::Ok();
}

}  // namespace cellar::mount
