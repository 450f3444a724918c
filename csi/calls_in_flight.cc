#include "csi/calls_in_flight.h"

namespace cellar::csi {
namespace {

// Alive exactly as long as its call: gRPC creates it when the call starts and deletes
// it when the call is done.
class Counter final : public grpc::experimental::Interceptor {
 public:
  explicit Counter(std::shared_ptr<std::atomic<int64_t>> count) : count_(std::move(count)) {
    count_->fetch_add(1);
  }
  ~Counter() override { count_->fetch_sub(1); }
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    methods->Proceed();
  }

 private:
  std::shared_ptr<std::atomic<int64_t>> count_;
};

class CounterFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CounterFactory(std::shared_ptr<std::atomic<int64_t>> count) : count_(std::move(count)) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo*) override {
    return new Counter(count_);  // gRPC owns and deletes interceptors
  }

 private:
  std::shared_ptr<std::atomic<int64_t>> count_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> CallsInFlight::Factory()
    const {
  return std::make_unique<CounterFactory>(count_);
}

}  // namespace cellar::csi
