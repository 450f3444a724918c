#include "mount/fuse_session.h"

#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <chrono>

#include "common/logging.h"
#include "mount/fuse_ops.h"

namespace cellar::mount {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kInBufferSize = kMaxWrite + 64 * 1024;  // a full WRITE plus headers
constexpr size_t kOutBufferSize = kMaxWrite + 4096;

using Handler = int (*)(FuseFs&, const Request&, Reply&);

constexpr std::array<Handler, 64> MakeHandlers() {
  std::array<Handler, 64> h{};
  h[FUSE_LOOKUP] = OnLookup;
  h[FUSE_FORGET] = OnForget;
  h[FUSE_GETATTR] = OnGetattr;
  h[FUSE_SETATTR] = OnSetattr;
  h[FUSE_READLINK] = OnReadlink;
  h[FUSE_SYMLINK] = OnSymlink;
  h[FUSE_MKNOD] = OnMknod;
  h[FUSE_MKDIR] = OnMkdir;
  h[FUSE_UNLINK] = OnUnlink;
  h[FUSE_RMDIR] = OnRmdir;
  h[FUSE_RENAME] = OnRename;
  h[FUSE_LINK] = OnLink;
  h[FUSE_OPEN] = OnOpen;
  h[FUSE_READ] = OnRead;
  h[FUSE_WRITE] = OnWrite;
  h[FUSE_STATFS] = OnStatfs;
  h[FUSE_RELEASE] = OnRelease;
  h[FUSE_FSYNC] = OnFsync;
  h[FUSE_SETXATTR] = OnSetxattr;
  h[FUSE_GETXATTR] = OnGetxattr;
  h[FUSE_LISTXATTR] = OnListxattr;
  h[FUSE_REMOVEXATTR] = OnRemovexattr;
  h[FUSE_OPENDIR] = OnOpendir;
  h[FUSE_READDIR] = OnReaddir;
  h[FUSE_RELEASEDIR] = OnReleasedir;
  h[FUSE_FSYNCDIR] = OnFsyncdir;
  h[FUSE_CREATE] = OnCreate;
  h[FUSE_BATCH_FORGET] = OnBatchForget;
  h[FUSE_FALLOCATE] = OnFallocate;
  h[FUSE_READDIRPLUS] = OnReaddirplus;
  h[FUSE_RENAME2] = OnRename2;
  h[FUSE_LSEEK] = OnLseek;
  // ACCESS: default_permissions makes the kernel check; ENOSYS stops it asking.
  // FLUSH: bytes are in the arena as soon as written; ENOSYS spares every close(2) a
  // round trip (the kernel stops sending it).
  // Locks stay local to the kernel (no FUSE_POSIX_LOCKS / FUSE_FLOCK_LOCKS).
  return h;
}
constexpr std::array<Handler, 64> kHandlers = MakeHandlers();

// Sent by Stop() to the serving threads: its handler does nothing, and being installed
// without SA_RESTART it makes their blocking read of /dev/fuse return EINTR.
constexpr int kWakeSignal = SIGUSR2;

void InstallWakeHandler() {
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART
  if (::sigaction(kWakeSignal, &sa, nullptr) != 0) {
    spdlog::error("sigaction({}): {}", kWakeSignal, strerror(errno));
  }
}

// Per-thread task state: our own umask (0: the kernel already applied the caller's),
// no supplementary groups, so setfsuid/setfsgid fully describe the requester, and the
// wake signal deliverable whatever mask the thread was started with.
void PrepareServingThread() {
  if (::unshare(CLONE_FS) != 0) spdlog::warn("unshare(CLONE_FS): {}", strerror(errno));
  ::umask(0);
  if (::syscall(SYS_setgroups, 0, nullptr) != 0) spdlog::warn("setgroups: {}", strerror(errno));
  sigset_t wake;
  sigemptyset(&wake);
  sigaddset(&wake, kWakeSignal);
  ::pthread_sigmask(SIG_UNBLOCK, &wake, nullptr);
}

}  // namespace

Result<std::unique_ptr<FuseSession>> FuseSession::Init(FuseChannel channel,
                                                       SessionOptions options) {
  std::unique_ptr<FuseSession> session(new FuseSession(std::move(channel), options));
  RETURN_IF_ERROR(session->Negotiate());
  return session;
}

