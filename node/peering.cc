#include "node/peering.h"

#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "common/host_port.h"
#include "common/unix_socket.h"
#include "node/peer_client.h"
#include "node/peer_credentials.h"
#include "node/peer_server.h"

namespace cellar::node {

namespace {

bool IsWildcard(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::";
}

}  // namespace

std::optional<std::filesystem::path> UnixListenPath(const std::string& listen) {
  for (std::string_view scheme : {"unix://", "unix:"}) {
    if (listen.rfind(scheme, 0) == 0) return std::filesystem::path(listen.substr(scheme.size()));
  }
  return std::nullopt;
}

Status ResolvePeerOptions(PeerOptions& options) {
  if (!options.advertise.empty() && options.listen.empty()) {
    return InvalidArgument(
        "--peer-advertise is set but --peer-listen is not: nothing to advertise");
  }
  if (options.listen.empty()) return Status::Ok();
  if (options.tls_dir.empty()) {
    return InvalidArgument(
        "--peer-listen needs --peer-tls-dir: other nodes are served only over mutual TLS");
  }
  if (auto path = UnixListenPath(options.listen)) {
    if (path->empty() || !path->is_absolute()) {
      return Error(Code::kInvalidArgument,
                   "--peer-listen \"{}\": a unix socket needs an absolute path "
                   "(unix:///var/lib/cellar/<namespace>/<name>/peer.sock)",
                   options.listen);
    }
    if (options.advertise.empty()) {
      return Error(Code::kInvalidArgument,
                   "--peer-listen \"{}\" is a unix socket: pass --peer-advertise with the "
                   "address other nodes dial (the relay's, `cellar peer-relay`)",
                   options.listen);
    }
  } else {
    ASSIGN_OR_RETURN(HostPort listen, ParseHostPort("--peer-listen", options.listen));
    if (options.advertise.empty() && IsWildcard(listen.host)) {
      return Error(Code::kInvalidArgument,
                   "--peer-listen \"{}\" listens on every address: pass --peer-advertise with "
                   "the address the other nodes dial (e.g. the node's IP and the same port)",
                   options.listen);
    }
  }
  if (options.advertise.empty()) options.advertise = options.listen;
  ASSIGN_OR_RETURN(HostPort advertise, ParseHostPort("--peer-advertise", options.advertise));
  if (IsWildcard(advertise.host)) {
    return Error(Code::kInvalidArgument,
                 "--peer-advertise \"{}\" is not an address others can dial", options.advertise);
  }
  return Status::Ok();
}

Result<std::unique_ptr<Peering>> Peering::Start(const PeerOptions& options,
                                                const std::string& node_id, store::Store& store) {
  std::unique_ptr<Peering> peering(new Peering());
  if (options.tls_dir.empty()) return peering;
  ASSIGN_OR_RETURN(PeerCredentials credentials, LoadPeerCredentials(options.tls_dir));
  peering->client_ = std::make_unique<PeerClient>(credentials);
  if (options.listen.empty()) {
    spdlog::info("cross-node reads: fetching other nodes' volumes; serving none");
    return peering;
  }
  // Only volumes this node owns are served: a replica is someone else's data, and serving
  // it would let a stale copy pass for the original.
  auto resolve = [&store, node_id](const std::string& id) -> Result<std::filesystem::path> {
    auto v = store.Get(id);
    if (!v.ok() || !store::IsVolumeId(id)) {
      return Error(Code::kNotFound, "volume {} is not held by node \"{}\"", id, node_id);
    }
    if (v->is_replica()) {
      return Error(Code::kFailedPrecondition,
                   "volume {}: node \"{}\" holds only a replica of it; ask its owner \"{}\"", id,
                   node_id, v->replica_of.node_id);
    }
    return store.ArenaPath(id);
  };
  peering->service_ = std::make_unique<PeerServer>(node_id, resolve);
  const auto unix_path = UnixListenPath(options.listen);
  // A socket left by a dead process, or by the predecessor that handed this node over.
  if (unix_path) RETURN_IF_ERROR(PrepareSocketPath(*unix_path));
  int port = 0;
  ASSIGN_OR_RETURN(peering->server_,
                   StartPeerServer(options.listen, credentials, peering->service_.get(), &port));
  if (unix_path) ::chmod(unix_path->c_str(), 0600);  // root's relay; TLS guards it anyway
  peering->advertise_ = options.advertise;
  spdlog::info("cross-node reads: serving this node's volumes on {} (port {}) as {}",
               options.listen, port, options.advertise);
  return peering;
}

Peering::~Peering() {
  Stop();
}

csi::RemoteVolumes* Peering::remote() {
  return client_.get();
}

void Peering::Stop() {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now());
  server_->Wait();
  server_.reset();
  spdlog::debug("peer server stopped");
}

}  // namespace cellar::node
