// Names: LOOKUP, FORGET, MKNOD, MKDIR, SYMLINK, LINK, UNLINK, RMDIR, RENAME(2), READLINK.
//
// The root directory (node 1) lists the attached volumes and is read-only: creating,
// removing or renaming in it gives EPERM. Every name operation below the root is the
// same *at() syscall on the arena, so the errno is exactly the one tmpfs gives.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/logging.h"
#include "mount/fs_creds.h"
#include "mount/fuse_fs.h"
#include "mount/fuse_ops.h"

namespace cellar::mount {
namespace {

// Resolves the request's node id as a directory to create or remove names in.
// Sets *err (EPERM for the root, ESTALE for an unknown id, ENOTDIR).
std::shared_ptr<Inode> WritableDir(FuseFs& fs, uint64_t nodeid, int* err) {
  if (nodeid == kRootNodeId) {
    *err = EPERM;
    return nullptr;
  }
  auto dir = fs.Node(nodeid);
  if (!dir) {
    *err = ESTALE;
    return nullptr;
  }
  if (dir->type != S_IFDIR) {
    *err = ENOTDIR;
    return nullptr;
  }
  *err = 0;
  return dir;
}

// After a successful create: the new entry, counted as one lookup.
int ReplyEntry(FuseFs& fs, const Inode& parent, const char* name, Reply& reply) {
  fuse_entry_out out;
  int err = fs.LookupChild(&parent, name, &out);
  if (err != 0) return err;
  reply.Set(out);
  return 0;
}

}  // namespace

int OnLookup(FuseFs& fs, const Request& req, Reply& reply) {
  const char* name = req.String(0);
  if (name == nullptr) return EINVAL;
  std::shared_ptr<Inode> parent;
  if (req.in->nodeid != kRootNodeId) {
    parent = fs.Node(req.in->nodeid);
    if (!parent) return ESTALE;
    if (parent->type != S_IFDIR) return ENOTDIR;
  }
  fuse_entry_out out;
  int err = fs.LookupChild(parent.get(), name, &out);
  if (err == ENOENT && parent) {
    // A negative entry the kernel may cache: every change of an arena goes through this
    // mount, so the kernel replaces it itself on create. Never in the root, where
    // AttachVolume adds names behind the kernel's back.
    std::memset(&out, 0, sizeof(out));
    fs.SetEntryTimeout(&out.entry_valid, &out.entry_valid_nsec);
    reply.Set(out);
    return 0;
  }
  if (err != 0) return err;
  reply.Set(out);
  return 0;
}

int OnForget(FuseFs& fs, const Request& req, Reply&) {
  auto* in = req.Arg<fuse_forget_in>();
  if (in != nullptr && req.in->nodeid != kRootNodeId)
    fs.inodes().Forget(req.in->nodeid, in->nlookup);
  return kNoReply;
}

int OnBatchForget(FuseFs& fs, const Request& req, Reply&) {
  auto* in = req.Arg<fuse_batch_forget_in>();
  if (in == nullptr) return kNoReply;
  size_t max = (req.arg_size - sizeof(*in)) / sizeof(fuse_forget_one);
  auto* one = reinterpret_cast<const fuse_forget_one*>(req.arg + sizeof(*in));
  for (size_t i = 0; i < in->count && i < max; ++i) {
    if (one[i].nodeid != kRootNodeId) fs.inodes().Forget(one[i].nodeid, one[i].nlookup);
  }
  return kNoReply;
}

namespace {

// Whether `name` in `dir` is the inode `fd` refers to.
bool SameInode(int fd, int dir, const char* name) {
  struct stat a, b;
  return ::fstatat(fd, "", &a, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 &&
         ::fstatat(dir, name, &b, AT_SYMLINK_NOFOLLOW) == 0 && a.st_ino == b.st_ino &&
         a.st_dev == b.st_dev;
}

// MKNOD, MKDIR, SYMLINK: `make` creates `name` in the parent's arena directory with the
// requester's credentials; the reply is the new entry. A request the kernel resent
// after a takeover may find the entry its first delivery created: that EEXIST is the
// success the caller was owed.
template <typename Make>
int CreateEntry(FuseFs& fs, const Request& req, const char* name, Reply& reply, Make make) {
  int err;
  auto dir = WritableDir(fs, req.in->nodeid, &err);
  if (!dir) return err;
  {
    ScopedFsCreds creds(req.in->uid, req.in->gid, req.SuppGroups());
    InodeFd fd(*dir);
    if (!fd.ok()) return fd.error();
    if (make(fd.get()) != 0) {
      err = errno;
      if (err != EEXIST || !req.resent()) return err;
    }
  }
  return ReplyEntry(fs, *dir, name, reply);
}

}  // namespace

int OnMknod(FuseFs& fs, const Request& req, Reply& reply) {
  auto* in = req.Arg<fuse_mknod_in>();
  const char* name = req.String(sizeof(fuse_mknod_in));
  if (in == nullptr || name == nullptr) return EINVAL;
  return CreateEntry(fs, req, name, reply,
                     [&](int dir) { return ::mknodat(dir, name, in->mode, in->rdev); });
}

int OnMkdir(FuseFs& fs, const Request& req, Reply& reply) {
  auto* in = req.Arg<fuse_mkdir_in>();
  const char* name = req.String(sizeof(fuse_mkdir_in));
  if (in == nullptr || name == nullptr) return EINVAL;
  return CreateEntry(fs, req, name, reply, [&](int dir) { return ::mkdirat(dir, name, in->mode); });
}

int OnSymlink(FuseFs& fs, const Request& req, Reply& reply) {
  const char* name = req.String(0);
  const char* target = name ? req.String(std::strlen(name) + 1) : nullptr;
  if (target == nullptr) return EINVAL;
  return CreateEntry(fs, req, name, reply, [&](int dir) { return ::symlinkat(target, dir, name); });
}

int OnLink(FuseFs& fs, const Request& req, Reply& reply) {
  auto* in = req.Arg<fuse_link_in>();
  const char* name = req.String(sizeof(fuse_link_in));
  if (in == nullptr || name == nullptr) return EINVAL;
  int err;
  auto dir = WritableDir(fs, req.in->nodeid, &err);
  if (!dir) return err;
  if (in->oldnodeid == kRootNodeId) return EPERM;
  auto old = fs.Node(in->oldnodeid);
  if (!old) return ESTALE;
  if (old->volume != dir->volume) return EXDEV;  // volumes are separate filesystems
  // AT_EMPTY_PATH links the inode itself, whatever name it has now (needs
  // CAP_DAC_READ_SEARCH, which the daemon has).
  InodeFd old_fd(*old);
  if (!old_fd.ok()) return old_fd.error();
  InodeFd dir_fd(*dir);
  if (!dir_fd.ok()) return dir_fd.error();
  if (::linkat(old_fd.get(), "", dir_fd.get(), name, AT_EMPTY_PATH) != 0) {
    const int err = errno;
    // Resent after a takeover: the first delivery may have made this very link.
    if (err != EEXIST || !req.resent() || !SameInode(old_fd.get(), dir_fd.get(), name)) {
      return err;
    }
  }
  return ReplyEntry(fs, *dir, name, reply);
}

namespace {

// UNLINK (flags 0) and RMDIR (AT_REMOVEDIR). A resent one's ENOENT means the
// predecessor removed the name before dying.
int RemoveEntry(FuseFs& fs, const Request& req, int flags) {
  const char* name = req.String(0);
  if (name == nullptr) return EINVAL;
  int err;
  auto dir = WritableDir(fs, req.in->nodeid, &err);
  if (!dir) return err;
  InodeFd fd(*dir);
  if (!fd.ok()) return fd.error();
  if (::unlinkat(fd.get(), name, flags) == 0) return 0;
  return errno == ENOENT && req.resent() ? 0 : errno;
}

}  // namespace

int OnUnlink(FuseFs& fs, const Request& req, Reply&) {
  return RemoveEntry(fs, req, 0);
}

int OnRmdir(FuseFs& fs, const Request& req, Reply&) {
  return RemoveEntry(fs, req, AT_REMOVEDIR);
}

namespace {

int RenameCommon(FuseFs& fs, const Request& req, uint64_t newdir_id, uint32_t flags,
                 size_t names_at) {
  const char* old_name = req.String(names_at);
  const char* new_name = old_name ? req.String(names_at + std::strlen(old_name) + 1) : nullptr;
  if (new_name == nullptr) return EINVAL;
  int err;
  auto old_dir = WritableDir(fs, req.in->nodeid, &err);
  if (!old_dir) return err;
  auto new_dir = WritableDir(fs, newdir_id, &err);
  if (!new_dir) return err;
  if (old_dir->volume != new_dir->volume) return EXDEV;
  InodeFd old_fd(*old_dir);
  if (!old_fd.ok()) return old_fd.error();
  InodeFd new_fd(*new_dir);
  if (!new_fd.ok()) return new_fd.error();
  if (::renameat2(old_fd.get(), old_name, new_fd.get(), new_name, flags) != 0) {
    const int err = errno;
    // Resent after a takeover: the predecessor may have renamed before dying, which
    // leaves the new name and no old one. (An exchange resent that way cannot be told
    // from a new one; it would be done twice.)
    struct stat st;
    if (err == ENOENT && req.resent() &&
        ::fstatat(old_fd.get(), old_name, &st, AT_SYMLINK_NOFOLLOW) != 0 &&
        ::fstatat(new_fd.get(), new_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      return 0;
    }
    return err;
  }
  return 0;
}

}  // namespace

int OnRename(FuseFs& fs, const Request& req, Reply&) {
  auto* in = req.Arg<fuse_rename_in>();
  if (in == nullptr) return EINVAL;
  return RenameCommon(fs, req, in->newdir, 0, sizeof(fuse_rename_in));
}

int OnRename2(FuseFs& fs, const Request& req, Reply&) {
  auto* in = req.Arg<fuse_rename2_in>();
  if (in == nullptr) return EINVAL;
  return RenameCommon(fs, req, in->newdir, in->flags, sizeof(fuse_rename2_in));
}

int OnReadlink(FuseFs& fs, const Request& req, Reply& reply) {
  auto inode = fs.Node(req.in->nodeid);
  if (!inode) return ESTALE;
  if (inode->type != S_IFLNK) return EINVAL;
  InodeFd fd(*inode);
  if (!fd.ok()) return fd.error();
  ssize_t n = ::readlinkat(fd.get(), "", reply.buffer(), reply.capacity());
  if (n < 0) return errno;
  reply.SetData(static_cast<size_t>(n));
  return 0;
}

}  // namespace cellar::mount
