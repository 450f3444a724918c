// Zero copy (a mapping of a Cellar file IS the arena's shared memory in passthrough
// mode) and restart (a new server over the same arenas finds every byte by name, also
// after the previous daemon was SIGKILLed and left a dead mount behind).
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "mount/tests/fuse_fixture.h"

namespace cellar::mount::testing {
namespace {

namespace fs = std::filesystem;

// Cached + Shmem from /proc/meminfo, in bytes (tmpfs pages count in both).
uint64_t CachedBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t value = 0, cached = 0;
  std::string unit;
  while (in >> key >> value >> unit) {
    if (key == "Cached:") cached = value * 1024;
  }
  return cached;
}

class ZeroCopyTest : public FuseFixture {
 protected:
  uint64_t ArenaSize() const override { return 320ULL << 20; }
};

TEST_P(ZeroCopyTest, MappingSharesTheArenaPages) {
  constexpr size_t kSize = 256 << 20;
  fs::path f = vol_a_ / "big";
  {
    int fd = ::open(f.c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0);
    std::string chunk(1 << 20, 'c');
    for (size_t done = 0; done < kSize; done += chunk.size()) {
      chunk[0] = static_cast<char>(done >> 20);
      ASSERT_EQ(::write(fd, chunk.data(), chunk.size()), static_cast<ssize_t>(chunk.size()));
    }
    ::close(fd);
  }
  const uint64_t before = CachedBytes();
  int fd = ::open(f.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  auto* m = static_cast<volatile char*>(
      ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  ASSERT_NE(m, MAP_FAILED);
  uint64_t sum = 0;
  for (size_t i = 0; i < kSize; i += 4096) sum += static_cast<unsigned char>(m[i]);
  EXPECT_GT(sum, 0u);
  const uint64_t after = CachedBytes();
  const int64_t growth = static_cast<int64_t>(after) - static_cast<int64_t>(before);
  std::printf("page cache growth while mapping 256 MiB: %lld MiB\n",
              static_cast<long long>(growth >> 20));
  // A second copy would add ~256 MiB; allow for unrelated activity on the machine.
  EXPECT_LT(growth, static_cast<int64_t>(64 << 20));

  // A byte stored through the FUSE mapping is in the arena file at once (no msync).
  m[12345] = 'Z';
  int arena_fd = ::open((arena_a_->dir() / "big").c_str(), O_RDONLY);
  ASSERT_GE(arena_fd, 0);
  char c = 0;
  ASSERT_EQ(::pread(arena_fd, &c, 1, 12345), 1);
  EXPECT_EQ(c, 'Z');
  ::close(arena_fd);
  ::munmap(const_cast<char*>(m), kSize);
  ::close(fd);
}

INSTANTIATE_TEST_SUITE_P(Modes, ZeroCopyTest, ::testing::Values(true), ModeName);

// path -> "mode nlink size target/bytes xattr" for a whole tree.
std::map<std::string, std::string> Describe(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    struct stat st;
    ::lstat(it->path().c_str(), &st);
    std::string d = fmt::format("{:o} {} {} {}:{}", st.st_mode, st.st_nlink,
                                S_ISDIR(st.st_mode) ? 0 : st.st_size, st.st_uid, st.st_gid);
    if (S_ISLNK(st.st_mode)) d += " -> " + fs::read_symlink(it->path()).string();
    if (S_ISREG(st.st_mode)) {
      d += " " + std::to_string(std::hash<std::string>{}(ReadFile(it->path())));
      char x[64] = {};
      if (::getxattr(it->path().c_str(), "user.tag", x, sizeof(x)) > 0) d += std::string(" ") + x;
    }
    out[it->path().lexically_relative(root)] = d;
  }
  return out;
}

void Populate(const fs::path& v) {
  fs::create_directories(v / "dir" / "sub");
  WriteFile(v / "dir" / "a.txt", "alpha");
  WriteFile(v / "dir" / "sub" / "b.bin", std::string(8 << 20, 'b'));
  ::chmod((v / "dir" / "a.txt").c_str(), 0600);
  ::chown((v / "dir" / "a.txt").c_str(), 1000, 1000);
  ::link((v / "dir" / "a.txt").c_str(), (v / "hard").c_str());
  ::symlink("dir/a.txt", (v / "link").c_str());
  ::setxattr((v / "dir" / "a.txt").c_str(), "user.tag", "t1", 2, 0);
  int fd = ::open((v / "sparse").c_str(), O_CREAT | O_WRONLY, 0644);
  ::pwrite(fd, "end", 3, 10 << 20);
  ::close(fd);
}

using RestartTest = FuseFixture;

TEST_P(RestartTest, NewServerSeesEverythingByName) {
  Populate(vol_a_);
  WriteFile(vol_b_ / "other", "bbb");
  auto a = Describe(vol_a_);
  auto b = Describe(vol_b_);
  ASSERT_EQ(a.size(), 7u);
  StopServer();
  EXPECT_FALSE(fs::exists(vol_a_));
  StartServer();
  EXPECT_EQ(Describe(vol_a_), a);
  EXPECT_EQ(Describe(vol_b_), b);
  WriteFile(vol_a_ / "after", "x");  // and it keeps working
  EXPECT_EQ(ReadFile(vol_a_ / "after"), "x");
}

TEST_P(RestartTest, SigkilledDaemonLeavesNothingBehind) {
  StopServer();
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(ready[1], STDOUT_FILENO);
    std::vector<std::string> args = {CELLAR_FUSE_MOUNT_BIN, "--mountpoint", mnt_.string(),
                                     "vol-a:1:" + arena_a_->dir().string(),
                                     "vol-b:2:" + arena_b_->dir().string()};
    if (!passthrough()) args.push_back("--no-passthrough");
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  ::close(ready[1]);
  // Kill the daemon whatever happens below.
  std::unique_ptr<void, std::function<void(void*)>> reaper(reinterpret_cast<void*>(1),
                                                           [pid](void*) {
                                                             ::kill(pid, SIGKILL);
                                                             ::waitpid(pid, nullptr, 0);
                                                           });
  FILE* out = ::fdopen(ready[0], "r");
  ASSERT_NE(out, nullptr);
  char* line = nullptr;
  size_t cap = 0;
  bool up = false;
  while (!up && ::getline(&line, &cap, out) > 0) up = std::string(line).rfind("READY", 0) == 0;
  std::free(line);
  std::fclose(out);  // the daemon's later output goes nowhere
  ASSERT_TRUE(up);
  Populate(vol_a_);
  auto a = Describe(vol_a_);
  reaper.reset();
  struct stat st;
  EXPECT_EQ(::stat(vol_a_.c_str(), &st), -1);
  EXPECT_EQ(errno, ENOTCONN);  // the dead mount a killed daemon leaves
  StartServer();               // cleans it and mounts afresh
  EXPECT_EQ(Describe(vol_a_), a);
}

INSTANTIATE_TEST_SUITE_P(Modes, RestartTest, ::testing::Bool(), ModeName);

}  // namespace
}  // namespace cellar::mount::testing
