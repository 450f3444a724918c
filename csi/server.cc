#include "csi/server.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "common/size.h"
#include "common/unique_fd.h"
#include "csi/call_logger.h"
#include "csi/controller_service.h"
#include "csi/driver.h"
#include "csi/fuse_source.h"
#include "csi/identity_service.h"
#include "csi/node_service.h"
#include "store/store.h"

#ifndef CELLAR_VERSION
#define CELLAR_VERSION "dev"
#endif

namespace cellar::csi {

namespace fs = std::filesystem;

Result<fs::path> SocketPathOf(const std::string& endpoint) {
  std::string_view rest;
  if (endpoint.rfind("unix://", 0) == 0) {
    rest = std::string_view(endpoint).substr(7);
  } else if (endpoint.rfind("unix:", 0) == 0) {
    rest = std::string_view(endpoint).substr(5);
  } else {
    return Error(Code::kInvalidArgument,
                 "endpoint \"{}\" must be a unix socket (unix:///path/csi.sock)", endpoint);
  }
  fs::path path(rest);
  if (!path.is_absolute() || path.filename().empty()) {
    return Error(Code::kInvalidArgument, "endpoint \"{}\" must name an absolute socket path",
                 endpoint);
  }
  if (path.string().size() >= sizeof(sockaddr_un{}.sun_path)) {
    return Error(Code::kInvalidArgument, "endpoint \"{}\" is longer than a unix socket path may be",
                 endpoint);
  }
  return path;
}

Status PrepareSocketPath(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) {
    return Status::FromErrno(ec.value(),
                             fmt::format("create socket directory {}", path.parent_path().string()));
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoError("stat socket {}", path.string());
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Error(Code::kInvalidArgument, "{} exists and is not a unix socket; refusing to replace it",
                 path.string());
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoError("socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    return Error(Code::kFailedPrecondition,
                 "another process is serving {}; stop it first", path.string());
  }
  spdlog::info("replacing stale socket {}", path.string());
  if (::unlink(path.c_str()) != 0) return ErrnoError("remove stale socket {}", path.string());
  return Status::Ok();
}

namespace {

Status CheckCapacity(uint64_t capacity) {
  if (capacity == 0) return InvalidArgument("--capacity must be above 0");
  ASSIGN_OR_RETURN(uint64_t memory, store::NodeMemoryBytes());
  if (capacity > memory) {
    return Error(Code::kInvalidArgument,
                 "--capacity {} is larger than this node's memory ({}); volumes live in memory",
                 FormatSize(capacity), FormatSize(memory));
  }
  return Status::Ok();
}

}  // namespace

Status RunNode(const NodeOptions& options) {
  if (options.node_id.empty()) {
    return InvalidArgument("node id is empty: pass --node-id or set NODE_NAME");
  }
  ASSIGN_OR_RETURN(fs::path socket_path, SocketPathOf(options.endpoint));
  RETURN_IF_ERROR(CheckCapacity(options.capacity_bytes));

  // Termination signals are taken synchronously by this thread (sigwait below); block
  // them before any other thread exists so none of gRPC's threads receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ASSIGN_OR_RETURN(auto store, store::Store::Open({options.state_dir, options.capacity_bytes,
                                                   options.max_volumes, nullptr}));
  std::unique_ptr<VolumeSource> source;
  if (options.fuse) {
    ASSIGN_OR_RETURN(source, MakeFuseSource(*store, options.state_dir / "fuse", options.passthrough));
  } else {
    source = MakeArenaSource(*store);
  }
  for (const auto& v : store->List()) {
    Status st = source->Attach(v);
    if (!st.ok()) spdlog::warn("volume {}: cannot attach: {}", v.id, st.ToString());
  }

  DriverContext ctx{{options.driver_name, CELLAR_VERSION, options.node_id, options.max_volumes},
                    *store, *source, {}};
  IdentityService identity(ctx);
  ControllerService controller(ctx);
  NodeService node(ctx);
  node.RepairPublications();

  RETURN_IF_ERROR(PrepareSocketPath(socket_path));
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_path.string(), grpc::InsecureServerCredentials());
  builder.RegisterService(&identity);
  builder.RegisterService(&controller);
  builder.RegisterService(&node);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(MakeCallLoggerFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return Error(Code::kUnavailable, "cannot listen on {}", socket_path.string());
  ::chmod(socket_path.c_str(), 0660);

  store::CapacityInfo cap = store->Capacity();
  spdlog::info("cellar {} serving {} on {} for node {}: {} volumes, {} of {} free, state in {}",
               CELLAR_VERSION, options.driver_name, socket_path.string(), options.node_id,
               cap.volumes, FormatSize(cap.available_bytes), FormatSize(cap.total_bytes),
               options.state_dir.string());

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: stopping (volumes, arenas and publications stay)", sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server->Wait();
  ::unlink(socket_path.c_str());
  source.reset();
  spdlog::info("stopped");
  return Status::Ok();
}

}  // namespace cellar::csi
