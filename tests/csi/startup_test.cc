// Start-up errors of `cellar node`: each is a clear message and a non-zero exit.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "tests/support/needs_root.h"
#include "tests/support/node_process.h"

namespace cellar::testing {
namespace {

namespace fs = std::filesystem;

// Runs `cellar node` with the settings' arguments, expecting it to exit by itself.
int RunToExit(NodeProcess& node, std::string* log) {
  if (node.Start(log)) return -1;  // it became ready: not what these tests expect
  *log = node.Log();
  return node.exit_status();
}

TEST(StartupTest, SocketPathThatIsNotASocketIsRefused) {
  CELLAR_SKIP_UNLESS_ROOT("a cellar node");
  NodeProcess node({});
  fs::create_directories(node.socket().parent_path());
  { std::ofstream(node.socket()) << "precious"; }
  std::string log;
  EXPECT_GT(RunToExit(node, &log), 0);
  EXPECT_NE(log.find("not a unix socket"), std::string::npos) << log;
  std::string content;
  std::ifstream(node.socket()) >> content;
  EXPECT_EQ(content, "precious");
}

TEST(StartupTest, StaleSocketIsReplaced) {
  CELLAR_SKIP_UNLESS_ROOT("a cellar node");
  NodeProcess node({});
  fs::create_directories(node.socket().parent_path());
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", node.socket().c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);  // bound, never listening: what a dead process leaves
  std::string log;
  ASSERT_TRUE(node.Start(&log)) << log;
  EXPECT_NE(node.Log().find("stale socket"), std::string::npos);
}

TEST(StartupTest, CapacityBeyondMemoryIsRefused) {
  CELLAR_SKIP_UNLESS_ROOT("a cellar node");
  NodeSettings s;
  s.capacity = "64Ti";
  NodeProcess node(s);
  std::string log;
  EXPECT_GT(RunToExit(node, &log), 0);
  EXPECT_NE(log.find("larger than this node's memory"), std::string::npos) << log;
}

TEST(StartupTest, MalformedCapacityIsRefused) {
  CELLAR_SKIP_UNLESS_ROOT("a cellar node");
  NodeSettings s;
  s.capacity = "8GB";
  NodeProcess node(s);
  std::string log;
  EXPECT_GT(RunToExit(node, &log), 0);
  EXPECT_NE(log.find("unknown unit"), std::string::npos) << log;
}

TEST(StartupTest, StateDirThatCannotBeCreatedIsRefused) {
  CELLAR_SKIP_UNLESS_ROOT("a cellar node");
  NodeProcess node({});
  { std::ofstream(node.state_dir()) << "a file, not a directory"; }
  std::string log;
  EXPECT_GT(RunToExit(node, &log), 0);
  EXPECT_NE(log.find("state dir"), std::string::npos) << log;
}

TEST(StartupTest, SecondInstanceOnALiveSocketIsRefused) {
  CELLAR_SKIP_UNLESS_ROOT("a cellar node");
  NodeProcess first({});
  std::string log;
  ASSERT_TRUE(first.Start(&log)) << log;
  // Same socket, another state dir: must not steal the socket of a live daemon.
  std::vector<std::string> args = first.Args();
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--state-dir") args[i + 1] = (first.root() / "other-state").string();
  }
  std::string cmd;
  for (const auto& a : args) cmd += a + " ";
  std::string out;
  EXPECT_NE(RunInPod(cmd, &out), 0);
  EXPECT_NE(out.find("another process is serving"), std::string::npos) << out;
}

TEST(StartupTest, EnvironmentSuppliesEndpointAndNodeName) {
  CELLAR_SKIP_UNLESS_ROOT("a cellar node");
  NodeProcess node({});
  std::string cmd = "CSI_ENDPOINT=unix://" + node.socket().string() +
                    " NODE_NAME=env-node timeout 2 " + std::string(CELLAR_BINARY) +
                    " node --state-dir " + node.state_dir().string() +
                    " --capacity 64Mi; test -e " + node.state_dir().string() + "/journal";
  std::string out;
  EXPECT_EQ(RunInPod(cmd, &out), 0) << out;
  EXPECT_NE(out.find("for node env-node"), std::string::npos) << out;
}

TEST(StartupTest, HelpListsEveryFlag) {
  CELLAR_SKIP_UNLESS_ROOT("a pod-like mount namespace");
  std::string out;
  ASSERT_EQ(RunInPod(std::string(CELLAR_BINARY) + " node --help", &out), 0);
  for (const char* flag :
       {"--endpoint", "--node-id", "--state-dir", "--capacity", "--max-volumes", "--log-level",
        "--driver-name", "--no-passthrough", "--log-format", "--metrics-address"}) {
    EXPECT_NE(out.find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace cellar::testing
