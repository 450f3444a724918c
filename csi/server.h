// The node plugin process: opens the store, makes volumes reachable, serves the CSI
// services on one unix socket until SIGTERM/SIGINT.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "common/status.h"

namespace cellar::csi {

struct NodeOptions {
  std::string endpoint;  // unix:///path/csi.sock
  std::string node_id;
  std::filesystem::path state_dir;
  uint64_t capacity_bytes = 0;
  uint32_t max_volumes = 1024;
  std::string driver_name;
  bool fuse = true;         // serve volumes through the FUSE layer
  bool passthrough = true;  // use FUSE passthrough where the kernel has it
};

// "unix:///a/b.sock" or "unix:/a/b.sock" -> "/a/b.sock"; InvalidArgument otherwise.
Result<std::filesystem::path> SocketPathOf(const std::string& endpoint);

// Removes a stale socket left by a dead process. FailedPrecondition if a live process
// serves it, InvalidArgument if the path is something other than a socket.
Status PrepareSocketPath(const std::filesystem::path& path);

// Runs until a termination signal; returns the reason it could not start otherwise.
Status RunNode(const NodeOptions& options);

}  // namespace cellar::csi
