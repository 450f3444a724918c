// The mount(2)/umount2(2) side of a FUSE session: no fusermount, the daemon is root.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>

#include "common/status.h"
#include "common/unique_fd.h"

namespace cellar::mount {

// Opens /dev/fuse read-write, close-on-exec. NotFound/PermissionDenied from open(2).
Result<UniqueFd> OpenFuseDevice();

// Makes `mountpoint` usable: creates it if missing and lazily unmounts a dead FUSE
// mount left there by a daemon that died (stat gives ENOTCONN) or any earlier
// fuse.cellar mount. Errors only if the path cannot be made a directory.
Status PrepareMountpoint(const std::filesystem::path& mountpoint);

// The device number (its FUSE connection) of the fuse.cellar mount at `path`, read from
// /proc/self/mountinfo without touching the mount (which would wait for a daemon).
// NotFound if there is none.
Result<dev_t> CellarMountDev(const std::filesystem::path& path);

// Mounts the connection `fuse_fd` at `mountpoint` as type fuse.cellar with
// allow_other, default_permissions, nosuid, nodev and the given max_read.
Status MountFuse(const std::filesystem::path& mountpoint, int fuse_fd, uint32_t max_read);

// umount2(mountpoint); if busy, lazily (MNT_DETACH). OK if nothing is mounted there.
Status UnmountFuse(const std::filesystem::path& mountpoint);

// Raises the mount's bdi read-ahead (FUSE otherwise reads ahead 128 KiB at a time).
Status SetReadAheadKb(const std::filesystem::path& mountpoint, uint32_t kb);

}  // namespace cellar::mount
