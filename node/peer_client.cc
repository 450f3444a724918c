#include "node/peer_client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "node/peer_path.h"

namespace cellar::node {

namespace fs = std::filesystem;
using namespace cellar::peer::v1;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kParallelFiles = 4;
constexpr auto kDescribeDeadline = std::chrono::seconds(10);
constexpr auto kWriterPatience = std::chrono::seconds(10);

// The owner's answer, with the node and address the reader dialled.
Status FromGrpc(const grpc::Status& st, const csi::RemoteOwner& owner) {
  if (st.ok()) return Status::Ok();
  std::string where = fmt::format("node \"{}\" at {}", owner.node_id, owner.address);
  auto code = static_cast<Code>(st.error_code());
  if (code == Code::kUnavailable || code == Code::kDeadlineExceeded) {
    return Error(Code::kUnavailable, "{} cannot be reached: {}", where, st.error_message());
  }
  return Error(code, "{}: {}", where, st.error_message());
}

struct timespec TimespecOf(int64_t ns) {
  return {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

std::string TempNameFor(const fs::path& target) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  // Not the target's name in it: a name of NAME_MAX bytes would leave no room.
  return (target.parent_path() / fmt::format("{}{:016x}", kFetchPrefix, rng())).string();
}

// Checks what the owner sent before anything is written: it names the volume asked for
// and only paths inside it, parents before children.
Status CheckAnswer(const DescribeResponse& resp, const std::string& volume_id,
                   const csi::RemoteOwner& owner) {
  std::string what = fmt::format("volume {} from node \"{}\"", volume_id, owner.node_id);
  if (resp.volume_id() != volume_id) {
    return Error(Code::kDataLoss, "{}: the owner answered for volume \"{}\"", what,
                 resp.volume_id());
  }
  std::set<std::string> dirs, seen;
  for (const Entry& e : resp.entries()) {
    // One entry per path: a symlink and a directory of one name would let a file be
    // written through the link, outside the replica.
    if (!seen.insert(e.path()).second) {
      return Error(Code::kDataLoss, "{}: \"{}\" is listed twice", what, e.path());
    }
    if (Status bad = CheckPeerPath(e.path(), what); !bad.ok()) {
      return Error(Code::kDataLoss, "{}", bad.message());
    }
    std::string parent = fs::path(e.path()).parent_path().generic_string();
    if (!parent.empty() && !dirs.count(parent)) {
      return Error(Code::kDataLoss, "{}: \"{}\" comes before its directory", what, e.path());
    }
    if (e.type() == Entry::DIRECTORY) dirs.insert(e.path());
  }
  return Status::Ok();
}

// Describe's answer, checked, as Sync fetches from it.
struct PeerListing final : csi::RemoteListing {
  explicit PeerListing(DescribeResponse r) : response(std::move(r)) {}
  const DescribeResponse response;
};

// One file: streamed into a temporary name, checked whole, then renamed into place.
class FileFetch {
 public:
  FileFetch(Peer::Stub& stub, const csi::RemoteOwner& owner, const std::string& volume_id,
            const fs::path& dir, const Entry& entry)
      : stub_(stub),
        owner_(owner),
        volume_id_(volume_id),
        target_(dir / entry.path()),
        entry_(entry) {}

  // Aborted means the owner's writer had the file open: worth another try.
  Result<uint64_t> Run() {
    std::string temp = TempNameFor(target_);
    auto bytes = Stream(temp);
    if (!bytes.ok()) ::unlink(temp.c_str());
    return bytes;
  }

