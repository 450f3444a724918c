// FuseFs: the state every request handler works on (volumes, inodes, open handles,
// negotiated options) and the Request/Reply shapes the handlers see. One FuseFs per
// mount; owned by FuseServer, shared by the serving threads.
//
// Lock order: FuseFs::volumes_mu_ -> InodeTable shard -> Inode::mu -> OpenDir::mu.
// Handlers never hold a lock while the session writes their reply.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "mount/fuse_channel.h"
#include "mount/fuse_kernel.h"
#include "mount/fuse_stats.h"
#include "mount/inode_table.h"
#include "mount/session_state.h"

namespace cellar::mount {

struct FsOptions {
  bool passthrough = false;     // negotiated: regular files open in passthrough
  double entry_timeout = 1.0;   // seconds the kernel may cache a name
  double attr_timeout = 1.0;    // seconds the kernel may cache attributes
  size_t max_inode_fds = 8192;  // O_PATH fds held by the inode table (the rest by handle)
  FuseStats* stats = nullptr;   // counts opens by how they are served; may be null
};

// One FUSE file handle (OPEN/CREATE .. RELEASE).
struct OpenFile {
  std::shared_ptr<Inode> inode;
  UniqueFd fd;               // the arena file, opened with the request's access mode
  bool writer = false;
  bool passthrough = false;  // holds one reference on inode->backing_id
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

// A request as read from the device.
struct Request {
  const fuse_in_header* in;
  const char* arg;  // the opcode's argument(s), arg_size bytes
  size_t arg_size;
  const char* ext = nullptr;  // request extensions (fuse_ext_header...), ext_size bytes
  size_t ext_size = 0;

  // The supplementary groups the kernel sent with a create-type request (at most a
  // few; see kernel::kCreateSuppGroup). Empty when none.
  std::vector<uint32_t> SuppGroups() const;

  // Sent again by the kernel after a takeover: a predecessor may have carried it out
  // and died before answering, so its handler answers the success the caller was owed.
  bool resent() const { return (in->unique & kernel::kUniqueResend) != 0; }

  template <typename T>
  const T* Arg() const {
    return arg_size >= sizeof(T) ? reinterpret_cast<const T*>(arg) : nullptr;
  }
  // The NUL-terminated string that starts `offset` bytes into arg, or nullptr.
  const char* String(size_t offset) const {
    if (offset >= arg_size || std::memchr(arg + offset, 0, arg_size - offset) == nullptr) {
      return nullptr;
    }
    return arg + offset;
  }
};

// What a handler answers: a small fixed part (copied) and optionally bulk data that
// lives in the serving thread's buffer (READ, READDIR, READLINK, xattrs).
class Reply {
 public:
  Reply(char* buffer, size_t capacity) : buffer_(buffer), capacity_(capacity) {}

  template <typename T>
  void Set(const T& value) {
    static_assert(sizeof(T) <= kSmall);
    std::memcpy(small_, &value, sizeof(T));
    small_size_ = sizeof(T);
  }
  void SetTwo(const void* a, size_t a_size, const void* b, size_t b_size) {
    std::memcpy(small_, a, a_size);
    std::memcpy(small_ + a_size, b, b_size);
    small_size_ = a_size + b_size;
  }
  char* buffer() { return buffer_; }
  size_t capacity() const { return capacity_; }
  void SetData(size_t size) { data_size_ = size; }

  int Iov(iovec* iov) const {
    iov[0] = {const_cast<char*>(small_), small_size_};
    iov[1] = {buffer_, data_size_};
    return 2;
  }

 private:
  static constexpr size_t kSmall = 256;
  char small_[kSmall];
  size_t small_size_ = 0;
  char* buffer_;
  size_t capacity_;
  size_t data_size_ = 0;
};

// Returned by handlers of requests the kernel expects no answer to (FORGET).
inline constexpr int kNoReply = -1;

struct VolumeUsage {
  uint64_t open_files = 0;
  uint64_t open_writers = 0;
};

class FuseFs {
 public:
  // `state` mirrors what a successor needs (may be null: nothing survives the process).
  FuseFs(const FuseChannel* channel, FsOptions options, SessionState* state)
      : channel_(channel), options_(options), state_(state),
        next_fh_(state ? &state->header().next_fh : &own_next_fh_),
        inodes_(options.max_inode_fds, state), files_(next_fh_), dirs_(next_fh_) {}

  const FsOptions& options() const { return options_; }
  const FuseChannel& channel() const { return *channel_; }
  InodeTable& inodes() { return inodes_; }
  HandleTable<OpenFile>& files() { return files_; }
  HandleTable<OpenDir>& dirs() { return dirs_; }

  // Volumes (the root directory's entries).
  Status AttachVolume(const std::string& id, uint32_t slot, const std::filesystem::path& arena);
  // Forgets the name and asks the kernel to drop its dentry; inodes and open files of
  // the volume keep working until released.
  Status DetachVolume(const std::string& id);
  Result<VolumeUsage> Usage(const std::string& id) const;
  std::shared_ptr<Volume> FindVolume(const std::string& id) const;
  std::vector<std::string> VolumeNames() const;

  // The inode for a request's node id; nullptr means ESTALE.
  std::shared_ptr<Inode> Node(uint64_t nodeid) const { return inodes_.Get(nodeid); }

  // Looks `name` up under `parent` (or a volume under the root when parent is null) and
  // fills `out`, counting one kernel lookup. Returns 0 or an errno.
  int LookupChild(const Inode* parent, const char* name, fuse_entry_out* out);

  void FillAttr(uint64_t nodeid, const struct stat& st, fuse_attr* attr) const;
  void FillRootAttr(fuse_attr* attr) const;
  void SetAttrTimeout(uint64_t* sec, uint32_t* nsec) const { Split(options_.attr_timeout, sec, nsec); }
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

