#include "mount/inode_table.h"

#include <fcntl.h>

#include <cstring>

#include "common/logging.h"
#include "mount/recovery.h"

namespace cellar::mount {
namespace {

// The arena inode's file handle. tmpfs puts i_generation first in it.
FileHandle HandleOf(int fd) {
  struct {
    file_handle handle;
    unsigned char bytes[MAX_HANDLE_SZ];
  } buf{};
  buf.handle.handle_bytes = MAX_HANDLE_SZ;
  int mount_id = 0;
  FileHandle out;
  if (::name_to_handle_at(fd, "", &buf.handle, &mount_id, AT_EMPTY_PATH) != 0) return out;
  if (buf.handle.handle_bytes > sizeof(out.bytes)) return out;
  out.type = buf.handle.handle_type;
  out.size = buf.handle.handle_bytes;
  std::memcpy(out.bytes, buf.handle.f_handle, out.size);
  return out;
}

uint64_t GenerationOf(const FileHandle& handle) {
  uint32_t generation = 0;
  if (handle.size >= sizeof(generation)) std::memcpy(&generation, handle.bytes, sizeof(generation));
  return generation;
}

}  // namespace

std::string ProcFdPath(int fd) {
  return "/proc/self/fd/" + std::to_string(fd);
}

Result<uint64_t> MakeNodeId(uint32_t slot, ino_t ino) {
  if (ino > 0xffffffffULL) {
    return Status(Code::kOutOfRange,
                  fmt::format("arena inode {} needs > 32 bits (mount arenas with inode32)", ino),
                  EOVERFLOW);
  }
  return (static_cast<uint64_t>(slot) << 32) | static_cast<uint64_t>(ino);
}

std::shared_ptr<Inode> InodeTable::Get(uint64_t nodeid) const {
  Shard& shard = ShardOf(nodeid);
  std::lock_guard lock(shard.mu);
  auto it = shard.inodes.find(nodeid);
  return it == shard.inodes.end() ? nullptr : it->second;
}

Result<std::shared_ptr<Inode>> InodeTable::Remember(const std::shared_ptr<MountedVolume>& volume,
                                                    UniqueFd fd, const struct stat& st) {
  ASSIGN_OR_RETURN(uint64_t nodeid, MakeNodeId(volume->slot, st.st_ino));
  Shard& shard = ShardOf(nodeid);
  {
    std::lock_guard lock(shard.mu);
    auto it = shard.inodes.find(nodeid);
    if (it != shard.inodes.end()) {
      Inode& known = *it->second;
      ++known.nlookup;
      if (state_ && known.record != SessionState::kNone)
        state_->node(known.record).nlookup = known.nlookup;
      return it->second;
    }
  }
  // Outside the lock: one syscall per new inode.
  FileHandle handle = HandleOf(fd.get());
  BudgetFd(fd, handle);
  auto inode = std::make_shared<Inode>(nodeid, GenerationOf(handle), st.st_mode & S_IFMT, volume,
                                       std::move(fd), handle);
  std::lock_guard lock(shard.mu);
  auto [it, inserted] = shard.inodes.emplace(nodeid, inode);
  ++it->second->nlookup;  // if another thread won the race, its entry stays
  if (inserted) {
    Record(*inode);
  } else {
    if (inode->fd.valid()) held_fds_.fetch_sub(1);
    if (state_ && it->second->record != SessionState::kNone) {
      state_->node(it->second->record).nlookup = it->second->nlookup;
    }
  }
  return it->second;
}

void InodeTable::BudgetFd(UniqueFd& fd, const FileHandle& handle) {
  // Without a handle the fd is the only way back to the inode: keep it regardless.
  if (handle.size > 0 && held_fds_.fetch_add(1) >= max_fds_) {
    held_fds_.fetch_sub(1);
    fd.Reset();
  } else if (handle.size == 0) {
    held_fds_.fetch_add(1);
  }
}

void InodeTable::Record(Inode& inode) {
  if (state_ == nullptr || inode.handle.size > sizeof(NodeRecord::handle)) return;
  int32_t index = state_->AllocNode();
  if (index == SessionState::kNone) return;
  NodeRecord& r = state_->node(index);
  r.mode = inode.type;
  r.nlookup = inode.nlookup;
  r.backing_id = -1;
  r.backing_refs = 0;
  r.handle_type = inode.handle.type;
  r.handle_size = inode.handle.size;
  std::memcpy(r.handle, inode.handle.bytes, inode.handle.size);
  r.nodeid.store(inode.nodeid, std::memory_order_release);  // last: the record is complete
  inode.record = index;
}

void InodeTable::Restore(const std::shared_ptr<MountedVolume>& volume, int32_t record, UniqueFd fd,
                         mode_t type, const FileHandle& handle) {
  const NodeRecord& r = state_->node(record);
  const uint64_t nodeid = r.nodeid.load(std::memory_order_acquire);
  BudgetFd(fd, handle);
  auto inode =
      std::make_shared<Inode>(nodeid, GenerationOf(handle), type, volume, std::move(fd), handle);
  inode->nlookup = r.nlookup;
  inode->backing_id = r.backing_id;
  inode->backing_refs = r.backing_refs;
  inode->record = record;
  Shard& shard = ShardOf(nodeid);
  std::lock_guard lock(shard.mu);
  auto [it, inserted] = shard.inodes.emplace(nodeid, inode);
  if (!inserted) {
    // A duplicate record (a crash between two writes): keep the first, merge counts.
    it->second->nlookup += inode->nlookup;
    if (it->second->record != SessionState::kNone) {
      state_->node(it->second->record).nlookup = it->second->nlookup;
    }
    if (inode->fd.valid()) held_fds_.fetch_sub(1);
    state_->FreeNode(record);
  }
}

void InodeTable::Forget(uint64_t nodeid, uint64_t count) {
  Shard& shard = ShardOf(nodeid);
  std::shared_ptr<Inode> doomed;  // closed outside the lock
  std::lock_guard lock(shard.mu);
  auto it = shard.inodes.find(nodeid);
  if (it == shard.inodes.end()) {
    spdlog::error("FORGET of unknown node {:#x}", nodeid);
    return;
  }
  Inode& inode = *it->second;
  if (count > inode.nlookup) {
    spdlog::error("FORGET {} of node {:#x} with only {} lookups", count, nodeid, inode.nlookup);
    count = inode.nlookup;
  }
  inode.nlookup -= count;
  if (state_ && inode.record != SessionState::kNone)
    state_->node(inode.record).nlookup = inode.nlookup;
  if (inode.nlookup == 0) {
    if (state_) state_->FreeNode(inode.record);
    inode.record = SessionState::kNone;
    if (inode.fd.valid()) held_fds_.fetch_sub(1);
    doomed = std::move(it->second);
    shard.inodes.erase(it);
  }
}

InodeFd::InodeFd(const Inode& inode) {
  if (inode.fd.valid()) {
    fd_ = inode.fd.get();
    return;
  }
  auto fd =
      OpenByHandle(inode.volume->mount_fd.get(), inode.handle, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (!fd.ok()) {
    err_ = fd.status().err();
    return;
  }
  owned_ = std::move(fd).value();
  fd_ = owned_.get();
}

size_t InodeTable::size() const {
  size_t n = 0;
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mu);
    n += shard.inodes.size();
  }
  return n;
}

}  // namespace cellar::mount
