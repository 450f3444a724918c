// Regular files: CREATE, OPEN, READ, WRITE, FSYNC, RELEASE, FALLOCATE, LSEEK.
//
// Every open gets its own fd on the arena file. In passthrough mode that fd (the
// first one of an inode) is registered with the kernel as the inode's backing file and
// READ/WRITE/mmap never reach us; otherwise the open is FOPEN_DIRECT_IO (no second
// copy of the bytes in the FUSE page cache; mmap still works through
// FUSE_DIRECT_IO_ALLOW_MMAP) and READ/WRITE are pread/pwrite on that fd.
#include <fcntl.h>
#include <unistd.h>

#include "common/logging.h"
#include "mount/fs_creds.h"
#include "mount/fuse_fs.h"
#include "mount/fuse_ops.h"

namespace cellar::mount {
namespace {

// The flags our own fd of an arena file is opened with. O_APPEND is the kernel's
// business (it sends the offset); O_CREAT/O_EXCL were handled by CREATE; O_NOFOLLOW
// would refuse the /proc magic link; O_DIRECT is meaningless on tmpfs buffers.
int ArenaOpenFlags(uint32_t flags) {
  return static_cast<int>((flags & (O_ACCMODE | O_TRUNC | O_SYNC | O_DSYNC)) | O_CLOEXEC);
}

bool IsWriter(uint32_t flags) {
  return (flags & O_ACCMODE) != O_RDONLY;
}

// Finishes an open: a handle, passthrough if possible, accounting. Fills `out`.
void StartOpen(FuseFs& fs, std::shared_ptr<Inode> inode, UniqueFd fd, uint32_t flags,
               kernel::OpenOut* out) {
  auto file = std::make_shared<OpenFile>();
  file->inode = std::move(inode);
  file->fd = std::move(fd);
  file->writer = IsWriter(flags);
  std::memset(out, 0, sizeof(*out));
  if (fs.options().passthrough && file->inode->type == S_IFREG) {
    int32_t id = fs.AcquireBacking(*file->inode, file->fd.get());
    if (id >= 0) {
      file->passthrough = true;
      out->open_flags |= kernel::kOpenPassthrough;
      out->backing_id = id;
    }
  }
  if (!file->passthrough) out->open_flags |= FOPEN_DIRECT_IO | FOPEN_PARALLEL_DIRECT_WRITES;
  if (fs.options().stats && file->inode->type == S_IFREG) {
    fs.options().stats->RecordOpen(file->passthrough);
  }
  MountedVolume& volume = *file->inode->volume;
  volume.open_files.fetch_add(1, std::memory_order_relaxed);
  if (file->writer) volume.open_writers.fetch_add(1, std::memory_order_relaxed);
  OpenFile& recorded = *file;
  out->fh = fs.files().Add(std::move(file));
  fs.RecordFile(out->fh, recorded, ArenaOpenFlags(flags));
}

}  // namespace

int OnCreate(FuseFs& fs, const Request& req, Reply& reply) {
  auto* in = req.Arg<fuse_create_in>();
  const char* name = req.String(sizeof(fuse_create_in));
  if (in == nullptr || name == nullptr) return EINVAL;
  if (req.in->nodeid == kRootNodeId) return EPERM;
  auto dir = fs.Node(req.in->nodeid);
  if (!dir) return ESTALE;
  if (dir->type != S_IFDIR) return ENOTDIR;
  UniqueFd fd;
  {
    ScopedFsCreds creds(req.in->uid, req.in->gid, req.SuppGroups());
    InodeFd dir_fd(*dir);
    if (!dir_fd.ok()) return dir_fd.error();
    // A resent CREATE may find the file its first delivery (to a predecessor that
    // died before answering) created: O_EXCL would fail on our own work.
    const int excl = req.resent() ? 0 : static_cast<int>(in->flags & O_EXCL);
    fd.Reset(::openat(dir_fd.get(), name, ArenaOpenFlags(in->flags) | O_CREAT | excl, in->mode));
  }
  if (!fd) return errno;
  if ((in->flags & O_TRUNC) && (in->open_flags & FUSE_OPEN_KILL_SUIDGID)) {
    KillSuidGid(ProcFdPath(fd.get()), req, false);
  }
  fuse_entry_out entry;
  int err = fs.LookupChild(dir.get(), name, &entry);
  if (err != 0) return err;
  auto inode = fs.Node(entry.nodeid);
  if (!inode) return ESTALE;
  kernel::OpenOut open;
  StartOpen(fs, std::move(inode), std::move(fd), in->flags, &open);
  reply.SetTwo(&entry, sizeof(entry), &open, sizeof(open));
  return 0;
}

int OnOpen(FuseFs& fs, const Request& req, Reply& reply) {
  auto* in = req.Arg<fuse_open_in>();
  if (in == nullptr) return EINVAL;
  auto inode = fs.Node(req.in->nodeid);
  if (!inode) return ESTALE;
  if (inode->type == S_IFDIR) return EISDIR;
  InodeFd path(*inode);
  if (!path.ok()) return path.error();
  UniqueFd fd(::open(ProcFdPath(path.get()).c_str(), ArenaOpenFlags(in->flags)));
  if (!fd) return errno;
  if ((in->flags & O_TRUNC) && (in->open_flags & FUSE_OPEN_KILL_SUIDGID)) {
    int err = KillSuidGid(ProcFdPath(fd.get()), req, false);
    if (err != 0) return err;
  }
  kernel::OpenOut out;
  StartOpen(fs, std::move(inode), std::move(fd), in->flags, &out);
  reply.Set(out);
  return 0;
}

int OnRead(FuseFs& fs, const Request& req, Reply& reply) {
  auto* in = req.Arg<fuse_read_in>();
  if (in == nullptr) return EINVAL;
  auto file = fs.files().Get(in->fh);
  if (!file) return EBADF;
  size_t want = std::min<size_t>(in->size, reply.capacity());
  size_t done = 0;
  while (done < want) {
    ssize_t n = ::pread(file->fd.get(), reply.buffer() + done, want - done,
                        static_cast<off_t>(in->offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (done == 0) return errno;
      break;
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  reply.SetData(done);
  return 0;
}

int OnWrite(FuseFs& fs, const Request& req, Reply& reply) {
  auto* in = req.Arg<fuse_write_in>();
  if (in == nullptr || req.arg_size - sizeof(fuse_write_in) < in->size) return EINVAL;
  auto file = fs.files().Get(in->fh);
  if (!file) return EBADF;
  const char* data = req.arg + sizeof(fuse_write_in);
  // Only WRITEs the daemon serves carry the flag; a passthrough write asks for the same
  // with an empty SETATTR (see OnSetattr).
  if (in->write_flags & FUSE_WRITE_KILL_SUIDGID) {
    int err = KillSuidGid(ProcFdPath(file->fd.get()), req, false);
    if (err != 0) return err;
  }
  size_t done = 0;
  while (done < in->size) {
    ssize_t n = ::pwrite(file->fd.get(), data + done, in->size - done,
                         static_cast<off_t>(in->offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (done == 0) return errno;  // ENOSPC from the arena: the volume is full
      break;
    }
    done += static_cast<size_t>(n);
  }
  fuse_write_out out{};
  out.size = static_cast<uint32_t>(done);
  reply.Set(out);
  return 0;
}

int OnFsync(FuseFs& fs, const Request& req, Reply&) {
  auto* in = req.Arg<fuse_fsync_in>();
  if (in == nullptr) return EINVAL;
  auto file = fs.files().Get(in->fh);
  if (!file) return EBADF;
  int rc = (in->fsync_flags & FUSE_FSYNC_FDATASYNC) ? ::fdatasync(file->fd.get())
                                                    : ::fsync(file->fd.get());
  return rc == 0 ? 0 : errno;
}

int OnRelease(FuseFs& fs, const Request& req, Reply&) {
  auto* in = req.Arg<fuse_release_in>();
  if (in == nullptr) return EINVAL;
  auto file = fs.files().Take(in->fh);
  // Unknown after a takeover: a predecessor's handle that could not come back.
  if (!file) return fs.recovery().adopted() ? 0 : EBADF;
  fs.ForgetFile(*file);
  if (file->passthrough) fs.ReleaseBacking(*file->inode);
  MountedVolume& volume = *file->inode->volume;
  volume.open_files.fetch_sub(1, std::memory_order_relaxed);
  if (file->writer) volume.open_writers.fetch_sub(1, std::memory_order_relaxed);
  return 0;
}

int OnFallocate(FuseFs& fs, const Request& req, Reply&) {
  auto* in = req.Arg<fuse_fallocate_in>();
  if (in == nullptr) return EINVAL;
  auto file = fs.files().Get(in->fh);
  if (!file) return EBADF;
  if (::fallocate(file->fd.get(), static_cast<int>(in->mode), static_cast<off_t>(in->offset),
                  static_cast<off_t>(in->length)) != 0) {
    return errno;  // ENOSPC past the arena's size
  }
  return 0;
}

int OnLseek(FuseFs& fs, const Request& req, Reply& reply) {
  auto* in = req.Arg<fuse_lseek_in>();
  if (in == nullptr) return EINVAL;
  auto file = fs.files().Get(in->fh);
  if (!file) return EBADF;
  off_t off = ::lseek(file->fd.get(), static_cast<off_t>(in->offset), static_cast<int>(in->whence));
  if (off < 0) return errno;
  fuse_lseek_out out{};
  out.offset = static_cast<uint64_t>(off);
  reply.Set(out);
  return 0;
}

}  // namespace cellar::mount
