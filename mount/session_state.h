// SessionState: what a FUSE session must remember for a successor process to take the
// live connection over: the negotiated protocol, the node ids the kernel holds (with
// their lookup counts, file handles and passthrough backing ids) and the open file and
// directory handles. It lives in a memfd that travels with the /dev/fuse files (to the
// fd holder, or to the next daemon at a hand-over), so it survives a SIGKILL exactly as
// long as the connection does, and updating it costs a memory store, not a syscall.
//
// Records are slab entries: a record is live while its key (node id, or fh) is non-zero;
// the key is written last on insert and cleared first on removal, so a crash at any
// point leaves either a complete record or a free one.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace cellar::mount {

struct NodeRecord {
  std::atomic<uint64_t> nodeid;  // 0: free
  uint32_t mode;                 // S_IFMT bits
  int32_t backing_id;
  uint64_t nlookup;
  uint32_t backing_refs;
  int32_t handle_type;
  uint32_t handle_size;  // 0: no handle, the node cannot be recovered
  unsigned char handle[28];
};
static_assert(sizeof(NodeRecord) == 64);

enum class HandleKind : uint8_t { kFile = 1, kDir = 2 };

struct HandleRecord {
  std::atomic<uint64_t> fh;  // 0: free
  uint64_t nodeid;
  uint32_t open_flags;
  HandleKind kind;
  uint8_t passthrough;
  uint8_t writer;
  uint8_t reserved[9];
};
static_assert(sizeof(HandleRecord) == 32);

struct StateHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t kernel_minor;
  uint64_t init_flags;     // what we answered FUSE_INIT with, less passthrough if unusable
  uint64_t offered_flags;  // what the kernel offered
  uint64_t mount_dev;      // st_dev of the FUSE mount: which connection this state is of
  std::atomic<uint64_t> next_fh;
  std::atomic<uint32_t> node_high;  // records [0, node_high) have been used
  std::atomic<uint32_t> handle_high;
  uint32_t node_capacity;
  uint32_t handle_capacity;
  uint64_t reserved[8];
};

class SessionState {
 public:
  static constexpr uint32_t kNodeCapacity = 1u << 20;    // 64 MiB of address space
  static constexpr uint32_t kHandleCapacity = 1u << 18;  // 8 MiB
  static constexpr int32_t kNone = -1;

  // A fresh, empty state in a new memfd.
  static Result<std::unique_ptr<SessionState>> Create();
  // The state a predecessor left in `memfd`. InvalidArgument if it is not one of ours.
  static Result<std::unique_ptr<SessionState>> Adopt(UniqueFd memfd);
  ~SessionState();

  int fd() const { return fd_.get(); }
  StateHeader& header() { return *header_; }

  // A free node record (zeroed, key still 0), or kNone when full.
  int32_t AllocNode();
  NodeRecord& node(int32_t index) { return nodes_[index]; }
  void FreeNode(int32_t index);

  int32_t AllocHandle();
  HandleRecord& handle(int32_t index) { return handles_[index]; }
  void FreeHandle(int32_t index);

  // Indices of the live records (after Adopt).
  std::vector<int32_t> LiveNodes() const;
  std::vector<int32_t> LiveHandles() const;

 private:
  SessionState(UniqueFd fd, void* base, size_t size);
  void RebuildFreeLists();
  // A free index of one slab: a recycled one, else the next never used, else kNone.
  int32_t Alloc(std::vector<int32_t>& free, std::atomic<uint32_t>& high, uint32_t capacity,
                const char* what);

  UniqueFd fd_;
  void* base_;
  size_t size_;
  StateHeader* header_;
  NodeRecord* nodes_;
  HandleRecord* handles_;

  std::mutex mu_;
  std::vector<int32_t> free_nodes_;    // guarded by mu_
  std::vector<int32_t> free_handles_;  // guarded by mu_
  bool warned_full_ = false;           // guarded by mu_
};

}  // namespace cellar::mount
