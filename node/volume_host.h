// VolumeHost: what a node process holds of its state dir while it serves: the lock on the
// dir, the store, and the VolumeSource that makes the store's volumes reachable (with the
// FUSE counters it fills). The order they are taken in and let go of is fixed here and
// nowhere else.
#pragma once

#include <cstdint>
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

struct VolumeHostOptions {
  std::filesystem::path state_dir;  // exists
  uint64_t capacity_bytes = 0;
  uint32_t max_volumes = 1024;
  csi::IoMode io_mode = csi::IoMode::kAuto;
  std::filesystem::path fd_holder;  // empty: none
  std::vector<UniqueFd> inherited;  // a predecessor's FUSE connection, from a hand-over
};

class VolumeHost {
 public:
  // Locks the state dir, opens the store, opens the source for the io mode and attaches
  // every volume of the store (a volume that cannot be attached is logged and skipped).
  // Errors: FailedPrecondition when another process holds the state dir; those of
  // store::Store::Open and OpenVolumeSource (node/source_choice.h).
  static Result<std::unique_ptr<VolumeHost>> Open(VolumeHostOptions options);

  VolumeHost(const VolumeHost&) = delete;
  VolumeHost& operator=(const VolumeHost&) = delete;
  // Without Stop or HandOver first (a start that failed), the members go in reverse
  // order: the source as its destructor does, then the counters, store and lock.
  ~VolumeHost() = default;

  store::Store& store() { return *store_; }
  // Valid until Stop or HandOver.
  csi::VolumeSource& source() { return *source_; }
  mount::FuseStats& fuse_stats() { return fuse_stats_; }

  // Stops serving the volumes' I/O; keep_connection leaves the FUSE connection to the
  // fd holder for the next start. The store and the lock stay until destruction.
  void Stop(bool keep_connection);

  // Hands everything over to the successor connected on `successor` (node/handover.h).
  // Call once nothing else uses the store (the CSI server stopped).
  void HandOver(int successor);

 private:
  VolumeHost() = default;

  // Declaration order is destruction order reversed: the source's FUSE threads read the
  // store's arenas and count into fuse_stats_, so it goes first; the store closes its
  // journal before the lock lets another process open it.
  UniqueFd state_lock_;
  std::unique_ptr<store::Store> store_;
  mount::FuseStats fuse_stats_;
  std::unique_ptr<csi::VolumeSource> source_;
};

}  // namespace cellar::node
