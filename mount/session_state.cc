#include "mount/session_state.h"

#include <sys/mman.h>
#include <sys/stat.h>

#include <cstring>

#include "common/logging.h"

namespace cellar::mount {
namespace {

constexpr uint64_t kMagic = 0x31534e53524c4c43ULL;  // "CLLRSNS1"
constexpr uint32_t kVersion = 1;

constexpr size_t kHeaderSize = 4096;
constexpr size_t NodesOffset() {
  return kHeaderSize;
}
constexpr size_t HandlesOffset() {
  return NodesOffset() + sizeof(NodeRecord) * SessionState::kNodeCapacity;
}
constexpr size_t TotalSize() {
  return HandlesOffset() + sizeof(HandleRecord) * SessionState::kHandleCapacity;
}
static_assert(sizeof(StateHeader) <= kHeaderSize);

}  // namespace

SessionState::SessionState(UniqueFd fd, void* base, size_t size)
    : fd_(std::move(fd)), base_(base), size_(size) {
  auto* bytes = static_cast<char*>(base_);
  header_ = reinterpret_cast<StateHeader*>(bytes);
  nodes_ = reinterpret_cast<NodeRecord*>(bytes + NodesOffset());
  handles_ = reinterpret_cast<HandleRecord*>(bytes + HandlesOffset());
}

SessionState::~SessionState() {
  ::munmap(base_, size_);
}

Result<std::unique_ptr<SessionState>> SessionState::Create() {
  // Pages are allocated as records are first used; the size only reserves addresses.
  UniqueFd fd(::memfd_create("cellar-session-state", MFD_CLOEXEC));
  if (!fd) return ErrnoError("memfd_create");
  if (::ftruncate(fd.get(), static_cast<off_t>(TotalSize())) != 0) {
    return ErrnoError("ftruncate session state");
  }
  void* base = ::mmap(nullptr, TotalSize(), PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (base == MAP_FAILED) return ErrnoError("mmap session state");
  std::unique_ptr<SessionState> state(new SessionState(std::move(fd), base, TotalSize()));
  StateHeader& h = *state->header_;
  h.version = kVersion;
  h.node_capacity = kNodeCapacity;
  h.handle_capacity = kHandleCapacity;
  h.next_fh.store(1);
  h.magic = kMagic;
  return state;
}

Result<std::unique_ptr<SessionState>> SessionState::Adopt(UniqueFd memfd) {
  struct stat st {};
  if (::fstat(memfd.get(), &st) != 0) return ErrnoError("stat session state");
  if (static_cast<size_t>(st.st_size) != TotalSize()) {
    return InvalidArgument(
        fmt::format("session state has {} bytes, expected {}", st.st_size, TotalSize()));
  }
  void* base = ::mmap(nullptr, TotalSize(), PROT_READ | PROT_WRITE, MAP_SHARED, memfd.get(), 0);
  if (base == MAP_FAILED) return ErrnoError("mmap session state");
  std::unique_ptr<SessionState> state(new SessionState(std::move(memfd), base, TotalSize()));
  const StateHeader& h = *state->header_;
  if (h.magic != kMagic || h.version != kVersion || h.node_capacity != kNodeCapacity ||
      h.handle_capacity != kHandleCapacity) {
    return InvalidArgument(fmt::format("session state of another format (magic {:#x} version {})",
                                       h.magic, h.version));
  }
  state->RebuildFreeLists();
  return state;
}

void SessionState::RebuildFreeLists() {
  std::lock_guard lock(mu_);
  free_nodes_.clear();
  free_handles_.clear();
  uint32_t high = std::min(header_->node_high.load(), kNodeCapacity);
  for (uint32_t i = high; i-- > 0;) {
    if (nodes_[i].nodeid.load(std::memory_order_acquire) == 0) free_nodes_.push_back(i);
  }
  high = std::min(header_->handle_high.load(), kHandleCapacity);
  for (uint32_t i = high; i-- > 0;) {
    if (handles_[i].fh.load(std::memory_order_acquire) == 0) free_handles_.push_back(i);
  }
}

int32_t SessionState::Alloc(std::vector<int32_t>& free, std::atomic<uint32_t>& high,
                            uint32_t capacity, const char* what) {
  std::lock_guard lock(mu_);
  if (!free.empty()) {
    int32_t index = free.back();
    free.pop_back();
    return index;
  }
  if (high.load() < capacity) return static_cast<int32_t>(high.fetch_add(1));
  if (!warned_full_) {
    warned_full_ = true;
    spdlog::warn("session state full ({} {}): further ones will not survive a restart", capacity,
                 what);
  }
  return kNone;
}

int32_t SessionState::AllocNode() {
  int32_t index = Alloc(free_nodes_, header_->node_high, kNodeCapacity, "inodes");
  if (index != kNone) {
    NodeRecord& r = nodes_[index];
    r.mode = 0;
    r.backing_id = -1;
    r.nlookup = 0;
    r.backing_refs = 0;
    r.handle_type = 0;
    r.handle_size = 0;
  }
  return index;
}

void SessionState::FreeNode(int32_t index) {
  if (index == kNone) return;
  nodes_[index].nodeid.store(0, std::memory_order_release);
  std::lock_guard lock(mu_);
  free_nodes_.push_back(index);
}

int32_t SessionState::AllocHandle() {
  return Alloc(free_handles_, header_->handle_high, kHandleCapacity, "open files");
}

void SessionState::FreeHandle(int32_t index) {
  if (index == kNone) return;
  handles_[index].fh.store(0, std::memory_order_release);
  std::lock_guard lock(mu_);
  free_handles_.push_back(index);
}

std::vector<int32_t> SessionState::LiveNodes() const {
  std::vector<int32_t> live;
  uint32_t high = std::min(header_->node_high.load(), kNodeCapacity);
  for (uint32_t i = 0; i < high; ++i) {
    if (nodes_[i].nodeid.load(std::memory_order_acquire) != 0)
      live.push_back(static_cast<int32_t>(i));
  }
  return live;
}

std::vector<int32_t> SessionState::LiveHandles() const {
  std::vector<int32_t> live;
  uint32_t high = std::min(header_->handle_high.load(), kHandleCapacity);
  for (uint32_t i = 0; i < high; ++i) {
    if (handles_[i].fh.load(std::memory_order_acquire) != 0)
      live.push_back(static_cast<int32_t>(i));
  }
  return live;
}

}  // namespace cellar::mount
