// POSIX behaviour of a Cellar volume, with the errnos a local filesystem (tmpfs) gives.
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <thread>

#include "mount/tests/fuse_fixture.h"

namespace cellar::mount::testing {
namespace {

namespace fs = std::filesystem;

#define EXPECT_ERRNO(expr, err)       \
  do {                                \
    errno = 0;                        \
    EXPECT_EQ((expr), -1) << #expr;   \
    EXPECT_EQ(errno, (err)) << #expr; \
  } while (0)

std::set<std::string> List(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename());
  return names;
}

struct stat Stat(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p << ": " << strerror(errno);
  return st;
}

using PosixTest = FuseFixture;

TEST_P(PosixTest, RootListsVolumesAndIsReadOnly) {
  EXPECT_EQ(List(mnt_), (std::set<std::string>{"vol-a", "vol-b"}));
  EXPECT_ERRNO(::mkdir((mnt_ / "x").c_str(), 0755), EPERM);
  EXPECT_ERRNO(::open((mnt_ / "x").c_str(), O_CREAT | O_WRONLY, 0644), EPERM);
  EXPECT_ERRNO(::rmdir(vol_a_.c_str()), EPERM);
  EXPECT_ERRNO(::rename(vol_a_.c_str(), (mnt_ / "y").c_str()), EPERM);
  EXPECT_ERRNO(::access((mnt_ / "nope").c_str(), F_OK), ENOENT);
}

TEST_P(PosixTest, CreateWriteReadAndFlags) {
  fs::path f = vol_a_ / "f";
  int fd = ::open(f.c_str(), O_CREAT | O_EXCL | O_RDWR, 0640);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(::write(fd, "hello", 5), 5);
  char buf[16] = {};
  ASSERT_EQ(::pread(fd, buf, sizeof(buf), 0), 5);
  EXPECT_STREQ(buf, "hello");
  ::close(fd);
  EXPECT_EQ(Stat(f).st_mode & 07777, 0640u);
  EXPECT_EQ(Stat(f).st_size, 5);
  EXPECT_ERRNO(::open(f.c_str(), O_CREAT | O_EXCL | O_RDWR, 0644), EEXIST);
  EXPECT_ERRNO(::open((vol_a_ / "none").c_str(), O_RDONLY), ENOENT);
  EXPECT_ERRNO(::open((vol_a_ / "none" / "x").c_str(), O_RDONLY), ENOENT);
  EXPECT_ERRNO(::open((f / "x").c_str(), O_RDONLY), ENOTDIR);

  fd = ::open(f.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, " world", 6), 6);
  ::close(fd);
  EXPECT_EQ(ReadFile(f), "hello world");

  fd = ::open(f.c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0);
  ::close(fd);
  EXPECT_EQ(Stat(f).st_size, 0);
  EXPECT_EQ(ReadFile(f), "");

  ASSERT_EQ(::mkdir((vol_a_ / "d").c_str(), 0755), 0);
  EXPECT_ERRNO(::open((vol_a_ / "d").c_str(), O_WRONLY), EISDIR);
}

