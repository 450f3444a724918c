// Both sides of the hand-over protocol over a real socket, with a pipe standing in for
// the FUSE connection's files.
#include "node/handover.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <future>

#include "common/unix_socket.h"
#include "tests/support/temp_dir.h"

namespace cellar::node {
namespace {

namespace fs = std::filesystem;

class HandoverTest : public ::testing::Test {
 protected:
  const cellar::testing::TempDir dir_{"cellar-handover"};
  const fs::path socket_ = dir_ / "handover.sock";
};

// Waits until the listener has a connection to accept.
bool Readable(const HandoverListener& listener) {
  pollfd pfd{listener.fd(), POLLIN, 0};
  return ::poll(&pfd, 1, 10'000) == 1 && (pfd.revents & POLLIN);
}

// A successor asking in a thread, and its request as the predecessor accepted it.
struct Asked {
  std::future<Result<std::vector<UniqueFd>>> successor;
  UniqueFd conn;  // empty if no request came
};

Asked Ask(const HandoverListener& listener, const fs::path& socket) {
  Asked asked;
  asked.successor = std::async(std::launch::async, [socket] { return TakeOverFrom(socket); });
  if (Readable(listener)) asked.conn = listener.Accept();
  return asked;
}

TEST_F(HandoverTest, NobodyListeningIsAFreshStart) {
  auto inherited = TakeOverFrom(socket_);
  ASSERT_TRUE(inherited.ok()) << inherited.status().ToString();
  EXPECT_TRUE(inherited->empty());
}

TEST_F(HandoverTest, TheSuccessorGetsThePredecessorsFiles) {
  auto listener = HandoverListener::Listen(socket_);
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();
  Asked asked = Ask(*listener, socket_);
  ASSERT_TRUE(asked.conn);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd read_end(p[0]), write_end(p[1]);
  listener->Close();
  EXPECT_FALSE(fs::exists(socket_));
  ASSERT_TRUE(AnswerHandover(asked.conn.get(), {write_end.get()}).ok());
  write_end.Reset();

  auto inherited = asked.successor.get();
  ASSERT_TRUE(inherited.ok()) << inherited.status().ToString();
  ASSERT_EQ(inherited->size(), 1u);
  // The file that travelled is the same pipe.
  ASSERT_EQ(::write((*inherited)[0].get(), "x", 1), 1);
  char c = 0;
  EXPECT_EQ(::read(read_end.get(), &c, 1), 1);
  EXPECT_EQ(c, 'x');
}

TEST_F(HandoverTest, ARefusalOrSilenceIsUnavailable) {
  auto listener = HandoverListener::Listen(socket_);
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();
  Asked refused = Ask(*listener, socket_);
  ASSERT_TRUE(refused.conn);
  ASSERT_TRUE(SendMessage(refused.conn.get(), "NO busy").ok());
  auto inherited = refused.successor.get();
  ASSERT_FALSE(inherited.ok());
  EXPECT_EQ(inherited.status().code(), Code::kUnavailable);

  Asked silent = Ask(*listener, socket_);
  ASSERT_TRUE(silent.conn);
  silent.conn.Reset();  // the predecessor died mid-way
  inherited = silent.successor.get();
  ASSERT_FALSE(inherited.ok());
  EXPECT_EQ(inherited.status().code(), Code::kUnavailable);
  listener->Close();
}

TEST_F(HandoverTest, AnythingButAHandoverRequestIsNotAccepted) {
  auto listener = HandoverListener::Listen(socket_);
  ASSERT_TRUE(listener.ok()) << listener.status().ToString();
  auto conn = ConnectSeqpacket(socket_);
  ASSERT_TRUE(conn.ok()) << conn.status().ToString();
  ASSERT_TRUE(SendMessage(conn->get(), "HELLO").ok());
  ASSERT_TRUE(Readable(*listener));
  EXPECT_FALSE(listener->Accept());
  listener->Close();
}

}  // namespace
}  // namespace cellar::node