  // Taking over a predecessor's connection: the node ids and handles in the adopted
  // state are restored volume by volume as AttachVolume brings each volume back;
  // requests on a volume not yet restored wait for it (AwaitRecovery).
  void BeginRecovery();
  // Every volume that will come back has been attached: stop waiting for the others.
  void FinishRecovery();
  // Blocks a request on a node of a volume still being restored (at most 30 s).
  void AwaitRecovery(const Request& req);
  bool adopted() const { return adopted_; }
  // A directory handle of the predecessor that had no record: reopened on first use.
  std::shared_ptr<OpenDir> ReopenDir(uint64_t nodeid, uint64_t fh);

 private:
  static void Split(double t, uint64_t* sec, uint32_t* nsec) {
    *sec = static_cast<uint64_t>(t);
    *nsec = static_cast<uint32_t>((t - static_cast<double>(*sec)) * 1e9);
  }

  void RestoreVolume(const std::shared_ptr<Volume>& volume);
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
  std::map<std::string, std::shared_ptr<Volume>> volumes_;  // guarded by volumes_mu_

  bool adopted_ = false;  // set before serving starts
  std::atomic<bool> recovering_{false};
  std::mutex recovery_mu_;
  std::condition_variable recovery_cv_;
  // The adopted records not yet restored, by volume slot; a slot is pending while it
  // has an entry. Guarded by recovery_mu_.
  struct SlotRecords {
    std::vector<int32_t> nodes;
    std::vector<int32_t> handles;
  };
  std::map<uint32_t, SlotRecords> pending_slots_;

  static struct timespec Now() {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts;
  }
};

// Request handlers, by area. Each returns 0 (reply with what it set), an errno, or
// kNoReply. ops_entries.cc:
int DoLookup(FuseFs& fs, const Request& req, Reply& reply);
int DoForget(FuseFs& fs, const Request& req, Reply& reply);
int DoBatchForget(FuseFs& fs, const Request& req, Reply& reply);
int DoMknod(FuseFs& fs, const Request& req, Reply& reply);
int DoMkdir(FuseFs& fs, const Request& req, Reply& reply);
int DoSymlink(FuseFs& fs, const Request& req, Reply& reply);
int DoLink(FuseFs& fs, const Request& req, Reply& reply);
int DoUnlink(FuseFs& fs, const Request& req, Reply& reply);
int DoRmdir(FuseFs& fs, const Request& req, Reply& reply);
int DoRename(FuseFs& fs, const Request& req, Reply& reply);
int DoRename2(FuseFs& fs, const Request& req, Reply& reply);
int DoReadlink(FuseFs& fs, const Request& req, Reply& reply);
// ops_dirs.cc:
int DoOpendir(FuseFs& fs, const Request& req, Reply& reply);
int DoReaddir(FuseFs& fs, const Request& req, Reply& reply);
int DoReaddirplus(FuseFs& fs, const Request& req, Reply& reply);
int DoReleasedir(FuseFs& fs, const Request& req, Reply& reply);
int DoFsyncdir(FuseFs& fs, const Request& req, Reply& reply);
// ops_files.cc:
int DoCreate(FuseFs& fs, const Request& req, Reply& reply);
int DoOpen(FuseFs& fs, const Request& req, Reply& reply);
int DoRead(FuseFs& fs, const Request& req, Reply& reply);
int DoWrite(FuseFs& fs, const Request& req, Reply& reply);
int DoFsync(FuseFs& fs, const Request& req, Reply& reply);
int DoRelease(FuseFs& fs, const Request& req, Reply& reply);
int DoFallocate(FuseFs& fs, const Request& req, Reply& reply);
int DoLseek(FuseFs& fs, const Request& req, Reply& reply);
// ops_attrs.cc:
int DoGetattr(FuseFs& fs, const Request& req, Reply& reply);
int DoSetattr(FuseFs& fs, const Request& req, Reply& reply);
int DoStatfs(FuseFs& fs, const Request& req, Reply& reply);
int DoSetxattr(FuseFs& fs, const Request& req, Reply& reply);
int DoGetxattr(FuseFs& fs, const Request& req, Reply& reply);
int DoListxattr(FuseFs& fs, const Request& req, Reply& reply);
int DoRemovexattr(FuseFs& fs, const Request& req, Reply& reply);

// Runs a block with the requester's fsuid/fsgid, so that new inodes get its ownership
// and the kernel applies setgid-directory rules exactly as on a local filesystem.
// Per thread: Linux credentials are per task, and setfsuid(2) is not broadcast.
class ScopedFsCreds {
 public:
  ScopedFsCreds(uint32_t uid, uint32_t gid, const std::vector<uint32_t>& groups = {});
  ~ScopedFsCreds();
  ScopedFsCreds(const ScopedFsCreds&) = delete;
  ScopedFsCreds& operator=(const ScopedFsCreds&) = delete;
};

// Clears the setuid/setgid bits of the arena file at `path` the way tmpfs does when
// the request's caller modifies it without CAP_FSETID (the kernel's
// setattr_should_drop_suidgid): S_ISUID always; S_ISGID when the file is
// group-executable, or when the caller is not in the file's group. The kernel asks for
// this with HANDLE_KILLPRIV_V2 flags after checking the caller lacks CAP_FSETID; where
// it did not check (chown), `root_is_capable` keeps a uid-0 caller's group exemption.
// Returns 0 or an errno.
int KillSuidGid(const std::string& path, const Request& req, bool root_is_capable);

// "/proc/self/fd/N": how an O_PATH inode fd is reopened or passed to path-only calls.
std::string ProcFdPath(int fd);

}  // namespace cellar::mount