Result<std::unique_ptr<FuseSession>> FuseSession::Resume(FuseChannel channel,
                                                         std::vector<FuseChannel> clones,
                                                         std::unique_ptr<SessionState> state,
                                                         SessionOptions options) {
  std::unique_ptr<FuseSession> session(new FuseSession(std::move(channel), options));
  const StateHeader& h = state->header();
  session->kernel_minor_ = h.kernel_minor;
  session->resumed_ = true;
  session->clones_ = std::move(clones);
  session->state_ = std::move(state);
  FsOptions fs_options;
  fs_options.passthrough = (h.init_flags & kernel::kPassthrough) != 0;
  fs_options.entry_timeout = options.entry_timeout;
  fs_options.attr_timeout = options.attr_timeout;
  fs_options.max_inode_fds = options.max_inode_fds;
  fs_options.stats = options.stats;
  if (options.passthrough != fs_options.passthrough) {
    spdlog::warn(
        "the live connection has passthrough {}; keeping it (a new mode needs a new mount)",
        fs_options.passthrough ? "on" : "off");
  }
  session->fs_ = std::make_unique<FuseFs>(&session->channel_, fs_options, session->state_.get());
  session->fs_->recovery().Begin();
  return session;
}

Status FuseSession::Negotiate() {
  std::vector<char> buf(kInBufferSize);
  ssize_t n;
  do {
    n = channel_.Read(buf.data(), buf.size());
  } while (n == -EINTR || n == -ENOENT);
  if (n < 0) return Status::FromErrno(static_cast<int>(-n), "reading FUSE_INIT");
  auto* in = reinterpret_cast<const fuse_in_header*>(buf.data());
  auto* init = reinterpret_cast<const fuse_init_in*>(buf.data() + sizeof(fuse_in_header));
  if (in->opcode != FUSE_INIT || static_cast<size_t>(n) < sizeof(*in) + 16) {
    return Status(Code::kUnavailable, fmt::format("expected FUSE_INIT, got opcode {}", in->opcode));
  }
  if (init->major != FUSE_KERNEL_VERSION) {
    channel_.Reply(in->unique, EPROTO, nullptr, 0);
    return Status(Code::kUnavailable,
                  fmt::format("kernel speaks FUSE {}.{}, we speak 7", init->major, init->minor));
  }
  kernel_minor_ = init->minor;
  uint64_t offered = init->flags;
  if ((offered & kernel::kInitExt) && static_cast<size_t>(n) >= sizeof(*in) + sizeof(*init)) {
    offered |= static_cast<uint64_t>(init->flags2) << 32;
  }
  uint64_t wanted = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_AUTO_INVAL_DATA |
                    FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO | FUSE_ASYNC_DIO |
                    FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS | FUSE_ABORT_ERROR |
                    kernel::kInitExt | kernel::kDirectIoAllowMmap | FUSE_HANDLE_KILLPRIV_V2 |
                    kernel::kCreateSuppGroup;
  // CREATE_SUPP_GROUP: the kernel checked the caller's permission on the parent with
  // all its groups; creating with only its fsuid/fsgid would make tmpfs check again
  // without them (a pod whose fsGroup owns the volume is such a caller).
  // HANDLE_KILLPRIV_V2: we clear suid/sgid where the kernel flags a write, truncate or
  // O_TRUNC open, and on the empty SETATTR it sends when a passthrough write must drop
  // them (OnSetattr). It is also what lets the kernel mark inodes S_NOSEC; without it
  // every write(2) - passthrough ones too - first asks us for security.capability
  // (measured: 4 KiB passthrough writes 4x slower, 64 KiB ones 1.7x).
  // Never FUSE_WRITEBACK_CACHE: the kernel refuses it together with passthrough, and
  // writes must reach the arena at once for the capacity check and for other readers.
  if (options_.passthrough) wanted |= kernel::kPassthrough;
  uint64_t flags = wanted & offered;
  bool passthrough = (flags & kernel::kPassthrough) != 0;

  kernel::InitOut out{};
  out.major = FUSE_KERNEL_VERSION;
  out.minor = kernel::kMinorVersion;
  out.max_readahead = std::min<uint32_t>(init->max_readahead, kMaxWrite);
  out.flags = static_cast<uint32_t>(flags);
  out.flags2 = static_cast<uint32_t>(flags >> 32);
  out.max_background = 64;
  out.congestion_threshold = 48;
  out.max_write = kMaxWrite;
  out.time_gran = 1;
  out.max_pages = kMaxPages;
  // The backing files live on tmpfs, which is not stacked: depth 1 is enough, and keeps
  // the FUSE mount itself usable under one more stacking layer (overlayfs).
  out.max_stack_depth = passthrough ? 1 : 0;
  iovec iov = {&out, sizeof(out)};
  int err = channel_.Reply(in->unique, 0, &iov, 1);
  if (err != 0) return Status::FromErrno(-err, "replying to FUSE_INIT");
  // Granted is not usable: the kernel grants the flag to any daemon, then refuses its
  // backing files without CAP_SYS_ADMIN. Found out now, the node can pick another mode;
  // found out at each OPEN, every file would quietly be served by the daemon.
  bool refused = false;
  if (passthrough) {
    Status probe = channel_.ProbeBacking();
    if (!probe.ok()) {
      spdlog::warn(
          "FUSE_INIT granted passthrough, but the kernel refuses this process backing "
          "files ({}): passthrough needs CAP_SYS_ADMIN in the initial user namespace",
          probe.ToString());
      refused = true;
      passthrough = false;
      flags &= ~kernel::kPassthrough;  // so a successor taking over does not try either
    }
  }
  spdlog::info("FUSE 7.{} negotiated (kernel 7.{}), passthrough {}",
               std::min(kernel_minor_, kernel::kMinorVersion), kernel_minor_,
               passthrough            ? "on"
               : refused              ? "refused"
               : options_.passthrough ? "not offered"
                                      : "off");

  ASSIGN_OR_RETURN(state_, SessionState::Create());
  StateHeader& h = state_->header();
  h.kernel_minor = kernel_minor_;
  h.init_flags = flags;
  h.offered_flags = offered;

  FsOptions fs_options;
  fs_options.passthrough = passthrough;
  fs_options.entry_timeout = options_.entry_timeout;
  fs_options.attr_timeout = options_.attr_timeout;
  fs_options.max_inode_fds = options_.max_inode_fds;
  fs_options.stats = options_.stats;
  fs_ = std::make_unique<FuseFs>(&channel_, fs_options, state_.get());
  return Status::Ok();
}

