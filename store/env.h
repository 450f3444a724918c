// Env: every operating-system call the store makes, behind one small interface, so
// tests can inject failures (ENOSPC, a crash between two writes) the way LevelDB's
// fault-injection env does. RealEnv() is the only production implementation.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/arena_mount.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace cellar::store {

struct FsUsage {
  uint64_t total_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t available_bytes = 0;
  uint64_t total_inodes = 0;
  uint64_t used_inodes = 0;
  uint64_t available_inodes = 0;
};

class Env {
 public:
  virtual ~Env() = default;

  // Files. Errors carry the errno and name the path.
  virtual Result<std::string> ReadFile(const std::filesystem::path& path) = 0;
  // Writes to a temporary name, fsyncs, renames over `path` and fsyncs the directory,
  // so a crash leaves either the old or the new content, never a mix.
  virtual Status WriteFileAtomic(const std::filesystem::path& path, std::string_view data) = 0;
  virtual Result<UniqueFd> OpenForAppend(const std::filesystem::path& path) = 0;
  virtual Status Append(int fd, std::string_view data) = 0;
  virtual Status Sync(int fd) = 0;
  virtual Status Truncate(int fd, uint64_t size) = 0;
  virtual Status CreateDirectories(const std::filesystem::path& path) = 0;
  virtual Status RemoveDirectory(const std::filesystem::path& path) = 0;

  // Arenas: tmpfs mounts whose size= is the volume's capacity. A resize keeps `pages`.
  virtual Status MountTmpfs(const std::filesystem::path& path, uint64_t size_bytes,
                            ArenaPages pages) = 0;
  virtual Status ResizeTmpfs(const std::filesystem::path& path, uint64_t size_bytes) = 0;
  // Lazy (MNT_DETACH) so a file still open elsewhere does not block deletion; the
  // memory returns when its last user goes.
  virtual Status Unmount(const std::filesystem::path& path) = 0;
  // True when `path` is itself the root of a tmpfs mount.
  virtual Result<bool> IsTmpfsMount(const std::filesystem::path& path) = 0;
  virtual Result<FsUsage> StatFs(const std::filesystem::path& path) = 0;
};

Env& RealEnv();

// MemTotal of /proc/meminfo, in bytes.
Result<uint64_t> NodeMemoryBytes();

}  // namespace cellar::store
