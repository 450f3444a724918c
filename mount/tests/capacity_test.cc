// A volume's capacity is a hard limit in both I/O modes (the arena's size= enforces it
// for passthrough writes the daemon never sees), and no other volume is affected.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "mount/tests/fuse_fixture.h"

namespace cellar::mount::testing {
namespace {

using CapacityTest = FuseFixture;

uint64_t FreeBytes(const std::filesystem::path& p) {
  struct statvfs st {};
  EXPECT_EQ(::statvfs(p.c_str(), &st), 0);
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

TEST_P(CapacityTest, WriteTruncateFallocateFailWithEnospc) {
  const uint64_t b_free = FreeBytes(vol_b_);
  int fd = ::open((vol_a_ / "big").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  std::string chunk(1 << 20, 'x');
  int err = 0;
  uint64_t written = 0;
  for (int i = 0; i < 100; ++i) {  // 100 MiB into a 64 MiB volume
    ssize_t n = ::write(fd, chunk.data(), chunk.size());
    if (n < 0) {
      err = errno;
      break;
    }
    written += static_cast<uint64_t>(n);
  }
  EXPECT_EQ(err, ENOSPC);
  EXPECT_LE(written, ArenaSize());
  EXPECT_GT(written, ArenaSize() / 2);

  // The other volume is untouched and still has all its room.
  EXPECT_EQ(FreeBytes(vol_b_), b_free);
  int other = ::open((vol_b_ / "f").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(other, 0);
  for (int i = 0; i < 32; ++i) ASSERT_EQ(::write(other, chunk.data(), chunk.size()), 1 << 20);
  ::close(other);

  // A size alone uses no memory: as on tmpfs, sizes beyond the capacity make a sparse
  // file, and shrinking a file of a full volume works. Blocks are what is refused.
  EXPECT_EQ(::ftruncate(fd, 1 << 20), 0);
  ASSERT_EQ(::ftruncate(fd, 0), 0);
  EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(2 * ArenaSize())), 0);
  EXPECT_EQ(::truncate((vol_a_ / "big").c_str(), static_cast<off_t>(2 * ArenaSize())), 0);
  ASSERT_EQ(::ftruncate(fd, 0), 0);
  errno = 0;
  EXPECT_EQ(::fallocate(fd, 0, 0, static_cast<off_t>(2 * ArenaSize())), -1);
  EXPECT_EQ(errno, ENOSPC);
  // Within the capacity all three work again (the space was freed by the truncate).
  EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(ArenaSize() / 2)), 0);
  EXPECT_EQ(::fallocate(fd, 0, 0, static_cast<off_t>(ArenaSize() / 4)), 0);
  EXPECT_EQ(::pwrite(fd, chunk.data(), chunk.size(), 0), 1 << 20);
  ::close(fd);
}

TEST_P(CapacityTest, MmapWritesStayWithinTheArena) {
  // A file made sparse up to the capacity can be filled through a mapping; the pages
  // are the arena's, so the volume's free space shrinks accordingly.
  const size_t size = 16 << 20;
  int fd = ::open((vol_a_ / "m").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, size), 0);
  const uint64_t before = FreeBytes(vol_a_);
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ASSERT_NE(p, MAP_FAILED);
  std::memset(p, 7, size);
  ASSERT_EQ(::msync(p, size, MS_SYNC), 0);
  ::munmap(p, size);
  ::close(fd);
  EXPECT_LE(FreeBytes(vol_a_), before - size);
  EXPECT_EQ(ReadFile(arena_a_->dir() / "m"), std::string(size, 7));
}

INSTANTIATE_TEST_SUITE_P(Modes, CapacityTest, ::testing::Bool(), ModeName);

}  // namespace
}  // namespace cellar::mount::testing