std::vector<int> FuseSession::Fds() const {
  std::vector<int> fds = {channel_.fd(), state_->fd()};
  for (const auto& clone : clones_) fds.push_back(clone.fd());
  return fds;
}

Status FuseSession::Start() {
  InstallWakeHandler();
  // A predecessor's clones are reused (each may hold requests it read and never
  // answered); more are cloned if we run more threads. Fewer threads than clones: the
  // extra clones are still read, since the kernel queues work on any of them.
  size_t count = std::max<size_t>(std::max(1, options_.threads), clones_.size());
  while (clones_.size() < count) {
    ASSIGN_OR_RETURN(FuseChannel clone, channel_.Clone());
    clones_.push_back(std::move(clone));
  }
  // Blocking reads: one syscall per request. (A predecessor's clones may come
  // non-blocking: the flag lives in the file they share.) Against a non-blocking read
  // plus epoll, this doubled stat throughput and raised fallback reads 1.2-1.7x here.
  for (const auto& clone : clones_) {
    int fl = ::fcntl(clone.fd(), F_GETFL);
    if (fl < 0 || ((fl & O_NONBLOCK) && ::fcntl(clone.fd(), F_SETFL, fl & ~O_NONBLOCK) != 0)) {
      return ErrnoError("fcntl ~O_NONBLOCK on /dev/fuse clone");
    }
  }
  if (resumed_) {
    if (state_->header().offered_flags & kernel::kHasResend) {
      // Requests the predecessor read but never answered sit in the clones' processing
      // queues; this puts them back in the pending queue, marked as resent.
      int err = channel_.Notify(kernel::kNotifyResend, nullptr, 0);
      if (err != 0)
        spdlog::warn("FUSE_NOTIFY_RESEND: {}", strerror(-err));
      else
        spdlog::info("asked the kernel to resend unanswered requests");
    } else {
      spdlog::warn(
          "kernel without FUSE_NOTIFY_RESEND: requests in flight at the crash stay "
          "unanswered");
    }
  }
  // Only now: the kernel resends every request of every processing queue, ours too, so
  // a request a thread of ours had already read would be served twice (a second
  // O_TRUNC create emptied a file its caller had just written).
  for (const auto& clone : clones_) {
    running_.fetch_add(1);
    threads_.emplace_back([this, &clone] {
      Serve(clone);
      running_.fetch_sub(1);
    });
  }
  return Status::Ok();
}

