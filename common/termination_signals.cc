#include "common/termination_signals.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace cellar {

Result<TerminationSignals> TerminationSignals::Open() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  UniqueFd fd(::signalfd(-1, &signals, SFD_CLOEXEC));
  if (!fd) return ErrnoError("signalfd");
  return TerminationSignals(std::move(fd));
}

Result<int> TerminationSignals::Take() const {
  signalfd_siginfo info{};
  ssize_t n;
  do {
    n = ::read(fd_.get(), &info, sizeof(info));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoError("read signalfd");
  if (n != sizeof(info)) return Internal("short read of signalfd");
  return static_cast<int>(info.ssi_signo);
}

Result<int> TerminationSignals::Wait(std::chrono::milliseconds timeout) const {
  using Clock = std::chrono::steady_clock;
  const bool forever = timeout.count() < 0;
  const auto end = Clock::now() + (forever ? std::chrono::milliseconds(0) : timeout);
  pollfd pfd{fd_.get(), POLLIN, 0};
  for (;;) {
    int wait_ms = -1;
    if (!forever) {
      // Rounded up: a truncated wait would wake just before `end`, and report a
      // timeout early.
      auto left = std::chrono::ceil<std::chrono::milliseconds>(end - Clock::now());
      wait_ms = static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    int n = ::poll(&pfd, 1, wait_ms);
    if (n > 0) return Take();
    if (n == 0 && (forever || Clock::now() >= end)) return 0;
    if (n == 0) continue;
    if (errno != EINTR) return ErrnoError("poll signalfd");
  }
}

}  // namespace cellar