 private:
  Result<uint64_t> Stream(const std::string& temp) {
    UniqueFd out(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!out) return ErrnoError("create {}", temp);
    grpc::ClientContext ctx;
    ReadFileRequest req;
    req.set_volume_id(volume_id_);
    req.set_path(entry_.path());
    auto reader = stub_.ReadFile(&ctx, req);
    FileChunk chunk;
    uint64_t size = 0, got = 0;
    int64_t mtime_ns = 0;
    bool first = true;
    uint64_t end = 0;  // where the data received so far ends; chunks come in order
    bool overrun = false;
    while (reader->Read(&chunk)) {
      if (first) {
        size = chunk.size();
        mtime_ns = chunk.mtime_ns();
        first = false;
      }
      const std::string& data = chunk.data();
      if (chunk.offset() < end || chunk.offset() + data.size() > size) {
        overrun = true;  // out of order or beyond the announced size: refused below
        ctx.TryCancel();
        break;
      }
      size_t off = 0;
      while (off < data.size()) {
        ssize_t n = ::pwrite(out.get(), data.data() + off, data.size() - off,
                             static_cast<off_t>(chunk.offset() + off));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
          const int err = errno;  // before the calls below overwrite it
          ctx.TryCancel();
          (void)reader->Finish();
          return Status::FromErrno(
              err, fmt::format("write {} ({} bytes in)", target_.string(), got + off));
        }
        off += static_cast<size_t>(n);
      }
      got += data.size();
      end = chunk.offset() + data.size();
    }
    grpc::Status finished = reader->Finish();
    if (overrun) {
      return Error(Code::kDataLoss,
                   "file \"{}\" from node \"{}\": the owner sent data beyond the file's size or "
                   "out of order",
                   entry_.path(), owner_.node_id);
    }
    RETURN_IF_ERROR(FromGrpc(finished, owner_));
    if (first) {
      return Error(Code::kDataLoss, "file \"{}\" from node \"{}\": the owner sent nothing",
                   entry_.path(), owner_.node_id);
    }
    // Holes were not sent: the size makes them, as on the owner.
    if (::ftruncate(out.get(), static_cast<off_t>(size)) != 0) {
      return ErrnoError("truncate {} to {}", temp, size);
    }
    if (::fchown(out.get(), entry_.uid(), entry_.gid()) != 0 ||
        ::fchmod(out.get(), entry_.mode()) != 0) {
      return ErrnoError("set the owner and mode of {}", target_.string());
    }
    struct timespec times[2] = {TimespecOf(mtime_ns), TimespecOf(mtime_ns)};
    if (::futimens(out.get(), times) != 0) return ErrnoError("set the mtime of {}", temp);
    if (::rename(temp.c_str(), target_.c_str()) != 0) {
      return ErrnoError("rename into {}", target_.string());
    }
    return got;
  }

  Peer::Stub& stub_;
  const csi::RemoteOwner& owner_;
  const std::string& volume_id_;
  const fs::path target_;
  const Entry& entry_;
};

bool SameFile(const fs::path& p, const Entry& e) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  return static_cast<uint64_t>(st.st_size) == e.size() && mtime == e.mtime_ns() &&
         (st.st_mode & 07777) == e.mode();
}

// Removes what the owner no longer has, and leftovers of interrupted fetches.
Result<uint64_t> RemoveStale(const fs::path& dir, const std::map<std::string, Entry::Type>& keep) {
  uint64_t removed = 0;
  std::vector<fs::path> doomed;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string rel = it->path().lexically_relative(dir).generic_string();
    auto found = keep.find(rel);
    bool is_dir = it->is_directory(ec) && !it->is_symlink(ec);
    bool same_type = found != keep.end() && (found->second == Entry::DIRECTORY) == is_dir &&
                     (found->second == Entry::SYMLINK) == it->is_symlink(ec);
    if (!same_type) {
      doomed.push_back(it->path());
      if (is_dir) it.disable_recursion_pending();
    }
  }
  if (ec) return Status::FromErrno(ec.value(), "list " + dir.string());
  for (const auto& p : doomed) {
    bool temp = p.filename().string().rfind(kFetchPrefix, 0) == 0;
    removed += fs::remove_all(p, ec) > 0 && !temp ? 1 : 0;
    if (ec) return Status::FromErrno(ec.value(), "remove " + p.string());
  }
  return removed;
}

}  // namespace

std::shared_ptr<grpc::Channel> PeerClient::ChannelTo(const std::string& address) {
  std::lock_guard lock(mu_);
  auto& channel = channels_[address];
  if (!channel) {
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride(kPeerTlsName);
    // A cut network fails a transfer in ~4 s instead of hanging the publish.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 2000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    args.SetInt(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, 8 << 20);
    // Several streams of large chunks share one connection: a bigger window keeps the
    // link busy.
    args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 1);
    channel = grpc::CreateCustomChannel(address, PeerChannelCredentials(credentials_), args);
  }
  return channel;
}

Result<DescribeResponse> PeerClient::Ask(const csi::RemoteOwner& owner,
                                         const std::string& volume_id) {
  auto stub = Peer::NewStub(ChannelTo(owner.address));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kDescribeDeadline);
  DescribeRequest req;
  req.set_volume_id(volume_id);
  DescribeResponse resp;
  RETURN_IF_ERROR(FromGrpc(stub->Describe(&ctx, req, &resp), owner));
  RETURN_IF_ERROR(CheckAnswer(resp, volume_id, owner));
  return resp;
}

