// FuseSession: one FUSE connection from INIT to the end. Negotiates the protocol
// (passthrough where the kernel offers it and the caller wants it), then serves requests
// on N threads, each reading its own clone of the /dev/fuse file.
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "mount/fuse_channel.h"
#include "mount/fuse_fs.h"

namespace cellar::mount {

struct SessionOptions {
  bool passthrough = true;  // ask for passthrough if the kernel offers it
  int threads = 4;
  double entry_timeout = 1.0;
  double attr_timeout = 1.0;
  size_t max_inode_fds = 8192;
};

inline constexpr uint32_t kMaxWrite = 1 << 20;  // also max_read: 1 MiB requests
inline constexpr uint32_t kMaxPages = kMaxWrite / 4096;

class FuseSession {
 public:
  // Reads the kernel's FUSE_INIT from `channel` (blocking) and answers it.
  // Unavailable if the kernel speaks another major version or the connection dies.
  static Result<std::unique_ptr<FuseSession>> Init(FuseChannel channel, SessionOptions options);
  ~FuseSession();  // Stop()

  FuseFs& fs() { return *fs_; }
  bool passthrough() const { return fs_->options().passthrough; }
  uint32_t kernel_minor() const { return kernel_minor_; }

  // Starts the serving threads.
  Status Start();
  // Wakes and joins the threads. The connection stays open until destruction.
  void Stop();

 private:
  FuseSession(FuseChannel channel, SessionOptions options)
      : channel_(std::move(channel)), options_(options) {}
  Status Negotiate();
  void Serve(FuseChannel channel);
  void Dispatch(const FuseChannel& channel, const Request& req, Reply& reply);

  FuseChannel channel_;  // the mount's own file: INIT, notifications, backing ioctls
  SessionOptions options_;
  uint32_t kernel_minor_ = 0;
  std::unique_ptr<FuseFs> fs_;
  UniqueFd stop_fd_;  // eventfd: readable once Stop() was called
  std::vector<std::thread> threads_;
};

}  // namespace cellar::mount