TEST_P(PosixTest, DirectoriesAndErrnos) {
  fs::path d = vol_a_ / "d";
  ASSERT_EQ(::mkdir(d.c_str(), 0750), 0);
  EXPECT_ERRNO(::mkdir(d.c_str(), 0750), EEXIST);
  EXPECT_EQ(Stat(d).st_mode & 07777, 0750u);
  EXPECT_EQ(Stat(d).st_nlink, 2u);
  ASSERT_EQ(::mkdir((d / "sub").c_str(), 0755), 0);
  EXPECT_EQ(Stat(d).st_nlink, 3u);
  WriteFile(d / "file", "x");
  EXPECT_ERRNO(::rmdir(d.c_str()), ENOTEMPTY);
  EXPECT_ERRNO(::unlink(d.c_str()), EISDIR);
  EXPECT_ERRNO(::rmdir((d / "file").c_str()), ENOTDIR);
  EXPECT_EQ(List(d), (std::set<std::string>{"sub", "file"}));
  ASSERT_EQ(::unlink((d / "file").c_str()), 0);
  EXPECT_ERRNO(::unlink((d / "file").c_str()), ENOENT);
  ASSERT_EQ(::rmdir((d / "sub").c_str()), 0);
  ASSERT_EQ(::rmdir(d.c_str()), 0);
  EXPECT_ERRNO(::rmdir(d.c_str()), ENOENT);

  // A listing larger than one READDIR reply.
  ASSERT_EQ(::mkdir(d.c_str(), 0755), 0);
  std::set<std::string> want;
  for (int i = 0; i < 500; ++i) {
    std::string name = "entry-with-a-longish-name-" + std::to_string(i);
    WriteFile(d / name, "");
    want.insert(name);
  }
  EXPECT_EQ(List(d), want);
}

TEST_P(PosixTest, RenameFlavours) {
  WriteFile(vol_a_ / "a", "A");
  WriteFile(vol_a_ / "b", "B");
  ASSERT_EQ(::mkdir((vol_a_ / "d").c_str(), 0755), 0);
  EXPECT_ERRNO(::renameat2(AT_FDCWD, (vol_a_ / "a").c_str(), AT_FDCWD, (vol_a_ / "b").c_str(),
                           RENAME_NOREPLACE),
               EEXIST);
  ASSERT_EQ(::renameat2(AT_FDCWD, (vol_a_ / "a").c_str(), AT_FDCWD, (vol_a_ / "b").c_str(),
                        RENAME_EXCHANGE),
            0);
  EXPECT_EQ(ReadFile(vol_a_ / "a"), "B");
  EXPECT_EQ(ReadFile(vol_a_ / "b"), "A");
  ASSERT_EQ(::rename((vol_a_ / "a").c_str(), (vol_a_ / "b").c_str()), 0);  // replaces
  EXPECT_EQ(ReadFile(vol_a_ / "b"), "B");
  EXPECT_ERRNO(::access((vol_a_ / "a").c_str(), F_OK), ENOENT);
  ASSERT_EQ(::rename((vol_a_ / "b").c_str(), (vol_a_ / "d" / "c").c_str()), 0);
  EXPECT_EQ(ReadFile(vol_a_ / "d" / "c"), "B");
  EXPECT_ERRNO(::rename((vol_a_ / "d").c_str(), (vol_a_ / "d" / "e").c_str()), EINVAL);
  WriteFile(vol_a_ / "f", "F");
  EXPECT_ERRNO(::rename((vol_a_ / "f").c_str(), (vol_a_ / "d").c_str()), EISDIR);
  EXPECT_ERRNO(::rename((vol_a_ / "d").c_str(), (vol_a_ / "f").c_str()), ENOTDIR);
  ASSERT_EQ(::mkdir((vol_a_ / "e").c_str(), 0755), 0);
  EXPECT_ERRNO(::rename((vol_a_ / "e").c_str(), (vol_a_ / "d").c_str()), ENOTEMPTY);
}

TEST_P(PosixTest, CrossVolumeIsExdev) {
  WriteFile(vol_a_ / "f", "F");
  EXPECT_ERRNO(::rename((vol_a_ / "f").c_str(), (vol_b_ / "f").c_str()), EXDEV);
  EXPECT_ERRNO(::link((vol_a_ / "f").c_str(), (vol_b_ / "f").c_str()), EXDEV);
  // mv falls back to copy+unlink, as across local filesystems.
  EXPECT_EQ(std::system(("mv " + (vol_a_ / "f").string() + " " + vol_b_.string()).c_str()), 0);
  EXPECT_EQ(ReadFile(vol_b_ / "f"), "F");
}

