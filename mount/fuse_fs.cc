#include "mount/fuse_fs.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include <cstring>

#include "common/logging.h"

namespace cellar::mount {

Status FuseFs::AttachVolume(const std::string& id, uint32_t slot,
                            const std::filesystem::path& arena) {
  if (id.empty() || id == "." || id == ".." || id.find('/') != std::string::npos ||
      id.size() > 255) {
    return InvalidArgument(fmt::format("volume id '{}' is not a directory name", id));
  }
  if (slot == 0 || slot > 0xffff) {
    return InvalidArgument(fmt::format("volume {}: slot {} outside 1..65535", id, slot));
  }
  UniqueFd root(::open(arena.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return ErrnoError("volume {}: open arena {}", id, arena.string());
  struct stat st;
  if (::fstat(root.get(), &st) != 0) return ErrnoError("volume {}: stat arena", id);
  UniqueFd mount_fd(::open(arena.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!mount_fd) return ErrnoError("volume {}: open arena {}", id, arena.string());
  ASSIGN_OR_RETURN(uint64_t nodeid, MakeNodeId(slot, st.st_ino));
  (void)nodeid;

  std::unique_lock lock(volumes_mu_);
  for (const auto& [other_id, other] : volumes_) {
    if (other_id == id) {
      if (other->slot == slot && other->dev == st.st_dev) return Status::Ok();  // same again
      return Status(Code::kAlreadyExists,
                    fmt::format("volume {} already attached with another slot or arena", id));
    }
    if (other->slot == slot) {
      return Status(Code::kAlreadyExists,
                    fmt::format("volume {}: slot {} already used by {}", id, slot, other_id));
    }
  }
  auto volume = std::make_shared<MountedVolume>();
  volume->id = id;
  volume->slot = slot;
  volume->arena_root = arena;
  volume->root_fd = std::move(root);
  volume->mount_fd = std::move(mount_fd);
  volume->dev = st.st_dev;
  volumes_.emplace(id, volume);
  lock.unlock();
  if (recovery_.active()) recovery_.RestoreVolume(volume);
  return Status::Ok();
}

Status FuseFs::DetachVolume(const std::string& id) {
  {
    std::unique_lock lock(volumes_mu_);
    if (volumes_.erase(id) == 0) return NotFound(fmt::format("volume {} is not attached", id));
  }
  // Drop the kernel's dentry so the name disappears at once; inodes already looked up
  // (and their open files) stay valid until the kernel forgets them.
  fuse_notify_inval_entry_out out{};
  out.parent = kRootNodeId;
  out.namelen = static_cast<uint32_t>(id.size());
  iovec iov[2] = {{&out, sizeof(out)}, {const_cast<char*>(id.c_str()), id.size() + 1}};
  int err = channel_->Notify(FUSE_NOTIFY_INVAL_ENTRY, iov, 2);
  if (err != 0 && err != -ENOENT) {
    spdlog::warn("volume {}: invalidating its entry failed: {}", id, strerror(-err));
  }
  return Status::Ok();
}

Result<OpenFileCounts> FuseFs::OpenFiles(const std::string& id) const {
  auto volume = FindVolume(id);
  if (!volume) return NotFound(fmt::format("volume {} is not attached", id));
  return OpenFileCounts{volume->open_files.load(), volume->open_writers.load()};
}

std::shared_ptr<MountedVolume> FuseFs::FindVolume(const std::string& id) const {
  std::shared_lock lock(volumes_mu_);
  auto it = volumes_.find(id);
  return it == volumes_.end() ? nullptr : it->second;
}

std::vector<std::string> FuseFs::VolumeNames() const {
  std::shared_lock lock(volumes_mu_);
  std::vector<std::string> names;
  for (const auto& [id, volume] : volumes_) names.push_back(id);
  return names;
}

int FuseFs::LookupChild(const Inode* parent, const char* name, fuse_entry_out* out) {
  std::shared_ptr<MountedVolume> volume;
  UniqueFd fd;
  if (parent == nullptr) {
    volume = FindVolume(name);
    if (!volume) return ENOENT;
    fd.Reset(::openat(volume->root_fd.get(), ".", O_PATH | O_CLOEXEC));
  } else {
    if (std::strlen(name) > NAME_MAX) return ENAMETOOLONG;
    volume = parent->volume;
    InodeFd dir(*parent);
    if (!dir.ok()) return dir.error();
    fd.Reset(::openat(dir.get(), name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
  }
  if (!fd) return errno;
  struct stat st;
  if (::fstatat(fd.get(), "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) return errno;
  if (st.st_dev != volume->dev) return EXDEV;  // something mounted inside an arena
  auto inode = inodes_.Remember(volume, std::move(fd), st);
  if (!inode.ok()) return inode.status().err();
  std::memset(out, 0, sizeof(*out));
  out->nodeid = (*inode)->nodeid;
  out->generation = (*inode)->generation;
  SetEntryTimeout(&out->entry_valid, &out->entry_valid_nsec);
  SetAttrTimeout(&out->attr_valid, &out->attr_valid_nsec);
  FillAttr(out->nodeid, st, &out->attr);
  return 0;
}

void FuseFs::FillAttr(uint64_t nodeid, const struct stat& st, fuse_attr* attr) const {
  std::memset(attr, 0, sizeof(*attr));
  attr->ino = nodeid;  // unique across volumes, equal for hard links
  attr->size = st.st_size;
  attr->blocks = st.st_blocks;
  attr->atime = st.st_atim.tv_sec;
  attr->atimensec = st.st_atim.tv_nsec;
  attr->mtime = st.st_mtim.tv_sec;
  attr->mtimensec = st.st_mtim.tv_nsec;
  attr->ctime = st.st_ctim.tv_sec;
  attr->ctimensec = st.st_ctim.tv_nsec;
  attr->mode = st.st_mode;
  attr->nlink = st.st_nlink;
  attr->uid = st.st_uid;
  attr->gid = st.st_gid;
  attr->rdev = st.st_rdev;
  attr->blksize = st.st_blksize;
}

void FuseFs::FillRootAttr(fuse_attr* attr) const {
  std::memset(attr, 0, sizeof(*attr));
  attr->ino = kRootNodeId;
  attr->mode = S_IFDIR | 0755;
  attr->nlink = 2;
  attr->atime = attr->mtime = attr->ctime = started_.tv_sec;
  attr->atimensec = attr->mtimensec = attr->ctimensec = started_.tv_nsec;
  attr->blksize = 4096;
}

int32_t FuseFs::AcquireBacking(Inode& inode, int fd) {
  std::lock_guard lock(inode.mu);
  if (inode.backing_refs > 0) {
    ++inode.backing_refs;
    return inode.backing_id;
  }
  auto id = channel_->OpenBacking(fd);
  if (!id.ok()) {
    spdlog::warn("node {:#x}: no passthrough ({}); serving its I/O in the daemon", inode.nodeid,
                 id.status().ToString());
    return -1;
  }
  inode.backing_id = *id;
  inode.backing_refs = 1;
  MirrorBacking(inode);
  return inode.backing_id;
}

void FuseFs::ReleaseBacking(Inode& inode) {
  std::lock_guard lock(inode.mu);
  if (inode.backing_refs == 0) {
    spdlog::error("node {:#x}: backing released more often than acquired", inode.nodeid);
    return;
  }
  if (--inode.backing_refs > 0) {
    MirrorBacking(inode);
    return;
  }
  Status st = channel_->CloseBacking(inode.backing_id);
  if (!st.ok()) spdlog::warn("node {:#x}: {}", inode.nodeid, st.ToString());
  inode.backing_id = -1;
  MirrorBacking(inode);
}

void FuseFs::MirrorBacking(const Inode& inode) {
  if (state_ == nullptr || inode.record == SessionState::kNone) return;
  NodeRecord& r = state_->node(inode.record);
  r.backing_id = inode.backing_id;
  r.backing_refs = inode.backing_refs;
}

void FuseFs::RecordFile(uint64_t fh, OpenFile& file, int arena_flags) {
  if (state_ == nullptr) return;
  int32_t index = state_->AllocHandle();
  if (index == SessionState::kNone) return;
  HandleRecord& r = state_->handle(index);
  r.nodeid = file.inode->nodeid;
  r.open_flags = static_cast<uint32_t>(arena_flags & ~O_TRUNC);  // reopening must not truncate
  r.kind = HandleKind::kFile;
  r.passthrough = file.passthrough;
  r.writer = file.writer;
  r.fh.store(fh, std::memory_order_release);
  file.record = index;
}

void FuseFs::ForgetFile(OpenFile& file) {
  if (state_ == nullptr) return;
  state_->FreeHandle(file.record);
  file.record = SessionState::kNone;
}

}  // namespace cellar::mount
