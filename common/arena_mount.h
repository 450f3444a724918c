// The one way an arena (the tmpfs that holds a volume's bytes) is mounted, shared by the
// store, which mounts arenas for real, and the mount layer's tests, which must see the
// same filesystem the daemon serves.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cellar {

// Which pages back an arena's files, chosen per StorageClass with kHugePagesParameter.
//
//   kSmall           4 KiB pages (default).
//   kHugeWithinSize  tmpfs huge=within_size: 2 MiB folios wherever a write covers one,
//                    4 KiB for the rest (a 4 KiB file stays 4 KiB). Large writes cost
//                    about half (1 GiB pwrite 0.16 s against 0.31 s, bench/README.md), but
//                    each folio needs 2 MiB of contiguous free memory: on a fragmented or
//                    ballooned host that means compaction stalls, hence opt-in.
enum class ArenaPages { kSmall, kHugeWithinSize };

inline constexpr const char* kHugePagesParameter = "cellar.dev/huge-pages";

std::string_view ArenaPagesName(ArenaPages pages);  // "never" or "within_size"
// The parameter's value in `parameters` (kSmall when absent); InvalidArgument naming
// `what` and the accepted values otherwise.
Result<ArenaPages> ParseArenaPages(const std::map<std::string, std::string>& parameters,
                                   std::string_view what);

// tmpfs mount data for an arena of `size_bytes`. inode32 keeps inode numbers below
// 2^32: the FUSE layer packs them with the volume's slot into node ids that a restarted
// daemon can recompute. A later remount with only size= keeps the huge= choice.
std::string ArenaMountData(uint64_t size_bytes, ArenaPages pages = ArenaPages::kSmall);

// Mounts a fresh arena tmpfs at `path`, which must exist.
Status MountArena(const std::filesystem::path& path, uint64_t size_bytes,
                  ArenaPages pages = ArenaPages::kSmall);

}  // namespace cellar
