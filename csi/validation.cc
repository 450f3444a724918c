#include "csi/validation.h"

#include <filesystem>

#include "common/arena_mount.h"
#include "common/size.h"
#include "csi/mounter.h"
#include "csi/topology.h"

namespace cellar::csi {

using ::csi::v1::VolumeCapability;

Status CheckCapability(const VolumeCapability& cap, const std::string& what, Code unsupported) {
  using Mode = VolumeCapability::AccessMode;
  // Malformed first: a request that lacks a required field is InvalidArgument whatever
  // else it asks for.
  if (!cap.has_block() && !cap.has_mount()) {
    return Error(Code::kInvalidArgument, "{}: volume capability has no access type", what);
  }
  const Mode::Mode mode = cap.access_mode().mode();
  if (mode == Mode::UNKNOWN || !Mode::Mode_IsValid(mode)) {
    return Error(Code::kInvalidArgument, "{}: access mode is missing or unknown", what);
  }
  if (cap.has_block()) {
    return Error(unsupported, "{}: block access is not supported; Cellar volumes are filesystems",
                 what);
  }
  const auto& mount = cap.mount();
  if (!mount.fs_type().empty() && mount.fs_type() != "cellar") {
    return Error(unsupported, "{}: fs_type \"{}\" is not supported (leave it empty)", what,
                 mount.fs_type());
  }
  if (!mount.volume_mount_group().empty()) {
    return Error(unsupported,
                 "{}: volume_mount_group is not supported (the driver does not advertise "
                 "VOLUME_MOUNT_GROUP)",
                 what);
  }
  Status flags = CheckMountFlags({mount.mount_flags().begin(), mount.mount_flags().end()});
  if (!flags.ok()) return Error(unsupported, "{}: {}", what, flags.message());
  switch (mode) {
    case Mode::SINGLE_NODE_WRITER:
    case Mode::SINGLE_NODE_READER_ONLY:
    case Mode::SINGLE_NODE_SINGLE_WRITER:
    case Mode::SINGLE_NODE_MULTI_WRITER: return Status::Ok();
    default:  // the MULTI_NODE_* modes
      return Error(unsupported,
                   "{}: access mode {} is not supported: a Cellar volume lives in one node's "
                   "memory",
                   what, Mode::Mode_Name(mode));
  }
}

Status CheckCapabilities(const google::protobuf::RepeatedPtrField<VolumeCapability>& caps,
                         const std::string& what) {
  if (caps.empty()) {
    return Error(Code::kInvalidArgument, "{}: volume_capabilities is empty", what);
  }
  for (const auto& cap : caps) RETURN_IF_ERROR(CheckCapability(cap, what));
  return Status::Ok();
}

Result<std::map<std::string, std::string>> CheckParameters(
    const google::protobuf::Map<std::string, std::string>& params, const std::string& what) {
  std::map<std::string, std::string> recorded;
  for (const auto& [key, value] : params) {
    if (key == kPvcName || key == kPvcNamespace || key == kPvName) {
      recorded[key] = value;
    } else if (key == kNodesParameter) {
      recorded[key] = value;
      RETURN_IF_ERROR(ParseVolumeNodes(recorded, what).status());
    } else if (key == kHugePagesParameter) {
      recorded[key] = value;
      RETURN_IF_ERROR(ParseArenaPages(recorded, what).status());
    } else if (key.rfind("csi.storage.k8s.io/", 0) == 0) {
      continue;  // other provisioner metadata: harmless, not needed
    } else {
      return Error(Code::kInvalidArgument,
                   "{}: unknown StorageClass parameter \"{}\" (Cellar takes only {}, {} and "
                   "csi.storage.k8s.io/* metadata)",
                   what, key, kNodesParameter, kHugePagesParameter);
    }
  }
  return recorded;
}

Result<uint64_t> CapacityFor(const ::csi::v1::CapacityRange& range, const std::string& what) {
  int64_t required = range.required_bytes();
  int64_t limit = range.limit_bytes();
  if (required < 0 || limit < 0) {
    return Error(Code::kOutOfRange, "{}: capacity range has a negative size", what);
  }
  if (limit > 0 && limit < required) {
    return Error(Code::kOutOfRange, "{}: limit_bytes {} is below required_bytes {}", what, limit,
                 required);
  }
  uint64_t size = required > 0 ? static_cast<uint64_t>(required) : kDefaultVolumeBytes;
  if (required == 0 && limit > 0) size = std::min<uint64_t>(size, limit);
  size = std::max(size, kMinVolumeBytes);
  size = (size + kVolumeGranularity - 1) / kVolumeGranularity * kVolumeGranularity;
  if (limit > 0 && size > static_cast<uint64_t>(limit)) {
    return Error(Code::kOutOfRange,
                 "{}: limit_bytes {} is below the smallest volume Cellar can give ({}, whole "
                 "4 KiB pages, at least {})",
                 what, limit, size, FormatSize(kMinVolumeBytes));
  }
  return size;
}

bool CapacityFits(uint64_t capacity, const ::csi::v1::CapacityRange& range) {
  if (range.required_bytes() > 0 && capacity < static_cast<uint64_t>(range.required_bytes())) {
    return false;
  }
  if (range.limit_bytes() > 0 && capacity > static_cast<uint64_t>(range.limit_bytes())) {
    return false;
  }
  return true;
}

Status CheckTargetPath(const std::string& path, const std::string& field) {
  if (path.empty()) return Error(Code::kInvalidArgument, "{} is empty", field);
  if (path.size() > 4096 || path.find('\0') != std::string::npos) {
    return Error(Code::kInvalidArgument, "{} is not a valid path", field);
  }
  std::filesystem::path p(path);
  if (!p.is_absolute() || path == "/") {
    return Error(Code::kInvalidArgument, "{} \"{}\" must be an absolute path below /", field, path);
  }
  for (const auto& part : p) {
    if (part == "..") {
      return Error(Code::kInvalidArgument, "{} \"{}\" must not contain \"..\"", field, path);
    }
  }
  return Status::Ok();
}

bool IsEphemeralHandle(const std::string& handle) {
  // The kubelet names inline volumes "csi-" + a hash; accept a conservative charset.
  if (handle.empty() || handle.size() > 128) return false;
  for (char c : handle) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace cellar::csi
