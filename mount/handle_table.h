// What a FUSE file handle (fh) stands for, and the tables that map handles to it.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "common/unique_fd.h"
#include "mount/inode_table.h"
#include "mount/session_state.h"

namespace cellar::mount {

// One FUSE file handle (OPEN/CREATE .. RELEASE).
struct OpenFile {
  std::shared_ptr<Inode> inode;
  UniqueFd fd;  // the arena file, opened with the request's access mode
  bool writer = false;
  bool passthrough = false;              // holds one reference on inode->backing_id
  int32_t record = SessionState::kNone;  // its HandleRecord
};

// One directory handle (OPENDIR .. RELEASEDIR).
struct OpenDir {
  std::shared_ptr<Inode> inode;  // null for the synthetic root
  std::mutex mu;
  UniqueFd fd;  // O_RDONLY|O_DIRECTORY, read with getdents64; guarded by mu
};

// Handles are table keys, never pointers handed to the kernel. Every table of a session
// draws from one counter that outlives the process (SessionState), so a successor never
// reuses a handle the kernel still holds.
template <typename T>
class HandleTable {
 public:
  explicit HandleTable(std::atomic<uint64_t>* next) : next_(next) {}
  uint64_t Add(std::shared_ptr<T> value) {
    uint64_t fh = next_->fetch_add(1, std::memory_order_relaxed);
    Insert(fh, std::move(value));
    return fh;
  }
  // Under a handle chosen elsewhere (a predecessor's).
  void Insert(uint64_t fh, std::shared_ptr<T> value) {
    Shard& shard = shards_[fh % kShards];
    std::lock_guard lock(shard.mu);
    shard.map[fh] = std::move(value);
  }
  std::shared_ptr<T> Get(uint64_t fh) const {
    Shard& shard = shards_[fh % kShards];
    std::lock_guard lock(shard.mu);
    auto it = shard.map.find(fh);
    return it == shard.map.end() ? nullptr : it->second;
  }
  std::shared_ptr<T> Take(uint64_t fh) {
    Shard& shard = shards_[fh % kShards];
    std::lock_guard lock(shard.mu);
    auto it = shard.map.find(fh);
    if (it == shard.map.end()) return nullptr;
    auto value = std::move(it->second);
    shard.map.erase(it);
    return value;
  }

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    std::unordered_map<uint64_t, std::shared_ptr<T>> map;  // guarded by mu
  };
  std::atomic<uint64_t>* const next_;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace cellar::mount
