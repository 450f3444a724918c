#include "csi/endpoint.h"

#include <sys/un.h>

#include <string_view>

namespace cellar::csi {

namespace fs = std::filesystem;

Result<fs::path> SocketPathOf(const std::string& endpoint) {
  std::string_view rest;
  if (endpoint.rfind("unix://", 0) == 0) {
    rest = std::string_view(endpoint).substr(7);
  } else if (endpoint.rfind("unix:", 0) == 0) {
    rest = std::string_view(endpoint).substr(5);
  } else {
    return Error(Code::kInvalidArgument,
                 "endpoint \"{}\" must be a unix socket (unix:///path/csi.sock)", endpoint);
  }
  fs::path path(rest);
  if (!path.is_absolute() || path.filename().empty()) {
    return Error(Code::kInvalidArgument, "endpoint \"{}\" must name an absolute socket path",
                 endpoint);
  }
  if (path.string().size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Error(Code::kInvalidArgument, "endpoint \"{}\" is longer than a unix socket path may be",
                 endpoint);
  }
  return path;
}

}  // namespace cellar::csi
