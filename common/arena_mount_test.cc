// Arenas on a real tmpfs: the options the FUSE layer relies on, and a capacity that
// holds to the byte for small files and large writes alike.
#include "common/arena_mount.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "tests/support/mount_options.h"

namespace cellar {
namespace {

namespace fs = std::filesystem;

using ::cellar::testing::SuperOptions;

uint64_t UsedBytes(const fs::path& path) {
  struct statfs s {};
  EXPECT_EQ(::statfs(path.c_str(), &s), 0);
  return (s.f_blocks - s.f_bfree) * s.f_bsize;
}

class ArenaMountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "mounting tmpfs needs root";
    char tmpl[] = "/tmp/cellar-arena-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (dir_.empty()) return;
    ::umount2(dir_.c_str(), MNT_DETACH);
    fs::remove_all(dir_);
  }
  fs::path dir_;
};

TEST(ArenaMountData, NamesSizeModeAndInode32) {
  EXPECT_EQ(ArenaMountData(1 << 20), "size=1048576,mode=0755,inode32");
  EXPECT_EQ(ArenaMountData(1 << 20, ArenaPages::kHugeWithinSize),
            "size=1048576,mode=0755,inode32,huge=within_size");
}

TEST(ArenaPages, ParsesTheParameterDefaultingToSmallPages) {
  EXPECT_EQ(*ParseArenaPages({}, "volume \"a\""), ArenaPages::kSmall);
  EXPECT_EQ(*ParseArenaPages({{"other", "x"}}, "volume \"a\""), ArenaPages::kSmall);
  EXPECT_EQ(*ParseArenaPages({{kHugePagesParameter, "never"}}, "v"), ArenaPages::kSmall);
  EXPECT_EQ(*ParseArenaPages({{kHugePagesParameter, "within_size"}}, "v"),
            ArenaPages::kHugeWithinSize);
  for (const char* bad : {"always", "", "Within_Size", "true"}) {
    auto parsed = ParseArenaPages({{kHugePagesParameter, bad}}, "volume \"pvc-1\"");
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument);
    const std::string& message = parsed.status().message();
    EXPECT_NE(message.find("volume \"pvc-1\""), std::string::npos) << message;
    EXPECT_NE(message.find(kHugePagesParameter), std::string::npos) << message;
    EXPECT_NE(message.find("within_size"), std::string::npos) << message;
  }
  EXPECT_EQ(ArenaPagesName(ArenaPages::kSmall), "never");
  EXPECT_EQ(ArenaPagesName(ArenaPages::kHugeWithinSize), "within_size");
}

TEST_F(ArenaMountTest, MountsWithSmallInodeNumbersAndItsSize) {
  ASSERT_TRUE(MountArena(dir_, 64 << 20).ok());
  std::string options = SuperOptions(dir_);
  // inode32 is shown only where it is not the kernel's default; inode64 never may be.
  EXPECT_EQ(options.find("inode64"), std::string::npos) << options;
  EXPECT_NE(options.find("size=65536k"), std::string::npos) << options;
}

// Huge pages only where a write covers 2 MiB: small files keep costing 4 KiB, a large
// file gets large folios, and a resize (remount with size= only) keeps the choice.
TEST_F(ArenaMountTest, WithinSizeKeepsSmallFilesSmallAndSurvivesResize) {
  ASSERT_TRUE(MountArena(dir_, 64 << 20, ArenaPages::kHugeWithinSize).ok());
  EXPECT_NE(SuperOptions(dir_).find("huge=within_size"), std::string::npos) << SuperOptions(dir_);
  const std::string page(4096, 'x');
  for (int i = 0; i < 16; ++i) std::ofstream(dir_ / ("f" + std::to_string(i))) << page;
  EXPECT_EQ(UsedBytes(dir_), 16u * 4096u);
  std::ofstream(dir_ / "large") << std::string(8 << 20, 'y');
  EXPECT_EQ(UsedBytes(dir_), 16u * 4096u + (8u << 20));

  ASSERT_EQ(::mount(nullptr, dir_.c_str(), nullptr, MS_REMOUNT | MS_NOSUID | MS_NODEV, "size=128m"),
            0);
  std::string options = SuperOptions(dir_);
  EXPECT_NE(options.find("size=131072k"), std::string::npos) << options;
  EXPECT_NE(options.find("huge=within_size"), std::string::npos) << options;
}

TEST_F(ArenaMountTest, SmallPagesAreTheDefault) {
  ASSERT_TRUE(MountArena(dir_, 64 << 20).ok());
  EXPECT_EQ(SuperOptions(dir_).find("huge="), std::string::npos) << SuperOptions(dir_);
}

TEST_F(ArenaMountTest, SmallFilesCostTheirPagesAndHaveSmallInodeNumbers) {
  ASSERT_TRUE(MountArena(dir_, 64 << 20).ok());
  const std::string page(4096, 'x');
  for (int i = 0; i < 64; ++i) {
    std::ofstream(dir_ / ("f" + std::to_string(i))) << page;
  }
  EXPECT_EQ(UsedBytes(dir_), 64u * 4096u);
  struct stat st {};
  ASSERT_EQ(::stat((dir_ / "f0").c_str(), &st), 0);
  EXPECT_LT(st.st_ino, 1ull << 32);
}

TEST_F(ArenaMountTest, CapacityIsExactForLargeWrites) {
  // 3 MiB + 4 KiB of capacity, written 1 MiB at a time: the last write is short, and
  // ENOSPC comes only once the arena is full to the byte.
  constexpr size_t kCapacity = (3 << 20) + 4096;
  ASSERT_TRUE(MountArena(dir_, kCapacity).ok());
  int fd = ::open((dir_ / "big").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  std::vector<char> chunk(1 << 20, 'y');
  size_t written = 0;
  for (;;) {
    ssize_t n = ::write(fd, chunk.data(), chunk.size());
    if (n <= 0) {
      EXPECT_EQ(errno, ENOSPC);
      break;
    }
    written += static_cast<size_t>(n);
  }
  ::close(fd);
  EXPECT_EQ(written, kCapacity);
}

}  // namespace
}  // namespace cellar
