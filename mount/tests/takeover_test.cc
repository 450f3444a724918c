// Taking a live FUSE connection over: a successor server given the predecessor's files
// (as the fd holder or a hand-over passes them) serves the same mount, so files opened
// before keep working, calls made while no daemon ran complete, and the lookup counts
// the kernel holds stay consistent. The fd holder and the session state have their own
// unit tests (fd_holder_test.cc, session_state_test.cc).
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include <fmt/format.h>

#include "mount/fuse_mount.h"
#include "mount/tests/fuse_fixture.h"

namespace cellar::mount::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class TakeoverTest : public FuseFixture {
 protected:
  // Stops the serving threads of server_, keeps its connection in `fds` and drops it.
  std::vector<UniqueFd> Abandon() {
    server_->Pause();
    std::vector<UniqueFd> fds;
    for (int fd : server_->ExportFds()) fds.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    EXPECT_TRUE(server_->Stop(/*keep_connection=*/true).ok());
    server_.reset();
    return fds;
  }

  void Succeed(std::vector<UniqueFd> fds) {
    FuseConfig config;
    config.mountpoint = mnt_;
    config.passthrough = passthrough();
    config.threads = 2;  // fewer than the predecessor: its extra clones are still served
    auto server = FuseServer::Start(config, std::move(fds));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    ASSERT_TRUE(server_->resumed());
    ASSERT_TRUE(server_->AttachVolume("vol-a", kSlotA, arena_a_->dir()).ok());
    ASSERT_TRUE(server_->AttachVolume("vol-b", kSlotB, arena_b_->dir()).ok());
    server_->FinishRecovery();
  }
};

