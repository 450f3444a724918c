// TerminationSignals: SIGTERM and SIGINT read from a file descriptor, so a process's main
// loop waits for them with poll beside its other fds, instead of running code in a
// signal handler. Every long-running Cellar process (node, fd holder, registrar) stops
// this way.
#pragma once

#include <chrono>

#include "common/status.h"
#include "common/unique_fd.h"

namespace cellar {

class TerminationSignals {
 public:
  // Blocks SIGTERM and SIGINT in the calling thread, and so in every thread it starts
  // afterwards, and opens a signalfd for them. Call before any thread starts (gRPC
  // starts threads when a server or channel is built), or a signal may go to a thread
  // that does not block it and kill the process. Errors: the errno of signalfd.
  static Result<TerminationSignals> Open();

  // Readable when a signal is pending: for poll beside other fds.
  int fd() const { return fd_.get(); }

  // Waits up to `timeout` (negative: forever) for a signal and consumes it. Returns its
  // number, or 0 on timeout. Retries EINTR; other errors are returned.
  Result<int> Wait(std::chrono::milliseconds timeout) const;

  // Consumes a pending signal once poll said fd() is readable: its number.
  Result<int> Take() const;

 private:
  explicit TerminationSignals(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace cellar
