#include "store/env.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <linux/magic.h>
#include <fstream>

#include "common/arena_mount.h"

namespace cellar::store {

namespace fs = std::filesystem;

namespace {

Status WriteAllTo(int fd, std::string_view data, const fs::path& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write {}", path.string());
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status SyncDirectory(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return ErrnoError("open directory {}", dir.string());
  if (::fsync(fd.get()) != 0) return ErrnoError("fsync directory {}", dir.string());
  return Status::Ok();
}

class PosixEnv final : public Env {
 public:
  Result<std::string> ReadFile(const fs::path& path) override {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return ErrnoError("open {}", path.string());
    std::string out;
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd.get(), buf, sizeof(buf));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoError("read {}", path.string());
      }
      if (n == 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

  Status WriteFileAtomic(const fs::path& path, std::string_view data) override {
    fs::path tmp = path;
    tmp += ".tmp";
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) return ErrnoError("create {}", tmp.string());
    RETURN_IF_ERROR(WriteAllTo(fd.get(), data, tmp));
    if (::fsync(fd.get()) != 0) return ErrnoError("fsync {}", tmp.string());
    fd.Reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      return ErrnoError("rename {} to {}", tmp.string(), path.string());
    }
    return SyncDirectory(path.parent_path());
  }

  Result<UniqueFd> OpenForAppend(const fs::path& path) override {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!fd) return ErrnoError("open {}", path.string());
    return fd;
  }

  Status Append(int fd, std::string_view data) override {
    return WriteAllTo(fd, data, fs::path("journal"));
  }

  Status Sync(int fd) override {
    if (::fdatasync(fd) != 0) return ErrnoError("fdatasync journal");
    return Status::Ok();
  }

  Status Truncate(int fd, uint64_t size) override {
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return ErrnoError("truncate journal");
    return Status::Ok();
  }

  Status CreateDirectories(const fs::path& path) override {
    std::error_code ec;
    fs::create_directories(path, ec);
    if (ec) return Status::FromErrno(ec.value(), fmt::format("create directory {}", path.string()));
    return Status::Ok();
  }

  Status RemoveDirectory(const fs::path& path) override {
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoError("remove directory {}", path.string());
    }
    return Status::Ok();
  }

  Status MountTmpfs(const fs::path& path, uint64_t size_bytes, ArenaPages pages) override {
    return MountArena(path, size_bytes, pages);
  }

  Status ResizeTmpfs(const fs::path& path, uint64_t size_bytes) override {
    std::string data = fmt::format("size={}", size_bytes);
    if (::mount(nullptr, path.c_str(), nullptr, MS_REMOUNT | MS_NOSUID | MS_NODEV, data.c_str()) !=
        0) {
      return ErrnoError("resize tmpfs arena at {} to {}", path.string(), size_bytes);
    }
    return Status::Ok();
  }

  Status Unmount(const fs::path& path) override {
    if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
      return ErrnoError("unmount {}", path.string());
    }
    return Status::Ok();
  }

  Result<bool> IsTmpfsMount(const fs::path& path) override {
    struct statfs sfs {};
    if (::statfs(path.c_str(), &sfs) != 0) {
      if (errno == ENOENT) return false;
      return ErrnoError("statfs {}", path.string());
    }
    if (sfs.f_type != TMPFS_MAGIC) return false;
    // A tmpfs that is our parent (e.g. a state dir under /run) is not our arena: the
    // arena root is a mount point, so its device differs from its parent's.
    struct stat self {
    }, parent{};
    if (::stat(path.c_str(), &self) != 0) return ErrnoError("stat {}", path.string());
    if (::stat(path.parent_path().c_str(), &parent) != 0) {
      return ErrnoError("stat {}", path.parent_path().string());
    }
    return self.st_dev != parent.st_dev;
  }

  Result<FsUsage> StatFs(const fs::path& path) override {
    struct statfs sfs {};
    if (::statfs(path.c_str(), &sfs) != 0) return ErrnoError("statfs {}", path.string());
    FsUsage u;
    u.total_bytes = static_cast<uint64_t>(sfs.f_blocks) * sfs.f_bsize;
    u.available_bytes = static_cast<uint64_t>(sfs.f_bavail) * sfs.f_bsize;
    u.used_bytes = u.total_bytes - static_cast<uint64_t>(sfs.f_bfree) * sfs.f_bsize;
    u.total_inodes = sfs.f_files;
    u.available_inodes = sfs.f_ffree;
    u.used_inodes = sfs.f_files - sfs.f_ffree;
    return u;
  }
};

}  // namespace

Env& RealEnv() {
  static PosixEnv env;
  return env;
}

Result<uint64_t> NodeMemoryBytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemTotal:") return kib * 1024;
  }
  return Internal("cannot read MemTotal from /proc/meminfo");
}

}  // namespace cellar::store
