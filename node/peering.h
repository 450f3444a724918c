// Peering: this node's part in cross-node reads. It serves the node's own volumes to the
// other node plugins (the Peer service on --peer-listen) and fetches theirs for replicas
// (csi/replicas.h), both over mutual TLS with the cluster's Cellar CA (--peer-tls-dir).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/grpcpp.h>

#include "common/status.h"
#include "csi/remote_volumes.h"
#include "store/store.h"

namespace cellar::node {

class PeerClient;
class PeerServer;

struct PeerOptions {
  // HOST:PORT, or unix:///path (behind `cellar peer-relay`), to serve on; empty: serve
  // no one.
  std::string listen;
  std::string advertise;          // HOST:PORT the others dial; default: listen
  std::filesystem::path tls_dir;  // ca.crt, tls.crt, tls.key; empty: no peering at all
};

// The socket path of a unix:// listen address; nullopt for HOST:PORT.
std::optional<std::filesystem::path> UnixListenPath(const std::string& listen);

// Completes and checks the options: listening needs credentials, and a wildcard listen
// address needs an advertised one. InvalidArgument naming the flag otherwise.
Status ResolvePeerOptions(PeerOptions& options);

class Peering {
 public:
  // Loads the credentials and starts serving when options.listen is set. Nothing (a
  // Peering with no remote) when options.tls_dir is empty.
  static Result<std::unique_ptr<Peering>> Start(const PeerOptions& options,
                                                const std::string& node_id, store::Store& store);
  ~Peering();

  // Fetches other nodes' volumes; null when this node has no credentials.
  csi::RemoteVolumes* remote();
  // What CreateVolume writes as this node's peer address; empty when it serves no one.
  const std::string& advertise() const { return advertise_; }
  // Stops serving; transfers in flight are cancelled (their readers retry elsewhere).
  void Stop();

 private:
  Peering() = default;
  std::string advertise_;
  std::unique_ptr<PeerClient> client_;
  std::unique_ptr<PeerServer> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace cellar::node
