// The hand-over between two `cellar node` processes of one state dir (a rolling update,
// or a restart that must not break pods' mounts). The running process, the predecessor,
// listens on a SOCK_SEQPACKET socket (<state_dir>/handover.sock unless --handover-socket)
// beside its CSI socket. A new process, the successor, before it takes the state dir's
// lock:
//
//   successor -> "HANDOVER"
//   predecessor: stops taking CSI calls, lets go of both socket paths, pauses its FUSE
//                threads (requests then wait in the kernel), closes the journal and
//                releases the lock (VolumeHost::HandOver)
//   predecessor -> "OK" + the FUSE connection's files (none in direct mode)
//
// The successor then opens the store and serves the connection it was given, so pods'
// mounts never see ENOTCONN. With nobody listening it starts afresh (or resumes the
// connection from the fd holder after a crash).
#pragma once

#include <filesystem>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace cellar::node {

// Successor side: asks a live predecessor serving `socket` to hand over, and waits up to
// 60 s for it. Returns the files of its FUSE connection (empty if it had none), or an
// empty vector when nobody serves `socket`. Unavailable if the predecessor refused or
// did not answer; other errors of connecting.
Result<std::vector<UniqueFd>> TakeOverFrom(const std::filesystem::path& socket);

// Predecessor side: where successors ask.
class HandoverListener {
 public:
  // Errors: those of ListenSeqpacket (a live process already serves `socket`...).
  static Result<HandoverListener> Listen(std::filesystem::path socket);

  // Readable when a successor connects: for poll beside other fds.
  int fd() const { return fd_.get(); }
  // Once poll said fd() is readable: the connection of a successor that asked to hand
  // over, to answer with AnswerHandover; an empty fd for anything else.
  UniqueFd Accept() const;
  // Stops listening and removes the socket path, for whoever serves it next. Only this
  // does: destroyed without Close (a start that fails), the path stays.
  void Close();

 private:
  HandoverListener(std::filesystem::path path, UniqueFd fd)
      : path_(std::move(path)), fd_(std::move(fd)) {}
  std::filesystem::path path_;
  UniqueFd fd_;
};

// Predecessor side: gives the successor the files it takes over, once this process let go
// of the store and the lock.
Status AnswerHandover(int successor, const std::vector<int>& fds);

}  // namespace cellar::node