TEST_P(PosixTest, HardLinksKeepNlinkAndCtimeRight) {
  fs::path f = vol_a_ / "f";
  WriteFile(f, "data");
  struct stat before = Stat(f);
  EXPECT_EQ(before.st_nlink, 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(::link(f.c_str(), (vol_a_ / "g").c_str()), 0);
  struct stat after = Stat(f);
  EXPECT_EQ(after.st_nlink, 2u);
  EXPECT_EQ(Stat(vol_a_ / "g").st_nlink, 2u);
  EXPECT_EQ(Stat(vol_a_ / "g").st_ino, after.st_ino);
  EXPECT_TRUE(after.st_ctim.tv_sec > before.st_ctim.tv_sec ||
              (after.st_ctim.tv_sec == before.st_ctim.tv_sec &&
               after.st_ctim.tv_nsec > before.st_ctim.tv_nsec));
  EXPECT_ERRNO(::link(f.c_str(), (vol_a_ / "g").c_str()), EEXIST);
  ASSERT_EQ(::unlink(f.c_str()), 0);
  EXPECT_EQ(Stat(vol_a_ / "g").st_nlink, 1u);
  ASSERT_EQ(::mkdir((vol_a_ / "d").c_str(), 0755), 0);
  EXPECT_ERRNO(::link((vol_a_ / "d").c_str(), (vol_a_ / "d2").c_str()), EPERM);
  // Rename over a hard link: the survivor's nlink drops at once.
  ASSERT_EQ(::link((vol_a_ / "g").c_str(), (vol_a_ / "h").c_str()), 0);
  WriteFile(vol_a_ / "other", "o");
  ASSERT_EQ(::rename((vol_a_ / "other").c_str(), (vol_a_ / "h").c_str()), 0);
  EXPECT_EQ(Stat(vol_a_ / "g").st_nlink, 1u);
}

TEST_P(PosixTest, SymlinksAndSpecialFiles) {
  ASSERT_EQ(::symlink("target/path", (vol_a_ / "l").c_str()), 0);
  char buf[64] = {};
  ASSERT_EQ(::readlink((vol_a_ / "l").c_str(), buf, sizeof(buf)), 11);
  EXPECT_STREQ(buf, "target/path");
  EXPECT_TRUE(S_ISLNK(Stat(vol_a_ / "l").st_mode));
  EXPECT_ERRNO(::symlink("x", (vol_a_ / "l").c_str()), EEXIST);
  WriteFile(vol_a_ / "t", "via link");
  ASSERT_EQ(::symlink("t", (vol_a_ / "l2").c_str()), 0);
  EXPECT_EQ(ReadFile(vol_a_ / "l2"), "via link");
  ASSERT_EQ(::mkfifo((vol_a_ / "fifo").c_str(), 0600), 0);
  EXPECT_TRUE(S_ISFIFO(Stat(vol_a_ / "fifo").st_mode));
}

TEST_P(PosixTest, SetattrChmodChownTruncateUtimens) {
  fs::path f = vol_a_ / "f";
  WriteFile(f, "0123456789");
  ASSERT_EQ(::chmod(f.c_str(), 04711), 0);
  EXPECT_EQ(Stat(f).st_mode & 07777, 04711u);
  ASSERT_EQ(::chown(f.c_str(), 1000, 2000), 0);
  EXPECT_EQ(Stat(f).st_uid, 1000u);
  EXPECT_EQ(Stat(f).st_gid, 2000u);
  ASSERT_EQ(::truncate(f.c_str(), 4), 0);
  EXPECT_EQ(ReadFile(f), "0123");
  ASSERT_EQ(::truncate(f.c_str(), 1 << 20), 0);  // sparse
  EXPECT_EQ(Stat(f).st_size, 1 << 20);
  EXPECT_LT(Stat(f).st_blocks, 64);
  timespec times[2] = {{1000, 5}, {2000, 7}};
  ASSERT_EQ(::utimensat(AT_FDCWD, f.c_str(), times, 0), 0);
  struct stat st = Stat(f);
  EXPECT_EQ(st.st_atim.tv_sec, 1000);
  EXPECT_EQ(st.st_mtim.tv_sec, 2000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 7);
  // A write moves mtime forward again.
  int fd = ::open(f.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "x", 1, 0), 1);
  ::close(fd);
  EXPECT_GT(Stat(f).st_mtim.tv_sec, 2000);
  EXPECT_ERRNO(::truncate((vol_a_).c_str(), 0), EISDIR);
}

