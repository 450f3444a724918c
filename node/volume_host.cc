#include "node/volume_host.h"

#include <fcntl.h>
#include <sys/file.h>

#include <spdlog/spdlog.h>

#include "node/handover.h"
#include "node/source_choice.h"

namespace cellar::node {

namespace fs = std::filesystem;

namespace {

// One process per state dir: the store's journal has a single writer.
Result<UniqueFd> LockStateDir(const fs::path& state_dir) {
  fs::path path = state_dir / "lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return ErrnoError("open {}", path.string());
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Error(Code::kFailedPrecondition,
                   "another cellar node holds {} and did not hand over; stop it first",
                   state_dir.string());
    }
    return ErrnoError("flock {}", path.string());
  }
  return fd;
}

}  // namespace

Result<std::unique_ptr<VolumeHost>> VolumeHost::Open(VolumeHostOptions options) {
  std::unique_ptr<VolumeHost> host(new VolumeHost());
  ASSIGN_OR_RETURN(host->state_lock_, LockStateDir(options.state_dir));
  ASSIGN_OR_RETURN(host->store_, store::Store::Open({options.state_dir, options.capacity_bytes,
                                                     options.max_volumes, nullptr}));
  ASSIGN_OR_RETURN(host->source_,
                   OpenVolumeSource(*host->store_,
                                    {options.io_mode, options.state_dir / "fuse", options.fd_holder,
                                     std::move(options.inherited), &host->fuse_stats_}));
  for (const auto& v : host->store_->List()) {
    Status st = host->source_->Attach(v);
    if (!st.ok()) spdlog::warn("volume {}: cannot attach: {}", v.id, st.ToString());
  }
  host->source_->AttachedAll();
  return host;
}

void VolumeHost::Stop(bool keep_connection) {
  Status st = source_->Shutdown(keep_connection);
  if (!st.ok()) spdlog::warn("stopping: {}", st.ToString());
  source_.reset();
}

void VolumeHost::HandOver(int successor) {
  // Here the order differs from Stop's: the successor reads the store and the
  // connection only after we let go of both. The FUSE threads are stopped first
  // (requests queue in the kernel), so nothing reads the store any more; the journal is
  // closed and the lock released; then the files travel, and only then does the source
  // let go of its copies (until they are sent, those keep the connection alive).
  source_->Pause();
  spdlog::debug("FUSE threads paused");
  std::vector<int> fds = source_->HandoverFds();
  store_.reset();
  state_lock_.Reset();
  Status sent = AnswerHandover(successor, fds);
  Status st = source_->Shutdown(/*keep_connection=*/true);
  if (!sent.ok()) spdlog::error("hand-over: {}", sent.ToString());
  if (!st.ok()) spdlog::warn("hand-over: {}", st.ToString());
  source_.reset();
}

}  // namespace cellar::node
