// Directories: OPENDIR, READDIR, READDIRPLUS, RELEASEDIR, FSYNCDIR.
//
// An arena directory is read with getdents64 on a per-handle fd; the kernel's readdir
// offset is the arena's own d_off cookie, so a listing resumes exactly where the last
// reply stopped (we seek to it on every request). The root lists attached volumes with
// offsets 1..n.
#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mount/fuse_fs.h"
#include "mount/fuse_ops.h"

namespace cellar::mount {
namespace {

struct LinuxDirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

bool IsDot(const char* name) {
  return name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0));
}

// Appends one entry to the reply buffer if it fits; with `plus`, looks the name up
// (counting a kernel lookup) only once it is sure to be sent. Returns false when full.
class DirentWriter {
 public:
  DirentWriter(FuseFs& fs, Reply& reply, size_t limit, bool plus)
      : fs_(fs), reply_(reply), limit_(std::min(limit, reply.capacity())), plus_(plus) {}

  bool Add(const Inode* parent, const char* name, uint64_t ino, uint32_t type, uint64_t off) {
    size_t namelen = std::strlen(name);
    size_t size = plus_ ? FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET_DIRENTPLUS + namelen)
                        : FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + namelen);
    if (used_ + size > limit_) return false;
    char* at = reply_.buffer() + used_;
    std::memset(at, 0, size);
    fuse_dirent* dirent;
    if (plus_) {
      auto* plus = reinterpret_cast<fuse_direntplus*>(at);
      // "." and "..", or a name that vanished meanwhile, go without attributes
      // (node id 0): the kernel then only lists them.
      if (!IsDot(name) && fs_.LookupChild(parent, name, &plus->entry_out) == 0) {
        ino = plus->entry_out.attr.ino;
      } else {
        std::memset(&plus->entry_out, 0, sizeof(plus->entry_out));
      }
      dirent = &plus->dirent;
    } else {
      dirent = reinterpret_cast<fuse_dirent*>(at);
    }
    dirent->ino = ino;
    dirent->off = off;
    dirent->namelen = static_cast<uint32_t>(namelen);
    dirent->type = type;
    std::memcpy(dirent->name, name, namelen);
    used_ += size;
    return true;
  }

  size_t used() const { return used_; }

 private:
  FuseFs& fs_;
  Reply& reply_;
  size_t limit_;
  bool plus_;
  size_t used_ = 0;
};

int ReadRoot(FuseFs& fs, uint64_t offset, DirentWriter& out) {
  std::vector<std::string> names = {".", ".."};
  for (auto& name : fs.VolumeNames()) names.push_back(std::move(name));
  for (uint64_t i = offset; i < names.size(); ++i) {
    uint64_t ino = i < 2 ? kRootNodeId : 0;
    if (!out.Add(nullptr, names[i].c_str(), ino, DT_DIR, i + 1)) break;
  }
  return 0;
}

int ReadArenaDir(OpenDir& dir, uint64_t offset, DirentWriter& out) {
  std::lock_guard lock(dir.mu);
  if (::lseek(dir.fd.get(), static_cast<off_t>(offset), SEEK_SET) < 0) return errno;
  alignas(8) char raw[32768];
  for (;;) {
    long n = ::syscall(SYS_getdents64, dir.fd.get(), raw, sizeof(raw));
    if (n < 0) return errno;
    if (n == 0) return 0;
    for (long pos = 0; pos < n;) {
      auto* d = reinterpret_cast<LinuxDirent64*>(raw + pos);
      pos += d->d_reclen;
      auto ino = MakeNodeId(dir.inode->volume->slot, d->d_ino);
      if (!out.Add(dir.inode.get(), d->d_name, ino.ok() ? *ino : 0, d->d_type,
                   static_cast<uint64_t>(d->d_off))) {
        return 0;
      }
    }
  }
}

int ReaddirCommon(FuseFs& fs, const Request& req, Reply& reply, bool plus) {
  auto* in = req.Arg<fuse_read_in>();
  if (in == nullptr) return EINVAL;
  auto dir = fs.dirs().Get(in->fh);
  if (!dir && fs.recovery().adopted()) {
    dir = fs.recovery().ReopenDir(req.in->nodeid, in->fh);  // a predecessor's
  }
  if (!dir) return EBADF;
  DirentWriter out(fs, reply, in->size, plus);
  int err = dir->inode ? ReadArenaDir(*dir, in->offset, out) : ReadRoot(fs, in->offset, out);
  // Entries already written were looked up: send them even if a later read failed.
  if (err != 0 && out.used() == 0) return err;
  reply.SetData(out.used());
  return 0;
}

}  // namespace

int OnOpendir(FuseFs& fs, const Request& req, Reply& reply) {
  auto dir = std::make_shared<OpenDir>();
  if (req.in->nodeid != kRootNodeId) {
    dir->inode = fs.Node(req.in->nodeid);
    if (!dir->inode) return ESTALE;
    if (dir->inode->type != S_IFDIR) return ENOTDIR;
    InodeFd fd(*dir->inode);
    if (!fd.ok()) return fd.error();
    dir->fd.Reset(::openat(fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir->fd) return errno;
  }
  kernel::OpenOut out{};
  out.fh = fs.dirs().Add(std::move(dir));
  reply.Set(out);
  return 0;
}

int OnReaddir(FuseFs& fs, const Request& req, Reply& reply) {
  return ReaddirCommon(fs, req, reply, false);
}

int OnReaddirplus(FuseFs& fs, const Request& req, Reply& reply) {
  return ReaddirCommon(fs, req, reply, true);
}

int OnReleasedir(FuseFs& fs, const Request& req, Reply&) {
  auto* in = req.Arg<fuse_release_in>();
  if (in == nullptr) return EINVAL;
  fs.dirs().Take(in->fh);
  return 0;
}

int OnFsyncdir(FuseFs&, const Request&, Reply&) {
  return 0;
}  // tmpfs: nothing to sync

}  // namespace cellar::mount
