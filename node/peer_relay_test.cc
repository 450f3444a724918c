// The relay with real sockets: a TCP client on loopback, the relay, a unix-socket server.
#include "node/peer_relay.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "common/unique_fd.h"

namespace cellar::node {
namespace {

namespace fs = std::filesystem;

UniqueFd ListenTcp(uint16_t* port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::listen(fd.get(), 16), 0);
  socklen_t len = sizeof(addr);
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

UniqueFd ConnectTcp(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

UniqueFd ListenUnix(const fs::path& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  EXPECT_EQ(::listen(fd.get(), 16), 0);
  return fd;
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
  }
}

bool WriteAll(int fd, const std::string& data) {
  for (size_t off = 0; off < data.size();) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

class PeerRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("peer-relay-test-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    target_ = dir_ / "peer.sock";
    listener_ = ListenTcp(&port_);
    stop_ = UniqueFd(::eventfd(0, EFD_CLOEXEC));
    relay_ = std::thread([this] { result_ = RunPeerRelay(listener_.get(), target_, stop_.get()); });
  }
  void TearDown() override {
    uint64_t one = 1;
    EXPECT_EQ(::write(stop_.get(), &one, sizeof(one)), 8);
    relay_.join();
    EXPECT_TRUE(result_.ok()) << result_.message();
    fs::remove_all(dir_);
  }

  fs::path dir_, target_;
  uint16_t port_ = 0;
  UniqueFd listener_, stop_;
  std::thread relay_;
  Status result_;
};

TEST_F(PeerRelayTest, CarriesBothDirectionsAndTheEndOfEach) {
  UniqueFd server = ListenUnix(target_);
  UniqueFd client = ConnectTcp(port_);
  UniqueFd accepted(::accept4(server.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted);

  std::string request(3 << 20, '\0');  // larger than one splice
  for (size_t i = 0; i < request.size(); ++i) request[i] = static_cast<char>(i * 7 + i / 4096);
  std::thread send([&] {
    EXPECT_TRUE(WriteAll(client.get(), request));
    ::shutdown(client.get(), SHUT_WR);  // the server must see the end...
  });
  EXPECT_EQ(ReadAll(accepted.get()), request);
  send.join();
  // ...and still answer on the other half.
  ASSERT_TRUE(WriteAll(accepted.get(), "answer"));
  accepted.Reset();
  EXPECT_EQ(ReadAll(client.get()), "answer");
}

TEST_F(PeerRelayTest, NobodyAtTheSocketClosesTheConnectionAtOnce) {
  UniqueFd client = ConnectTcp(port_);
  pollfd p{client.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  char c;
  EXPECT_LE(::read(client.get(), &c, 1), 0);

  // A server that comes later is reached by the next connection.
  UniqueFd server = ListenUnix(target_);
  UniqueFd again = ConnectTcp(port_);
  UniqueFd accepted(::accept4(server.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted);
  ASSERT_TRUE(WriteAll(again.get(), "ping"));
  char buf[4];
  ASSERT_EQ(::read(accepted.get(), buf, 4), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
}

TEST_F(PeerRelayTest, AServerGoneMidConnectionEndsTheClientsToo) {
  UniqueFd server = ListenUnix(target_);
  UniqueFd client = ConnectTcp(port_);
  UniqueFd accepted(::accept4(server.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(accepted);
  accepted.Reset();  // the serving `cellar node` went away
  pollfd p{client.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  char c;
  EXPECT_LE(::read(client.get(), &c, 1), 0);
}

}  // namespace
}  // namespace cellar::node
