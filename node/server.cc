#include "node/server.h"

#include <poll.h>
#include <sys/stat.h>
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
#include "csi/endpoint.h"
#include "csi/fuse_metrics.h"
#include "csi/identity_service.h"
#include "csi/metrics_server.h"
#include "csi/node_metrics.h"
#include "csi/node_report.h"
#include "csi/node_service.h"
#include "csi/replicas.h"
#include "node/handover.h"
#include "node/volume_host.h"
#include "store/store.h"

#ifndef CELLAR_VERSION
#define CELLAR_VERSION "dev"
#endif

namespace cellar::node {

namespace fs = std::filesystem;
using namespace cellar::csi;  // the services this process wires together

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
  PeerOptions peer_options = options.peer;
  RETURN_IF_ERROR(ResolvePeerOptions(peer_options));
  const fs::path handover_path = options.handover_socket.empty()
                                     ? options.state_dir / "handover.sock"
                                     : options.handover_socket;

  // Before any thread exists (gRPC starts them), so that none of them takes a signal.
  ASSIGN_OR_RETURN(TerminationSignals signals, TerminationSignals::Open());

  {
    std::error_code ec;
    fs::create_directories(options.state_dir, ec);
    if (ec) {
      return Status::FromErrno(
          ec.value(), fmt::format("state dir {} cannot be created", options.state_dir.string()));
    }
  }
  ASSIGN_OR_RETURN(std::vector<UniqueFd> inherited, TakeOverFrom(handover_path));
  const bool handed_over = !inherited.empty();
  // Declared before the services, which use its store and source, so it outlives them.
  ASSIGN_OR_RETURN(std::unique_ptr<VolumeHost> host,
                   VolumeHost::Open({options.state_dir, options.capacity_bytes, options.max_volumes,
                                     options.io_mode, options.fd_holder, std::move(inherited)}));

  ASSIGN_OR_RETURN(std::unique_ptr<Peering> peering,
                   Peering::Start(peer_options, options.node_id, host->store()));
  DriverContext ctx{{options.driver_name, CELLAR_VERSION, options.node_id, options.max_volumes,
                     host->source().mode(), peering->advertise()},
                    host->store(),
                    host->source(),
                    {},
                    peering->remote()};
  IdentityService identity(ctx);
  ControllerService controller(ctx);
  NodeService node(ctx);
  node.RepairPublications();
  FreeUnpublishedReplicas(ctx);
  const StartFacts start{static_cast<int64_t>(::time(nullptr)), handed_over ? "handover"
                                                                : host->source().resumed()
                                                                    ? "takeover"
                                                                    : "fresh"};
  AdminService admin(ctx, node, start);
  CallMetrics call_metrics;
  std::unique_ptr<MetricsServer> metrics;
  if (!options.metrics_address.empty()) {
    ASSIGN_OR_RETURN(
        metrics, MetricsServer::Start(
                     options.metrics_address,
                     {call_metrics.registry(), std::make_shared<FuseMetrics>(host->fuse_stats()),
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
  ASSIGN_OR_RETURN(HandoverListener handover_listener, HandoverListener::Listen(handover_path));

  store::CapacityInfo cap = host->store().Capacity();
  spdlog::info(
      "cellar {} serving {} on {} for node {}: io mode {}, {} volumes, {} of {} free, "
      "state in {}",
      CELLAR_VERSION, options.driver_name, socket_path.string(), options.node_id,
      IoModeName(host->source().mode()), cap.volumes, FormatSize(cap.available_bytes),
      FormatSize(cap.total_bytes), options.state_dir.string());

  UniqueFd successor;
  for (;;) {
    pollfd fds[2] = {{signals.fd(), POLLIN, 0}, {handover_listener.fd(), POLLIN, 0}};
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
      successor = handover_listener.Accept();
      if (successor) {
        spdlog::info("a successor asks for the node: handing over");
        break;
      }
    }
  }

  // Scrapes read the store and the source, which go away below. Stopping civetweb takes
  // up to ~2 s after a scrape (measured; without one 0.1 s); the FUSE threads and the
  // CSI server still serve meanwhile, so pods and the kubelet see no pause from it.
  metrics.reset();
  // Transfers to other nodes read the arenas; they end before the volumes stop.
  peering->Stop();
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
  handover_listener.Close();
  if (successor) {
    host->HandOver(successor.get());
    spdlog::info("handed over to the successor");
    if (!options.exit_after_handover) {
      spdlog::info("idle until SIGTERM");
      RETURN_IF_ERROR(signals.Wait(std::chrono::milliseconds(-1)).status());
    }
    return Status::Ok();
  }
  // With a holder the connection outlives us and the next start resumes it; without
  // one nobody could, so unmount.
  host->Stop(/*keep_connection=*/!options.fd_holder.empty());
  spdlog::info("stopped");
  return Status::Ok();
}

}  // namespace cellar::node
