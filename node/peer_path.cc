#include "node/peer_path.h"

#include <string_view>

namespace cellar::node {

Status CheckPeerPath(const std::string& path, const std::string& what) {
  auto bad = [&](const char* why) {
    return Error(Code::kInvalidArgument, "{}: path \"{}\" {}", what, path, why);
  };
  if (path.empty()) return bad("is empty");
  if (path.find('\0') != std::string::npos) return bad("holds a NUL byte");
  if (path.front() == '/') return bad("is absolute; paths are relative to the volume");
  std::string_view rest(path);
  while (true) {
    auto slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    if (part.empty() || part == "." || part == "..") return bad("leaves or skips a directory");
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return Status::Ok();
}

}  // namespace cellar::node
