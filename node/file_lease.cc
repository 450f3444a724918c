#include "node/file_lease.h"

#include <fcntl.h>
#include <signal.h>

#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

namespace cellar::node {

// Polls every lease held by the process and releases the broken ones, so that a writer
// never waits for a sender. One thread for the process, started with the first lease.
class LeaseWatcher {
 public:
  static LeaseWatcher& Get() {
    static LeaseWatcher* watcher = new LeaseWatcher();  // lives as long as the process
    return *watcher;
  }
  void Add(ReadLease* lease) {
    std::lock_guard lock(mu_);
    leases_.insert(lease);
  }
  // After Remove returns the watcher no longer touches the lease or its fd.
  void Remove(ReadLease* lease) {
    std::lock_guard lock(mu_);
    leases_.erase(lease);
  }

 private:
  LeaseWatcher() {
    std::thread([this] { Run(); }).detach();
  }
  void Run() {
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      std::lock_guard lock(mu_);
      for (ReadLease* lease : leases_) {
        if (lease->broken()) continue;
        // During a break F_GETLEASE answers the type the breaker needs (F_UNLCK here).
        if (::fcntl(lease->fd_, F_GETLEASE) != F_RDLCK) {
          lease->broken_.store(true, std::memory_order_release);
          ::fcntl(lease->fd_, F_SETLEASE, F_UNLCK);
        }
      }
    }
  }
  std::mutex mu_;
  std::set<ReadLease*> leases_;
};

void IgnoreLeaseBreakSignal() {
  ::signal(SIGIO, SIG_IGN);
}

Result<std::unique_ptr<ReadLease>> ReadLease::Take(int fd) {
  if (::fcntl(fd, F_SETLEASE, F_RDLCK) != 0) {
    if (errno == EAGAIN) return Error(Code::kAborted, "it is open for writing");
    return ErrnoError("read lease");
  }
  std::unique_ptr<ReadLease> lease(new ReadLease(fd));
  LeaseWatcher::Get().Add(lease.get());
  return lease;
}

ReadLease::~ReadLease() {
  LeaseWatcher::Get().Remove(this);
  if (!broken()) ::fcntl(fd_, F_SETLEASE, F_UNLCK);
}

}  // namespace cellar::node
