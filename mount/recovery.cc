#include "mount/recovery.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/logging.h"

namespace cellar::mount {
namespace {

// The file handle a node record keeps (see InodeTable::Record).
FileHandle HandleOfRecord(const NodeRecord& r) {
  FileHandle handle;
  handle.type = r.handle_type;
  handle.size = std::min<uint32_t>(r.handle_size, sizeof(r.handle));
  std::memcpy(handle.bytes, r.handle, handle.size);
  return handle;
}

uint32_t SlotOf(uint64_t nodeid) {
  return static_cast<uint32_t>(nodeid >> 32);
}

}  // namespace

Result<UniqueFd> OpenByHandle(int mount_fd, const FileHandle& handle, int flags) {
  struct {
    file_handle h;
    unsigned char bytes[sizeof(FileHandle::bytes)];
  } buf{};
  buf.h.handle_bytes = std::min<uint32_t>(handle.size, sizeof(buf.bytes));
  buf.h.handle_type = handle.type;
  std::memcpy(buf.h.f_handle, handle.bytes, buf.h.handle_bytes);
  UniqueFd fd(::open_by_handle_at(mount_fd, &buf.h, flags));
  if (!fd) {
    const int err = errno == ENOENT ? ESTALE : errno;
    return Status::FromErrno(err, "open_by_handle_at");
  }
  return fd;
}

void Recovery::Begin() {
  adopted_ = true;
  std::lock_guard lock(mu_);
  const std::vector<int32_t> nodes = state_->LiveNodes();
  const std::vector<int32_t> handles = state_->LiveHandles();
  for (int32_t i : nodes) pending_slots_[SlotOf(state_->node(i).nodeid.load())].nodes.push_back(i);
  for (int32_t i : handles) pending_slots_[SlotOf(state_->handle(i).nodeid)].handles.push_back(i);
  pending_slots_.erase(0);  // the synthetic root needs nothing restored
  active_.store(true);
  spdlog::info("taking over: {} node records, {} open files, {} volumes to restore", nodes.size(),
               handles.size(), pending_slots_.size());
}

void Recovery::Finish() {
  std::lock_guard lock(mu_);
  for (const auto& [slot, records] : pending_slots_) {
    spdlog::warn("slot {}: its volume did not come back; its nodes answer ESTALE", slot);
  }
  pending_slots_.clear();
  active_.store(false);
  cv_.notify_all();
}

void Recovery::Await(const Request& req) {
  if (!active()) return;
  const uint32_t slot = SlotOf(req.in->nodeid);
  std::unique_lock lock(mu_);
  // The root: a lookup of a volume name waits for every volume.
  auto waiting = [&] {
    return slot == 0 ? !pending_slots_.empty() : pending_slots_.count(slot) > 0;
  };
  if (!cv_.wait_for(lock, std::chrono::seconds(30), [&] { return !waiting(); })) {
    spdlog::warn("opcode {} on node {:#x}: volume still not restored after 30 s", req.in->opcode,
                 req.in->nodeid);
  }
}

void Recovery::RestoreVolume(const std::shared_ptr<MountedVolume>& volume) {
  SlotRecords records;
  {
    std::lock_guard lock(mu_);
    auto it = pending_slots_.find(volume->slot);
    if (it == pending_slots_.end()) return;
    records = it->second;  // the slot stays pending (requests wait) until restored
  }
  size_t nodes = 0, files = 0, lost = 0;
  for (int32_t i : records.nodes) {
    Status st = RestoreNode(volume, i);
    if (st.ok()) {
      ++nodes;
    } else {
      ++lost;
      spdlog::warn("{}", st.ToString());
    }
  }
  // After the nodes: an open file reopens its inode through the inode table.
  for (int32_t i : records.handles) {
    if (RestoreFile(*volume, i)) {
      ++files;
    } else {
      ++lost;
    }
  }
  spdlog::info("volume {}: restored {} nodes and {} open files ({} lost)", volume->id, nodes, files,
               lost);
  std::lock_guard lock(mu_);
  pending_slots_.erase(volume->slot);
  cv_.notify_all();
}

Status Recovery::RestoreNode(const std::shared_ptr<MountedVolume>& volume, int32_t record) {
  NodeRecord& r = state_->node(record);
  const uint64_t nodeid = r.nodeid.load(std::memory_order_acquire);
  const FileHandle handle = HandleOfRecord(r);
  auto fd = OpenByHandle(volume->mount_fd.get(), handle, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  struct stat st {};
  int err = 0;
  if (!fd.ok()) {
    err = fd.status().err();
  } else if (::fstat(fd->get(), &st) != 0 ||
             (st.st_ino & 0xffffffffULL) != (nodeid & 0xffffffffULL)) {
    err = ESTALE;  // another inode reuses the handle's number
  }
  if (err != 0) {
    state_->FreeNode(record);
    return Status(Code::kNotFound,
                  fmt::format("node {:#x} of volume {}: {}", nodeid, volume->id, strerror(err)),
                  err);
  }
  inodes_.Restore(volume, record, std::move(fd).value(), st.st_mode & S_IFMT, handle);
  return Status::Ok();
}

bool Recovery::RestoreFile(MountedVolume& volume, int32_t record) {
  HandleRecord& r = state_->handle(record);
  const uint64_t fh = r.fh.load();
  auto inode = inodes_.Get(r.nodeid);
  UniqueFd fd;
  if (inode) {
    InodeFd path(*inode);
    if (path.ok()) fd.Reset(::open(ProcFdPath(path.get()).c_str(), static_cast<int>(r.open_flags)));
  }
  if (!fd) {
    // Its inode is gone (unlinked, and only our dead predecessor held it open).
    spdlog::warn("volume {}: open file {} of node {:#x} cannot be reopened", volume.id, fh,
                 r.nodeid);
    state_->FreeHandle(record);
    return false;
  }
  auto file = std::make_shared<OpenFile>();
  file->inode = inode;
  file->fd = std::move(fd);
  file->writer = r.writer != 0;
  file->passthrough = r.passthrough != 0;
  file->record = record;
  volume.open_files.fetch_add(1, std::memory_order_relaxed);
  if (file->writer) volume.open_writers.fetch_add(1, std::memory_order_relaxed);
  files_.Insert(fh, std::move(file));
  return true;
}

std::shared_ptr<OpenDir> Recovery::ReopenDir(uint64_t nodeid, uint64_t fh) {
  auto dir = std::make_shared<OpenDir>();
  if (nodeid != kRootNodeId) {
    dir->inode = inodes_.Get(nodeid);
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
