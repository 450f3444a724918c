// VolumeSource: what NodePublishVolume binds onto a target path for a volume.
//
// With the FUSE layer, a volume is a directory of the node's FUSE mount whose files
// are objects in the volume's arena; in direct mode (kernels without FUSE passthrough,
// or forced) the arena itself is bound.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "csi/io_mode.h"
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
  // How pods' I/O is served: passthrough, fuse or direct (never auto).
  virtual IoMode mode() const = 0;
  // Serving a live FUSE connection taken over from a predecessor (from the fd holder
  // after a crash or restart, or handed over), not one this process mounted.
  virtual bool resumed() const { return false; }

  // At start, once every volume of the store was attached (a takeover stops waiting
  // for volumes that did not come back).
  virtual void AttachedAll() {}
  // Stops serving the volumes' I/O. keep_connection leaves the FUSE mount and its
  // connection to a successor (the fd holder keeps it meanwhile).
  virtual Status Shutdown(bool /*keep_connection*/) { return Status::Ok(); }
  // The files a successor needs to take the volumes' mount over, valid until Shutdown
  // returns; call after Pause. Empty without a FUSE connection.
  virtual std::vector<int> HandoverFds() const { return {}; }
  // Stops the serving threads (requests then wait in the kernel) without closing anything.
  virtual void Pause() {}
};

}  // namespace cellar::csi
