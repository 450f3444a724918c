#include "mount/fuse_server.h"

#include <sys/resource.h>
#include <sys/sysmacros.h>

#include <fstream>

#include "common/logging.h"
#include "mount/fd_holder.h"
#include "mount/fuse_mount.h"
#include "mount/fuse_session.h"

namespace cellar::mount {

namespace {
Status Stopped() {
  return Status(Code::kUnavailable, "the FUSE server is stopped");
}
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
  spdlog::info("fd limit raised to {}", want.rlim_cur);
}

SessionOptions SessionOptionsOf(const FuseConfig& config) {
  SessionOptions options;
  options.passthrough = config.passthrough;
  options.threads = config.threads;
  options.entry_timeout = config.entry_timeout;
  options.attr_timeout = config.attr_timeout;
  options.max_inode_fds = config.max_inode_fds;
  options.stats = config.stats;
  return options;
}

}  // namespace

FuseServer::FuseServer(FuseConfig config) : config_(std::move(config)) {}

FuseServer::~FuseServer() {
  Status st = Stop();
  if (!st.ok()) spdlog::error("stopping FUSE server: {}", st.ToString());
}

Result<std::unique_ptr<FuseSession>> FuseServer::TryResume(const FuseConfig& config,
                                                           std::vector<UniqueFd> fds) {
  if (fds.size() < 3) {
    return InvalidArgument(fmt::format("{} fds where a connection needs at least 3", fds.size()));
  }
  ASSIGN_OR_RETURN(auto state, SessionState::Adopt(std::move(fds[1])));
  // The mount must still be that connection: a reboot, a manual unmount or a fresh mount
  // by someone else leaves a holder's fds pointing at a connection nobody sees.
  auto dev = CellarMountDev(config.mountpoint);
  if (!dev.ok()) return dev.status();
  if (*dev != state->header().mount_dev) {
    return Status(Code::kFailedPrecondition,
                  fmt::format("the mount at {} is another connection ({}:{}, state is of {}:{})",
                              config.mountpoint.string(), major(*dev), minor(*dev),
                              major(state->header().mount_dev), minor(state->header().mount_dev)));
  }
  std::vector<FuseChannel> clones;
  for (size_t i = 2; i < fds.size(); ++i) clones.emplace_back(std::move(fds[i]));
  return FuseSession::Resume(FuseChannel(std::move(fds[0])), std::move(clones), std::move(state),
                             SessionOptionsOf(config));
}

Result<std::unique_ptr<FuseServer>> FuseServer::Start(FuseConfig config,
                                                      std::vector<UniqueFd> inherited) {
  config.mountpoint = std::filesystem::absolute(config.mountpoint).lexically_normal();
  if (config.mountpoint.has_filename() == false) {
    config.mountpoint = config.mountpoint.parent_path();
  }
  RaiseFdLimit();
  if (config.max_inode_fds == 0) {
    struct rlimit lim {};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    config.max_inode_fds = std::max<size_t>(64, lim.rlim_cur / 2);
  }
  std::unique_ptr<FuseServer> server(new FuseServer(config));
  const std::string key = config.mountpoint.string();
  if (inherited.empty() && !config.fd_holder.empty()) {
    auto held = FdHolderClient(config.fd_holder).Get(key);
    if (held.ok()) {
      inherited = std::move(held).value();
    } else {
      spdlog::warn("fd holder {}: {}; starting a new connection", config.fd_holder.string(),
                   held.status().ToString());
    }
  }
  if (!inherited.empty()) {
    auto session = TryResume(config, std::move(inherited));
    if (session.ok()) {
      server->session_ = std::move(session).value();
      server->resumed_ = true;
      spdlog::info("took over the live FUSE connection at {}", key);
    } else {
      spdlog::warn("cannot take over the FUSE connection at {}: {}; mounting anew", key,
                   session.status().ToString());
    }
  }
  if (!server->session_) {
    RETURN_IF_ERROR(PrepareMountpoint(config.mountpoint));
    ASSIGN_OR_RETURN(UniqueFd fd, OpenFuseDevice());
    RETURN_IF_ERROR(MountFuse(config.mountpoint, fd.get(), kMaxWrite));
    auto session = FuseSession::Init(FuseChannel(std::move(fd)), SessionOptionsOf(config));
    auto dev = CellarMountDev(config.mountpoint);
    if (!session.ok() || !dev.ok()) {
      Status ignored = UnmountFuse(config.mountpoint);
      (void)ignored;
      server->stopped_ = true;
      return session.ok() ? dev.status() : session.status();
    }
    server->session_ = std::move(session).value();
    server->session_->state().header().mount_dev = *dev;
  }
  RETURN_IF_ERROR(server->session_->Start());
  if (!server->resumed_ && !server->session_->passthrough()) {
    // Daemon reads: without this, readahead (mmap, cached opens) asks 128 KiB at a time.
    // (stat of the mountpoint needs the serving threads.)
    Status st = SetReadAheadKb(config.mountpoint, kMaxWrite / 1024);
    if (!st.ok()) spdlog::warn("read-ahead stays at the default: {}", st.ToString());
  }
  if (!config.fd_holder.empty()) {
    // At once, replacing whatever the holder kept under this mountpoint before.
    Status st = FdHolderClient(config.fd_holder).Put(key, server->session_->Fds());
    if (!st.ok()) spdlog::warn("fd holder {}: {}", config.fd_holder.string(), st.ToString());
    server->StartHolderWatch();
  }
  spdlog::info("FUSE mount at {} ({} threads, passthrough {})", config.mountpoint.string(),
               config.threads, server->passthrough_active() ? "on" : "off");
  return server;
}

