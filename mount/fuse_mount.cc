#include "mount/fuse_mount.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "common/logging.h"

namespace cellar::mount {
namespace {

constexpr const char* kFsType = "fuse.cellar";

bool IsCellarMount(const std::filesystem::path& path) {
  return CellarMountDev(path).ok();
}

}  // namespace

Result<dev_t> CellarMountDev(const std::filesystem::path& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  std::optional<dev_t> found;
  while (std::getline(in, line)) {
    // id parent major:minor root mountpoint options ... - fstype source superopts
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype == kFsType && point == path.string()) {
      unsigned maj = 0, min = 0;
      if (std::sscanf(dev.c_str(), "%u:%u", &maj, &min) != 2) continue;
      found = makedev(maj, min);  // the last one listed is the one on top
    }
  }
  if (!found) return NotFound(fmt::format("no fuse.cellar mount at {}", path.string()));
  return *found;
}

Result<UniqueFd> OpenFuseDevice() {
  UniqueFd fd(::open("/dev/fuse", O_RDWR | O_CLOEXEC));
  if (!fd) return ErrnoError("open /dev/fuse");
  return fd;
}

Status PrepareMountpoint(const std::filesystem::path& mountpoint) {
  struct stat st;
  if (::stat(mountpoint.c_str(), &st) != 0) {
    if (errno == ENOTCONN) {
      // A daemon died with the mount still in place: every access fails until unmounted.
      spdlog::warn("cleaning dead FUSE mount at {}", mountpoint.string());
      if (::umount2(mountpoint.c_str(), MNT_DETACH) != 0) {
        return ErrnoError("umount2 dead mount {}", mountpoint.string());
      }
    } else if (errno != ENOENT) {
      return ErrnoError("stat {}", mountpoint.string());
    }
  }
  // A live mount of an earlier instance that could not be taken over (no holder or
  // successor had its connection, or resuming it failed): nothing will serve it again.
  while (IsCellarMount(std::filesystem::absolute(mountpoint).lexically_normal())) {
    spdlog::warn("detaching earlier fuse.cellar mount at {}", mountpoint.string());
    if (::umount2(mountpoint.c_str(), MNT_DETACH) != 0) {
      return ErrnoError("umount2 {}", mountpoint.string());
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(mountpoint, ec);
  if (ec) return Status::FromErrno(ec.value(), "mkdir " + mountpoint.string());
  return Status::Ok();
}

Status MountFuse(const std::filesystem::path& mountpoint, int fuse_fd, uint32_t max_read) {
  std::string data = fmt::format(
      "fd={},rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions,max_read={}",
      fuse_fd, max_read);
  if (::mount("cellar", mountpoint.c_str(), kFsType, MS_NOSUID | MS_NODEV, data.c_str()) != 0) {
    return ErrnoError("mount fuse.cellar at {}", mountpoint.string());
  }
  return Status::Ok();
}

Status UnmountFuse(const std::filesystem::path& mountpoint) {
  if (::umount2(mountpoint.c_str(), UMOUNT_NOFOLLOW) == 0) return Status::Ok();
  if (errno == EINVAL || errno == ENOENT) return Status::Ok();  // not mounted
  if (errno == EBUSY) {
    spdlog::info("{} busy, detaching lazily", mountpoint.string());
    if (::umount2(mountpoint.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) return Status::Ok();
  }
  return ErrnoError("umount2 {}", mountpoint.string());
}

Status SetReadAheadKb(const std::filesystem::path& mountpoint, uint32_t kb) {
  struct stat st;
  if (::stat(mountpoint.c_str(), &st) != 0) return ErrnoError("stat {}", mountpoint.string());
  std::string path =
      fmt::format("/sys/class/bdi/{}:{}/read_ahead_kb", major(st.st_dev), minor(st.st_dev));
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return ErrnoError("open {}", path);
  std::string value = std::to_string(kb);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return ErrnoError("write {}", path);
  }
  return Status::Ok();
}

}  // namespace cellar::mount
