// ReadLease: the kernel's word that nobody writes a file while it is being sent.
//
// A read lease (fcntl F_SETLEASE F_RDLCK) is refused while the file is open for writing
// anywhere on the node, and an open for writing, a truncate or an unlink-by-rename over
// it breaks the lease first. Pods' writes always end up as opens of the arena file
// (through FUSE passthrough, the daemon's own FUSE handlers, or a direct bind mount), so
// a file sent under an unbroken lease is exactly the file its writer last closed.
//
// A writer that breaks the lease waits until the holder lets go (up to the kernel's
// lease-break-time, 45 s by default). The watcher lets go within ~10 ms, even while the
// sending thread is blocked on a slow or cut network, and marks the lease broken.
#pragma once

#include <atomic>
#include <memory>

#include "common/status.h"

namespace cellar::node {

class ReadLease {
 public:
  // Takes a read lease on `fd` (opened O_RDONLY; the caller keeps it open for the
  // lease's life). Aborted when the file is open for writing, the errno status otherwise.
  static Result<std::unique_ptr<ReadLease>> Take(int fd);
  ~ReadLease();  // lets go of the lease
  ReadLease(const ReadLease&) = delete;
  ReadLease& operator=(const ReadLease&) = delete;

  // True once a writer asked for the file: what was sent since may be torn.
  bool broken() const { return broken_.load(std::memory_order_acquire); }

 private:
  friend class LeaseWatcher;
  explicit ReadLease(int fd) : fd_(fd) {}
  int fd_;
  std::atomic<bool> broken_{false};
};

// The lease-break signal (SIGIO) would kill the process: ignore it. Once, before any
// lease is taken; the watcher polls instead of waiting for the signal.
void IgnoreLeaseBreakSignal();

}  // namespace cellar::node
