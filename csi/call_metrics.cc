#include "csi/call_metrics.h"

#include <chrono>
#include <string>

#include "common/status.h"

namespace cellar::csi {

namespace {

using grpc::experimental::InterceptionHookPoints;

// From a 1 ms Probe to a CreateVolume that mounts an arena, and a stuck call.
const prometheus::Histogram::BucketBoundaries kCallBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

class CallCounter final : public grpc::experimental::Interceptor {
 public:
  CallCounter(CallMetrics& metrics, grpc::experimental::ServerRpcInfo* info)
      : metrics_(metrics), start_(std::chrono::steady_clock::now()) {
    std::string method = info->method();
    auto slash = method.rfind('/');
    method_ = slash == std::string::npos ? method : method.substr(slash + 1);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
      metrics_.Record(method_, methods->GetSendStatus().error_code(), seconds);
    }
    methods->Proceed();
  }

 private:
  CallMetrics& metrics_;
  std::string method_;
  std::chrono::steady_clock::time_point start_;
};

class CallCounterFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallCounterFactory(CallMetrics& metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallCounter(metrics_, info);  // gRPC owns and deletes interceptors
  }

 private:
  CallMetrics& metrics_;
};

}  // namespace

CallMetrics::CallMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      calls_(prometheus::BuildCounter()
                 .Name("cellar_csi_calls_total")
                 .Help("gRPC calls served on the CSI socket, by method and result code")
                 .Register(*registry_)),
      durations_(prometheus::BuildHistogram()
                     .Name("cellar_csi_call_duration_seconds")
                     .Help("Time to serve a gRPC call on the CSI socket, by method")
                     .Register(*registry_)) {}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> CallMetrics::Factory() {
  return std::make_unique<CallCounterFactory>(*this);
}

void CallMetrics::Record(const std::string& method, grpc::StatusCode code, double seconds) {
  // Family::Add returns the existing series for labels it has seen.
  calls_.Add({{"method", method}, {"code", std::string(GrpcCodeName(code))}}).Increment();
  durations_.Add({{"method", method}}, kCallBuckets).Observe(seconds);
}

std::string_view GrpcCodeName(grpc::StatusCode code) {
  return CodeName(static_cast<Code>(code));  // Code's values are gRPC's, one to one
}

}  // namespace cellar::csi
