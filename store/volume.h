// Volume: what the store knows of one volume. Plain data, copied out of the store.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace cellar::store {

// A bind mount of the volume onto a target path (a kubelet publish).
struct Publication {
  std::string target_path;
  bool readonly = false;
  std::vector<std::string> mount_flags;
  int access_mode = 0;  // csi.v1 VolumeCapability.AccessMode.Mode
  // The pod it was published for, when the kubelet said (podInfoOnMount); for
  // reports only. Empty in records journaled before it was kept.
  std::string pod_namespace;
  std::string pod_name;
  // Why the publication is reported abnormal although its record stands (its FUSE
  // connection was lost, see csi's RepairPublications); empty while healthy. Journaled,
  // so a restarted daemon still reports it; absent in records journaled before.
  std::string broken;
  // The same mount: neither the pod nor the health is part of it (the target path
  // already names the pod, and a record journaled without the pod must still match the
  // kubelet's retry).
  bool operator==(const Publication& o) const {
    return target_path == o.target_path && readonly == o.readonly && mount_flags == o.mount_flags &&
           access_mode == o.access_mode;
  }
};

// Where a replica's data comes from: the node that owns the volume and its peer address.
// A replica is a read-only local copy of another node's volume (csi/remote_volumes.h),
// kept while it is published on this node.
struct ReplicaOf {
  std::string node_id;  // empty: not a replica, this node owns the volume
  std::string address;  // host:port of the owner's Peer service
  bool operator==(const ReplicaOf&) const = default;
};

struct Volume {
  std::string id;     // "vol-" + 32 hex digits; also the arena's and FUSE directory's name
  std::string name;   // CreateVolume's name, or the kubelet's handle for an ephemeral volume
  uint32_t slot = 0;  // small stable number, 1..kMaxSlot, used by the FUSE layer's node ids
  uint64_t capacity_bytes = 0;
  bool ephemeral = false;
  std::map<std::string, std::string> parameters;    // recorded csi.storage.k8s.io/* values
  std::map<std::string, Publication> publications;  // by target path
  int64_t created_unix = 0;
  ReplicaOf replica_of;  // set for a replica of another node's volume
  bool is_replica() const { return !replica_of.node_id.empty(); }
};

inline constexpr uint32_t kMaxSlot = 65535;

// True for ids the store generates; anything else is never a volume (and never a path).
bool IsVolumeId(std::string_view id);
std::string NewVolumeId();

}  // namespace cellar::store