TEST_P(PosixTest, OwnershipAndPermissionsLikeALocalFs) {
  ASSERT_EQ(::chmod(vol_a_.c_str(), 0777), 0);
  fs::path secret = vol_a_ / "secret";
  WriteFile(secret, "s");
  ASSERT_EQ(::chmod(secret.c_str(), 0600), 0);
  EXPECT_EQ(RunAs(1000, 1000, [&] { return ::open(secret.c_str(), O_RDONLY) < 0 ? errno : 0; }),
            EACCES);
  // New inodes belong to the requester, with its umask applied.
  EXPECT_EQ(RunAs(1000, 1000,
                  [&] {
                    ::umask(022);
                    int fd = ::open((vol_a_ / "mine").c_str(), O_CREAT | O_WRONLY, 0666);
                    if (fd < 0) return errno;
                    ::close(fd);
                    if (::mkdir((vol_a_ / "mydir").c_str(), 0777) != 0) return errno;
                    return ::symlink("x", (vol_a_ / "mylink").c_str()) == 0 ? 0 : errno;
                  }),
            0);
  EXPECT_EQ(Stat(vol_a_ / "mine").st_uid, 1000u);
  EXPECT_EQ(Stat(vol_a_ / "mine").st_gid, 1000u);
  EXPECT_EQ(Stat(vol_a_ / "mine").st_mode & 07777, 0644u);
  EXPECT_EQ(Stat(vol_a_ / "mydir").st_mode & 07777, 0755u);
  EXPECT_EQ(Stat(vol_a_ / "mylink").st_uid, 1000u);
  // setgid directory: new files take its group, new directories inherit the bit.
  fs::path sg = vol_a_ / "sg";
  ASSERT_EQ(::mkdir(sg.c_str(), 0777), 0);
  ASSERT_EQ(::chown(sg.c_str(), 0, 4242), 0);
  ASSERT_EQ(::chmod(sg.c_str(), 02777), 0);
  EXPECT_EQ(RunAs(1000, 1000,
                  [&] {
                    int fd = ::open((sg / "f").c_str(), O_CREAT | O_WRONLY, 0644);
                    if (fd < 0) return errno;
                    ::close(fd);
                    return ::mkdir((sg / "d").c_str(), 0755) == 0 ? 0 : errno;
                  }),
            0);
  EXPECT_EQ(Stat(sg / "f").st_gid, 4242u);
  EXPECT_EQ(Stat(sg / "d").st_gid, 4242u);
  EXPECT_TRUE(Stat(sg / "d").st_mode & S_ISGID);
  // Sticky /tmp-like directory: others may not remove root's file.
  ASSERT_EQ(::chmod(vol_a_.c_str(), 01777), 0);
  EXPECT_EQ(RunAs(1000, 1000, [&] { return ::unlink(secret.c_str()) == 0 ? 0 : errno; }), EPERM);
  EXPECT_EQ(RunAs(1000, 1000, [&] { return ::chmod(secret.c_str(), 0777) == 0 ? 0 : errno; }),
            EPERM);
}

