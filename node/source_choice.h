// Picks the VolumeSource for the node's io mode. In auto mode the probe is the kernel's
// own answer: the FUSE mount starts asking for passthrough, and FUSE_INIT either grants
// FUSE_PASSTHROUGH or not (older kernels, or one built without it); granted, a probe
// backing file shows whether this process may use it (CAP_SYS_ADMIN). Not usable: the
// mount is dropped and volumes are served direct, the only mode that keeps tmpfs speed
// and one copy of the pages there.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "csi/io_mode.h"
#include "csi/volume_source.h"
#include "mount/fuse_stats.h"
#include "store/store.h"

namespace cellar::node {

struct SourceRequest {
  csi::IoMode mode = csi::IoMode::kAuto;
  std::filesystem::path mountpoint;        // of the FUSE mount
  std::filesystem::path fd_holder;         // empty: no holder
  std::vector<UniqueFd> inherited;         // a predecessor's FUSE connection, from a hand-over
  mount::FuseStats* fuse_stats = nullptr;  // counts FUSE requests; outlives the source
};

// Errors: FailedPrecondition when passthrough is forced and the kernel does not grant
// it; whatever starting the FUSE mount returns.
Result<std::unique_ptr<csi::VolumeSource>> OpenVolumeSource(const store::Store& store,
                                                            SourceRequest request);

}  // namespace cellar::node
