// The credentials of the node-to-node protocol: every node plugin holds the cluster's
// Cellar CA and a certificate signed by it (one Kubernetes Secret, mounted only into the
// node plugin). Both sides present and verify: mutual TLS, nothing in plaintext.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "common/status.h"

namespace cellar::node {

// The name every node's certificate carries (SAN DNS:cellar-peer) and every client
// checks, whatever address it dialled: nodes are reached by IP, and one Secret serves all.
inline constexpr const char* kPeerTlsName = "cellar-peer";

struct PeerCredentials {
  std::filesystem::path dir;
  std::string ca_pem;    // ca.crt
  std::string cert_pem;  // tls.crt
  std::string key_pem;   // tls.key
};

// Reads ca.crt, tls.crt and tls.key from `dir`. InvalidArgument naming the file when one
// is missing or empty, the errno status when it cannot be read.
Result<PeerCredentials> LoadPeerCredentials(const std::filesystem::path& dir);

// A server that requires a client certificate signed by the CA and verifies it.
std::shared_ptr<grpc::ServerCredentials> PeerServerCredentials(const PeerCredentials& c);
// A client that presents its certificate and verifies the server's against the CA.
std::shared_ptr<grpc::ChannelCredentials> PeerChannelCredentials(const PeerCredentials& c);

}  // namespace cellar::node