TEST_P(PosixTest, SupplementaryGroupGrantsCreationAsOnALocalFilesystem) {
  // Kubernetes gives a pod's fsGroup as a supplementary group, and fsGroupPolicy File
  // makes the volume root that group's, mode 2775. Creating there must work exactly
  // as on tmpfs: allowed through the supplementary group, refused without it.
  fs::path shared = vol_a_ / "shared";
  ASSERT_EQ(::mkdir(shared.c_str(), 0777), 0);
  ASSERT_EQ(::chown(shared.c_str(), 0, 65532), 0);
  ASSERT_EQ(::chmod(shared.c_str(), 02775), 0);
  auto create_all = [&] {
    int fd = ::open((shared / "f").c_str(), O_CREAT | O_WRONLY, 0664);
    if (fd < 0) return errno;
    ::close(fd);
    if (::mkdir((shared / "d").c_str(), 0775) != 0) return errno;
    if (::symlink("f", (shared / "l").c_str()) != 0) return errno;
    if (::mkfifo((shared / "p").c_str(), 0664) != 0) return errno;
    return 0;
  };
  EXPECT_EQ(RunAs(4242, 4242, create_all), EACCES);
  EXPECT_EQ(RunAsWithGroups(4242, 4242, {65532}, create_all), 0);
  EXPECT_EQ(Stat(shared / "f").st_uid, 4242u);
  EXPECT_EQ(Stat(shared / "f").st_gid, 65532u);
  EXPECT_EQ(Stat(shared / "d").st_gid, 65532u);
  EXPECT_TRUE(Stat(shared / "d").st_mode & S_ISGID);
  // The thread that served it kept no groups: the next caller without them is refused.
  EXPECT_EQ(
      RunAs(4242, 4242, [&] { return ::mkdir((shared / "d2").c_str(), 0775) == 0 ? 0 : errno; }),
      EACCES);
}

TEST_P(PosixTest, SparseFilesSeekDataHoleAndFallocate) {
  fs::path f = vol_a_ / "sparse";
  int fd = ::open(f.c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, "x", 1, 1 << 20), 1);
  EXPECT_EQ(::lseek(fd, 0, SEEK_DATA), 1 << 20);
  EXPECT_EQ(::lseek(fd, 0, SEEK_HOLE), 0);
  EXPECT_ERRNO(::lseek(fd, (2 << 20), SEEK_DATA), ENXIO);
  ASSERT_EQ(::fallocate(fd, 0, 0, 4096), 0);  // tmpfs still calls it a hole until written
  ASSERT_EQ(::fallocate(fd, FALLOC_FL_KEEP_SIZE, 4 << 20, 4096), 0);
  struct stat st;
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, (1 << 20) + 1);
  ASSERT_EQ(::fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096), 0);
  char c = 1;
  ASSERT_EQ(::pread(fd, &c, 1, 0), 1);
  EXPECT_EQ(c, 0);
  ASSERT_EQ(::fsync(fd), 0);
  ASSERT_EQ(::fdatasync(fd), 0);
  ::close(fd);
}

TEST_P(PosixTest, XattrsRoundTrip) {
  fs::path f = vol_a_ / "f";
  WriteFile(f, "");
  ASSERT_EQ(::setxattr(f.c_str(), "user.k", "value", 5, 0), 0) << strerror(errno);
  char buf[64] = {};
  EXPECT_EQ(::getxattr(f.c_str(), "user.k", nullptr, 0), 5);
  ASSERT_EQ(::getxattr(f.c_str(), "user.k", buf, sizeof(buf)), 5);
  EXPECT_EQ(std::string(buf, 5), "value");
  EXPECT_ERRNO(::getxattr(f.c_str(), "user.k", buf, 2), ERANGE);
  EXPECT_ERRNO(::getxattr(f.c_str(), "user.none", buf, sizeof(buf)), ENODATA);
  EXPECT_ERRNO(::setxattr(f.c_str(), "user.k", "v", 1, XATTR_CREATE), EEXIST);
  char list[64] = {};
  ssize_t n = ::listxattr(f.c_str(), list, sizeof(list));
  EXPECT_EQ(std::string(list, n), std::string("user.k\0", 7));
  ASSERT_EQ(::removexattr(f.c_str(), "user.k"), 0);
  EXPECT_ERRNO(::removexattr(f.c_str(), "user.k"), ENODATA);
}

