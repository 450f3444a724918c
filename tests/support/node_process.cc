#include "tests/support/node_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

namespace cellar::testing {

namespace fs = std::filesystem;

std::string ModeName(Mode mode) {
  switch (mode) {
    case Mode::kPassthrough: return "Passthrough";
    case Mode::kFallback: return "Fallback";
    case Mode::kDirect: return "Direct";
    case Mode::kAuto: return "Auto";
  }
  return "Unknown";
}

NodeProcess::NodeProcess(NodeSettings settings) : settings_(std::move(settings)) {
  char tmpl[] = "/tmp/cellar-it-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) std::abort();
  root_ = tmpl;
}

NodeProcess::~NodeProcess() {
  if (pid_ > 0) Kill(SIGTERM);
  UnmountBelow(root_);
  std::error_code ec;
  fs::remove_all(root_, ec);
}

std::vector<std::string> NodeProcess::Args() const {
  std::vector<std::string> args = {CELLAR_BINARY,   "node",
                                   "--endpoint",    "unix://" + socket().string(),
                                   "--node-id",     settings_.node_id,
                                   "--state-dir",   state_dir().string(),
                                   "--capacity",    settings_.capacity,
                                   "--max-volumes", std::to_string(settings_.max_volumes),
                                   "--log-level",   "debug"};
  // Forced, so that each suite runs each mode whatever the kernel offers.
  switch (settings_.mode) {
    case Mode::kPassthrough: args.push_back("--io-mode=passthrough"); break;
    case Mode::kFallback: args.push_back("--no-passthrough"); break;  // the old flag still works
    case Mode::kDirect: args.push_back("--io-mode=direct"); break;
    case Mode::kAuto: break;
  }
  for (const auto& a : settings_.extra_args) args.push_back(a);
  return args;
}

bool NodeProcess::Start(std::string* log) {
  std::vector<std::string> args = settings_.launcher;
  for (auto& a : Args()) args.push_back(std::move(a));
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string log_path = (root_ / "cellar.log").string();
  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (!channel_) {
      // Connect only once the socket exists: a channel that failed early backs off for
      // seconds before it tries again.
      if (!fs::exists(socket())) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
      channel_ = grpc::CreateCustomChannel("unix://" + socket().string(),
                                           grpc::InsecureChannelCredentials(), args);
      identity_ = csi::v1::Identity::NewStub(channel_);
      controller_ = csi::v1::Controller::NewStub(channel_);
      node_ = csi::v1::Node::NewStub(channel_);
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    csi::v1::ProbeRequest req;
    csi::v1::ProbeResponse resp;
    if (identity_->Probe(&ctx, req, &resp).ok() && resp.ready().value()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (pid_ > 0) {
    Kill(SIGKILL);  // never leave a daemon that did not become ready behind
    exit_status_ = -1;
  }
  if (log) *log = Log();
  return false;
}

void NodeProcess::Kill(int signal) {
  // A restarted daemon makes a new socket; the next Start connects afresh.
  channel_.reset();
  if (pid_ <= 0) return;
  ::kill(pid_, signal);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

int NodeProcess::Wait() {
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string NodeProcess::Log() const {
  std::ifstream in(root_ / "cellar.log");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path NodeProcess::TargetPath(const std::string& pod_uid, const std::string& pv) const {
  return root_ / "kubelet" / "pods" / pod_uid / "volumes" / "kubernetes.io~csi" / pv / "mount";
}

int RunInPod(const std::string& command, std::string* output) {
  std::string full = "unshare -m --propagation private /bin/sh -c '" + command + "' 2>&1";
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) {
    if (output) output->append(buf, n);
  }
  int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

uint64_t ShmemBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "Shmem:") return kib * 1024;
  }
  return 0;
}

void UnmountBelow(const fs::path& dir) {
  std::vector<std::string> mounts;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mount_point;
    fields >> id >> parent >> devno >> root >> mount_point;
    if (mount_point.rfind(dir.string(), 0) == 0) mounts.push_back(mount_point);
  }
  std::sort(mounts.begin(), mounts.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const auto& m : mounts) ::umount2(m.c_str(), MNT_DETACH);
}

}  // namespace cellar::testing
