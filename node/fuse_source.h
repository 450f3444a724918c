// The VolumeSource of production: each volume is a directory of the node's FUSE
// mount (mount/), whose files are objects in the volume's arena.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "csi/volume_source.h"
#include "mount/fuse_stats.h"

namespace cellar::node {

struct FuseSourceOptions {
  std::filesystem::path mountpoint;
  bool passthrough = true;
  std::filesystem::path fd_holder;    // empty: no holder
  std::vector<UniqueFd> inherited;    // a predecessor's connection, from a hand-over
  mount::FuseStats* stats = nullptr;  // where requests are counted; may be null
};

Result<std::unique_ptr<csi::VolumeSource>> MakeFuseSource(const store::Store& store,
                                                          FuseSourceOptions options);

}  // namespace cellar::node
