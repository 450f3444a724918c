// Recovery after a takeover, without a FUSE mount: the one open-by-handle function, and
// a successor's inode and file tables rebuilt from the state a predecessor left.
#include "mount/recovery.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "tests/support/needs_root.h"

namespace cellar::mount {
namespace {

// A file on /dev/shm (a tmpfs, like an arena) and a volume whose arena is /dev/shm.
class RecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CELLAR_SKIP_UNLESS_ROOT("open_by_handle_at (CAP_DAC_READ_SEARCH)");
    volume_ = std::make_shared<MountedVolume>();
    volume_->id = "vol-recovery";
    volume_->slot = 7;
    volume_->mount_fd.Reset(::open("/dev/shm", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_TRUE(volume_->mount_fd.valid());
    path_ = "/dev/shm/cellar-recovery-test-" + std::to_string(::getpid());
    file_.Reset(::open(path_.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
    ASSERT_TRUE(file_.valid());
    ASSERT_EQ(::fstat(file_.get(), &st_), 0);
  }
  void TearDown() override {
    if (!path_.empty()) ::unlink(path_.c_str());
  }

  // The inode as a table remembers it (with its file handle).
  std::shared_ptr<Inode> Remember(InodeTable& table) {
    auto inode = table.Remember(volume_, UniqueFd(::open(path_.c_str(), O_PATH | O_CLOEXEC)), st_);
    EXPECT_TRUE(inode.ok()) << inode.status().ToString();
    return inode.ok() ? *inode : nullptr;
  }

  // A predecessor that looked the file up `lookups` times and holds it open as handle
  // `fh`, recording both in `state`, then dies (the state, a memfd, stays). Its node id.
  uint64_t Predecessor(SessionState& state, int lookups, uint64_t fh, int open_flags) {
    InodeTable table(16, &state);
    std::shared_ptr<Inode> inode;
    for (int i = 0; i < lookups; ++i) inode = Remember(table);
    if (inode == nullptr) return 0;
    int32_t h = state.AllocHandle();
    EXPECT_NE(h, SessionState::kNone);
    HandleRecord& r = state.handle(h);
    r.nodeid = inode->nodeid;
    r.open_flags = static_cast<uint32_t>(open_flags);
    r.kind = HandleKind::kFile;
    r.writer = (open_flags & O_ACCMODE) != O_RDONLY;
    r.fh.store(fh);
    return inode->nodeid;
  }

  std::shared_ptr<MountedVolume> volume_;
  std::string path_;
  UniqueFd file_;
  struct stat st_ {};
};

std::unique_ptr<SessionState> NewState() {
  auto created = SessionState::Create();
  EXPECT_TRUE(created.ok()) << created.status().ToString();
  return created.ok() ? std::move(created).value() : nullptr;
}

// What a successor's FuseFs holds: tables filled only by recovery.
struct Successor {
  explicit Successor(SessionState* state)
      : inodes(16, state), files(&next_fh), dirs(&next_fh), recovery(state, inodes, files, dirs) {}
  std::atomic<uint64_t> next_fh{100};
  InodeTable inodes;
  HandleTable<OpenFile> files;
  HandleTable<OpenDir> dirs;
  Recovery recovery;
};

TEST_F(RecoveryTest, OpenByHandleReopensTheInodeUntilItIsGone) {
  InodeTable table(16);
  auto inode = Remember(table);
  ASSERT_NE(inode, nullptr);
  ASSERT_GT(inode->handle.size, 0u);

  auto fd = OpenByHandle(volume_->mount_fd.get(), inode->handle, O_RDONLY | O_CLOEXEC);
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  struct stat again;
  ASSERT_EQ(::fstat(fd->get(), &again), 0);
  EXPECT_EQ(again.st_ino, st_.st_ino);
  fd = UniqueFd();

  FileHandle empty;
  auto none = OpenByHandle(volume_->mount_fd.get(), empty, O_PATH | O_CLOEXEC);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().err(), EINVAL);

  // Unlinked and closed everywhere (the table holds an O_PATH fd: forget it too).
  table.Forget(inode->nodeid, 1);
  const FileHandle handle = inode->handle;
  inode.reset();
  ::unlink(path_.c_str());
  file_.Reset();
  auto gone = OpenByHandle(volume_->mount_fd.get(), handle, O_PATH | O_CLOEXEC);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.status().err(), ESTALE);
}

TEST_F(RecoveryTest, ASuccessorGetsBackTheNodesAndOpenFilesOfAnAttachedVolume) {
  auto state = NewState();
  ASSERT_NE(state, nullptr);
  const uint64_t nodeid = Predecessor(*state, 2, 42, O_RDWR | O_CLOEXEC);
  ASSERT_NE(nodeid, 0u);

  Successor next(state.get());
  next.recovery.Begin();
  EXPECT_TRUE(next.recovery.adopted());
  EXPECT_TRUE(next.recovery.active());
  EXPECT_EQ(next.inodes.Get(nodeid), nullptr);  // not before its volume is attached

  next.recovery.RestoreVolume(volume_);
  auto inode = next.inodes.Get(nodeid);
  ASSERT_NE(inode, nullptr);
  EXPECT_EQ(inode->nlookup, 2u);
  EXPECT_EQ(inode->type, static_cast<mode_t>(S_IFREG));
  auto file = next.files.Get(42);
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->inode, inode);
  EXPECT_TRUE(file->writer);
  EXPECT_EQ(::pwrite(file->fd.get(), "x", 1, 0), 1);  // reopened read-write
  EXPECT_EQ(volume_->open_files.load(), 1u);
  EXPECT_EQ(volume_->open_writers.load(), 1u);

  next.recovery.Finish();
  EXPECT_FALSE(next.recovery.active());
}

TEST_F(RecoveryTest, AnInodeGoneDuringTheTakeoverLosesItsRecords) {
  auto state = NewState();
  ASSERT_NE(state, nullptr);
  const uint64_t nodeid = Predecessor(*state, 1, 43, O_RDONLY | O_CLOEXEC);
  ASSERT_NE(nodeid, 0u);
  ::unlink(path_.c_str());
  file_.Reset();

  Successor next(state.get());
  next.recovery.Begin();
  next.recovery.RestoreVolume(volume_);
  EXPECT_EQ(next.inodes.Get(nodeid), nullptr);  // the kernel's node answers ESTALE
  EXPECT_EQ(next.files.Get(43), nullptr);       // its RELEASE is answered 0
  EXPECT_TRUE(state->LiveNodes().empty());
  EXPECT_TRUE(state->LiveHandles().empty());
  EXPECT_EQ(volume_->open_files.load(), 0u);
  next.recovery.Finish();
}

}  // namespace
}  // namespace cellar::mount
