#include "csi/server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "common/size.h"
#include "common/termination_signals.h"
#include "common/unique_fd.h"
#include "common/unix_socket.h"
#include "csi/admin_service.h"
#include "csi/call_logger.h"
#include "csi/call_metrics.h"
#include "csi/calls_in_flight.h"
#include "csi/controller_service.h"
#include "csi/driver.h"
#include "csi/fuse_metrics.h"
#include "csi/metrics_server.h"
#include "csi/node_metrics.h"
#include "csi/node_report.h"
#include "csi/source_choice.h"
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

namespace {

// Asks a live predecessor serving `socket` to hand over. Returns its FUSE connection's
// files (empty if it had none), or an empty vector when no predecessor is there.
Result<std::vector<UniqueFd>> TakeOverFrom(const fs::path& socket) {
  auto conn = ConnectSeqpacket(socket);
  if (!conn.ok()) {
    if (conn.status().code() == Code::kNotFound || conn.status().code() == Code::kUnavailable) {
      return std::vector<UniqueFd>{};  // nobody serves: a fresh start or after a crash
    }
    return conn.status();
  }
  spdlog::info("a cellar node serves {}: asking it to hand over", socket.string());
  RETURN_IF_ERROR(SendMessage(conn->get(), "HANDOVER"));
  auto reply = ReceiveMessage(conn->get(), 60'000);
  if (!reply.ok()) {
    return Status(Code::kUnavailable, fmt::format("hand-over from the running cellar node failed: {}",
                                                  reply.status().message()));
  }
  if (reply->text != "OK") {
    return Status(Code::kUnavailable,
                  fmt::format("the running cellar node refused to hand over: {}", reply->text));
  }
  spdlog::info("predecessor handed over ({} files of its FUSE connection)", reply->fds.size());
  return std::move(reply->fds);
}

// One process per state dir: the store's journal has a single writer.
Result<UniqueFd> LockStateDir(const fs::path& state_dir) {
  fs::path path = state_dir / "lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return ErrnoError("open {}", path.string());
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Error(Code::kFailedPrecondition,
                   "another cellar node holds {} and did not hand over; stop it first",
                   state_dir.string());
    }
    return ErrnoError("flock {}", path.string());
  }
  return fd;
}

}  // namespace

