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
#include <sstream>
#include <string>
#include <vector>

namespace cellar {
namespace {

namespace fs = std::filesystem;

// The super options of the mount at `path`, from /proc/self/mountinfo.
std::string SuperOptions(const fs::path& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, found;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point;
    fields >> id >> parent >> dev >> root >> mount_point;
    if (mount_point != path.string()) continue;
    found = line.substr(line.rfind(' ') + 1);
  }
  return found;
}

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
}

TEST_F(ArenaMountTest, MountsWithSmallInodeNumbersAndItsSize) {
  ASSERT_TRUE(MountArena(dir_, 64 << 20).ok());
  std::string options = SuperOptions(dir_);
  // inode32 is shown only where it is not the kernel's default; inode64 never may be.
  EXPECT_EQ(options.find("inode64"), std::string::npos) << options;
  EXPECT_NE(options.find("size=65536k"), std::string::npos) << options;
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
