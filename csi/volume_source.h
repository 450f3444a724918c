// VolumeSource: what NodePublishVolume binds onto a target path for a volume.
//
// With the FUSE layer, a volume is a directory of the node's FUSE mount whose files
// are objects in the volume's arena; without it (tests of the control path) the
// arena itself is bound.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "common/status.h"
#include "store/store.h"
#include "store/volume.h"

namespace cellar::csi {

class VolumeSource {
 public:
  virtual ~VolumeSource() = default;
  // Makes the volume reachable; called after CreateVolume and, at start, for every volume.
  virtual Status Attach(const store::Volume& volume) = 0;
  // Called before DeleteVolume frees the arena.
  virtual Status Detach(const std::string& volume_id) = 0;
  virtual std::filesystem::path Dir(const std::string& volume_id) const = 0;
  // OK while publishes can work (e.g. the FUSE session is alive).
  virtual Status Healthy() const = 0;
};

std::unique_ptr<VolumeSource> MakeArenaSource(const store::Store& store);

}  // namespace cellar::csi