Result<csi::RemoteVolumeInfo> PeerClient::Describe(const csi::RemoteOwner& owner,
                                                   const std::string& volume_id) {
  ASSIGN_OR_RETURN(DescribeResponse resp, Ask(owner, volume_id));
  csi::RemoteVolumeInfo info;
  info.capacity_bytes = resp.capacity_bytes();
  for (const Entry& e : resp.entries()) {
    if (e.type() != Entry::FILE) continue;
    info.used_bytes += e.size();
    ++info.files;
  }
  info.listing = std::make_shared<const PeerListing>(std::move(resp));
  return info;
}

Result<csi::SyncReport> PeerClient::Sync(const csi::RemoteOwner& owner,
                                         const std::string& volume_id,
                                         const csi::RemoteVolumeInfo& described,
                                         const fs::path& dir) {
  const auto start = Clock::now();
  const auto* listing = dynamic_cast<const PeerListing*>(described.listing.get());
  if (listing == nullptr || listing->response.volume_id() != volume_id) {
    return Error(Code::kInternal, "volume {}: a sync needs the owner's Describe of it", volume_id);
  }
  const DescribeResponse& resp = listing->response;
  csi::SyncReport report;
  std::map<std::string, Entry::Type> keep;
  for (const Entry& e : resp.entries()) keep[e.path()] = e.type();
  ASSIGN_OR_RETURN(report.files_removed, RemoveStale(dir, keep));

  std::vector<const Entry*> wanted;
  for (const Entry& e : resp.entries()) {
    fs::path p = dir / e.path();
    if (e.type() == Entry::DIRECTORY) {
      if (::mkdir(p.c_str(), e.mode()) != 0 && errno != EEXIST)
        return ErrnoError("mkdir {}", p.string());
      if (::lchown(p.c_str(), e.uid(), e.gid()) != 0 || ::chmod(p.c_str(), e.mode()) != 0) {
        return ErrnoError("set the owner and mode of {}", p.string());
      }
    } else if (e.type() == Entry::SYMLINK) {
      std::error_code ec;
      if (fs::read_symlink(p, ec).string() == e.symlink_target() && !ec) continue;
      std::string temp = TempNameFor(p);
      if (::symlink(e.symlink_target().c_str(), temp.c_str()) != 0) return ErrnoError("symlink");
      (void)::lchown(temp.c_str(), e.uid(), e.gid());
      if (::rename(temp.c_str(), p.c_str()) != 0) {
        ::unlink(temp.c_str());
        return ErrnoError("rename into {}", p.string());
      }
    } else if (SameFile(p, e)) {
      ++report.files_kept;
    } else {
      wanted.push_back(&e);
    }
  }

  // Workers take files in order; the first error stops everyone (files already renamed
  // into place are whole, and the next sync keeps them).
  auto stub = Peer::NewStub(ChannelTo(owner.address));
  std::atomic<size_t> next{0};
  std::atomic<uint64_t> bytes{0}, fetched{0};
  std::mutex err_mu;
  Status first_error;
  auto failed = [&] {
    std::lock_guard lock(err_mu);
    return !first_error.ok();
  };
  auto work = [&] {
    for (size_t i; !failed() && (i = next++) < wanted.size();) {
      const Entry& e = *wanted[i];
      const auto give_up = Clock::now() + kWriterPatience;
      auto backoff = std::chrono::milliseconds(50);
      for (;;) {
        auto got = FileFetch(*stub, owner, volume_id, dir, e).Run();
        if (got.ok()) {
          bytes += *got;
          ++fetched;
          break;
        }
        // Aborted: the owner's writer has (or just opened) the file; wait for it to close.
        if (got.status().code() == Code::kAborted && Clock::now() < give_up && !failed()) {
          std::this_thread::sleep_for(backoff);
          backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
          continue;
        }
        Status st = got.status().code() == Code::kAborted
                        ? Error(Code::kUnavailable, "{} (still so after {} s)",
                                got.status().message(), kWriterPatience.count())
                        : got.status();
        std::lock_guard lock(err_mu);
        if (first_error.ok()) first_error = st;
        return;
      }
    }
  };
  std::vector<std::thread> workers;
  for (int i = 0; i < kParallelFiles && i < static_cast<int>(wanted.size()); ++i) {
    workers.emplace_back(work);
  }
  for (auto& t : workers) t.join();
  if (!first_error.ok()) return first_error;
  report.files_fetched = fetched;
  report.bytes = bytes;
  report.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return report;
}

}  // namespace cellar::node