TEST_P(PosixTest, StatfsReportsTheVolumeArena) {
  struct statvfs a, arena;
  ASSERT_EQ(::statvfs(vol_a_.c_str(), &a), 0);
  ASSERT_EQ(::statvfs(arena_a_->dir().c_str(), &arena), 0);
  EXPECT_EQ(a.f_blocks * a.f_frsize, arena.f_blocks * arena.f_frsize);
  EXPECT_EQ(a.f_blocks * a.f_frsize, ArenaSize());
  WriteFile(vol_a_ / "f", std::string(1 << 20, 'x'));
  ASSERT_EQ(::statvfs(vol_a_.c_str(), &a), 0);
  ASSERT_EQ(::statvfs(arena_a_->dir().c_str(), &arena), 0);
  EXPECT_EQ(a.f_bfree, arena.f_bfree);
  EXPECT_LE(a.f_bfree * a.f_frsize, ArenaSize() - (1 << 20));
}

TEST_P(PosixTest, OpenFilesCountsOpenFilesAndWriters) {
  int r = ::open((vol_a_ / "f").c_str(), O_CREAT | O_RDWR, 0644);
  int w = ::open((vol_a_ / "f").c_str(), O_RDONLY);
  ASSERT_GE(r, 0);
  ASSERT_GE(w, 0);
  auto usage = server_->OpenFiles("vol-a");
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->open_files, 2u);
  EXPECT_EQ(usage->open_writers, 1u);
  ::close(r);
  ::close(w);
  // RELEASE is asynchronous to close(2): wait for it without a time bound.
  while (server_->OpenFiles("vol-a")->open_files != 0) std::this_thread::yield();
  EXPECT_EQ(server_->OpenFiles("vol-a")->open_writers, 0u);
  EXPECT_EQ(server_->OpenFiles("vol-b")->open_files, 0u);
  EXPECT_FALSE(server_->OpenFiles("vol-c").ok());
}

TEST_P(PosixTest, DetachRemovesTheNameButOpenFilesWork) {
  int fd = ::open((vol_b_ / "f").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(server_->DetachVolume("vol-b").ok());
  EXPECT_ERRNO(::access(vol_b_.c_str(), F_OK), ENOENT);
  EXPECT_EQ(List(mnt_), (std::set<std::string>{"vol-a"}));
  EXPECT_EQ(::pwrite(fd, "abc", 3, 0), 3);
  ::close(fd);
  EXPECT_EQ(ReadFile(arena_b_->dir() / "f"), "abc");
  ASSERT_TRUE(server_->AttachVolume("vol-b", kSlotB, arena_b_->dir()).ok());
  EXPECT_EQ(ReadFile(vol_b_ / "f"), "abc");
}

TEST_P(PosixTest, UnprivilegedWriteTruncateClearSuidSgid) {
  ASSERT_EQ(::chmod(vol_a_.c_str(), 0777), 0);
  for (const char* how : {"truncate", "otrunc", "write"}) {
    fs::path f = vol_a_ / how;
    WriteFile(f, "data");
    ASSERT_EQ(::chmod(f.c_str(), 06777), 0);
    int rc = RunAs(1000, 1000, [&] {
      if (std::string(how) == "truncate") return ::truncate(f.c_str(), 1) == 0 ? 0 : errno;
      int fd = ::open(f.c_str(), O_WRONLY | (std::string(how) == "otrunc" ? O_TRUNC : 0));
      if (fd < 0) return errno;
      int err = ::write(fd, "x", 1) == 1 ? 0 : errno;
      ::close(fd);
      return err;
    });
    EXPECT_EQ(rc, 0) << how;
    EXPECT_EQ(Stat(f).st_mode & 07777, 0777u) << how;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, PosixTest, ::testing::Bool(), ModeName);

}  // namespace
}  // namespace cellar::mount::testing
