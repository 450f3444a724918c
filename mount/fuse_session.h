// FuseSession: one FUSE connection from INIT to the end. Negotiates the protocol
// (passthrough where the kernel offers it and the caller wants it), then serves requests
// on N threads, each reading its own clone of the /dev/fuse file.
#pragma once

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "mount/fuse_channel.h"
#include "mount/fuse_fs.h"
#include "mount/fuse_message.h"
#include "mount/fuse_stats.h"
#include "mount/session_state.h"

namespace cellar::mount {

struct SessionOptions {
  bool passthrough = true;  // ask for passthrough if the kernel offers it
  int threads = 4;
  double entry_timeout = 1.0;
  double attr_timeout = 1.0;
  size_t max_inode_fds = 8192;
  FuseStats* stats = nullptr;  // counts every request and open when set
};

inline constexpr uint32_t kMaxWrite = 1 << 20;  // also max_read: 1 MiB requests
inline constexpr uint32_t kMaxPages = kMaxWrite / 4096;

class FuseSession {
 public:
  // Reads the kernel's FUSE_INIT from `channel` (blocking) and answers it.
  // Unavailable if the kernel speaks another major version or the connection dies.
  // The caller records the mount's st_dev in state().header().mount_dev.
  static Result<std::unique_ptr<FuseSession>> Init(FuseChannel channel, SessionOptions options);

  // Takes over a live connection from a predecessor: `channel` is the connection's
  // main file, `clones` the files its threads read (requests they had read but not
  // answered are still queued on them), `state` what it recorded. No INIT: the
  // protocol is the one the state says was negotiated. The FuseFs starts recovering
  // (recovery.h): each volume's nodes and handles come back as it is attached again.
  // Start() asks the kernel to resend the unanswered requests.
  static Result<std::unique_ptr<FuseSession>> Resume(FuseChannel channel,
                                                     std::vector<FuseChannel> clones,
                                                     std::unique_ptr<SessionState> state,
                                                     SessionOptions options);
  ~FuseSession();  // Stop()

  FuseFs& fs() { return *fs_; }
  SessionState& state() { return *state_; }
  bool passthrough() const { return fs_->options().passthrough; }
  uint32_t kernel_minor() const { return kernel_minor_; }

  // Starts the serving threads (cloning the channel where there are fewer clones than
  // threads). After Resume, first sends FUSE_NOTIFY_RESEND (before any thread reads).
  Status Start();
  // Wakes and joins the threads. The connection's files stay open until destruction.
  void Stop();

  // The files a successor needs, in order: the main channel, the state memfd, then
  // every clone. Owned by the session; valid until it is destroyed.
  std::vector<int> Fds() const;

 private:
  FuseSession(FuseChannel channel, SessionOptions options)
      : channel_(std::move(channel)), options_(options) {}
  Status Negotiate();
  void Serve(const FuseChannel& channel);
  void Dispatch(const FuseChannel& channel, const Request& req, Reply& reply);

  FuseChannel channel_;  // the mount's own file: INIT, notifications, backing ioctls
  SessionOptions options_;
  uint32_t kernel_minor_ = 0;
  bool resumed_ = false;
  std::unique_ptr<SessionState> state_;
  std::unique_ptr<FuseFs> fs_;
  std::vector<FuseChannel> clones_;  // one per serving thread; never closed before the end
  // Set by Stop(): a thread that finishes a request reads no other.
  std::atomic<bool> stopping_{false};
  std::atomic<int> running_{0};  // serving threads not yet returned
  std::vector<std::thread> threads_;
};

}  // namespace cellar::mount
