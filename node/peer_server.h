// PeerServer: the owner's side of cross-node reads (proto/peer.proto). Lists a volume's
// entries and sends its regular files, each as its writer last closed it: read from the
// volume's tmpfs arena under a read lease (file_lease.h), never through FUSE.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "common/status.h"
#include "node/peer_credentials.h"
#include "peer.grpc.pb.h"

namespace cellar::node {

// The directory holding a volume's files when this node owns it; NotFound (not held) or
// FailedPrecondition (only a replica is held here) otherwise. Its message is sent as is.
using VolumeDirResolver = std::function<Result<std::filesystem::path>(const std::string& id)>;

class PeerServer final : public cellar::peer::v1::Peer::Service {
 public:
  PeerServer(std::string node_id, VolumeDirResolver resolve)
      : node_id_(std::move(node_id)), resolve_(std::move(resolve)) {}

  grpc::Status Describe(grpc::ServerContext* ctx, const cellar::peer::v1::DescribeRequest* req,
                        cellar::peer::v1::DescribeResponse* resp) override;
  grpc::Status ReadFile(grpc::ServerContext* ctx, const cellar::peer::v1::ReadFileRequest* req,
                        grpc::ServerWriter<cellar::peer::v1::FileChunk>* writer) override;

 private:
  Status DoDescribe(const cellar::peer::v1::DescribeRequest& req,
                    cellar::peer::v1::DescribeResponse* resp);
  Status DoReadFile(grpc::ServerContext& ctx, const cellar::peer::v1::ReadFileRequest& req,
                    grpc::ServerWriter<cellar::peer::v1::FileChunk>& writer);

  const std::string node_id_;
  const VolumeDirResolver resolve_;
};

// Serves `service` on `listen` (HOST:PORT; port 0 picks one, written to *bound_port) over
// mutual TLS, allowing the clients' 2 s keepalive pings. Unavailable when it cannot bind.
Result<std::unique_ptr<grpc::Server>> StartPeerServer(const std::string& listen,
                                                      const PeerCredentials& credentials,
                                                      PeerServer* service, int* bound_port);

}  // namespace cellar::node
