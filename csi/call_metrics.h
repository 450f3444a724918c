// Counts every gRPC call the node serves (CSI and Admin) by method and result code,
// with a latency histogram by method: cellar_csi_calls_total{method,code} and
// cellar_csi_call_duration_seconds{method}. A gRPC interceptor beside the call logger;
// CSI calls are few (the kubelet's and the provisioner's), so a label lookup per call
// costs nothing that matters.
#pragma once

#include <memory>
#include <string_view>

#include <grpcpp/support/server_interceptor.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace cellar::csi {

class CallMetrics {
 public:
  CallMetrics();

  // An interceptor factory that records into this object, which must outlive the server.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> Factory();
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // `method` is the short name ("NodePublishVolume").
  void Record(const std::string& method, grpc::StatusCode code, double seconds);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& calls_;
  prometheus::Family<prometheus::Histogram>& durations_;
};

// "OK", "NOT_FOUND", ...: the names of the gRPC and CSI specs.
std::string_view GrpcCodeName(grpc::StatusCode code);

}  // namespace cellar::csi
