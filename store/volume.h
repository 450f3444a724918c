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
  bool operator==(const Publication&) const = default;
};

struct Volume {
  std::string id;    // "vol-" + 32 hex digits; also the arena's and FUSE directory's name
  std::string name;  // CreateVolume's name, or the kubelet's handle for an ephemeral volume
  uint32_t slot = 0; // small stable number, 1..kMaxSlot, used by the FUSE layer's node ids
  uint64_t capacity_bytes = 0;
  bool ephemeral = false;
  std::map<std::string, std::string> parameters;  // recorded csi.storage.k8s.io/* values
  std::map<std::string, Publication> publications;  // by target path
  int64_t created_unix = 0;
};

inline constexpr uint32_t kMaxSlot = 65535;

// True for ids the store generates; anything else is never a volume (and never a path).
bool IsVolumeId(std::string_view id);
std::string NewVolumeId();

}  // namespace cellar::store
