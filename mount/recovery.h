// Recovery after a takeover. A daemon that takes a live FUSE connection over (from the
// fd holder, or from a predecessor at a hand-over; see FuseServer::Start) adopts the
// SessionState its predecessor kept, and must give back every node id and file handle
// the kernel still holds. Recovery does that volume by volume, as the node attaches each
// volume again: it reopens the predecessor's inodes by file handle into the inode
// table, and its open files into the file table; requests on a volume not yet restored
// wait for it (Await). Directory handles are not recorded: they are reopened on first
// use (ReopenDir). Requests the predecessor read but never answered are resent by the
// kernel (FuseSession::Start), and their handlers answer the success owed
// (Request::resent).
//
// Lock order: Recovery::mu_ -> (nothing: restoring takes the tables' locks unheld).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "mount/fuse_message.h"
#include "mount/handle_table.h"
#include "mount/inode_table.h"
#include "mount/session_state.h"

namespace cellar::mount {

// Opens the arena inode that `handle` names, with `flags` (open_by_handle_at; needs
// CAP_DAC_READ_SEARCH). `mount_fd` is any fd on the arena's filesystem. The one way an
// inode is reached without a name: an inode beyond the fd budget (InodeFd) and a
// predecessor's node record (Recovery) both come through here. The error carries the
// errno: ESTALE if the inode no longer exists, EPERM without the capability, EINVAL for
// an empty or foreign handle.
Result<UniqueFd> OpenByHandle(int mount_fd, const FileHandle& handle, int flags);

class Recovery {
 public:
  // All four outlive the Recovery (members of the same FuseFs); `state` may be null
  // when nothing survives the process, and then Begin must not be called.
  Recovery(SessionState* state, InodeTable& inodes, HandleTable<OpenFile>& files,
           HandleTable<OpenDir>& dirs)
      : state_(state), inodes_(inodes), files_(files), dirs_(dirs) {}

  // Sorts the adopted state's live records by volume slot; from now on requests on a
  // slot wait until RestoreVolume has run for it. Before serving starts.
  void Begin();
  // Whether requests may still have to wait (between Begin and Finish).
  bool active() const { return active_.load(std::memory_order_acquire); }
  // Restores the records of `volume`'s slot, if any are pending: node records whose
  // inode is gone are dropped (the kernel's node then answers ESTALE), and so are open
  // files that cannot be reopened (their RELEASE is then answered 0). Wakes the
  // requests waiting on the slot.
  void RestoreVolume(const std::shared_ptr<MountedVolume>& volume);
  // Every volume that will come back has been attached: the records of the others are
  // given up, and nobody waits any more.
  void Finish();
  // Blocks a request on a node of a volume still being restored (at most 30 s); a
  // request on the root waits for every volume.
  void Await(const Request& req);

  // This connection was taken over (Begin was called): handles unknown to the tables
  // may be a predecessor's.
  bool adopted() const { return adopted_; }
  // A predecessor's directory handle `fh` on `nodeid` (it had no record): reopened and
  // entered in the directory table under fh. nullptr if the node is gone or no
  // directory.
  std::shared_ptr<OpenDir> ReopenDir(uint64_t nodeid, uint64_t fh);

 private:
  struct SlotRecords {
    std::vector<int32_t> nodes;
    std::vector<int32_t> handles;
  };
  // One node record back into the inode table; NotFound (with its errno) if the inode
  // is gone, and the record is freed.
  Status RestoreNode(const std::shared_ptr<MountedVolume>& volume, int32_t record);
  // One open-file record back into the file table; false (record freed) if its inode
  // cannot be reopened.
  bool RestoreFile(MountedVolume& volume, int32_t record);

  SessionState* const state_;
  InodeTable& inodes_;
  HandleTable<OpenFile>& files_;
  HandleTable<OpenDir>& dirs_;

  bool adopted_ = false;  // set before serving starts
  std::atomic<bool> active_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  // The adopted records not yet restored, by volume slot; a slot is pending while it
  // has an entry. Guarded by mu_.
  std::map<uint32_t, SlotRecords> pending_slots_;
};

}  // namespace cellar::mount
