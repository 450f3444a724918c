// The one way an arena (the tmpfs that holds a volume's bytes) is mounted, shared by the
// store, which mounts arenas for real, and the mount layer's tests, which must see the
// same filesystem the daemon serves.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "common/status.h"

namespace cellar {

// tmpfs mount data for an arena of `size_bytes`. inode32 keeps inode numbers below
// 2^32: the FUSE layer packs them with the volume's slot into node ids that a restarted
// daemon can recompute.
//
// No huge=: huge=within_size was measured (bench/README.md, "Huge pages"): it speeds up
// mmap scans and warm writes, but large writes then allocate 2 MiB folios, which stall
// on compaction and on memory the host took back, and made the pipeline slower.
std::string ArenaMountData(uint64_t size_bytes);

// Mounts a fresh arena tmpfs at `path`, which must exist.
Status MountArena(const std::filesystem::path& path, uint64_t size_bytes);

}  // namespace cellar
