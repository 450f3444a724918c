// NodeProcess: a real `cellar node` child process on a private socket and state dir,
// with gRPC stubs for its three services. Tests talk to it exactly as the kubelet and
// the external-provisioner do.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "csi.grpc.pb.h"

namespace cellar::testing {

// How the node serves volumes; every suite runs in each mode the machine supports.
// kAuto passes no mode flag: the node picks from what the kernel grants.
enum class Mode { kPassthrough, kFallback, kDirect, kAuto };
std::string ModeName(Mode mode);

struct NodeSettings {
  Mode mode = Mode::kPassthrough;
  std::string capacity = "256Mi";
  int max_volumes = 16;
  std::string node_id = "node-a";
  std::vector<std::string> extra_args;
  // Runs the daemon through this command (e.g. unshare into a user namespace).
  std::vector<std::string> launcher;
};

class NodeProcess {
 public:
  // Creates a fresh directory under /tmp for the socket, the state and kubelet paths.
  explicit NodeProcess(NodeSettings settings);
  ~NodeProcess();  // SIGTERM, wait, unmount what is left, remove the directory

  // Starts the daemon and waits until Probe answers ready. Returns false (with the
  // daemon's log in `log`) if it does not within 30 s.
  bool Start(std::string* log = nullptr);
  void Kill(int signal);  // sends `signal` and reaps the process
  int Wait();             // exit status of a process that exits on its own
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // Exit status of a daemon that exited during Start (-1 if it hung and was killed).
  int exit_status() const { return exit_status_; }
  std::string Log() const;

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path state_dir() const { return root_ / "state"; }
  std::filesystem::path socket() const { return root_ / "csi" / "csi.sock"; }
  // A path shaped like the kubelet's: <root>/pods/<uid>/volumes/kubernetes.io~csi/<pv>/mount
  std::filesystem::path TargetPath(const std::string& pod_uid, const std::string& pv) const;
  const NodeSettings& settings() const { return settings_; }
  std::vector<std::string> Args() const;

  csi::v1::Identity::Stub& identity() { return *identity_; }
  csi::v1::Controller::Stub& controller() { return *controller_; }
  csi::v1::Node::Stub& node() { return *node_; }

 private:
  NodeSettings settings_;
  std::filesystem::path root_;
  pid_t pid_ = -1;
  int exit_status_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<csi::v1::Identity::Stub> identity_;
  std::unique_ptr<csi::v1::Controller::Stub> controller_;
  std::unique_ptr<csi::v1::Node::Stub> node_;
};

// Runs `command` with /bin/sh in a new mount namespace ("a pod"), returns its exit
// status and appends its stdout+stderr to `output`.
int RunInPod(const std::string& command, std::string* output = nullptr);

// Shmem of /proc/meminfo in bytes (tmpfs pages of the whole machine).
uint64_t ShmemBytes();

// Unmounts every mount below `dir` (deepest first).
void UnmountBelow(const std::filesystem::path& dir);

}  // namespace cellar::testing
