// Attributes: GETATTR, SETATTR, STATFS and the xattr calls.
//
// With default_permissions the kernel has checked the caller's rights before a request
// gets here, so the daemon (root) applies changes on the arena inode as asked. Sizes
// are not checked against the capacity: as on tmpfs a size alone uses no memory (a
// sparse file), and the arena's size= refuses the blocks actually written.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "mount/fs_creds.h"
#include "mount/fuse_fs.h"
#include "mount/fuse_ops.h"

namespace cellar::mount {
namespace {

int ReplyAttr(FuseFs& fs, const Inode& inode, Reply& reply) {
  InodeFd fd(inode);
  if (!fd.ok()) return fd.error();
  struct stat st;
  if (::fstatat(fd.get(), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
  fuse_attr_out out{};
  fs.SetAttrTimeout(&out.attr_valid, &out.attr_valid_nsec);
  fs.FillAttr(inode.nodeid, st, &out.attr);
  reply.Set(out);
  return 0;
}

timespec TimeArg(uint32_t valid, uint32_t set_bit, uint32_t now_bit, uint64_t sec, uint32_t nsec) {
  if (valid & now_bit) return {0, UTIME_NOW};
  if (valid & set_bit) return {static_cast<time_t>(sec), static_cast<long>(nsec)};
  return {0, UTIME_OMIT};
}

int Truncate(FuseFs& fs, const Inode& inode, const fuse_setattr_in& in) {
  if (inode.type == S_IFDIR) return EISDIR;
  if (inode.type != S_IFREG) return EINVAL;
  InodeFd fd(inode);
  if (!fd.ok()) return fd.error();
  if (in.valid & FATTR_FH) {
    auto file = fs.files().Get(in.fh);
    if (file && file->writer) return ::ftruncate(file->fd.get(), in.size) == 0 ? 0 : errno;
  }
  return ::truncate(ProcFdPath(fd.get()).c_str(), in.size) == 0 ? 0 : errno;
}

std::shared_ptr<Inode> XattrNode(FuseFs& fs, const Request& req, int* err) {
  if (req.in->nodeid == kRootNodeId) {
    *err = ENOTSUP;
    return nullptr;
  }
  auto inode = fs.Node(req.in->nodeid);
  *err = !inode ? ESTALE : inode->type == S_IFLNK ? ENOTSUP : 0;
  return *err == 0 ? inode : nullptr;
}

// getxattr/listxattr share the size-probe protocol: size 0 asks for the length only.
int ReplySized(ssize_t n, uint32_t size, Reply& reply) {
  if (n < 0) return errno;
  if (size == 0) {
    fuse_getxattr_out out{};
    out.size = static_cast<uint32_t>(n);
    reply.Set(out);
  } else {
    reply.SetData(static_cast<size_t>(n));
  }
  return 0;
}

}  // namespace

int OnGetattr(FuseFs& fs, const Request& req, Reply& reply) {
  if (req.in->nodeid == kRootNodeId) {
    fuse_attr_out out{};
    fs.SetAttrTimeout(&out.attr_valid, &out.attr_valid_nsec);
    fs.FillRootAttr(&out.attr);
    out.attr.nlink = 2 + static_cast<uint32_t>(fs.VolumeNames().size());
    reply.Set(out);
    return 0;
  }
  auto inode = fs.Node(req.in->nodeid);
  if (!inode) return ESTALE;
  return ReplyAttr(fs, *inode, reply);
}

int OnSetattr(FuseFs& fs, const Request& req, Reply& reply) {
  auto* in = req.Arg<fuse_setattr_in>();
  if (in == nullptr) return EINVAL;
  if (req.in->nodeid == kRootNodeId) return EPERM;
  auto inode = fs.Node(req.in->nodeid);
  if (!inode) return ESTALE;
  InodeFd fd(*inode);
  if (!fd.ok()) return fd.error();
  const std::string path = ProcFdPath(fd.get());
  if (in->valid == 0) {
    // Nothing to set: either chown(f, -1, -1), or the kernel dropping a caller's
    // privileges for a write it passed through (file_remove_privs; with
    // HANDLE_KILLPRIV_V2 the kernel strips the mode change and leaves it to us). Both
    // mean what chown(-1, -1) means on tmpfs: a new ctime and no setuid bit.
    if (::fchownat(fd.get(), "", static_cast<uid_t>(-1), static_cast<gid_t>(-1),
                   AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
      return errno;
    }
    if (inode->type == S_IFREG) {
      int err = KillSuidGid(path, req, true);
      if (err != 0) return err;
    }
    return ReplyAttr(fs, *inode, reply);
  }
  if (in->valid & FATTR_MODE) {
    if (inode->type == S_IFLNK) return EOPNOTSUPP;
    if (::chmod(path.c_str(), in->mode & 07777) != 0) return errno;
  }
  if (in->valid & (FATTR_UID | FATTR_GID)) {
    uid_t uid = (in->valid & FATTR_UID) ? in->uid : static_cast<uid_t>(-1);
    gid_t gid = (in->valid & FATTR_GID) ? in->gid : static_cast<gid_t>(-1);
    if (::fchownat(fd.get(), "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
      return errno;
    }
  }
  if (in->valid & FATTR_SIZE) {
    int err = Truncate(fs, *inode, *in);
    if (err != 0) return err;
  }
  if ((in->valid & FATTR_KILL_SUIDGID) && inode->type == S_IFREG) {
    // Sent with a truncate only when the caller lacks CAP_FSETID, with a chown always.
    int err = KillSuidGid(path, req, (in->valid & (FATTR_UID | FATTR_GID)) != 0);
    if (err != 0) return err;
  }
  if (in->valid & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW)) {
    timespec times[2] = {
        TimeArg(in->valid, FATTR_ATIME, FATTR_ATIME_NOW, in->atime, in->atimensec),
        TimeArg(in->valid, FATTR_MTIME, FATTR_MTIME_NOW, in->mtime, in->mtimensec)};
    if (::utimensat(fd.get(), "", times, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
      return errno;
    }
  }
  return ReplyAttr(fs, *inode, reply);
}

int OnStatfs(FuseFs& fs, const Request& req, Reply& reply) {
  fuse_statfs_out out{};
  out.st.bsize = out.st.frsize = 4096;
  out.st.namelen = NAME_MAX;
  if (req.in->nodeid != kRootNodeId) {
    auto inode = fs.Node(req.in->nodeid);
    if (!inode) return ESTALE;
    InodeFd fd(*inode);
    if (!fd.ok()) return fd.error();
    struct statvfs vfs;  // the arena's: its size= is the volume's capacity
    if (::fstatvfs(fd.get(), &vfs) != 0) return errno;
    out.st.blocks = vfs.f_blocks;
    out.st.bfree = vfs.f_bfree;
    out.st.bavail = vfs.f_bavail;
    out.st.files = vfs.f_files;
    out.st.ffree = vfs.f_ffree;
    out.st.bsize = static_cast<uint32_t>(vfs.f_bsize);
    out.st.frsize = static_cast<uint32_t>(vfs.f_frsize);
    out.st.namelen = static_cast<uint32_t>(vfs.f_namemax);
  }
  reply.Set(out);
  return 0;
}

int OnSetxattr(FuseFs& fs, const Request& req, Reply&) {
  auto* in = req.Arg<fuse_setxattr_in>();
  // Without FUSE_SETXATTR_EXT the argument is the 8-byte compat layout.
  const char* name = req.String(FUSE_COMPAT_SETXATTR_IN_SIZE);
  if (in == nullptr || name == nullptr) return EINVAL;
  size_t value_at = FUSE_COMPAT_SETXATTR_IN_SIZE + std::strlen(name) + 1;
  if (req.arg_size < value_at + in->size) return EINVAL;
  int err;
  auto inode = XattrNode(fs, req, &err);
  if (!inode) return err;
  InodeFd fd(*inode);
  if (!fd.ok()) return fd.error();
  if (::setxattr(ProcFdPath(fd.get()).c_str(), name, req.arg + value_at, in->size,
                 static_cast<int>(in->flags)) != 0) {
    return errno;
  }
  return 0;
}

int OnGetxattr(FuseFs& fs, const Request& req, Reply& reply) {
  auto* in = req.Arg<fuse_getxattr_in>();
  const char* name = req.String(sizeof(fuse_getxattr_in));
  if (in == nullptr || name == nullptr) return EINVAL;
  int err;
  auto inode = XattrNode(fs, req, &err);
  if (!inode) return err == ENOTSUP && req.in->nodeid != kRootNodeId ? ENODATA : err;
  size_t size = std::min<size_t>(in->size, reply.capacity());
  InodeFd fd(*inode);
  if (!fd.ok()) return fd.error();
  ssize_t n = ::getxattr(ProcFdPath(fd.get()).c_str(), name, size ? reply.buffer() : nullptr, size);
  return ReplySized(n, in->size, reply);
}

int OnListxattr(FuseFs& fs, const Request& req, Reply& reply) {
  auto* in = req.Arg<fuse_getxattr_in>();
  if (in == nullptr) return EINVAL;
  int err;
  auto inode = XattrNode(fs, req, &err);
  if (!inode) return err == ENOTSUP ? ReplySized(0, in->size, reply) : err;
  size_t size = std::min<size_t>(in->size, reply.capacity());
  InodeFd fd(*inode);
  if (!fd.ok()) return fd.error();
  ssize_t n = ::listxattr(ProcFdPath(fd.get()).c_str(), size ? reply.buffer() : nullptr, size);
  return ReplySized(n, in->size, reply);
}

int OnRemovexattr(FuseFs& fs, const Request& req, Reply&) {
  const char* name = req.String(0);
  if (name == nullptr) return EINVAL;
  int err;
  auto inode = XattrNode(fs, req, &err);
  if (!inode) return err;
  InodeFd fd(*inode);
  if (!fd.ok()) return fd.error();
  return ::removexattr(ProcFdPath(fd.get()).c_str(), name) == 0 ? 0 : errno;
}

}  // namespace cellar::mount
