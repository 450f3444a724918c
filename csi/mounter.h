// Mounter: the bind mounts behind NodePublishVolume/NodeUnpublishVolume.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"

namespace cellar::csi {

enum class TargetState {
  kAbsent,        // nothing at the path
  kNotMounted,    // a directory (or file) that is not a mount point
  kMountedSame,   // a mount point showing `source`
  kMountedOther,  // a mount point showing something else
  kBroken,        // a mount point whose filesystem no longer answers (ENOTCONN, EIO...)
};

struct TargetInfo {
  TargetState state = TargetState::kAbsent;
  bool readonly = false;
  std::string detail;  // why it is broken, for messages
};

// Describes `target` relative to `source` (the directory that should be shown there).
Result<TargetInfo> InspectTarget(const std::filesystem::path& target,
                                 const std::filesystem::path& source);

// Mount flags a publish may carry (PV mountOptions): ro, noexec, nosuid, nodev,
// noatime, nodiratime, relatime. InvalidArgument for anything else.
Status CheckMountFlags(const std::vector<std::string>& flags);

// Binds `source` onto `target` (creating the directory), read-only when asked, with
// `flags` (see CheckMountFlags). The flags are on the mount before it is attached, so
// the copies mount propagation makes of it (the host's, and from there the pods') carry
// them too; on kernels without mount_setattr (before 5.12) only `target` itself does.
Status BindMount(const std::filesystem::path& source, const std::filesystem::path& target,
                 bool readonly, const std::vector<std::string>& flags);

// Unmounts every mount stacked on `target` (lazily when busy) and removes the directory.
// OK when there is nothing to do.
Status UnmountAndRemove(const std::filesystem::path& target);

// True when /proc/self/mountinfo lists `path` as a mount point.
Result<bool> IsMountPoint(const std::filesystem::path& path);

}  // namespace cellar::csi
