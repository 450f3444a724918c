// FuseServer: Cellar's per-node FUSE mount. Every attached volume is a top-level
// directory of the mount whose tree is the volume's arena (a tmpfs the store mounted
// with size=<capacity>,inode32); the CSI layer bind-mounts VolumePath(id), never the
// arena, onto a pod's target path.
//
// Regular files are passed through to their arena file where the kernel offers FUSE
// passthrough (read, write and mmap never enter the daemon; mmap maps the arena's own
// pages); otherwise the daemon serves READ/WRITE with 1 MiB requests.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "mount/fuse_fs.h"
#include "mount/fuse_stats.h"

namespace cellar::mount {

struct FuseConfig {
  std::filesystem::path mountpoint;
  bool passthrough = true;  // false forces daemon I/O (--no-passthrough)
  int threads = 4;
  // Kernel cache lifetimes. The kernel itself invalidates nlink/ctime/size after link,
  // unlink, rename, write and truncate through this mount, which is the only writer of
  // the arenas; 0 makes every stat a round trip.
  double entry_timeout = 1.0;
  double attr_timeout = 1.0;
  // O_PATH fds the inode table may hold; inodes beyond are reopened by file handle for
  // each operation (slower, but the kernel may cache more inodes than we have fds).
  // 0: half the process's fd limit.
  size_t max_inode_fds = 0;
  // The fd holder's socket (see fd_holder.h); empty: none, and the connection dies
  // with this process.
  std::filesystem::path fd_holder;
  // Where the serving threads count requests and opens (fuse_stats.h); null: nowhere.
  // Owned by the caller, and must outlive the server.
  FuseStats* stats = nullptr;
};

class FuseSession;

class FuseServer {
 public:
  // Takes over the live connection of a predecessor if there is one: `inherited` (the
  // fds a predecessor handed over, see ExportFds) or else what the fd holder keeps for
  // this mountpoint, provided the fuse.cellar mount at the mountpoint is still that
  // connection. Requests on volumes wait until AttachVolume restores them; call
  // FinishRecovery once every volume is attached.
  //
  // Otherwise: opens /dev/fuse, cleans a stale mount at the mountpoint (dead ENOTCONN
  // mount left by a killed daemon, or an earlier fuse.cellar mount), mounts with
  // mount(2) (fuse.cellar, allow_other, default_permissions, max_read=1MiB), performs
  // INIT. Either way, starts the threads and gives the connection to the holder.
  // Errors: PermissionDenied without CAP_SYS_ADMIN, NotFound without /dev/fuse,
  // Unavailable if INIT fails.
  static Result<std::unique_ptr<FuseServer>> Start(FuseConfig config,
                                                   std::vector<UniqueFd> inherited = {});
  ~FuseServer();  // Stop()

  // Makes the arena at `arena_root` visible as <mountpoint>/<volume_id>. `slot`
  // (1..65535, stable across restarts) is the high half of the volume's node ids.
  // Idempotent for the same id, slot and arena. InvalidArgument for a bad id or slot,
  // AlreadyExists if the id or slot is taken otherwise, OutOfRange if the arena's inode
  // numbers exceed 32 bits (mount it with inode32), errno statuses from open(2).
  Status AttachVolume(const std::string& volume_id, uint32_t slot,
                      const std::filesystem::path& arena_root);
  // Removes the name and invalidates the kernel's entry; files already open keep
  // working. NotFound if not attached.
  Status DetachVolume(const std::string& volume_id);
  // Open FUSE files and open writers of the volume. NotFound if not attached.
  Result<OpenFileCounts> OpenFiles(const std::string& volume_id) const;

  // After a takeover: every volume that comes back has been attached.
  void FinishRecovery();
  bool resumed() const { return resumed_; }

  bool passthrough_active() const;
  std::filesystem::path VolumePath(const std::string& volume_id) const {
    return config_.mountpoint / volume_id;
  }
  const std::filesystem::path& mountpoint() const { return config_.mountpoint; }

  // Stops the serving threads; requests then wait in the kernel. Before ExportFds.
  void Pause();

  // The connection's files for a successor (main, state, clones); owned by the server,
  // valid until it is destroyed. Empty once stopped.
  std::vector<int> ExportFds() const;

  // Joins the threads and closes our files of the connection. With keep_connection,
  // leaves the mount alone: the holder (or a successor given ExportFds) keeps the
  // connection, and requests wait in the kernel for the next daemon. Without, unmounts
  // (lazily if busy) first, which fails further requests of lazily detached users with
  // ENOTCONN (passthrough files keep working: the kernel holds their backing files).
  // Idempotent.
  Status Stop(bool keep_connection = false);

 private:
  explicit FuseServer(FuseConfig config);
  static Result<std::unique_ptr<FuseSession>> TryResume(const FuseConfig& config,
                                                        std::vector<UniqueFd> fds);
  // Gives the connection to the holder, and again whenever the holder restarts.
  void StartHolderWatch();

  FuseConfig config_;
  std::unique_ptr<FuseSession> session_;
  bool resumed_ = false;
  std::mutex stop_mu_;
  bool stopped_ = false;  // guarded by stop_mu_
  std::condition_variable stop_cv_;
  std::thread holder_watch_;
};

}  // namespace cellar::mount
