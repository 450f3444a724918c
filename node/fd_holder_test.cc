// The fd holder as a real process: it keeps what it is given open after the giver closes
// its copies (that is what keeps a FUSE connection alive across a crash), hands it back,
// drops it on request, and refuses what it does not understand.
#include "node/fd_holder.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "mount/fd_holder.h"
#include "tests/support/temp_dir.h"

namespace cellar::node {
namespace {

namespace fs = std::filesystem;
using mount::FdHolderClient;

// A holder in a child process, as `cellar fd-holder` runs beside the node.
class HolderProcess {
 public:
  explicit HolderProcess(fs::path socket) : socket_(std::move(socket)) {
    pid_ = ::fork();
    if (pid_ == 0) _exit(RunFdHolder(socket_).ok() ? 0 : 1);
  }
  ~HolderProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // Waits until the holder answers. False if it exited first.
  bool WaitReady() const {
    FdHolderClient client(socket_);
    for (int i = 0; i < 500; ++i) {
      if (client.Has("probe").ok()) return true;
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  // Sends `signal` and returns the exit status.
  int Stop(int signal) {
    ::kill(pid_, signal);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

 private:
  fs::path socket_;
  pid_t pid_ = -1;
};

class FdHolderTest : public ::testing::Test {
 protected:
  const cellar::testing::TempDir dir_{"cellar-fd-holder"};
  const fs::path socket_ = dir_ / "holder.sock";
};

// Gives the holder the write end of a new pipe under `key` and closes our copy; returns
// the read end, which sees EOF once the holder closes what it holds.
UniqueFd GiveWriteEnd(const FdHolderClient& client, const std::string& key) {
  int p[2];
  EXPECT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
  UniqueFd read_end(p[0]), write_end(p[1]);
  EXPECT_TRUE(client.Put(key, {write_end.get()}).ok());
  return read_end;
}

// True if the pipe's read end sees EOF: every copy of the write end is closed.
bool WriterGone(int read_end) {
  pollfd p{read_end, POLLIN, 0};
  if (::poll(&p, 1, 1000) != 1) return false;
  char c;
  return ::read(read_end, &c, 1) == 0;
}

TEST_F(FdHolderTest, KeepsFilesOpenAfterTheGiverClosesThem) {
  HolderProcess holder(socket_);
  ASSERT_TRUE(holder.WaitReady());
  FdHolderClient client(socket_);

  UniqueFd read_end = GiveWriteEnd(client, "fuse");  // only the holder keeps the write end
  EXPECT_TRUE(client.Has("fuse").value());
  EXPECT_FALSE(WriterGone(read_end.get()));

  Result<std::vector<UniqueFd>> back = client.Get("fuse");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), 1u);
  ASSERT_EQ(::write((*back)[0].get(), "k", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(read_end.get(), &c, 1), 1);
  EXPECT_EQ(c, 'k');
  back->clear();

  // Dropping is what ends the "connection": the holder had the last copy.
  ASSERT_TRUE(client.Drop("fuse").ok());
  EXPECT_FALSE(client.Has("fuse").value());
  EXPECT_TRUE(WriterGone(read_end.get()));
  EXPECT_TRUE(client.Get("fuse")->empty());
  EXPECT_TRUE(client.Drop("never-held").ok());  // idempotent
}

TEST_F(FdHolderTest, PutReplacesWhatWasHeldUnderTheKey) {
  HolderProcess holder(socket_);
  ASSERT_TRUE(holder.WaitReady());
  FdHolderClient client(socket_);
  UniqueFd read_end = GiveWriteEnd(client, "fuse");  // only the holder keeps the write end
  UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(client.Put("fuse", {null.get(), null.get()}).ok());
  EXPECT_TRUE(WriterGone(read_end.get()));  // the old set was closed
  EXPECT_EQ(client.Get("fuse")->size(), 2u);
}

TEST_F(FdHolderTest, SigtermClosesEverythingAndRemovesTheSocket) {
  HolderProcess holder(socket_);
  ASSERT_TRUE(holder.WaitReady());
  UniqueFd read_end = GiveWriteEnd(FdHolderClient(socket_), "fuse");
  int status = holder.Stop(SIGTERM);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_FALSE(fs::exists(fs::symlink_status(socket_)));
  EXPECT_TRUE(WriterGone(read_end.get()));
}

TEST_F(FdHolderTest, BadRequestsAreAnsweredWithErrors) {
  HolderProcess holder(socket_);
  ASSERT_TRUE(holder.WaitReady());
  for (const char* request : {"PUT", "FETCH fuse", "GET", " fuse"}) {
    Result<UniqueFd> conn = ConnectSeqpacket(socket_);
    ASSERT_TRUE(conn.ok());
    ASSERT_TRUE(SendMessage(conn->get(), request).ok());
    Result<FdMessage> reply = ReceiveMessage(conn->get(), 2000);
    ASSERT_TRUE(reply.ok()) << request << ": " << reply.status().ToString();
    EXPECT_EQ(reply->text.rfind("ERR ", 0), 0u) << request << " -> " << reply->text;
  }
  // A client that connects and says nothing does not stop the holder serving others.
  Result<UniqueFd> silent = ConnectSeqpacket(socket_);
  ASSERT_TRUE(silent.ok());
  silent->Reset();
  EXPECT_TRUE(FdHolderClient(socket_).Has("x").ok());
}

TEST_F(FdHolderTest, ASecondHolderOnALiveSocketRefusesToStart) {
  HolderProcess first(socket_);
  ASSERT_TRUE(first.WaitReady());
  HolderProcess second(socket_);
  int status = second.Stop(0);  // signal 0: just wait for it
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  EXPECT_TRUE(FdHolderClient(socket_).Has("x").ok());  // the first still serves
}

TEST_F(FdHolderTest, ClientErrorsWithoutAHolder) {
  FdHolderClient client(socket_);
  EXPECT_EQ(client.Has("fuse").status().code(), Code::kNotFound);
  {
    HolderProcess holder(socket_);
    ASSERT_TRUE(holder.WaitReady());
  }  // SIGKILL: the socket file stays, nobody listens
  EXPECT_EQ(client.Has("fuse").status().code(), Code::kUnavailable);
  EXPECT_EQ(client.Put("fuse", {}).code(), Code::kUnavailable);
}

}  // namespace
}  // namespace cellar::node
