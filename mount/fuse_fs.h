// FuseFs: the state every request handler (fuse_ops.h) works on: volumes, inodes, open
// handles, negotiated options, and the recovery of a taken-over connection. One FuseFs
// per mount; owned by FuseSession, shared by the serving threads.
//
// Lock order: FuseFs::volumes_mu_ -> InodeTable shard -> Inode::mu -> OpenDir::mu.
// Handlers never hold a lock while the session writes their reply.
#pragma once

#include <sys/stat.h>

#include <time.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "mount/fuse_channel.h"
#include "mount/fuse_kernel.h"
#include "mount/fuse_stats.h"
#include "mount/handle_table.h"
#include "mount/inode_table.h"
#include "mount/recovery.h"
#include "mount/session_state.h"

namespace cellar::mount {

struct FsOptions {
  bool passthrough = false;     // negotiated: regular files open in passthrough
  double entry_timeout = 1.0;   // seconds the kernel may cache a name
  double attr_timeout = 1.0;    // seconds the kernel may cache attributes
  size_t max_inode_fds = 8192;  // O_PATH fds held by the inode table (the rest by handle)
  FuseStats* stats = nullptr;   // counts opens by how they are served; may be null
};

// The FUSE files open on a volume (not its bytes or inodes: that is store::Store::Usage).
struct OpenFileCounts {
  uint64_t open_files = 0;
  uint64_t open_writers = 0;  // of which opened for writing
};

class FuseFs {
 public:
  // `state` mirrors what a successor needs (may be null: nothing survives the process).
  FuseFs(const FuseChannel* channel, FsOptions options, SessionState* state)
      : channel_(channel),
        options_(options),
        state_(state),
        next_fh_(state ? &state->header().next_fh : &own_next_fh_),
        inodes_(options.max_inode_fds, state),
        files_(next_fh_),
        dirs_(next_fh_),
        recovery_(state, inodes_, files_, dirs_) {}

  const FsOptions& options() const { return options_; }
  const FuseChannel& channel() const { return *channel_; }
  InodeTable& inodes() { return inodes_; }
  HandleTable<OpenFile>& files() { return files_; }
  HandleTable<OpenDir>& dirs() { return dirs_; }
  // Restoring a predecessor's node ids and handles after a takeover (recovery.h):
  // volume by volume, as AttachVolume brings each volume back.
  Recovery& recovery() { return recovery_; }

  // Volumes (the root directory's entries).
  Status AttachVolume(const std::string& id, uint32_t slot, const std::filesystem::path& arena);
  // Forgets the name and asks the kernel to drop its dentry; inodes and open files of
  // the volume keep working until released.
  Status DetachVolume(const std::string& id);
  // NotFound if the volume is not attached.
  Result<OpenFileCounts> OpenFiles(const std::string& id) const;
  std::shared_ptr<MountedVolume> FindVolume(const std::string& id) const;
  std::vector<std::string> VolumeNames() const;

  // The inode for a request's node id; nullptr means ESTALE.
  std::shared_ptr<Inode> Node(uint64_t nodeid) const { return inodes_.Get(nodeid); }

  // Looks `name` up under `parent` (or a volume under the root when parent is null) and
  // fills `out`, counting one kernel lookup. Returns 0 or an errno.
  int LookupChild(const Inode* parent, const char* name, fuse_entry_out* out);

  void FillAttr(uint64_t nodeid, const struct stat& st, fuse_attr* attr) const;
  void FillRootAttr(fuse_attr* attr) const;
  void SetAttrTimeout(uint64_t* sec, uint32_t* nsec) const {
    Split(options_.attr_timeout, sec, nsec);
  }
  void SetEntryTimeout(uint64_t* sec, uint32_t* nsec) const {
    Split(options_.entry_timeout, sec, nsec);
  }

  // Passthrough backing of an inode, reference-counted across its opens. Returns the
  // backing id, or -1 if the kernel refused (the open then falls back to daemon I/O).
  int32_t AcquireBacking(Inode& inode, int fd);
  void ReleaseBacking(Inode& inode);

  // Mirrors an open file into the session state (arena_flags: how its fd was opened).
  void RecordFile(uint64_t fh, OpenFile& file, int arena_flags);
  void ForgetFile(OpenFile& file);

 private:
  static void Split(double t, uint64_t* sec, uint32_t* nsec) {
    *sec = static_cast<uint64_t>(t);
    *nsec = static_cast<uint32_t>((t - static_cast<double>(*sec)) * 1e9);
  }

  void MirrorBacking(const Inode& inode);  // inode.mu held

  const FuseChannel* channel_;
  const FsOptions options_;
  SessionState* const state_;
  std::atomic<uint64_t> own_next_fh_{1};
  std::atomic<uint64_t>* const next_fh_;
  const struct timespec started_ = Now();
  InodeTable inodes_;
  HandleTable<OpenFile> files_;
  HandleTable<OpenDir> dirs_;

  mutable std::shared_mutex volumes_mu_;
  std::map<std::string, std::shared_ptr<MountedVolume>> volumes_;  // guarded by volumes_mu_

  Recovery recovery_;

  static struct timespec Now() {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts;
  }
};

}  // namespace cellar::mount