TEST_P(TakeoverTest, OpenFilesKeepWorkingAndWaitingCallsComplete) {
  WriteFile(vol_a_ / "kept", "0123456789");
  ASSERT_TRUE(fs::create_directory(vol_a_ / "dir"));
  int fd = ::open((vol_a_ / "kept").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  std::vector<UniqueFd> fds = Abandon();

  // No daemon now: a create waits in the kernel instead of failing.
  std::atomic<int> created{-2};
  std::thread waiter([&] {
    int f = ::open((vol_a_ / "dir" / "during").c_str(), O_CREAT | O_WRONLY, 0644);
    created = f >= 0 ? 0 : errno;
    if (f >= 0) ::close(f);
  });
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(created.load(), -2) << "the create did not wait for a daemon";

  Succeed(std::move(fds));
  waiter.join();
  EXPECT_EQ(created.load(), 0);
  EXPECT_TRUE(fs::exists(arena_a_->dir() / "dir" / "during"));

  // The file opened before the takeover: read, written, and its handle released.
  char buf[10] = {};
  ASSERT_EQ(::pread(fd, buf, sizeof(buf), 0), 10);
  EXPECT_EQ(std::string(buf, 10), "0123456789");
  ASSERT_EQ(::pwrite(fd, "AB", 2, 0), 2);
  EXPECT_EQ(::close(fd), 0);
  EXPECT_EQ(ReadFile(arena_a_->dir() / "kept"), "AB23456789");

  // Names looked up before still resolve; new work goes on.
  WriteFile(vol_a_ / "dir" / "after", "x");
  EXPECT_EQ(ReadFile(vol_a_ / "dir" / "after"), "x");
  EXPECT_TRUE(fs::is_directory(vol_a_ / "dir"));
}

// Passthrough: the kernel serves open files from their backing file, daemon or not.
// Fallback: the same I/O waits for the successor, then completes.
TEST_P(TakeoverTest, OpenFileIoGoesOnOrWaitsWhileNoDaemonRuns) {
  WriteFile(vol_a_ / "open", "before");
  int fd = ::open((vol_a_ / "open").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  std::vector<UniqueFd> fds = Abandon();
  // In a thread: a request to the daemon waits until Succeed below.
  std::atomic<bool> done{false};
  std::thread io([&] {
    char buf[6] = {};
    EXPECT_EQ(::pread(fd, buf, 6, 0), 6);
    EXPECT_EQ(std::string(buf, 6), "before");
    EXPECT_EQ(::pwrite(fd, "during", 6, 0), 6);
    done = true;
  });
  for (int i = 0; i < 200 && !done; ++i) std::this_thread::sleep_for(10ms);
  if (passthrough()) {
    EXPECT_TRUE(done.load()) << "passthrough I/O waited for a daemon";
  } else {
    EXPECT_FALSE(done.load()) << "daemon I/O completed with no daemon";
  }
  Succeed(std::move(fds));  // unblocks the thread in any case
  io.join();
  EXPECT_TRUE(done.load());
  EXPECT_EQ(::close(fd), 0);
  EXPECT_EQ(ReadFile(arena_a_->dir() / "open"), "during");
}

// Creates queued while no daemon runs are each served once: a successor that read some
// of them before asking the kernel to resend the predecessor's unanswered requests got
// them a second time, and the second O_TRUNC create emptied a file its caller had
// already written (the restart e2e test saw such a file at size 0).
TEST_P(TakeoverTest, CallsQueuedDuringTheGapAreServedOnce) {
  ASSERT_TRUE(fs::create_directory(vol_a_ / "gap"));
  constexpr int kWriters = 24;
  for (int round = 0; round < 5; ++round) {
    // Cached negative entries: in the gap, each open sends CREATE and nothing before it.
    for (int i = 0; i < kWriters; ++i) {
      EXPECT_FALSE(fs::exists(vol_a_ / "gap" / fmt::format("r{}-{}", round, i)));
    }
    std::vector<UniqueFd> fds = Abandon();
    std::vector<std::thread> writers;
    std::atomic<int> failures{0};
    for (int i = 0; i < kWriters; ++i) {
      writers.emplace_back([&, i] {
        const std::string name = fmt::format("r{}-{}", round, i);
        int f = ::open((vol_a_ / "gap" / name).c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
        if (f < 0 || ::write(f, name.data(), name.size()) != static_cast<ssize_t>(name.size()) ||
            ::close(f) != 0) {
          ++failures;
        }
      });
    }
    std::this_thread::sleep_for(100ms);  // every create now waits in the kernel
    Succeed(std::move(fds));
    for (auto& t : writers) t.join();
    EXPECT_EQ(failures.load(), 0);
    // A duplicate create still running would truncate after the check: let it finish.
    std::this_thread::sleep_for(100ms);
    for (int i = 0; i < kWriters; ++i) {
      const std::string name = fmt::format("r{}-{}", round, i);
      EXPECT_EQ(ReadFile(arena_a_->dir() / "gap" / name), name) << "round " << round;
    }
  }
}

// A predecessor that died between doing a call and answering it: the test plays it,
// taking the request off the connection, doing it on the arena and never answering. The
// successor gets it again, resent, and must answer the success the caller was owed.
TEST_P(TakeoverTest, CallsDoneButUnansweredByADeadPredecessorSucceedWhenResent) {
  WriteFile(vol_a_ / "src", "s");
  WriteFile(vol_a_ / "target", "t");
  struct Case {
    const char* what;
    uint32_t opcode;
    std::function<int()> call;  // the caller's system call
    std::function<int()> done;  // what the predecessor did on the arena
  };
  const fs::path arena = arena_a_->dir();
  std::vector<Case> cases = {
      {"rename", FUSE_RENAME2,
       [&] { return ::rename((vol_a_ / "src").c_str(), (vol_a_ / "dst").c_str()); },
       [&] { return ::rename((arena / "src").c_str(), (arena / "dst").c_str()); }},
      {"link", FUSE_LINK,
       [&] { return ::link((vol_a_ / "target").c_str(), (vol_a_ / "hard").c_str()); },
       [&] { return ::link((arena / "target").c_str(), (arena / "hard").c_str()); }},
  };
  for (const Case& c : cases) {
    // Names looked up now (negative entries too): in the gap only the call itself is sent.
    for (const char* name : {"src", "dst", "target", "hard"}) (void)fs::exists(vol_a_ / name);
    std::vector<UniqueFd> fds = Abandon();
    std::atomic<int> result{-2};
    std::thread caller([&] { result = c.call() == 0 ? 0 : errno; });
    // Be the predecessor: read the call from the connection (fds[0], the mount's own),
    // answering the lookup of the new name (not there: ENOENT) that comes first.
    std::vector<char> buf(1 << 21);
    const fuse_in_header* in = nullptr;
    for (int i = 0; i < 4; ++i) {
      pollfd pfd{fds[0].get(), POLLIN, 0};
      ASSERT_EQ(::poll(&pfd, 1, 5000), 1) << c.what << ": no request came";
      ssize_t n = ::read(fds[0].get(), buf.data(), buf.size());
      ASSERT_GE(n, static_cast<ssize_t>(sizeof(fuse_in_header))) << c.what;
      in = reinterpret_cast<const fuse_in_header*>(buf.data());
      if (in->opcode != FUSE_LOOKUP) break;
      fuse_out_header out{sizeof(fuse_out_header), -ENOENT, in->unique};
      ASSERT_EQ(::write(fds[0].get(), &out, sizeof(out)), static_cast<ssize_t>(sizeof(out)));
    }
    const bool expected =
        in->opcode == c.opcode || (c.opcode == FUSE_RENAME2 && in->opcode == FUSE_RENAME);
    EXPECT_TRUE(expected) << c.what << ": got opcode " << in->opcode;
    if (expected) {
      ASSERT_EQ(c.done(), 0) << c.what;  // ... and die without answering
    }
    Succeed(std::move(fds));
    caller.join();
    EXPECT_EQ(result.load(), 0) << c.what << ": " << strerror(result.load());
  }
  EXPECT_EQ(ReadFile(vol_a_ / "dst"), "s");
  EXPECT_FALSE(fs::exists(vol_a_ / "src"));
  EXPECT_EQ(ReadFile(vol_a_ / "hard"), "t");
}

TEST_P(TakeoverTest, SurvivesSeveralTakeoversInARow) {
  WriteFile(vol_b_ / "f", "v0");
  for (int i = 1; i <= 3; ++i) {
    Succeed(Abandon());
    WriteFile(vol_b_ / "f", "v" + std::to_string(i));
    ASSERT_EQ(ReadFile(vol_b_ / "f"), "v" + std::to_string(i));
  }
}

TEST_P(TakeoverTest, AStateOfAnotherMountIsRefusedAndAFreshMountMade) {
  WriteFile(vol_a_ / "f", "bytes");
  std::vector<UniqueFd> fds = Abandon();
  // The mount goes away (as after a reboot or a manual unmount): the state no longer
  // describes what is mounted, so the successor mounts anew and finds the bytes by name.
  ASSERT_TRUE(UnmountFuse(mnt_).ok());
  FuseConfig config;
  config.mountpoint = mnt_;
  config.passthrough = passthrough();
  auto server = FuseServer::Start(config, std::move(fds));
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  server_ = std::move(server).value();
  EXPECT_FALSE(server_->resumed());
  ASSERT_TRUE(server_->AttachVolume("vol-a", kSlotA, arena_a_->dir()).ok());
  EXPECT_EQ(ReadFile(vol_a_ / "f"), "bytes");
}

INSTANTIATE_TEST_SUITE_P(Modes, TakeoverTest, ::testing::Bool(), ModeName);

}  // namespace
}  // namespace cellar::mount::testing
