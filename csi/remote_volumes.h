// RemoteVolumes: how NodePublishVolume reaches a volume whose data lives on another node.
//
// The publishing node keeps a read-only replica: a local volume with the owner's id whose
// arena Sync makes a copy of the owner's files as their writers last closed them (node/
// implements this over the Peer protocol, proto/peer.proto).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "common/status.h"

namespace cellar::csi {

struct RemoteOwner {
  std::string node_id;  // volume context cellar.dev/owner-node
  std::string address;  // volume context cellar.dev/owner-peer, host:port
};

// The owner's answer as the implementation keeps it, for Sync to fetch from.
class RemoteListing {
 public:
  virtual ~RemoteListing() = default;
};

struct RemoteVolumeInfo {
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;  // sum of the files' sizes
  uint64_t files = 0;
  std::shared_ptr<const RemoteListing> listing;  // the entries these numbers count
};

struct SyncReport {
  uint64_t files_fetched = 0;
  uint64_t files_kept = 0;  // already up to date (same size and mtime)
  uint64_t files_removed = 0;
  uint64_t bytes = 0;  // fetched
  double seconds = 0;
};

class RemoteVolumes {
 public:
  virtual ~RemoteVolumes() = default;
  // Asks the owner about the volume: its capacity and its listing. NOT_FOUND when it does
  // not hold it, UNAVAILABLE when it cannot be reached (the message names the node and
  // address).
  virtual Result<RemoteVolumeInfo> Describe(const RemoteOwner& owner,
                                            const std::string& volume_id) = 0;
  // Makes `dir` hold the files `described` lists (this owner's Describe of volume_id); it
  // does not ask for the listing again, so a caller wanting the owner's current files
  // describes first. Each file is replaced atomically. On error `dir` holds whole files
  // only (old or new), never a partial one. INTERNAL when `described` is not such a listing.
  virtual Result<SyncReport> Sync(const RemoteOwner& owner, const std::string& volume_id,
                                  const RemoteVolumeInfo& described,
                                  const std::filesystem::path& dir) = 0;
};

}  // namespace cellar::csi
