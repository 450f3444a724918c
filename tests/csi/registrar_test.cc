// `cellar registrar` and `cellar probe` against a real `cellar node`. The test plays
// the kubelet: it finds the registration socket, calls GetInfo and
// NotifyRegistrationStatus on it as the kubelet's plugin watcher does, and runs the
// exec probes as the kubelet would.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "pluginregistration.grpc.pb.h"
#include "tests/support/needs_root.h"
#include "tests/support/node_process.h"

namespace cellar::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kDriver = "csi.cellar.dev";
// What the manifests pass as --kubelet-registration-path: the socket on the host.
constexpr const char* kKubeletPath = "/var/lib/kubelet/plugins/csi.cellar.dev/csi.sock";

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto end = Clock::now() + timeout;
  while (Clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return done();
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A `cellar` child process with its output in a file.
class Child {
 public:
  Child(std::vector<std::string> args, fs::path log) : log_(std::move(log)) {
    args.insert(args.begin(), CELLAR_BINARY);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  // The exit status (128+signal if killed by one), or -1 if still running after `timeout`.
  int WaitExit(std::chrono::milliseconds timeout) {
    const auto end = Clock::now() + timeout;
    while (pid_ > 0) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (Clock::now() > end) return -1;
      std::this_thread::sleep_for(10ms);
    }
    return exit_;
  }
  void Signal(int sig) { ::kill(pid_, sig); }
  bool running() { return WaitExit(0ms) == -1; }
  std::string Log() const { return ReadFile(log_); }
  // Whether the log says `text` within `timeout`.
  bool LogSays(const std::string& text, std::chrono::milliseconds timeout = 15s) const {
    return WaitFor([&] { return Log().find(text) != std::string::npos; }, timeout);
  }

 private:
  fs::path log_;
  pid_t pid_ = -1;
  int exit_ = -1;
};

class RegistrarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CELLAR_SKIP_UNLESS_ROOT("a cellar node");
    NodeSettings settings;
    settings.extra_args = {"--no-fuse"};  // registration needs no FUSE
    node_ = std::make_unique<NodeProcess>(settings);
    registry_ = node_->root() / "plugins_registry";
    fs::create_directories(registry_);
  }

  void StartNode() {
    std::string log;
    ASSERT_TRUE(node_->Start(&log)) << "cellar node did not become ready:\n" << log;
  }

  fs::path RegSocket() const { return registry_ / (std::string(kDriver) + "-reg.sock"); }

  // What is in the kubelet's plugins_registry: the registrar must leave nothing else
  // behind (it listens on a hidden name first).
  std::vector<std::string> RegistryEntries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(registry_)) names.push_back(e.path().filename());
    return names;
  }

  std::vector<std::string> RegistrarArgs(const std::string& kubelet_path = kKubeletPath) const {
    return {"registrar", "--csi-address=" + node_->socket().string(),
            "--kubelet-registration-path=" + kubelet_path,
            "--plugin-registration-path=" + registry_.string(), "--log-level=debug"};
  }

  std::unique_ptr<Child> StartRegistrar(const std::string& name = "registrar") {
    return std::make_unique<Child>(RegistrarArgs(), node_->root() / (name + ".log"));
  }

  // Runs a cellar subcommand to its end (at most 20 s); its exit status, output in `out`.
  int Run(std::vector<std::string> args, std::string* out = nullptr) {
    Child child(std::move(args), node_->root() / "run.log");
    int status = child.WaitExit(20s);
    if (out) *out = child.Log();
    return status;
  }

  int Check(const std::string& kubelet_path = kKubeletPath, std::string* out = nullptr) {
    return Run({"registrar", "--check", "--kubelet-registration-path=" + kubelet_path,
                "--plugin-registration-path=" + registry_.string(), "--timeout=3s"},
               out);
  }

  // The kubelet's plugin watcher: GetInfo, then NotifyRegistrationStatus.
  static grpc::Status GetInfo(const fs::path& socket, pluginregistration::PluginInfo* info) {
    auto stub = pluginregistration::Registration::NewStub(
        grpc::CreateChannel("unix://" + socket.string(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    return stub->GetInfo(&ctx, pluginregistration::InfoRequest(), info);
  }

  static grpc::Status Notify(const fs::path& socket, bool registered, const std::string& error) {
    auto stub = pluginregistration::Registration::NewStub(
        grpc::CreateChannel("unix://" + socket.string(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    pluginregistration::RegistrationStatus status;
    status.set_plugin_registered(registered);
    status.set_error(error);
    pluginregistration::RegistrationStatusResponse resp;
    return stub->NotifyRegistrationStatus(&ctx, status, &resp);
  }

  std::unique_ptr<NodeProcess> node_;
  fs::path registry_;
};

TEST_F(RegistrarTest, RegistersWithTheKubeletAndUnregistersOnSigterm) {
  StartNode();
  auto registrar = StartRegistrar();
  ASSERT_TRUE(WaitFor([&] { return fs::is_socket(RegSocket()); }, 15s)) << registrar->Log();

  pluginregistration::PluginInfo info;
  grpc::Status st = GetInfo(RegSocket(), &info);
  ASSERT_TRUE(st.ok()) << st.error_message() << "\n" << registrar->Log();
  EXPECT_EQ(info.type(), "CSIPlugin");
  EXPECT_EQ(info.name(), kDriver);
  EXPECT_EQ(info.endpoint(), kKubeletPath);
  ASSERT_EQ(info.supported_versions_size(), 1);
  EXPECT_EQ(info.supported_versions(0), "1.0.0");

  st = Notify(RegSocket(), true, "");
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(registrar->LogSays("the kubelet registered", 5s)) << registrar->Log();
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(registrar->running()) << registrar->Log();

  registrar->Signal(SIGTERM);
  EXPECT_EQ(registrar->WaitExit(10s), 0) << registrar->Log();
  EXPECT_FALSE(fs::exists(RegSocket())) << "the kubelet would keep the driver registered";
  EXPECT_TRUE(RegistryEntries().empty()) << RegistryEntries()[0];
}

TEST_F(RegistrarTest, RefusedRegistrationExitsNonZero) {
  StartNode();
  auto registrar = StartRegistrar();
  ASSERT_TRUE(WaitFor([&] { return fs::is_socket(RegSocket()); }, 15s)) << registrar->Log();
  grpc::Status st = Notify(RegSocket(), false, "plugin version mismatch (test)");
  EXPECT_TRUE(st.ok()) << "the kubelet's call must get its answer: " << st.error_message();
  int code = registrar->WaitExit(10s);
  EXPECT_GT(code, 0) << registrar->Log();
  EXPECT_LT(code, 128) << "exited by a signal, not by itself:\n" << registrar->Log();
  std::string log = registrar->Log();
  EXPECT_NE(log.find("did not register csi.cellar.dev: plugin version mismatch (test)"),
            std::string::npos)
      << log;
  EXPECT_FALSE(fs::exists(RegSocket()));
}

TEST_F(RegistrarTest, WaitsForTheDriverThenRegisters) {
  auto registrar = StartRegistrar();
  std::this_thread::sleep_for(1500ms);
  EXPECT_TRUE(registrar->running()) << registrar->Log();
  EXPECT_FALSE(fs::exists(RegSocket())) << "registered before the driver answered";
  EXPECT_NE(registrar->Log().find("waiting for the CSI driver"), std::string::npos)
      << registrar->Log();
  StartNode();
  ASSERT_TRUE(WaitFor([&] { return fs::is_socket(RegSocket()); }, 20s)) << registrar->Log();
  pluginregistration::PluginInfo info;
  ASSERT_TRUE(GetInfo(RegSocket(), &info).ok());
  EXPECT_EQ(info.name(), kDriver);
}

TEST_F(RegistrarTest, SigtermWhileWaitingForTheDriverExitsCleanly) {
  auto registrar = StartRegistrar();
  std::this_thread::sleep_for(700ms);
  registrar->Signal(SIGTERM);
  EXPECT_EQ(registrar->WaitExit(5s), 0) << registrar->Log();
  EXPECT_FALSE(fs::exists(RegSocket()));
}

TEST_F(RegistrarTest, StaleSocketIsReplaced) {
  StartNode();
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", RegSocket().c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);  // bound, never listening: what a killed registrar leaves
  auto registrar = StartRegistrar();
  ASSERT_TRUE(registrar->LogSays("serving registration", 15s)) << registrar->Log();
  EXPECT_TRUE(registrar->LogSays("replacing stale socket " + RegSocket().string(), 0s))
      << registrar->Log();
  pluginregistration::PluginInfo info;
  EXPECT_TRUE(GetInfo(RegSocket(), &info).ok());
}

TEST_F(RegistrarTest, NonSocketAtThePathIsRefused) {
  StartNode();
  { std::ofstream(RegSocket()) << "precious"; }
  auto registrar = StartRegistrar();
  EXPECT_GT(registrar->WaitExit(15s), 0) << registrar->Log();
  EXPECT_NE(registrar->Log().find("not a unix socket"), std::string::npos) << registrar->Log();
  EXPECT_EQ(ReadFile(RegSocket()), "precious");
}

TEST_F(RegistrarTest, MissingRegistrationDirectoryIsAClearError) {
  fs::remove(registry_);
  std::string out;
  EXPECT_GT(Run(RegistrarArgs(), &out), 0);
  EXPECT_NE(out.find("is not a directory"), std::string::npos) << out;
}

// A rollout: the new pod's registrar replaces the old one's socket; when the old pod
// is deleted, its registrar must leave the new one's socket (and registration) alone.
TEST_F(RegistrarTest, OldRegistrarLeavesTheNewOnesSocket) {
  StartNode();
  auto old_one = StartRegistrar("old");
  ASSERT_TRUE(WaitFor([&] { return fs::is_socket(RegSocket()); }, 15s)) << old_one->Log();
  auto new_one = StartRegistrar("new");
  ASSERT_TRUE(new_one->LogSays("serving registration", 15s)) << new_one->Log();
  EXPECT_NE(new_one->Log().find("served by another registrar"), std::string::npos)
      << new_one->Log();
  old_one->Signal(SIGTERM);
  EXPECT_EQ(old_one->WaitExit(10s), 0) << old_one->Log();
  EXPECT_NE(old_one->Log().find("another registrar's socket; leaving it"), std::string::npos)
      << old_one->Log();
  ASSERT_TRUE(fs::is_socket(RegSocket()));
  pluginregistration::PluginInfo info;
  grpc::Status st = GetInfo(RegSocket(), &info);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(RegistryEntries(), std::vector<std::string>{RegSocket().filename()});
  EXPECT_TRUE(Notify(RegSocket(), true, "").ok());
  EXPECT_TRUE(new_one->LogSays("the kubelet registered", 5s)) << new_one->Log();
  EXPECT_EQ(Check(), 0);
}

TEST_F(RegistrarTest, CheckPassesOnlyWhileTheRegistrationSocketAnswers) {
  std::string out;
  EXPECT_EQ(Check(kKubeletPath, &out), 1) << out;  // nothing there yet
  EXPECT_NE(out.find("no *-reg.sock there"), std::string::npos) << out;

  StartNode();
  auto registrar = StartRegistrar();
  ASSERT_TRUE(WaitFor([&] { return fs::is_socket(RegSocket()); }, 15s)) << registrar->Log();
  EXPECT_EQ(Check(kKubeletPath, &out), 0) << out;
  // Another deployment's registration is not ours.
  EXPECT_EQ(Check("/var/lib/kubelet/plugins/other.csi.cellar.dev/csi.sock", &out), 1) << out;
  EXPECT_NE(
      out.find("csi.cellar.dev-reg.sock: CSIPlugin csi.cellar.dev at " + std::string(kKubeletPath)),
      std::string::npos)
      << out;

  // Gone (removed behind the registrar's back): the probe fails, the kubelet restarts
  // the registrar, which serves it again.
  fs::remove(RegSocket());
  EXPECT_EQ(Check(kKubeletPath, &out), 1) << out;

  registrar->Signal(SIGTERM);
  EXPECT_EQ(registrar->WaitExit(10s), 0);
  registrar = StartRegistrar("again");
  ASSERT_TRUE(WaitFor([&] { return fs::is_socket(RegSocket()); }, 15s)) << registrar->Log();
  EXPECT_EQ(Check(kKubeletPath, &out), 0) << out;

  // Not answering (a stopped registrar's process, here SIGSTOP): fails within --timeout.
  registrar->Signal(SIGSTOP);
  auto start = Clock::now();
  EXPECT_EQ(Check(kKubeletPath, &out), 1) << out;
  EXPECT_LT(Clock::now() - start, 8s);
  registrar->Signal(SIGCONT);
}

class ProbeTest : public RegistrarTest {
 protected:
  int Probe(const std::string& endpoint, std::string* out = nullptr, const char* timeout = "2s") {
    return Run({"probe", "--endpoint=" + endpoint, std::string("--timeout=") + timeout}, out);
  }
};

TEST_F(ProbeTest, ReadyNodeIsZero) {
  StartNode();
  std::string out;
  EXPECT_EQ(Probe("unix://" + node_->socket().string(), &out), 0) << out;
  EXPECT_EQ(Run({"probe", "--endpoint=" + node_->socket().string()}, &out), 0) << out;
}

// Readiness: a driver that answers ready=false (here: its state dir is full, so the
// store could not persist anything) fails the probe, and passes it again once it
// answers ready.
TEST_F(ProbeTest, NotReadyNodeIsOne) {
  fs::create_directories(node_->state_dir());
  ASSERT_EQ(::mount("tmpfs", node_->state_dir().c_str(), "tmpfs", 0, "size=1m"), 0)
      << std::strerror(errno);
  StartNode();
  const std::string endpoint = "unix://" + node_->socket().string();
  std::string out;
  ASSERT_EQ(Probe(endpoint, &out), 0) << out;
  {
    std::ofstream filler(node_->state_dir() / "filler");
    std::string block(64 * 1024, 'x');
    while (filler.write(block.data(), block.size())) {
    }
  }
  EXPECT_EQ(Probe(endpoint, &out), 1) << out;
  EXPECT_NE(out.find("ready=false"), std::string::npos) << out;
  fs::remove(node_->state_dir() / "filler");
  EXPECT_EQ(Probe(endpoint, &out), 0) << out;
}

TEST_F(ProbeTest, MissingOrDeadSocketIsOne) {
  std::string out;
  EXPECT_EQ(Probe("unix://" + node_->socket().string(), &out), 1) << out;
  EXPECT_NE(out.find("no socket at " + node_->socket().string()), std::string::npos) << out;

  StartNode();
  node_->Kill(SIGKILL);  // leaves its socket behind, with nobody serving it
  ASSERT_TRUE(fs::exists(node_->socket()));
  EXPECT_EQ(Probe("unix://" + node_->socket().string(), &out), 1) << out;
}

TEST_F(ProbeTest, SilentSocketFailsWithinTheTimeout) {
  // Listening but never accepting: the connection is made and nothing answers.
  fs::create_directories(node_->socket().parent_path());
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", node_->socket().c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  std::string out;
  auto start = Clock::now();
  EXPECT_EQ(Probe("unix://" + node_->socket().string(), &out, "1s"), 1) << out;
  EXPECT_LT(Clock::now() - start, 5s) << out;
  ::close(fd);
}

TEST_F(ProbeTest, BadArgumentsAreTwo) {
  std::string out;
  EXPECT_EQ(Probe("tcp://127.0.0.1:1", &out), 2) << out;
  EXPECT_EQ(Probe("unix://" + node_->socket().string(), &out, "soon"), 2) << out;
}

}  // namespace
}  // namespace cellar::testing
