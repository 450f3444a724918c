// FuseChannel: one open /dev/fuse file of a connection. Reads requests, writes replies
// and notifications, and registers passthrough backing files. Thread-compatible: each
// serving thread owns its own clone, because the kernel answers a reply only on the
// file its request was read from.
#pragma once

#include <sys/uio.h>

#include <cstdint>

#include "common/status.h"
#include "common/unique_fd.h"

namespace cellar::mount {

class FuseChannel {
 public:
  explicit FuseChannel(UniqueFd fd) : fd_(std::move(fd)) {}
  FuseChannel(FuseChannel&&) = default;
  FuseChannel& operator=(FuseChannel&&) = default;

  int fd() const { return fd_.get(); }

  // A new /dev/fuse file bound to the same connection (FUSE_DEV_IOC_CLONE), so that
  // several threads read requests without contending on one file.
  Result<FuseChannel> Clone() const;

  // Reads one request into buf (size must cover max_write + headers). Returns the size,
  // or -errno: EAGAIN (nothing pending on a non-blocking file), EINTR, ENOENT (the
  // request was interrupted before we got it; read again), ENODEV (connection gone).
  ssize_t Read(char* buf, size_t size) const;

  // Sends the reply to `unique`: error 0 with the payload, or an errno (payload ignored).
  // Returns 0 or -errno; ENOENT means the kernel no longer waits for it (interrupted).
  int Reply(uint64_t unique, int error, const iovec* payload, int count) const;

  // Sends an unsolicited notification (FUSE_NOTIFY_*). Returns 0 or -errno.
  int Notify(int32_t code, const iovec* payload, int count) const;

  // FUSE_DEV_IOC_BACKING_OPEN on `backing_fd` (needs CAP_SYS_ADMIN). Returns the
  // backing id the kernel will accept in an OPEN reply, or the ioctl's errno.
  Result<int32_t> OpenBacking(int backing_fd) const;
  // FUSE_DEV_IOC_BACKING_CLOSE. Files already opened keep their backing file.
  Status CloseBacking(int32_t backing_id) const;

  // Registers and drops a throwaway backing file (a memfd): whether this process may
  // use passthrough on a connection whose FUSE_INIT granted it. The kernel grants the
  // flag to anyone, but refuses backing files without CAP_SYS_ADMIN in the initial user
  // namespace (a node plugin in a user namespace, or one not privileged).
  Status ProbeBacking() const;

 private:
  int WriteV(iovec* iov, int count, size_t total) const;

  UniqueFd fd_;
};

}  // namespace cellar::mount