Status RunNode(const NodeOptions& options) {
  if (options.node_id.empty()) {
    return InvalidArgument("node id is empty: pass --node-id or set NODE_NAME");
  }
  ASSIGN_OR_RETURN(fs::path socket_path, SocketPathOf(options.endpoint));
  RETURN_IF_ERROR(CheckCapacity(options.capacity_bytes));
  const fs::path handover_path = options.handover_socket.empty()
                                     ? options.state_dir / "handover.sock"
                                     : options.handover_socket;

  // Before any thread exists (gRPC starts them), so that none of them takes a signal.
  ASSIGN_OR_RETURN(TerminationSignals signals, TerminationSignals::Open());

  {
    std::error_code ec;
    fs::create_directories(options.state_dir, ec);
    if (ec) {
      return Status::FromErrno(ec.value(),
                               fmt::format("state dir {} cannot be created", options.state_dir.string()));
    }
  }
  ASSIGN_OR_RETURN(std::vector<UniqueFd> inherited, TakeOverFrom(handover_path));
  const bool handed_over = !inherited.empty();
  ASSIGN_OR_RETURN(UniqueFd state_lock, LockStateDir(options.state_dir));

  ASSIGN_OR_RETURN(auto store, store::Store::Open({options.state_dir, options.capacity_bytes,
                                                   options.max_volumes, nullptr}));
  // Before the source, which counts into it until it is destroyed.
  mount::FuseStats fuse_stats;
  ASSIGN_OR_RETURN(std::unique_ptr<VolumeSource> source,
                   OpenVolumeSource(*store, {options.io_mode, options.state_dir / "fuse",
                                             options.fd_holder, std::move(inherited),
                                             &fuse_stats}));
  for (const auto& v : store->List()) {
    Status st = source->Attach(v);
    if (!st.ok()) spdlog::warn("volume {}: cannot attach: {}", v.id, st.ToString());
  }
  source->AttachedAll();

  DriverContext ctx{{options.driver_name, CELLAR_VERSION, options.node_id, options.max_volumes,
                     source->mode()},
                    *store, *source, {}};
  IdentityService identity(ctx);
  ControllerService controller(ctx);
  NodeService node(ctx);
  node.RepairPublications();
  const StartFacts start{static_cast<int64_t>(::time(nullptr)),
                         handed_over         ? "handover"
                         : source->resumed() ? "takeover"
                                             : "fresh"};
  AdminService admin(ctx, node, start);
  CallMetrics call_metrics;
  std::unique_ptr<MetricsServer> metrics;
  if (!options.metrics_address.empty()) {
    ASSIGN_OR_RETURN(metrics,
                     MetricsServer::Start(options.metrics_address,
                                          {call_metrics.registry(),
                                           std::make_shared<FuseMetrics>(fuse_stats),
                                           std::make_shared<NodeMetrics>(ctx, node, start)}));
    spdlog::info("serving /metrics on {} (port {})", options.metrics_address, metrics->port());
  }

  RETURN_IF_ERROR(PrepareSocketPath(socket_path));
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket_path.string(), grpc::InsecureServerCredentials());
  builder.RegisterService(&identity);
  builder.RegisterService(&controller);
  builder.RegisterService(&node);
  builder.RegisterService(&admin);
  CallsInFlight calls;
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(calls.Factory());
  interceptors.push_back(MakeCallLoggerFactory());
  interceptors.push_back(call_metrics.Factory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return Error(Code::kUnavailable, "cannot listen on {}", socket_path.string());
  ::chmod(socket_path.c_str(), 0660);
  ASSIGN_OR_RETURN(UniqueFd handover_listener, ListenSeqpacket(handover_path, 0600));

  store::CapacityInfo cap = store->Capacity();
  spdlog::info("cellar {} serving {} on {} for node {}: io mode {}, {} volumes, {} of {} free, "
               "state in {}",
               CELLAR_VERSION, options.driver_name, socket_path.string(), options.node_id,
               IoModeName(source->mode()),
               cap.volumes, FormatSize(cap.available_bytes), FormatSize(cap.total_bytes),
               options.state_dir.string());

  UniqueFd successor;
  for (;;) {
    pollfd fds[2] = {{signals.fd(), POLLIN, 0}, {handover_listener.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("poll");
    }
    if (fds[0].revents & POLLIN) {
      ASSIGN_OR_RETURN(int signo, signals.Take());
      spdlog::info("signal {}: stopping (volumes, arenas and publications stay)", signo);
      break;
    }
    if (fds[1].revents & POLLIN) {
      UniqueFd conn(::accept4(handover_listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) continue;
      auto request = ReceiveMessage(conn.get(), 5000);
      if (request.ok() && request->text == "HANDOVER") {
        successor = std::move(conn);
        spdlog::info("a successor asks for the node: handing over");
        break;
      }
    }
  }

  // Scrapes read the store and the source, which go away below. Stopping civetweb takes
  // up to ~2 s after a scrape (measured; without one 0.1 s); the FUSE threads and the
  // CSI server still serve meanwhile, so pods and the kubelet see no pause from it.
  metrics.reset();
  // Stop taking calls, then let go of the socket paths for whoever comes next. Calls in
  // flight get up to 0.5 s to finish; a call that comes in after that is cancelled
  // (its client retries, as CSI clients do) but its handler still runs to its end.
  const auto grace_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (calls.count() > 0 && std::chrono::steady_clock::now() < grace_end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  server->Shutdown(std::chrono::system_clock::now());
  server->Wait();
  spdlog::debug("CSI server stopped");
  ::unlink(socket_path.c_str());
  handover_listener.Reset();
  ::unlink(handover_path.c_str());
  if (successor) {
    // The successor reads the store and the connection only after we let go of both:
    // the threads are stopped (requests queue in the kernel), the journal is closed, and
    // the lock is released, then the files travel.
    source->Pause();
    spdlog::debug("FUSE threads paused");
    std::vector<int> fds = source->HandoverFds();
    store.reset();
    state_lock.Reset();
    Status sent = SendMessage(successor.get(), "OK", fds);
    Status st = source->Shutdown(/*keep_connection=*/true);
    if (!sent.ok()) spdlog::error("hand-over: {}", sent.ToString());
    if (!st.ok()) spdlog::warn("hand-over: {}", st.ToString());
    source.reset();
    spdlog::info("handed over to the successor");
    if (!options.exit_after_handover) {
      spdlog::info("idle until SIGTERM");
      RETURN_IF_ERROR(signals.Wait(std::chrono::milliseconds(-1)).status());
    }
    return Status::Ok();
  }
  // With a holder the connection outlives us and the next start resumes it; without
  // one nobody could, so unmount.
  Status st = source->Shutdown(/*keep_connection=*/!options.fd_holder.empty());
  if (!st.ok()) spdlog::warn("stopping: {}", st.ToString());
  source.reset();
  spdlog::info("stopped");
  return Status::Ok();
}

}  // namespace cellar::csi
