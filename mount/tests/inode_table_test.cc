// InodeTable: derived node ids, explicit lookup counts, misses instead of pointers.
#include "mount/inode_table.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include "tests/support/needs_root.h"

namespace cellar::mount {
namespace {

TEST(NodeIdTest, SlotIsTheHighHalf) {
  auto id = MakeNodeId(3, 42);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, (3ULL << 32) | 42);
  auto too_big = MakeNodeId(1, 1ULL << 32);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.status().err(), EOVERFLOW);
}

TEST(InodeTableTest, CountsLookupsAndErasesAtZero) {
  auto volume = std::make_shared<MountedVolume>();
  volume->slot = 5;
  InodeTable table(16);
  auto open_tmp = [] { return UniqueFd(::open("/tmp", O_PATH | O_CLOEXEC)); };
  struct stat st;
  ASSERT_EQ(::stat("/tmp", &st), 0);
  auto first = table.Remember(volume, open_tmp(), st);
  ASSERT_TRUE(first.ok());
  const uint64_t nodeid = (*first)->nodeid;
  EXPECT_EQ(nodeid, (5ULL << 32) | st.st_ino);
  auto second = table.Remember(volume, open_tmp(), st);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(first->get(), second->get());  // one entry per arena inode
  EXPECT_EQ((*first)->nlookup, 2u);
  EXPECT_EQ(table.size(), 1u);
  // A FORGET of a node never looked up (a kernel or successor bug) is logged and
  // changes nothing.
  table.Forget(12345, 1);
  EXPECT_EQ(table.Get(12345), nullptr);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ((*first)->nlookup, 2u);
  table.Forget(nodeid, 1);
  EXPECT_NE(table.Get(nodeid), nullptr);
  EXPECT_EQ((*first)->nlookup, 1u);
  table.Forget(nodeid, 1);
  EXPECT_EQ(table.Get(nodeid), nullptr);  // the handler answers ESTALE
  EXPECT_EQ(table.size(), 0u);
}

TEST(InodeTableTest, ForgetOfMoreThanWasLookedUpErasesOnce) {
  auto volume = std::make_shared<MountedVolume>();
  volume->slot = 2;
  InodeTable table(16);
  struct stat st;
  ASSERT_EQ(::stat("/tmp", &st), 0);
  auto inode = table.Remember(volume, UniqueFd(::open("/tmp", O_PATH | O_CLOEXEC)), st);
  ASSERT_TRUE(inode.ok());
  const uint64_t nodeid = (*inode)->nodeid;
  table.Forget(nodeid, 5);  // more than the one lookup: clamped, not wrapped around
  EXPECT_EQ((*inode)->nlookup, 0u);
  EXPECT_EQ(table.Get(nodeid), nullptr);
  EXPECT_EQ(table.size(), 0u);
  // A later lookup of the same inode starts a fresh entry with one lookup.
  auto again = table.Remember(volume, UniqueFd(::open("/tmp", O_PATH | O_CLOEXEC)), st);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->nlookup, 1u);
  EXPECT_EQ(table.size(), 1u);
}

TEST(InodeTableTest, BeyondTheFdBudgetInodesAreReopenedByHandle) {
  CELLAR_SKIP_UNLESS_ROOT("open_by_handle_at (CAP_DAC_READ_SEARCH)");
  // /dev/shm is a tmpfs, like an arena.
  auto volume = std::make_shared<MountedVolume>();
  volume->slot = 1;
  volume->mount_fd.Reset(::open("/dev/shm", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(volume->mount_fd.valid());
  std::string path = "/dev/shm/cellar-inode-table-test-" + std::to_string(::getpid());
  UniqueFd file(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600));
  ASSERT_TRUE(file.valid());
  struct stat st;
  ASSERT_EQ(::fstat(file.get(), &st), 0);
  InodeTable table(0);
  auto inode = table.Remember(volume, UniqueFd(::open(path.c_str(), O_PATH | O_CLOEXEC)), st);
  ASSERT_TRUE(inode.ok());
  EXPECT_FALSE((*inode)->fd.valid());
  EXPECT_GT((*inode)->handle.size, 0u);
  {
    InodeFd fd(**inode);
    ASSERT_TRUE(fd.ok()) << strerror(fd.error());
    struct stat again;
    ASSERT_EQ(::fstatat(fd.get(), "", &again, AT_EMPTY_PATH), 0);
    EXPECT_EQ(again.st_ino, st.st_ino);
  }
  ::unlink(path.c_str());
  file.Reset();
  InodeFd gone(**inode);
  EXPECT_FALSE(gone.ok());
  EXPECT_EQ(gone.error(), ESTALE);
}

}  // namespace
}  // namespace cellar::mount
