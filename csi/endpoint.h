// The CSI endpoint a node serves on: only a unix socket (the kubelet and the sidecars
// reach the driver through a shared directory, never over the network).
#pragma once

#include <filesystem>
#include <string>

#include "common/status.h"

namespace cellar::csi {

// "unix:///a/b.sock" or "unix:/a/b.sock" -> "/a/b.sock"; InvalidArgument otherwise (not
// a unix: address, a relative path, a path too long for a unix socket).
Result<std::filesystem::path> SocketPathOf(const std::string& endpoint);

}  // namespace cellar::csi
