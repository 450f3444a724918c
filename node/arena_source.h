// The VolumeSource of direct mode: a volume is its tmpfs arena, bind-mounted as it is.
#pragma once

#include <memory>

#include "csi/volume_source.h"
#include "store/store.h"

namespace cellar::node {

std::unique_ptr<csi::VolumeSource> MakeArenaSource(const store::Store& store);

}  // namespace cellar::node
