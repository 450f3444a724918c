#include "mount/fuse_fs.h"

#include <fcntl.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/logging.h"

namespace cellar::mount {

std::string ProcFdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

namespace {

// Whether the caller of `req` is in group `gid`: its fsgid, else its supplementary
// groups as /proc shows them. The kernel sends no groups with a WRITE or SETATTR; the
// pid is 0 when the caller lives outside our pid namespace, and then only the fsgid
// counts (the cost: a member by supplementary group loses a setgid bit that only marks
// mandatory locking, since the file is not group-executable).
bool CallerInGroup(const Request& req, gid_t gid) {
  if (req.in->gid == gid) return true;
  if (req.in->pid == 0) return false;
  std::ifstream status("/proc/" + std::to_string(req.in->pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Groups:", 0) != 0) continue;
    std::istringstream groups(line.substr(7));
    for (gid_t g; groups >> g;) {
      if (g == gid) return true;
    }
    return false;
  }
  return false;
}

}  // namespace

int KillSuidGid(const std::string& path, const Request& req, bool root_is_capable) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return errno;
  if (!S_ISREG(st.st_mode)) return 0;
  const mode_t mode = st.st_mode & 07777;
  mode_t kept = mode & ~S_ISUID;
  const bool exempt = (root_is_capable && req.in->uid == 0) || CallerInGroup(req, st.st_gid);
  if ((mode & S_ISGID) && ((mode & S_IXGRP) || !exempt)) kept &= ~S_ISGID;
  if (kept == mode) return 0;
  return ::chmod(path.c_str(), kept) == 0 ? 0 : errno;
}

std::vector<uint32_t> Request::SuppGroups() const {
  std::vector<uint32_t> groups;
  size_t pos = 0;
  while (pos + sizeof(fuse_ext_header) <= ext_size) {
    fuse_ext_header h;
    std::memcpy(&h, ext + pos, sizeof(h));
    if (h.size < sizeof(h) || pos + h.size > ext_size) break;  // malformed: ignore the rest
    if (h.type == kernel::kExtGroups && h.size >= sizeof(h) + sizeof(kernel::SuppGroups)) {
      kernel::SuppGroups sg;
      std::memcpy(&sg, ext + pos + sizeof(h), sizeof(sg));
      size_t room = (h.size - sizeof(h) - sizeof(sg)) / sizeof(uint32_t);
      for (uint32_t i = 0; i < sg.nr_groups && i < room; ++i) {
        uint32_t g;
        std::memcpy(&g, ext + pos + sizeof(h) + sizeof(sg) + i * sizeof(g), sizeof(g));
        groups.push_back(g);
      }
    }
    pos += h.size;
  }
  return groups;
}

ScopedFsCreds::ScopedFsCreds(uint32_t uid, uint32_t gid, const std::vector<uint32_t>& groups) {
  // The raw syscall sets this thread's groups only (glibc's setgroups would change every
  // thread of the process).
  if (!groups.empty()) {
    std::vector<gid_t> g(groups.begin(), groups.end());
    ::syscall(SYS_setgroups, g.size(), g.data());
  }
  ::setfsgid(gid);
  ::setfsuid(uid);
}

ScopedFsCreds::~ScopedFsCreds() {
  // Back to root: the kernel raises the filesystem capabilities again.
  ::setfsuid(0);
  ::setfsgid(0);
  ::syscall(SYS_setgroups, 0, nullptr);
}

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
  auto volume = std::make_shared<Volume>();
  volume->id = id;
  volume->slot = slot;
  volume->arena_root = arena;
  volume->root_fd = std::move(root);
  volume->mount_fd = std::move(mount_fd);
  volume->dev = st.st_dev;
  volumes_.emplace(id, volume);
  lock.unlock();
  if (recovering_.load()) RestoreVolume(volume);
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
    SPDLOG_WARN("volume {}: invalidating its entry failed: {}", id, strerror(-err));
  }
  return Status::Ok();
}

Result<VolumeUsage> FuseFs::Usage(const std::string& id) const {
  auto volume = FindVolume(id);
  if (!volume) return NotFound(fmt::format("volume {} is not attached", id));
  return VolumeUsage{volume->open_files.load(), volume->open_writers.load()};
}

