// A gRPC server interceptor that logs one line per CSI call: method, the volume (or
// name / target) it concerns, the result code and message, and the duration.
// Probe, NodeGetCapabilities and the like log at debug (the liveness probe calls them
// every few seconds); errors always log at warn.
#pragma once

#include <memory>

#include <grpcpp/support/server_interceptor.h>

namespace cellar::csi {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MakeCallLoggerFactory();

}  // namespace cellar::csi
