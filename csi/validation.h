// Argument checks shared by the CSI services. Each returns the spec's code and a
// message that names the volume and the cause.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/status.h"
#include "csi.pb.h"

namespace cellar::csi {

inline constexpr uint64_t kMinVolumeBytes = 1ull << 20;
inline constexpr uint64_t kDefaultVolumeBytes = 1ull << 30;
inline constexpr uint64_t kVolumeGranularity = 4096;  // tmpfs sizes are whole pages

// Parameters the external-provisioner adds with --extra-create-metadata; recorded.
inline constexpr const char* kPvcName = "csi.storage.k8s.io/pvc/name";
inline constexpr const char* kPvcNamespace = "csi.storage.k8s.io/pvc/namespace";
inline constexpr const char* kPvName = "csi.storage.k8s.io/pv/name";
inline constexpr const char* kEphemeral = "csi.storage.k8s.io/ephemeral";
// What the kubelet adds to NodePublishVolume's volume context (podInfoOnMount).
inline constexpr const char* kPodName = "csi.storage.k8s.io/pod.name";
inline constexpr const char* kPodNamespace = "csi.storage.k8s.io/pod.namespace";

// Mount access only, a node-local access mode, fs_type "" (or "cellar"), supported
// mount flags; errors name `what` (e.g. "volume vol-1"). A malformed capability (no
// access type, no access mode) is InvalidArgument. A well-formed one that Cellar
// volumes do not support (block, a multi-node mode, another fs_type, a mount group,
// other mount flags) is `unsupported`: the spec's "Exceeds capabilities", which is
// InvalidArgument for the expand calls but FailedPrecondition for NodePublishVolume.
Status CheckCapability(const ::csi::v1::VolumeCapability& cap, const std::string& what,
                       Code unsupported = Code::kInvalidArgument);
Status CheckCapabilities(
    const google::protobuf::RepeatedPtrField<::csi::v1::VolumeCapability>& caps,
    const std::string& what);

// StorageClass parameters: cellar.dev/nodes (csi/topology.h), cellar.dev/huge-pages
// (common/arena_mount.h) and csi.storage.k8s.io/* are accepted (the two and the three
// above are returned for recording); anything else, or a bad value, is InvalidArgument.
Result<std::map<std::string, std::string>> CheckParameters(
    const google::protobuf::Map<std::string, std::string>& params, const std::string& what);

// The capacity Cellar gives for a range: the required size rounded up to whole pages
// and at least kMinVolumeBytes; kDefaultVolumeBytes (bounded by the limit) when unset.
// OutOfRange for negative values, limit < required, or a limit below what we can give.
Result<uint64_t> CapacityFor(const ::csi::v1::CapacityRange& range, const std::string& what);
bool CapacityFits(uint64_t capacity, const ::csi::v1::CapacityRange& range);

// Absolute, normalised, no "..", not "/". InvalidArgument otherwise.
Status CheckTargetPath(const std::string& path, const std::string& field);

bool IsEphemeralHandle(const std::string& handle);

}  // namespace cellar::csi