std::shared_ptr<Volume> FuseFs::FindVolume(const std::string& id) const {
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
  std::shared_ptr<Volume> volume;
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
    SPDLOG_WARN("node {:#x}: no passthrough ({}); serving its I/O in the daemon", inode.nodeid,
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
    SPDLOG_ERROR("node {:#x}: backing released more often than acquired", inode.nodeid);
    return;
  }
  if (--inode.backing_refs > 0) {
    MirrorBacking(inode);
    return;
  }
  Status st = channel_->CloseBacking(inode.backing_id);
  if (!st.ok()) SPDLOG_WARN("node {:#x}: {}", inode.nodeid, st.ToString());
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

void FuseFs::BeginRecovery() {
  adopted_ = true;
  std::lock_guard lock(recovery_mu_);
  const std::vector<int32_t> nodes = state_->LiveNodes();
  const std::vector<int32_t> handles = state_->LiveHandles();
  for (int32_t i : nodes) {
    pending_slots_[static_cast<uint32_t>(state_->node(i).nodeid.load() >> 32)].nodes.push_back(i);
  }
  for (int32_t i : handles) {
    pending_slots_[static_cast<uint32_t>(state_->handle(i).nodeid >> 32)].handles.push_back(i);
  }
  pending_slots_.erase(0);  // the synthetic root needs nothing restored
  recovering_.store(true);
  SPDLOG_INFO("taking over: {} node records, {} open files, {} volumes to restore", nodes.size(),
              handles.size(), pending_slots_.size());
}

void FuseFs::FinishRecovery() {
  std::lock_guard lock(recovery_mu_);
  for (const auto& [slot, records] : pending_slots_) {
    SPDLOG_WARN("slot {}: its volume did not come back; its nodes answer ESTALE", slot);
  }
  pending_slots_.clear();
  recovering_.store(false);
  recovery_cv_.notify_all();
}

void FuseFs::AwaitRecovery(const Request& req) {
  if (!recovering_.load(std::memory_order_acquire)) return;
  const uint32_t slot = static_cast<uint32_t>(req.in->nodeid >> 32);
  std::unique_lock lock(recovery_mu_);
  // The root: a lookup of a volume name waits for every volume.
  auto waiting = [&] {
    return slot == 0 ? !pending_slots_.empty() : pending_slots_.count(slot) > 0;
  };
  if (!recovery_cv_.wait_for(lock, std::chrono::seconds(30), [&] { return !waiting(); })) {
    SPDLOG_WARN("opcode {} on node {:#x}: volume still not restored after 30 s",
                req.in->opcode, req.in->nodeid);
  }
}

void FuseFs::RestoreVolume(const std::shared_ptr<Volume>& volume) {
  SlotRecords records;
  {
    std::lock_guard lock(recovery_mu_);
    auto it = pending_slots_.find(volume->slot);
    if (it == pending_slots_.end()) return;
    records = it->second;  // the slot stays pending (requests wait) until restored
  }
  size_t nodes = 0, files = 0, lost = 0;
  for (int32_t i : records.nodes) {
    Status st = inodes_.Restore(volume, i);
    if (st.ok()) {
      ++nodes;
    } else {
      ++lost;
      SPDLOG_WARN("{}", st.ToString());
    }
  }
  for (int32_t i : records.handles) {
    HandleRecord& r = state_->handle(i);
    const uint64_t fh = r.fh.load();
    auto inode = inodes_.Get(r.nodeid);
    UniqueFd fd;
    if (inode) {
      InodeFd path(*inode);
      if (path.ok()) fd.Reset(::open(ProcFdPath(path.get()).c_str(), static_cast<int>(r.open_flags)));
    }
    if (!fd) {
      // Its inode is gone (unlinked, and only our dead predecessor held it open).
      SPDLOG_WARN("volume {}: open file {} of node {:#x} cannot be reopened", volume->id, fh,
                  r.nodeid);
      ++lost;
      state_->FreeHandle(i);
      continue;
    }
    auto file = std::make_shared<OpenFile>();
    file->inode = inode;
    file->fd = std::move(fd);
    file->writer = r.writer != 0;
    file->passthrough = r.passthrough != 0;
    file->record = i;
    volume->open_files.fetch_add(1, std::memory_order_relaxed);
    if (file->writer) volume->open_writers.fetch_add(1, std::memory_order_relaxed);
    files_.Insert(fh, std::move(file));
    ++files;
  }
  SPDLOG_INFO("volume {}: restored {} nodes and {} open files ({} lost)", volume->id, nodes, files,
              lost);
  std::lock_guard lock(recovery_mu_);
  pending_slots_.erase(volume->slot);
  recovery_cv_.notify_all();
}

std::shared_ptr<OpenDir> FuseFs::ReopenDir(uint64_t nodeid, uint64_t fh) {
  auto dir = std::make_shared<OpenDir>();
  if (nodeid != kRootNodeId) {
    dir->inode = Node(nodeid);
    if (!dir->inode || dir->inode->type != S_IFDIR) return nullptr;
    InodeFd fd(*dir->inode);
    if (!fd.ok()) return nullptr;
    dir->fd.Reset(::openat(fd.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir->fd) return nullptr;
  }
  dirs_.Insert(fh, dir);
  return dir;
}

}  // namespace cellar::mount