void FuseServer::StartHolderWatch() {
  holder_watch_ = std::thread([this] {
    const FdHolderClient holder(config_.fd_holder);
    const std::string key = config_.mountpoint.string();
    bool warned = false;
    std::unique_lock lock(stop_mu_);
    while (!stopped_) {
      lock.unlock();
      // The holder may have restarted empty since we last gave it the connection.
      auto has = holder.Has(key);
      Status st = has.ok() ? Status::Ok() : has.status();
      if (has.ok() && !*has) {
        st = holder.Put(key, session_->Fds());
        if (st.ok())
          spdlog::info("fd holder {} keeps the FUSE connection", config_.fd_holder.string());
      }
      if (!st.ok() && !warned) {
        spdlog::warn("fd holder {}: {}; a crash now would break the pods' mounts",
                     config_.fd_holder.string(), st.ToString());
      }
      warned = !st.ok();
      lock.lock();
      stop_cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stopped_; });
    }
  });
}

void FuseServer::FinishRecovery() {
  if (session_) session_->fs().recovery().Finish();
}

void FuseServer::Pause() {
  if (session_) session_->Stop();
}

std::vector<int> FuseServer::ExportFds() const {
  if (!session_) return {};
  return session_->Fds();
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

Result<OpenFileCounts> FuseServer::OpenFiles(const std::string& volume_id) const {
  if (!session_) return Stopped();
  return session_->fs().OpenFiles(volume_id);
}

bool FuseServer::passthrough_active() const {
  return session_ && session_->passthrough();
}

Status FuseServer::Stop(bool keep_connection) {
  {
    std::lock_guard lock(stop_mu_);
    if (stopped_) return Status::Ok();
    stopped_ = true;
  }
  stop_cv_.notify_all();
  if (holder_watch_.joinable()) holder_watch_.join();
  Status st;
  if (keep_connection) {
    spdlog::info("leaving the FUSE connection at {} to a successor", config_.mountpoint.string());
  } else {
    st = UnmountFuse(config_.mountpoint);
    if (!config_.fd_holder.empty()) {
      // The holder must not keep a connection nobody will take over.
      Status dropped = FdHolderClient(config_.fd_holder).Drop(config_.mountpoint.string());
      if (!dropped.ok()) spdlog::warn("fd holder: {}", dropped.ToString());
    }
  }
  if (session_) session_->Stop();
  session_.reset();  // closes our files of the connection
  return st;
}

}  // namespace cellar::mount
