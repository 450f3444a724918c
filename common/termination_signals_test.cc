// Signals arrive as values through the fd, in a child process so that blocking them
// does not change the test runner.
#include "common/termination_signals.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

namespace cellar {
namespace {

using std::chrono::milliseconds;

// Runs `body` in a child; returns its exit code (or 100 + the signal that killed it).
template <typename Body>
int InChild(Body body) {
  pid_t pid = ::fork();
  if (pid == 0) _exit(body());
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

TEST(TerminationSignalsTest, SigtermIsReadNotFatal) {
  EXPECT_EQ(InChild([] {
              auto signals = TerminationSignals::Open();
              if (!signals.ok()) return 1;
              if (signals->Wait(milliseconds(10)).value() != 0) return 2;  // none yet
              ::kill(::getpid(), SIGTERM);
              Result<int> got = signals->Wait(milliseconds(1000));
              return got.ok() && *got == SIGTERM ? 0 : 3;
            }),
            0);
}

TEST(TerminationSignalsTest, ThreadsStartedLaterDoNotTakeTheSignal) {
  EXPECT_EQ(InChild([] {
              auto signals = TerminationSignals::Open();
              if (!signals.ok()) return 1;
              // A signal sent to the process while another thread runs still reaches the fd.
              std::thread busy([] { std::this_thread::sleep_for(milliseconds(200)); });
              ::kill(::getpid(), SIGINT);
              Result<int> got = signals->Wait(milliseconds(-1));
              busy.join();
              return got.ok() && *got == SIGINT ? 0 : 3;
            }),
            0);
}

TEST(TerminationSignalsTest, TimeoutReturnsZero) {
  EXPECT_EQ(InChild([] {
              auto signals = TerminationSignals::Open();
              if (!signals.ok()) return 1;
              auto start = std::chrono::steady_clock::now();
              Result<int> got = signals->Wait(milliseconds(50));
              auto waited = std::chrono::steady_clock::now() - start;
              return got.ok() && *got == 0 && waited >= milliseconds(50) ? 0 : 3;
            }),
            0);
}

}  // namespace
}  // namespace cellar