void FuseSession::Stop() {
  stopping_.store(true, std::memory_order_release);
  // A thread blocked in read(2) returns EINTR on the wake signal. One that was between
  // its check of stopping_ and the read when the signal came would block again, so
  // signal until every thread is out.
  while (running_.load() > 0) {
    for (auto& t : threads_) {
      if (t.joinable()) ::pthread_kill(t.native_handle(), kWakeSignal);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

FuseSession::~FuseSession() {
  Stop();
}

void FuseSession::Serve(const FuseChannel& channel) {
  PrepareServingThread();
  // Uninitialised: a page costs RSS only once a request that large has used it.
  std::unique_ptr<char[]> in_buf(new char[kInBufferSize]);
  std::unique_ptr<char[]> out_buf(new char[kOutBufferSize]);
  // A blocking read: the kernel wakes one waiting thread per request (an exclusive
  // wait), and Stop() interrupts it with the wake signal.
  while (!stopping_.load(std::memory_order_acquire)) {
    ssize_t n = channel.Read(in_buf.get(), kInBufferSize);
    if (n == -EINTR || n == -ENOENT) continue;
    if (n == -ENODEV) return;  // unmounted: the connection is gone
    if (n < 0) {
      spdlog::error("read /dev/fuse: {}", strerror(static_cast<int>(-n)));
      return;
    }
    auto* hdr = reinterpret_cast<const fuse_in_header*>(in_buf.get());
    size_t len = std::min<size_t>(hdr->len, static_cast<size_t>(n));
    Request req{hdr, in_buf.get() + sizeof(fuse_in_header), len - sizeof(fuse_in_header)};
    // Extensions trail the arguments; keep them out of arg_size.
    size_t ext_size = static_cast<size_t>(hdr->total_extlen) * 8;
    if (ext_size > 0 && ext_size <= req.arg_size) {
      req.arg_size -= ext_size;
      req.ext = req.arg + req.arg_size;
      req.ext_size = ext_size;
    }
    Reply reply(out_buf.get(), kOutBufferSize);
    Dispatch(channel, req, reply);
  }
}

void FuseSession::Dispatch(const FuseChannel& channel, const Request& req, Reply& reply) {
  const uint32_t opcode = req.in->opcode;
  int err;
  if (opcode == FUSE_INTERRUPT) {
    return;  // every handler is short and uninterruptible: let it finish and reply
  } else if (opcode == FUSE_DESTROY) {
    err = 0;
  } else if (opcode < kHandlers.size() && kHandlers[opcode] != nullptr) {
    fs_->recovery().Await(req);
    // Timed from after the recovery wait: the histogram shows the cost of serving, and
    // a takeover shows in the restart metrics instead.
    const auto start = options_.stats ? Clock::now() : Clock::time_point{};
    err = kHandlers[opcode](*fs_, req, reply);  // each answers its own resends
    if (options_.stats) {
      options_.stats->RecordRequest(
          opcode,
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
    }
  } else {
    err = ENOSYS;
  }
  if (err == kNoReply) return;
  if (err == ESTALE || err == EIO) {
    spdlog::debug("opcode {} node {:#x}: {}", opcode, req.in->nodeid, strerror(err));
  }
  iovec iov[2];
  int count = reply.Iov(iov);
  int rc = channel.Reply(req.in->unique, err, iov, count);
  if (rc != 0 && rc != -ENOENT) {
    spdlog::warn("reply to opcode {} failed: {}", opcode, strerror(-rc));
  }
}

}  // namespace cellar::mount
