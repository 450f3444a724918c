// The VolumeSource of production: each volume is a directory of the node's FUSE
// mount (mount/), whose files are objects in the volume's arena.
#pragma once

#include <filesystem>
#include <memory>

#include "common/status.h"
#include "csi/volume_source.h"

namespace cellar::csi {

Result<std::unique_ptr<VolumeSource>> MakeFuseSource(const store::Store& store,
                                                     const std::filesystem::path& mountpoint,
                                                     bool passthrough);

}  // namespace cellar::csi
