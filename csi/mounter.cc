#include "csi/mounter.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "common/unique_fd.h"

namespace cellar::csi {

namespace fs = std::filesystem;

namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = (s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0');
      out.push_back(static_cast<char>(v));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

struct MountEntry {
  std::string mount_point;
  bool readonly = false;
};

// The topmost mount at `path`, if any.
Result<std::optional<MountEntry>> FindMount(const fs::path& path) {
  std::ifstream in("/proc/self/mountinfo");
  if (!in) return ErrnoError("read /proc/self/mountinfo");
  std::optional<MountEntry> found;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mount_point, options;
    fields >> id >> parent >> devno >> root >> mount_point >> options;
    if (Unescape(mount_point) != path.string()) continue;
    MountEntry e;
    e.mount_point = path.string();
    std::istringstream opts(options);
    std::string opt;
    while (std::getline(opts, opt, ',')) {
      if (opt == "ro") e.readonly = true;
    }
    found = e;  // later lines are mounted on top of earlier ones
  }
  return found;
}

unsigned long FlagBits(const std::vector<std::string>& flags, bool* readonly) {
  unsigned long bits = 0;
  for (const auto& f : flags) {
    if (f == "ro")
      *readonly = true;
    else if (f == "noexec")
      bits |= MS_NOEXEC;
    else if (f == "nosuid")
      bits |= MS_NOSUID;
    else if (f == "nodev")
      bits |= MS_NODEV;
    else if (f == "noatime")
      bits |= MS_NOATIME;
    else if (f == "nodiratime")
      bits |= MS_NODIRATIME;
    else if (f == "relatime")
      bits |= MS_RELATIME;
  }
  return bits;
}

// The same flags as mount_setattr(2) attributes.
struct mount_attr MountAttr(unsigned long bits) {
  struct mount_attr attr {};
  if (bits & MS_RDONLY) attr.attr_set |= MOUNT_ATTR_RDONLY;
  if (bits & MS_NOEXEC) attr.attr_set |= MOUNT_ATTR_NOEXEC;
  if (bits & MS_NOSUID) attr.attr_set |= MOUNT_ATTR_NOSUID;
  if (bits & MS_NODEV) attr.attr_set |= MOUNT_ATTR_NODEV;
  if (bits & MS_NODIRATIME) attr.attr_set |= MOUNT_ATTR_NODIRATIME;
  // The atime mode is one value of a field: changing it needs the field cleared.
  if (bits & (MS_NOATIME | MS_RELATIME)) {
    attr.attr_clr |= MOUNT_ATTR__ATIME;
    attr.attr_set |= (bits & MS_NOATIME) ? MOUNT_ATTR_NOATIME : MOUNT_ATTR_RELATIME;
  }
  return attr;
}

// Binds with the flags set before the mount is attached: a detached clone of `source`
// (open_tree), its attributes (mount_setattr), then attached at `target` (move_mount).
// ENOSYS on kernels before 5.12.
Status BindDetached(const fs::path& source, const fs::path& target, unsigned long bits) {
  int fd = ::open_tree(AT_FDCWD, source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (fd < 0) return ErrnoError("clone {}", source.string());
  UniqueFd tree(fd);
  struct mount_attr attr = MountAttr(bits);
  if ((attr.attr_set | attr.attr_clr) != 0 &&
      ::mount_setattr(tree.get(), "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
    return ErrnoError("set the flags of a bind of {}", source.string());
  }
  if (::move_mount(tree.get(), "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return ErrnoError("bind {} onto {}", source.string(), target.string());
  }
  return Status::Ok();
}

// The classic way: bind, then remount the bind with its flags. The remount changes only
// this mount, not the copies propagation already made of it, so it is the fallback.
Status BindThenRemount(const fs::path& source, const fs::path& target, unsigned long bits) {
  if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return ErrnoError("bind {} onto {}", source.string(), target.string());
  }
  if (bits != 0) {
    // Per-mount flags of a bind mount can only be set by a remount of that bind.
    if (::mount(nullptr, target.c_str(), nullptr, MS_REMOUNT | MS_BIND | bits, nullptr) != 0) {
      Status st = ErrnoError("remount {} with its flags", target.string());
      ::umount2(target.c_str(), MNT_DETACH);
      return st;
    }
  }
  return Status::Ok();
}

}  // namespace

Result<bool> IsMountPoint(const fs::path& path) {
  // statx answers without reading /proc/self/mountinfo, which on a node with
  // thousands of publications costs milliseconds per call.
  struct statx stx {};
  if (::statx(AT_FDCWD, path.c_str(), AT_NO_AUTOMOUNT | AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS,
              &stx) == 0 &&
      (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)) {
    return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  }
  // A path that does not resolve cannot be a live mount point (a mount point's
  // directory cannot be removed while mounted).
  if (errno == ENOENT || errno == ENOTDIR) return false;
  ASSIGN_OR_RETURN(auto entry, FindMount(path));  // broken mounts, old kernels
  return entry.has_value();
}

Status CheckMountFlags(const std::vector<std::string>& flags) {
  static const char* kAllowed[] = {"ro",    "rw",      "noexec",     "nosuid",
                                   "nodev", "noatime", "nodiratime", "relatime"};
  for (const auto& f : flags) {
    bool ok = false;
    for (const char* a : kAllowed) ok = ok || f == a;
    if (!ok) {
      return Error(Code::kInvalidArgument,
                   "mount flag \"{}\" is not supported (supported: ro, noexec, nosuid, nodev, "
                   "noatime, nodiratime, relatime)",
                   f);
    }
  }
  return Status::Ok();
}

Result<TargetInfo> InspectTarget(const fs::path& target, const fs::path& source) {
  TargetInfo info;
  struct stat ts {};
  // statfs first: a stat can be answered from the kernel's attribute cache even when
  // the FUSE daemon behind the mount is gone; statfs always reaches the filesystem.
  struct statfs sfs {};
  int rc = ::statfs(target.c_str(), &sfs);
  if (rc == 0) rc = ::stat(target.c_str(), &ts);
  if (rc != 0) {
    int err = errno;
    if (err == ENOENT) {
      info.state = TargetState::kAbsent;
      info.detail = "target does not exist";
      return info;
    }
    if (err == ENOTCONN || err == EIO || err == ESTALE) {
      info.state = TargetState::kBroken;
      info.detail =
          fmt::format("the mount at {} no longer answers: {}", target.string(), std::strerror(err));
      return info;
    }
    return Status::FromErrno(err, fmt::format("stat target {}", target.string()));
  }
  ASSIGN_OR_RETURN(bool mounted, IsMountPoint(target));
  if (!mounted) {
    info.state = TargetState::kNotMounted;
    return info;
  }
  info.readonly = (sfs.f_flags & ST_RDONLY) != 0;
  struct stat ss {};
  if (::stat(source.c_str(), &ss) != 0) {
    info.state = TargetState::kMountedOther;
    info.detail =
        fmt::format("source {} is unavailable: {}", source.string(), std::strerror(errno));
    return info;
  }
  info.state = (ss.st_dev == ts.st_dev && ss.st_ino == ts.st_ino) ? TargetState::kMountedSame
                                                                  : TargetState::kMountedOther;
  return info;
}

Status BindMount(const fs::path& source, const fs::path& target, bool readonly,
                 const std::vector<std::string>& flags) {
  std::error_code ec;
  fs::create_directories(target, ec);
  if (ec) return Status::FromErrno(ec.value(), fmt::format("create target {}", target.string()));
  unsigned long bits = FlagBits(flags, &readonly);
  if (readonly) bits |= MS_RDONLY;
  // The kubelet's directory is a shared mount: a bind made there propagates to the host
  // and from there into the pods with the flags it had when it was attached. A remount
  // afterwards would change only the plugin's own copy (pods would see a writable,
  // exec-allowed mount whatever the PV's mountOptions say), so the flags go on first.
  Status st = BindDetached(source, target, bits);
  if (st.ok() || st.err() != ENOSYS) return st;
  return BindThenRemount(source, target, bits);
}

Status UnmountAndRemove(const fs::path& target) {
  // umount2 says EINVAL once nothing is mounted there; binds may be stacked.
  for (int i = 0; i < 16; ++i) {
    if (::umount2(target.c_str(), 0) == 0) continue;
    if (errno == EINVAL || errno == ENOENT) break;
    // A pod process may still hold a file open: detach so the kubelet can move on;
    // the filesystem lets go when that process does.
    if (errno != EBUSY || ::umount2(target.c_str(), MNT_DETACH) != 0) {
      return ErrnoError("unmount {}", target.string());
    }
  }
  if (::rmdir(target.c_str()) != 0 && errno != ENOENT) {
    if (errno == ENOTDIR && ::unlink(target.c_str()) == 0) return Status::Ok();
    return ErrnoError("remove target {}", target.string());
  }
  return Status::Ok();
}

}  // namespace cellar::csi
