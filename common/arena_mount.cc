#include "common/arena_mount.h"

#include <sys/mount.h>

namespace cellar {

std::string_view ArenaPagesName(ArenaPages pages) {
  return pages == ArenaPages::kHugeWithinSize ? "within_size" : "never";
}

Result<ArenaPages> ParseArenaPages(const std::map<std::string, std::string>& parameters,
                                   std::string_view what) {
  auto it = parameters.find(kHugePagesParameter);
  if (it == parameters.end() || it->second == ArenaPagesName(ArenaPages::kSmall)) {
    return ArenaPages::kSmall;
  }
  if (it->second == ArenaPagesName(ArenaPages::kHugeWithinSize)) {
    return ArenaPages::kHugeWithinSize;
  }
  return Error(Code::kInvalidArgument,
               "{}: StorageClass parameter {}=\"{}\" is neither \"never\" (4 KiB pages, the "
               "default) nor \"within_size\" (2 MiB pages where a write covers them)",
               what, kHugePagesParameter, it->second);
}

std::string ArenaMountData(uint64_t size_bytes, ArenaPages pages) {
  std::string data = fmt::format("size={},mode=0755,inode32", size_bytes);
  if (pages == ArenaPages::kHugeWithinSize) data += ",huge=within_size";
  return data;
}

Status MountArena(const std::filesystem::path& path, uint64_t size_bytes, ArenaPages pages) {
  std::string data = ArenaMountData(size_bytes, pages);
  if (::mount("cellar-arena", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, data.c_str()) != 0) {
    return ErrnoError("mount tmpfs arena at {} ({})", path.string(), data);
  }
  return Status::Ok();
}

}  // namespace cellar
