// Issue 19's steps, as a user would take them, on a Cellar volume and on a plain tmpfs
// of the same size (the oracle): setuid/setgid bits after another user's write, sizes at
// and beyond the capacity, and chown(f, -1, -1). Both I/O modes.
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "mount/tests/fuse_fixture.h"

namespace cellar::mount::testing {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kNobody = 65534;

// Runs `fn` as uid/gid (no capabilities, no supplementary groups) in a child and
// returns what it printed.
std::string RunAsCapture(uint32_t uid, uint32_t gid, const std::function<std::string()>& fn) {
  int p[2];
  if (::pipe(p) != 0) return "pipe failed";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    std::string out = ::setgroups(0, nullptr) == 0 && ::setgid(gid) == 0 && ::setuid(uid) == 0
                          ? fn()
                          : "setuid failed";
    (void)!::write(p[1], out.data(), out.size());
    _exit(0);
  }
  ::close(p[1]);
  std::string out;
  char buf[256];
  for (ssize_t n; (n = ::read(p[0], buf, sizeof(buf))) > 0;) out.append(buf, n);
  ::close(p[0]);
  ::waitpid(pid, nullptr, 0);
  return out;
}

std::string Err(const char* what) {
  return fmt::format("{}: errno {}", what, errno);
}

mode_t ModeOf(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

// Drops unused dentries and inodes, so the next stat asks the filesystem (for FUSE:
// the daemon) instead of the kernel's attribute cache.
void DropCaches() {
  ::sync();
  std::ofstream("/proc/sys/vm/drop_caches") << "2";
}

// One way of writing to an existing file; returns the fstat mode seen right after, or
// the failure.
using Writer = std::function<std::string(const std::string& path)>;

std::string AfterWrite(int fd, ssize_t n) {
  if (n < 0) {
    std::string e = Err("write");
    ::close(fd);
    return e;
  }
  struct stat st {};
  ::fstat(fd, &st);
  ::close(fd);
  return fmt::format("fstat {:o}", st.st_mode & 07777);
}

const std::vector<std::pair<const char*, Writer>>& Writers() {
  static const std::vector<std::pair<const char*, Writer>> writers = {
      {"append",  // printf x >> f
       [](const std::string& p) {
         int fd = ::open(p.c_str(), O_WRONLY | O_APPEND);
         return fd < 0 ? Err("open") : AfterWrite(fd, ::write(fd, "x", 1));
       }},
      {"wronly-write",  // python: os.open(f, O_WRONLY); os.write(fd, b"y")
       [](const std::string& p) {
         int fd = ::open(p.c_str(), O_WRONLY);
         return fd < 0 ? Err("open") : AfterWrite(fd, ::write(fd, "y", 1));
       }},
      {"rdwr-pwrite",
       [](const std::string& p) {
         int fd = ::open(p.c_str(), O_RDWR);
         return fd < 0 ? Err("open") : AfterWrite(fd, ::pwrite(fd, "z", 1, 4096));
       }},
      {"writev",
       [](const std::string& p) {
         int fd = ::open(p.c_str(), O_WRONLY);
         char a[] = "ab", b[] = "cd";
         iovec iov[2] = {{a, 2}, {b, 2}};
         return fd < 0 ? Err("open") : AfterWrite(fd, ::writev(fd, iov, 2));
       }},
      {"o-trunc",
       [](const std::string& p) {
         int fd = ::open(p.c_str(), O_WRONLY | O_TRUNC);
         return fd < 0 ? Err("open") : AfterWrite(fd, ::write(fd, "t", 1));
       }},
      {"truncate",
       [](const std::string& p) {
         return ::truncate(p.c_str(), 1) == 0 ? std::string("ok") : Err("truncate");
       }},
  };
  return writers;
}

class TmpfsParityTest : public FuseFixture {
 protected:
  void SetUp() override {
    FuseFixture::SetUp();
    reference_ = std::make_unique<Arena>(root_ / "reference", ArenaSize());
    for (const fs::path& dir : Dirs()) ASSERT_EQ(::chmod(dir.c_str(), 0777), 0);
  }
  void TearDown() override {
    reference_.reset();
    FuseFixture::TearDown();
  }
  // The oracle first: a failure message then names what tmpfs did.
  std::vector<fs::path> Dirs() const { return {reference_->dir(), vol_a_}; }

  std::unique_ptr<Arena> reference_;
};

TEST_P(TmpfsParityTest, WriteByAnotherUserDropsSetuidSetgidAsOnTmpfs) {
  // 02767: setgid without group-exec, kept only for a member of the file's group.
  for (mode_t mode : {04777, 02777, 06777, 02767, 06767, 01777, 0777}) {
    for (const auto& [how, writer] : Writers()) {
      std::vector<std::string> seen;  // per side: the writer's fstat, stat, stat uncached
      for (const fs::path& dir : Dirs()) {
        const fs::path f = dir / fmt::format("f-{:o}-{}", mode, how);
        WriteFile(f, std::string(8192, 'd'));
        ASSERT_EQ(::chmod(f.c_str(), mode), 0);
        ASSERT_EQ(ModeOf(f), mode);  // and now cached by the kernel, as a user's ls would
        std::string got = RunAsCapture(kNobody, kNobody, [&] { return writer(f.string()); });
        got += fmt::format(", stat {:o}", ModeOf(f));
        DropCaches();
        got += fmt::format(", uncached {:o}", ModeOf(f));
        seen.push_back(got);
      }
      EXPECT_EQ(seen[1], seen[0]) << fmt::format("mode {:o}, {}: cellar vs tmpfs", mode, how);
      if (mode == 04777 || mode == 02777 || mode == 06777) {
        EXPECT_NE(seen[1].find(", stat 777, uncached 777"), std::string::npos)
            << how << ": " << seen[1];
      }
    }
  }
}

TEST_P(TmpfsParityTest, MemberOfTheGroupKeepsSetgidWithoutGroupExec) {
  for (const fs::path& dir : Dirs()) {
    const fs::path f = dir / "shared";
    WriteFile(f, "x");
    ASSERT_EQ(::chown(f.c_str(), 0, kNobody), 0);
    ASSERT_EQ(::chmod(f.c_str(), 02767), 0);
    EXPECT_EQ(RunAsCapture(kNobody, kNobody, [&] { return Writers()[1].second(f.string()); }),
              "fstat 2767")
        << dir;
    DropCaches();
    EXPECT_EQ(ModeOf(f), 02767u) << dir;
  }
}

TEST_P(TmpfsParityTest, RootWriteKeepsTheBits) {
  for (const fs::path& dir : Dirs()) {
    const fs::path f = dir / "root-owned";
    WriteFile(f, "x");
    ASSERT_EQ(::chmod(f.c_str(), 06777), 0);
    EXPECT_EQ(Writers()[0].second(f.string()), "fstat 6777") << dir;
    DropCaches();
    EXPECT_EQ(ModeOf(f), 06777u) << dir;
  }
}

TEST_P(TmpfsParityTest, WriteByAnotherUserDropsFileCapabilities) {
  // struct vfs_cap_data, revision 2: CAP_NET_BIND_SERVICE permitted and effective.
  const uint32_t caps[5] = {0x02000001, 1u << 10, 0, 0, 0};
  for (const fs::path& dir : Dirs()) {
    const fs::path f = dir / "capable";
    WriteFile(f, "x");
    ASSERT_EQ(::chmod(f.c_str(), 0777), 0);
    ASSERT_EQ(::setxattr(f.c_str(), "security.capability", caps, sizeof(caps), 0), 0) << dir;
    ASSERT_GT(::getxattr(f.c_str(), "security.capability", nullptr, 0), 0) << dir;
    EXPECT_EQ(RunAsCapture(kNobody, kNobody, [&] { return Writers()[1].second(f.string()); }),
              "fstat 777");
    DropCaches();
    errno = 0;
    EXPECT_EQ(::getxattr(f.c_str(), "security.capability", nullptr, 0), -1) << dir;
    EXPECT_EQ(errno, ENODATA) << dir;
  }
}

// The size steps of the issue, by an unprivileged user; each step's outcome as text.
std::string SizeSteps(const fs::path& f, uint64_t capacity) {
  std::string out;
  auto step = [&](const char* what, bool ok) {
    out += fmt::format("{}: {}\n", what, ok ? "ok" : Err("failed"));
  };
  auto size = [&] {
    struct stat st {};
    ::stat(f.c_str(), &st);
    out += fmt::format("size {}\n", st.st_size);
  };
  int fd = ::open(f.c_str(), O_CREAT | O_RDWR, 0644);
  if (fd < 0) return Err("open");
  step("truncate 999999999999999", ::truncate(f.c_str(), 999999999999999) == 0);
  size();
  step("ftruncate to 0", ::ftruncate(fd, 0) == 0);
  step("pwrite 1 byte at 5 GiB", ::pwrite(fd, "x", 1, 5LL << 30) == 1);
  size();
  step("pwrite 1 byte at 999999999999998", ::pwrite(fd, "y", 1, 999999999999998) == 1);
  size();
  step("ftruncate down to 2 GiB", ::ftruncate(fd, 2LL << 30) == 0);
  size();
  step("truncate to the capacity", ::truncate(f.c_str(), static_cast<off_t>(capacity)) == 0);
  step("truncate to the capacity + 1",
       ::truncate(f.c_str(), static_cast<off_t>(capacity + 1)) == 0);
  step("fallocate beyond the capacity", ::fallocate(fd, 0, 0, 2 * capacity) == 0);
  // Fill the volume: the blocks actually used are what the capacity refuses.
  std::string chunk(1 << 20, 'f');
  ssize_t n = 0;
  for (off_t at = 0; n >= 0 && at < static_cast<off_t>(2 * capacity); at += chunk.size()) {
    n = ::pwrite(fd, chunk.data(), chunk.size(), at);
  }
  step("filling past the capacity", n >= 0);
  step("shrinking a full volume's file", ::ftruncate(fd, 1 << 20) == 0);
  step("writing again", ::pwrite(fd, chunk.data(), chunk.size(), 2 << 20) == 1 << 20);
  step("shrinking to 0", ::ftruncate(fd, 0) == 0);
  size();
  ::close(fd);
  return out;
}

TEST_P(TmpfsParityTest, SizesPastTheCapacityAreSparseAsOnTmpfs) {
  std::vector<std::string> seen;
  for (const fs::path& dir : Dirs()) {
    seen.push_back(
        RunAsCapture(1000, 1000, [&] { return SizeSteps(dir / "sparse", ArenaSize()); }));
  }
  EXPECT_EQ(seen[1], seen[0]);
  EXPECT_NE(seen[1].find("truncate 999999999999999: ok\nsize 999999999999999"), std::string::npos)
      << seen[1];
  EXPECT_NE(seen[1].find("ftruncate down to 2 GiB: ok"), std::string::npos) << seen[1];
  EXPECT_NE(seen[1].find("filling past the capacity: failed: errno 28"), std::string::npos)
      << seen[1];
  EXPECT_NE(seen[1].find("shrinking a full volume's file: ok"), std::string::npos) << seen[1];
}

TEST_P(TmpfsParityTest, ChownMinusOneUpdatesCtime) {
  for (const fs::path& dir : Dirs()) {
    const fs::path f = dir / "owned";
    WriteFile(f, "x");
    ASSERT_EQ(::chown(f.c_str(), 1000, 1000), 0);
    for (uint32_t uid : {0u, 1000u}) {
      struct stat before {
      }, after{};
      ASSERT_EQ(::stat(f.c_str(), &before), 0);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // > a jiffy
      EXPECT_EQ(RunAs(uid, uid, [&] { return ::chown(f.c_str(), -1, -1) == 0 ? 0 : errno; }), 0);
      ASSERT_EQ(::stat(f.c_str(), &after), 0);
      EXPECT_NE(after.st_ctim.tv_nsec + after.st_ctim.tv_sec * 1000000000LL,
                before.st_ctim.tv_nsec + before.st_ctim.tv_sec * 1000000000LL)
          << dir << " uid " << uid;
      EXPECT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec) << dir;
      EXPECT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec) << dir;
    }
    // As everywhere on Linux, the chown drops a setuid bit even when nothing changes.
    ASSERT_EQ(::chmod(f.c_str(), 04755), 0);
    ASSERT_EQ(ModeOf(f), 04755u);
    ASSERT_EQ(::chown(f.c_str(), -1, -1), 0);
    EXPECT_EQ(ModeOf(f), 0755u) << dir;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, TmpfsParityTest, ::testing::Bool(), ModeName);

}  // namespace
}  // namespace cellar::mount::testing
