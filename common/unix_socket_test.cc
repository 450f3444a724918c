// The local control channels' framing (one record per send, fds travel with it) and the
// socket-path rules every Cellar socket relies on: a stale socket is replaced, a live one
// or a non-socket never is.
#include "common/unix_socket.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "tests/support/temp_dir.h"

namespace cellar {
namespace {

namespace fs = std::filesystem;

class UnixSocketTest : public ::testing::Test {
 protected:
  // A connected pair standing for a client and its server.
  static std::pair<UniqueFd, UniqueFd> Pair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds), 0);
    return {UniqueFd(fds[0]), UniqueFd(fds[1])};
  }

  const testing::TempDir dir_{"cellar-unix-socket"};
};

TEST_F(UnixSocketTest, TextAndFdsTravelTogether) {
  auto [a, b] = Pair();
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd read_end(pipe_fds[0]), write_end(pipe_fds[1]);

  ASSERT_TRUE(SendMessage(a.get(), "PUT fuse", {write_end.get()}).ok());
  Result<FdMessage> got = ReceiveMessage(b.get(), 1000);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->text, "PUT fuse");
  ASSERT_EQ(got->fds.size(), 1u);
  // The received fd is a new descriptor of the same pipe, closed on exec.
  EXPECT_NE(got->fds[0].get(), write_end.get());
  EXPECT_TRUE(::fcntl(got->fds[0].get(), F_GETFD) & FD_CLOEXEC);
  ASSERT_EQ(::write(got->fds[0].get(), "x", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(read_end.get(), &c, 1), 1);
  EXPECT_EQ(c, 'x');
}

TEST_F(UnixSocketTest, RecordsAreNeitherMergedNorSplit) {
  auto [a, b] = Pair();
  ASSERT_TRUE(SendMessage(a.get(), "first").ok());
  ASSERT_TRUE(SendMessage(a.get(), "second record").ok());
  EXPECT_EQ(ReceiveMessage(b.get(), 1000)->text, "first");
  EXPECT_EQ(ReceiveMessage(b.get(), 1000)->text, "second record");
}

TEST_F(UnixSocketTest, ManyFdsInOneRecord) {
  auto [a, b] = Pair();
  std::vector<UniqueFd> owned;
  std::vector<int> fds;
  for (size_t i = 0; i < kMaxFdsPerMessage; ++i) {
    owned.emplace_back(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(owned.back());
    fds.push_back(owned.back().get());
  }
  ASSERT_TRUE(SendMessage(a.get(), "many", fds).ok());
  Result<FdMessage> got = ReceiveMessage(b.get(), 1000);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->fds.size(), kMaxFdsPerMessage);
}

TEST_F(UnixSocketTest, RefusesWhatCannotTravel) {
  auto [a, b] = Pair();
  std::vector<int> too_many(kMaxFdsPerMessage + 1, 0);
  EXPECT_EQ(SendMessage(a.get(), "x", too_many).code(), Code::kInvalidArgument);
  EXPECT_EQ(SendMessage(a.get(), std::string(5000, 'x')).code(), Code::kInvalidArgument);
  // The receiver could not tell an empty record from the peer closing.
  EXPECT_EQ(SendMessage(a.get(), "").code(), Code::kInvalidArgument);
  // Nothing was sent by the refused calls.
  EXPECT_EQ(ReceiveMessage(b.get(), 50).status().code(), Code::kDeadlineExceeded);
}

TEST_F(UnixSocketTest, TimeoutAndClosedPeerAreDistinct) {
  auto [a, b] = Pair();
  EXPECT_EQ(ReceiveMessage(b.get(), 20).status().code(), Code::kDeadlineExceeded);
  a.Reset();
  EXPECT_EQ(ReceiveMessage(b.get(), 1000).status().code(), Code::kUnavailable);
  // Sending to a closed peer is an error, not a SIGPIPE that kills the daemon.
  EXPECT_FALSE(SendMessage(b.get(), "anyone?").ok());
}

TEST_F(UnixSocketTest, ListenAndConnect) {
  fs::path path = dir_ / "sub" / "holder.sock";  // the directory is made on demand
  Result<UniqueFd> listener = ListenSeqpacket(path, 0600);
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  Result<UniqueFd> client = ConnectSeqpacket(path);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  UniqueFd server(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(server);
  ASSERT_TRUE(SendMessage(client->get(), "HAS fuse").ok());
  EXPECT_EQ(ReceiveMessage(server.get(), 1000)->text, "HAS fuse");
}

TEST_F(UnixSocketTest, ConnectErrorsSayWhy) {
  EXPECT_EQ(ConnectSeqpacket(dir_ / "absent.sock").status().code(), Code::kNotFound);
  fs::path stale = dir_ / "stale.sock";
  { ASSERT_TRUE(ListenSeqpacket(stale).ok()); }  // the listener closes; its file stays
  EXPECT_EQ(ConnectSeqpacket(stale).status().code(), Code::kUnavailable);
  EXPECT_EQ(ConnectSeqpacket(dir_ / std::string(200, 'n')).status().code(), Code::kInvalidArgument);
}

TEST_F(UnixSocketTest, StaleSocketIsReplaced) {
  fs::path path = dir_ / "csi.sock";
  { ASSERT_TRUE(ListenSeqpacket(path).ok()); }
  ASSERT_TRUE(fs::exists(fs::symlink_status(path)));
  EXPECT_TRUE(PrepareSocketPath(path).ok());
  EXPECT_FALSE(fs::exists(fs::symlink_status(path)));
  // And a new listener may take the path of a dead one directly.
  { ASSERT_TRUE(ListenSeqpacket(path).ok()); }
  EXPECT_TRUE(ListenSeqpacket(path).ok());
}

TEST_F(UnixSocketTest, LiveSocketIsNeverTaken) {
  fs::path path = dir_ / "csi.sock";
  Result<UniqueFd> live = ListenSeqpacket(path);
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(PrepareSocketPath(path).code(), Code::kFailedPrecondition);
  EXPECT_EQ(ListenSeqpacket(path).status().code(), Code::kFailedPrecondition);
  // The live listener still serves.
  EXPECT_TRUE(ConnectSeqpacket(path).ok());
}

TEST_F(UnixSocketTest, LiveStreamSocketIsNeverTakenEither) {
  // The CSI socket is a gRPC (stream) socket; the same path rules apply to it.
  fs::path path = dir_ / "grpc.sock";
  UniqueFd stream(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  ASSERT_EQ(::bind(stream.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(stream.get(), 1), 0);
  EXPECT_EQ(PrepareSocketPath(path).code(), Code::kFailedPrecondition);
}

TEST_F(UnixSocketTest, NonSocketIsNeverRemoved) {
  fs::path path = dir_ / "journal";
  std::ofstream(path) << "volume data";
  Status s = PrepareSocketPath(path);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find(path.string()), std::string::npos) << s.message();
  EXPECT_EQ(ListenSeqpacket(path).status().code(), Code::kInvalidArgument);
  std::ifstream in(path);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "volume data");
}

}  // namespace
}  // namespace cellar
