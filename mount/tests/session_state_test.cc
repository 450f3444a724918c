// The state a successor adopts after a takeover: what was live comes back exactly, what was
// half-written (key not yet set) is free, and a memfd that is not ours is refused.
#include "mount/session_state.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace cellar::mount {
namespace {

std::unique_ptr<SessionState> Fresh() {
  Result<std::unique_ptr<SessionState>> s = SessionState::Create();
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

// What the fd holder or a predecessor passes on: another descriptor of the same memfd.
UniqueFd Dup(int fd) {
  return UniqueFd(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
}

std::unique_ptr<SessionState> AdoptOf(const SessionState& s) {
  Result<std::unique_ptr<SessionState>> adopted = SessionState::Adopt(Dup(s.fd()));
  EXPECT_TRUE(adopted.ok()) << adopted.status().ToString();
  return std::move(adopted).value();
}

TEST(SessionStateTest, LiveRecordsSurviveAdoption) {
  auto state = Fresh();
  state->header().kernel_minor = 45;
  state->header().init_flags = 0xabcd;
  int32_t n = state->AllocNode();
  ASSERT_NE(n, SessionState::kNone);
  NodeRecord& node = state->node(n);
  node.mode = 0100000;
  node.backing_id = 7;
  node.nlookup = 3;
  node.backing_refs = 2;
  node.handle_type = 1;
  node.handle_size = 8;
  std::memcpy(node.handle, "handle!!", 8);
  node.nodeid.store(42);  // the key last, as the FUSE layer does
  int32_t h = state->AllocHandle();
  ASSERT_NE(h, SessionState::kNone);
  HandleRecord& handle = state->handle(h);
  handle.nodeid = 42;
  handle.open_flags = O_RDWR;
  handle.kind = HandleKind::kFile;
  handle.passthrough = 1;
  handle.writer = 1;
  handle.fh.store(state->header().next_fh.fetch_add(1));

  auto successor = AdoptOf(*state);
  EXPECT_EQ(successor->header().kernel_minor, 45u);
  EXPECT_EQ(successor->header().init_flags, 0xabcdu);
  ASSERT_EQ(successor->LiveNodes(), std::vector<int32_t>{n});
  const NodeRecord& got = successor->node(n);
  EXPECT_EQ(got.nodeid.load(), 42u);
  EXPECT_EQ(got.mode, 0100000u);
  EXPECT_EQ(got.backing_id, 7);
  EXPECT_EQ(got.nlookup, 3u);
  EXPECT_EQ(got.backing_refs, 2u);
  EXPECT_EQ(std::memcmp(got.handle, "handle!!", 8), 0);
  ASSERT_EQ(successor->LiveHandles(), std::vector<int32_t>{h});
  EXPECT_EQ(successor->handle(h).nodeid, 42u);
  EXPECT_EQ(successor->handle(h).fh.load(), 1u);
  EXPECT_EQ(successor->handle(h).kind, HandleKind::kFile);
  // File handles keep counting where the predecessor stopped: no fh is ever reused.
  EXPECT_EQ(successor->header().next_fh.load(), 2u);
}

TEST(SessionStateTest, BothViewsShareOneMemory) {
  // Updates cost a memory store: the predecessor's writes are in the successor's view at once.
  auto state = Fresh();
  auto successor = AdoptOf(*state);
  int32_t n = state->AllocNode();
  state->node(n).nlookup = 9;
  state->node(n).nodeid.store(5);
  EXPECT_EQ(successor->LiveNodes(), std::vector<int32_t>{n});
  EXPECT_EQ(successor->node(n).nlookup, 9u);
}

TEST(SessionStateTest, HalfWrittenRecordsAreFreeAfterAdoption) {
  auto state = Fresh();
  int32_t published = state->AllocNode();
  state->node(published).nodeid.store(10);
  // A crash between AllocNode and storing the key: the record must come back free.
  int32_t torn = state->AllocNode();
  state->node(torn).nlookup = 1;
  int32_t freed = state->AllocNode();
  state->node(freed).nodeid.store(11);
  state->FreeNode(freed);

  auto successor = AdoptOf(*state);
  EXPECT_EQ(successor->LiveNodes(), std::vector<int32_t>{published});
  // The successor reuses the free records before touching new ones.
  std::vector<int32_t> next = {successor->AllocNode(), successor->AllocNode()};
  std::sort(next.begin(), next.end());
  EXPECT_EQ(next, (std::vector<int32_t>{torn, freed}));
  EXPECT_EQ(successor->AllocNode(), 3);
  // A fresh record starts clean whatever its previous life.
  EXPECT_EQ(successor->node(torn).nlookup, 0u);
  EXPECT_EQ(successor->node(torn).backing_id, -1);
}

TEST(SessionStateTest, FullSlabSaysNoneAndRecovers) {
  auto state = Fresh();
  for (uint32_t i = 0; i < SessionState::kHandleCapacity; ++i) {
    ASSERT_NE(state->AllocHandle(), SessionState::kNone) << i;
  }
  // Full: the handle still works for the kernel, it just would not survive a restart.
  EXPECT_EQ(state->AllocHandle(), SessionState::kNone);
  state->FreeHandle(1234);
  EXPECT_EQ(state->AllocHandle(), 1234);
  state->FreeHandle(SessionState::kNone);  // a no-op, as for handles never recorded
  EXPECT_EQ(state->AllocHandle(), SessionState::kNone);
}

TEST(SessionStateTest, RefusesWhatIsNotOurs) {
  UniqueFd other(::memfd_create("not-a-session", MFD_CLOEXEC));
  ASSERT_TRUE(other);
  ASSERT_EQ(::ftruncate(other.get(), 4096), 0);
  Result<std::unique_ptr<SessionState>> wrong_size = SessionState::Adopt(std::move(other));
  EXPECT_EQ(wrong_size.status().code(), Code::kInvalidArgument);

  // The right size but no magic: e.g. a memfd of a different version of Cellar's layout.
  auto state = Fresh();
  state->header().magic = 0;
  Result<std::unique_ptr<SessionState>> no_magic = SessionState::Adopt(Dup(state->fd()));
  EXPECT_EQ(no_magic.status().code(), Code::kInvalidArgument);
  EXPECT_NE(no_magic.status().message().find("another format"), std::string::npos);

  UniqueFd closed;
  EXPECT_FALSE(SessionState::Adopt(std::move(closed)).ok());
}

}  // namespace
}  // namespace cellar::mount
