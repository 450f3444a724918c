#include "node/peer_server.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "common/unique_fd.h"
#include "csi/driver.h"
#include "node/file_lease.h"
#include "node/peer_path.h"

namespace cellar::node {

namespace fs = std::filesystem;
using namespace cellar::peer::v1;
using csi::ToGrpc;  // Status is cellar::Status: ADL would not look in csi

namespace {

constexpr size_t kChunkBytes = 1 << 20;

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

// Opens `path` below `root` without leaving it and without following any symlink:
// a volume's owner may have put a symlink to /etc in it.
Result<UniqueFd> OpenBeneath(int root, const std::string& path) {
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  long fd = ::syscall(SYS_openat2, root, path.c_str(), &how, sizeof(how));
  if (fd < 0) return ErrnoError("open");
  return UniqueFd(static_cast<int>(fd));
}

}  // namespace

grpc::Status PeerServer::Describe(grpc::ServerContext*, const DescribeRequest* req,
                                  DescribeResponse* resp) {
  return ToGrpc(DoDescribe(*req, resp));
}

grpc::Status PeerServer::ReadFile(grpc::ServerContext* ctx, const ReadFileRequest* req,
                                  grpc::ServerWriter<FileChunk>* writer) {
  return ToGrpc(DoReadFile(*ctx, *req, *writer));
}

Status PeerServer::DoDescribe(const DescribeRequest& req, DescribeResponse* resp) {
  ASSIGN_OR_RETURN(fs::path dir, resolve_(req.volume_id()));
  const std::string what = fmt::format("volume {} on node \"{}\"", req.volume_id(), node_id_);
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0) return ErrnoError("{}: statvfs", what);
  resp->set_volume_id(req.volume_id());
  resp->set_node_id(node_id_);
  resp->set_capacity_bytes(static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize);
  std::error_code ec;
  // Pre-order and no symlink followed: parents come before their children.
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) {
      if (errno == ENOENT) continue;  // removed while listed: not part of the answer
      return ErrnoError("{}: lstat {}", what, p.string());
    }
    Entry* e = resp->add_entries();
    e->set_path(p.lexically_relative(dir).generic_string());
    e->set_mode(st.st_mode & 07777);
    e->set_size(static_cast<uint64_t>(st.st_size));
    e->set_mtime_ns(MtimeNs(st));
    e->set_uid(st.st_uid);
    e->set_gid(st.st_gid);
    if (S_ISDIR(st.st_mode)) {
      e->set_type(Entry::DIRECTORY);
    } else if (S_ISLNK(st.st_mode)) {
      e->set_type(Entry::SYMLINK);
      std::error_code lec;
      e->set_symlink_target(fs::read_symlink(p, lec).string());
    } else if (S_ISREG(st.st_mode)) {
      e->set_type(Entry::FILE);
    } else {
      resp->mutable_entries()->RemoveLast();  // sockets, fifos, devices: no data to copy
    }
  }
  if (ec) return Status::FromErrno(ec.value(), what + ": listing its files");
  return Status::Ok();
}

Status PeerServer::DoReadFile(grpc::ServerContext& ctx, const ReadFileRequest& req,
                              grpc::ServerWriter<FileChunk>& writer) {
  ASSIGN_OR_RETURN(fs::path dir, resolve_(req.volume_id()));
  const std::string what =
      fmt::format("file \"{}\" of volume {} on node \"{}\"", req.path(), req.volume_id(), node_id_);
  RETURN_IF_ERROR(CheckPeerPath(req.path(), what));
  UniqueFd root(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return ErrnoError("{}: open the volume", what);
  auto fd = OpenBeneath(root.get(), req.path());
  if (!fd.ok()) {
    int err = fd.status().err();
    if (err == ENOENT) return Error(Code::kNotFound, "{}: no such file", what);
    if (err == ELOOP || err == EXDEV) {
      return Error(Code::kInvalidArgument, "{}: the path goes through a symlink", what);
    }
    return fd.status().WithContext(what);
  }
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0) return ErrnoError("{}: fstat", what);
  if (!S_ISREG(st.st_mode)) return Error(Code::kInvalidArgument, "{}: not a regular file", what);
  auto lease = ReadLease::Take(fd->get());
  if (!lease.ok()) return lease.status().WithContext(what);
  // What is sent is what the file is now that no writer can come in unnoticed.
  if (::fstat(fd->get(), &st) != 0) return ErrnoError("{}: fstat", what);
  const uint64_t size = static_cast<uint64_t>(st.st_size);

  FileChunk chunk;
  chunk.set_size(size);
  chunk.set_mtime_ns(MtimeNs(st));
  uint64_t offset = 0;
  for (bool sent_any = false;; sent_any = true) {
    size_t want = 0;
    if (offset < size) {
      off_t data = ::lseek(fd->get(), static_cast<off_t>(offset), SEEK_DATA);
      if (data < 0 && errno != ENXIO) return ErrnoError("{}: SEEK_DATA at {}", what, offset);
      offset = data < 0 ? size : static_cast<uint64_t>(data);  // ENXIO: only a hole is left
    }
    if (offset < size) {
      off_t hole = ::lseek(fd->get(), static_cast<off_t>(offset), SEEK_HOLE);
      if (hole < 0) return ErrnoError("{}: SEEK_HOLE at {}", what, offset);
      want = static_cast<size_t>(
          std::min<uint64_t>(kChunkBytes, std::min<uint64_t>(size, hole) - offset));
    }
    if (want == 0 && sent_any) break;  // the first message goes even for an empty file
    std::string* data = chunk.mutable_data();
    data->resize(want);
    size_t got = 0;
    while (got < want) {
      ssize_t n =
          ::pread(fd->get(), data->data() + got, want - got, static_cast<off_t>(offset + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return ErrnoError("{}: read at {}", what, offset + got);
      if (n == 0) break;
      got += static_cast<size_t>(n);
    }
    if (got < want || (*lease)->broken()) {
      return Error(Code::kAborted, "{}: it was opened for writing during the transfer", what);
    }
    if (ctx.IsCancelled()) return Error(Code::kCancelled, "{}: the reader went away", what);
    chunk.set_offset(offset);
    if (!writer.Write(chunk)) {
      return Error(Code::kUnavailable, "{}: the reader's stream broke", what);
    }
    offset += want;
    chunk.Clear();
    if (want == 0) break;
  }
  // The last chunk was read before the lease could be broken: it is whole.
  return Status::Ok();
}

Result<std::unique_ptr<grpc::Server>> StartPeerServer(const std::string& listen,
                                                      const PeerCredentials& credentials,
                                                      PeerServer* service, int* bound_port) {
  IgnoreLeaseBreakSignal();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(listen, PeerServerCredentials(credentials), bound_port);
  builder.RegisterService(service);
  // Readers ping every 2 s so that a cut network fails their transfer within seconds;
  // the default policy would answer such pings with GOAWAY ("too many pings").
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 2000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 2000);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || (bound_port != nullptr && *bound_port == 0)) {
    return Error(Code::kUnavailable,
                 "cannot serve other nodes on {} (address in use or not "
                 "this host's?)",
                 listen);
  }
  return server;
}

}  // namespace cellar::node
