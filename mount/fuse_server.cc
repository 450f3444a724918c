#include "mount/fuse_server.h"

#include <sys/resource.h>

#include <fstream>

#include "common/logging.h"
#include "mount/fuse_mount.h"
#include "mount/fuse_session.h"

namespace cellar::mount {

namespace {
Status Stopped() { return Status(Code::kUnavailable, "the FUSE server is stopped"); }
// Every inode the kernel knows holds an O_PATH fd of its arena file, and the kernel may
// know millions: raise the fd limit as far as the system allows (root may raise the hard
// limit up to fs.nr_open).
void RaiseFdLimit() {
  rlim_t target = 1 << 20;
  std::ifstream nr_open("/proc/sys/fs/nr_open");
  nr_open >> target;
  struct rlimit lim;
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  if (lim.rlim_cur >= target) return;
  struct rlimit want = {target, std::max(lim.rlim_max, target)};
  if (::setrlimit(RLIMIT_NOFILE, &want) != 0) {
    want = {lim.rlim_max, lim.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &want) != 0) return;
  }
  SPDLOG_INFO("fd limit raised to {}", want.rlim_cur);
}

}  // namespace

FuseServer::FuseServer(FuseConfig config) : config_(std::move(config)) {}

FuseServer::~FuseServer() {
  Status st = Stop();
  if (!st.ok()) SPDLOG_ERROR("stopping FUSE server: {}", st.ToString());
}

Result<std::unique_ptr<FuseServer>> FuseServer::Start(FuseConfig config) {
  config.mountpoint = std::filesystem::absolute(config.mountpoint).lexically_normal();
  if (config.mountpoint.has_filename() == false) {
    config.mountpoint = config.mountpoint.parent_path();
  }
  RaiseFdLimit();
  RETURN_IF_ERROR(PrepareMountpoint(config.mountpoint));
  ASSIGN_OR_RETURN(UniqueFd fd, OpenFuseDevice());
  RETURN_IF_ERROR(MountFuse(config.mountpoint, fd.get(), kMaxWrite));
  std::unique_ptr<FuseServer> server(new FuseServer(config));

  SessionOptions options;
  options.passthrough = config.passthrough;
  options.threads = config.threads;
  options.entry_timeout = config.entry_timeout;
  options.attr_timeout = config.attr_timeout;
  options.max_inode_fds = config.max_inode_fds;
  if (options.max_inode_fds == 0) {
    struct rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    options.max_inode_fds = std::max<size_t>(64, lim.rlim_cur / 2);
  }
  auto session = FuseSession::Init(FuseChannel(std::move(fd)), options);
  if (!session.ok()) {
    Status ignored = UnmountFuse(config.mountpoint);
    (void)ignored;
    server->stopped_ = true;
    return session.status();
  }
  server->session_ = std::move(session).value();
  RETURN_IF_ERROR(server->session_->Start());
  if (!server->session_->passthrough()) {
    // Daemon reads: without this, readahead (mmap, cached opens) asks 128 KiB at a time.
    // (stat of the mountpoint needs the serving threads.)
    Status st = SetReadAheadKb(config.mountpoint, kMaxWrite / 1024);
    if (!st.ok()) SPDLOG_WARN("read-ahead stays at the default: {}", st.ToString());
  }
  SPDLOG_INFO("FUSE mount at {} ({} threads, passthrough {})", config.mountpoint.string(),
              config.threads, server->passthrough_active() ? "on" : "off");
  return server;
}


Status FuseServer::AttachVolume(const std::string& volume_id, uint32_t slot,
                                const std::filesystem::path& arena_root) {
  if (!session_) return Stopped();
  return session_->fs().AttachVolume(volume_id, slot, arena_root);
}

Status FuseServer::DetachVolume(const std::string& volume_id) {
  if (!session_) return Stopped();
  return session_->fs().DetachVolume(volume_id);
}

Result<VolumeUsage> FuseServer::Usage(const std::string& volume_id) const {
  if (!session_) return Stopped();
  return session_->fs().Usage(volume_id);
}

bool FuseServer::passthrough_active() const { return session_ && session_->passthrough(); }

Status FuseServer::Stop() {
  std::lock_guard lock(stop_mu_);
  if (stopped_) return Status::Ok();
  stopped_ = true;
  Status st = UnmountFuse(config_.mountpoint);
  if (session_) session_->Stop();
  session_.reset();  // closes the connection
  return st;
}

}  // namespace cellar::mount
