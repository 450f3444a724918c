#include "common/arena_mount.h"

#include <sys/mount.h>

namespace cellar {

std::string ArenaMountData(uint64_t size_bytes) {
  return fmt::format("size={},mode=0755,inode32", size_bytes);
}

Status MountArena(const std::filesystem::path& path, uint64_t size_bytes) {
  std::string data = ArenaMountData(size_bytes);
  if (::mount("cellar-arena", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, data.c_str()) != 0) {
    return ErrnoError("mount tmpfs arena at {} ({})", path.string(), data);
  }
  return Status::Ok();
}

}  // namespace cellar
