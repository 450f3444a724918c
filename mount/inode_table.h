// Volumes and inodes as the FUSE layer knows them.
//
// A node id is derived, not allocated: (volume slot << 32) | arena inode number. The
// store keeps slots stable across restarts and the arena's tmpfs is mounted with
// `inode32`, so a restarted daemon that takes over a live connection can rebuild any
// node id the kernel still holds (re-open it by handle: the FUSE generation is the tmpfs
// inode's i_generation, as name_to_handle_at reports it). Node id 1 is the synthetic
// root that lists volumes; slot 0 is never used, so no arena inode collides with it.
//
// Lock order: InodeTable shard lock -> Inode::mu. No lock is held while replying.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/status.h"
#include "common/unique_fd.h"
#include "mount/session_state.h"

namespace cellar::mount {

inline constexpr uint64_t kRootNodeId = 1;

// A store volume as this mount serves it: the arena under <mountpoint>/<id>, and the
// FUSE files open on it. (store::Volume is the store's record of the same volume.)
struct MountedVolume {
  std::string id;
  uint32_t slot = 0;
  std::filesystem::path arena_root;
  UniqueFd root_fd;                     // O_PATH of the arena root
  UniqueFd mount_fd;                    // O_RDONLY of the arena root: open_by_handle_at's mount fd
  dev_t dev = 0;                        // the arena's st_dev: every inode of this volume has it
  std::atomic<uint64_t> open_files{0};  // FUSE file handles open on the volume
  std::atomic<uint64_t> open_writers{0};  // of which opened for writing
};

// Node id for arena inode `ino` of the volume in `slot`; EOVERFLOW if ino needs > 32 bits.
Result<uint64_t> MakeNodeId(uint32_t slot, ino_t ino);

// A tmpfs file handle (name_to_handle_at): generation and inode number, enough to reopen
// the inode without a name, now or after a restart.
struct FileHandle {
  int type = 0;
  uint32_t size = 0;  // 0: the filesystem gave none
  unsigned char bytes[32] = {};
};

struct Inode {
  Inode(uint64_t nodeid, uint64_t generation, mode_t type, std::shared_ptr<MountedVolume> volume,
        UniqueFd fd, FileHandle handle)
      : nodeid(nodeid),
        generation(generation),
        type(type),
        volume(std::move(volume)),
        handle(handle),
        fd(std::move(fd)) {}

  const uint64_t nodeid;
  const uint64_t generation;
  const mode_t type;  // S_IFMT bits; an arena inode never changes type
  const std::shared_ptr<MountedVolume> volume;
  const FileHandle handle;
  // O_PATH|O_NOFOLLOW of the arena inode, held while the table is within its fd budget
  // (the process's fd limit is finite, the kernel's inode cache is not); otherwise
  // invalid, and each operation reopens the inode by handle (InodeFd).
  const UniqueFd fd;

  // Kernel lookup count; guarded by the owning InodeTable shard's lock.
  uint64_t nlookup = 0;
  // This inode's record in the SessionState (kNone if it has none); set under the
  // shard lock when the inode is inserted. nlookup and backing are mirrored there.
  int32_t record = SessionState::kNone;

  // Passthrough backing, shared by every open of this inode (the kernel insists on one
  // backing file per inode). Guarded by mu.
  std::mutex mu;
  int32_t backing_id = -1;
  uint32_t backing_refs = 0;
};

// "/proc/self/fd/N": how an O_PATH inode fd is reopened or passed to path-only calls.
std::string ProcFdPath(int fd);

// The fd one operation uses on an inode: the held one, or one reopened by handle.
class InodeFd {
 public:
  explicit InodeFd(const Inode& inode);
  bool ok() const { return fd_ >= 0; }
  int error() const { return err_; }  // ESTALE if the arena inode is gone
  int get() const { return fd_; }

 private:
  UniqueFd owned_;
  int fd_ = -1;
  int err_ = 0;
};

class InodeTable {
 public:
  // Holds at most max_fds O_PATH fds; inodes beyond are reached by handle. Every
  // inode the kernel holds is mirrored in `state` (may be null: nothing survives).
  explicit InodeTable(size_t max_fds, SessionState* state = nullptr)
      : max_fds_(max_fds), state_(state) {}

  // The inode known under nodeid, or nullptr (the caller answers ESTALE).
  std::shared_ptr<Inode> Get(uint64_t nodeid) const;

  // Counts one more kernel lookup of the arena inode that `fd` (O_PATH) refers to,
  // inserting it if new (fd is then kept; otherwise closed). `st` is fd's stat.
  // EOVERFLOW for inode numbers above 32 bits.
  Result<std::shared_ptr<Inode>> Remember(const std::shared_ptr<MountedVolume>& volume, UniqueFd fd,
                                          const struct stat& st);

  // Drops `count` lookups; erases the inode at zero. A count larger than held is a
  // kernel/daemon disagreement: logged, and the inode is erased.
  void Forget(uint64_t nodeid, uint64_t count);

  // Re-creates the inode of a predecessor's node record (taking a live connection
  // over; see recovery.h), with the record's lookup count and passthrough backing.
  // `fd` is the arena inode Recovery reopened by `handle` (O_PATH), `type` its S_IFMT
  // bits. A second record of the same node id (a crash between two writes) is merged
  // into the first and freed.
  void Restore(const std::shared_ptr<MountedVolume>& volume, int32_t record, UniqueFd fd,
               mode_t type, const FileHandle& handle);

  size_t size() const;

 private:
  static constexpr size_t kShards = 64;
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<uint64_t, std::shared_ptr<Inode>> inodes;  // guarded by mu
  };
  Shard& ShardOf(uint64_t nodeid) const { return shards_[(nodeid ^ (nodeid >> 32)) % kShards]; }

  mutable std::array<Shard, kShards> shards_;
  // Takes a held-fd slot for `fd` if within budget; otherwise closes it (the inode is
  // then reached by handle). An inode without a handle keeps its fd regardless.
  void BudgetFd(UniqueFd& fd, const FileHandle& handle);
  // Writes a new inode's record (shard lock held).
  void Record(Inode& inode);

  const size_t max_fds_;
  SessionState* const state_;
  std::atomic<size_t> held_fds_{0};
};

}  // namespace cellar::mount
