// Counts the CSI calls the server is handling. A stopping node waits for those, not for
// the clients' idle connections: grpc::Server::Shutdown(deadline) waits out the whole
// deadline while any client keeps a connection open, and the kubelet, the registrar and
// the provisioner always do.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include <grpcpp/support/server_interceptor.h>

namespace cellar::csi {

class CallsInFlight {
 public:
  CallsInFlight() : count_(std::make_shared<std::atomic<int64_t>>(0)) {}

  // An interceptor factory for grpc::ServerBuilder; each call counts from the moment
  // gRPC creates its interceptors until it has ended.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> Factory() const;

  int64_t count() const { return count_->load(); }

 private:
  std::shared_ptr<std::atomic<int64_t>> count_;
};

}  // namespace cellar::csi
