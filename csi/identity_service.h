// CSI Identity service: who we are, what we can do, whether we are ready.
#pragma once

#include "csi.grpc.pb.h"
#include "csi/driver.h"

namespace cellar::csi {

class IdentityService final : public ::csi::v1::Identity::Service {
 public:
  explicit IdentityService(DriverContext& ctx) : ctx_(ctx) {}

  grpc::Status GetPluginInfo(grpc::ServerContext*, const ::csi::v1::GetPluginInfoRequest*,
                             ::csi::v1::GetPluginInfoResponse*) override;
  grpc::Status GetPluginCapabilities(grpc::ServerContext*,
                                     const ::csi::v1::GetPluginCapabilitiesRequest*,
                                     ::csi::v1::GetPluginCapabilitiesResponse*) override;
  grpc::Status Probe(grpc::ServerContext*, const ::csi::v1::ProbeRequest*,
                     ::csi::v1::ProbeResponse*) override;

 private:
  // One per RPC; the RPC converts the Status with ToGrpc.
  Status DoGetPluginInfo(const ::csi::v1::GetPluginInfoRequest& req,
                         ::csi::v1::GetPluginInfoResponse* resp);
  Status DoGetPluginCapabilities(const ::csi::v1::GetPluginCapabilitiesRequest& req,
                                 ::csi::v1::GetPluginCapabilitiesResponse* resp);
  Status DoProbe(const ::csi::v1::ProbeRequest& req, ::csi::v1::ProbeResponse* resp);

  DriverContext& ctx_;
};

}  // namespace cellar::csi
