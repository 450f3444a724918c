#include "mount/tests/fuse_fixture.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/arena_mount.h"
#include "tests/support/needs_root.h"

namespace cellar::mount::testing {

Arena::Arena(std::filesystem::path dir, uint64_t size_bytes) : dir_(std::move(dir)) {
  std::filesystem::create_directories(dir_);
  Status st = MountArena(dir_, size_bytes);
  if (!st.ok()) ADD_FAILURE() << st.ToString();
}

Arena::~Arena() {
  if (::umount2(dir_.c_str(), MNT_DETACH) != 0) {
    ADD_FAILURE() << "umount " << dir_ << ": " << strerror(errno);
  }
}

void FuseFixture::SetUp() {
  CELLAR_SKIP_UNLESS_ROOT("a FUSE mount over tmpfs arenas");
  char tmpl[] = "/tmp/cellar-mount-test-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  root_ = tmpl;
  // Tests run some steps as other users: they must be able to reach the mount.
  ASSERT_EQ(::chmod(root_.c_str(), 0755), 0);
  mnt_ = root_ / "mnt";
  arena_a_ = std::make_unique<Arena>(root_ / "arenas" / "vol-a", ArenaSize());
  arena_b_ = std::make_unique<Arena>(root_ / "arenas" / "vol-b", ArenaSize());
  vol_a_ = mnt_ / "vol-a";
  vol_b_ = mnt_ / "vol-b";
  StartServer();
}

void FuseFixture::StartServer() {
  FuseConfig config;
  config.mountpoint = mnt_;
  config.passthrough = passthrough();
  config.threads = 4;
  config.max_inode_fds = MaxInodeFds();
  auto server = FuseServer::Start(config);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  server_ = std::move(server).value();
  ASSERT_EQ(server_->passthrough_active(), passthrough());
  ASSERT_TRUE(server_->AttachVolume("vol-a", kSlotA, arena_a_->dir()).ok());
  ASSERT_TRUE(server_->AttachVolume("vol-b", kSlotB, arena_b_->dir()).ok());
}

void FuseFixture::StopServer() {
  if (server_) {
    EXPECT_TRUE(server_->Stop().ok());
    server_.reset();
  }
}

void FuseFixture::TearDown() {
  StopServer();
  ::umount2(mnt_.c_str(), MNT_DETACH);  // in case a test left it half-done
  arena_a_.reset();
  arena_b_.reset();
  std::error_code ec;
  std::filesystem::remove_all(root_, ec);
}

int RunAs(uint32_t uid, uint32_t gid, const std::function<int()>& fn) {
  return RunAsWithGroups(uid, gid, {}, fn);
}

int RunAsWithGroups(uint32_t uid, uint32_t gid, const std::vector<gid_t>& groups,
                    const std::function<int()>& fn) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setgid(gid) != 0 ||
        ::setuid(uid) != 0) {
      _exit(250);
    }
    _exit(fn());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 251;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteFile(const std::filesystem::path& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

}  // namespace cellar::mount::testing
