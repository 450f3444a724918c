// CSI Controller service. Cellar has no cluster-wide controller: every node plugin
// serves these for the volumes in its own memory (the provisioner runs with
// --node-deployment), so the answers are about this node.
#pragma once

#include "csi.grpc.pb.h"
#include "csi/driver.h"

namespace cellar::csi {

class ControllerService final : public ::csi::v1::Controller::Service {
 public:
  explicit ControllerService(DriverContext& ctx) : ctx_(ctx) {}

  grpc::Status CreateVolume(grpc::ServerContext*, const ::csi::v1::CreateVolumeRequest*,
                            ::csi::v1::CreateVolumeResponse*) override;
  grpc::Status DeleteVolume(grpc::ServerContext*, const ::csi::v1::DeleteVolumeRequest*,
                            ::csi::v1::DeleteVolumeResponse*) override;
  grpc::Status ValidateVolumeCapabilities(grpc::ServerContext*,
                                          const ::csi::v1::ValidateVolumeCapabilitiesRequest*,
                                          ::csi::v1::ValidateVolumeCapabilitiesResponse*) override;
  grpc::Status ListVolumes(grpc::ServerContext*, const ::csi::v1::ListVolumesRequest*,
                           ::csi::v1::ListVolumesResponse*) override;
  grpc::Status GetCapacity(grpc::ServerContext*, const ::csi::v1::GetCapacityRequest*,
                           ::csi::v1::GetCapacityResponse*) override;
  grpc::Status ControllerGetCapabilities(grpc::ServerContext*,
                                         const ::csi::v1::ControllerGetCapabilitiesRequest*,
                                         ::csi::v1::ControllerGetCapabilitiesResponse*) override;
  grpc::Status ControllerExpandVolume(grpc::ServerContext*,
                                      const ::csi::v1::ControllerExpandVolumeRequest*,
                                      ::csi::v1::ControllerExpandVolumeResponse*) override;
  grpc::Status ControllerGetVolume(grpc::ServerContext*,
                                   const ::csi::v1::ControllerGetVolumeRequest*,
                                   ::csi::v1::ControllerGetVolumeResponse*) override;

 private:
  // One per RPC; the RPC converts the Status with ToGrpc. Public RPCs above stay thin.
  Status DoCreateVolume(const ::csi::v1::CreateVolumeRequest& req,
                        ::csi::v1::CreateVolumeResponse* resp);
  Status DoDeleteVolume(const ::csi::v1::DeleteVolumeRequest& req,
                        ::csi::v1::DeleteVolumeResponse* resp);
  Status DoValidateVolumeCapabilities(const ::csi::v1::ValidateVolumeCapabilitiesRequest& req,
                                      ::csi::v1::ValidateVolumeCapabilitiesResponse* resp);
  Status DoListVolumes(const ::csi::v1::ListVolumesRequest& req,
                       ::csi::v1::ListVolumesResponse* resp);
  Status DoGetCapacity(const ::csi::v1::GetCapacityRequest& req,
                       ::csi::v1::GetCapacityResponse* resp);
  Status DoControllerGetCapabilities(const ::csi::v1::ControllerGetCapabilitiesRequest& req,
                                     ::csi::v1::ControllerGetCapabilitiesResponse* resp);
  Status DoControllerExpandVolume(const ::csi::v1::ControllerExpandVolumeRequest& req,
                                  ::csi::v1::ControllerExpandVolumeResponse* resp);
  Status DoControllerGetVolume(const ::csi::v1::ControllerGetVolumeRequest& req,
                               ::csi::v1::ControllerGetVolumeResponse* resp);
  Status CheckTopology(const ::csi::v1::TopologyRequirement& req, const std::string& what) const;
  void FillVolume(const store::Volume& v, ::csi::v1::Volume* out) const;
  void FillStatus(const store::Volume& v,
                  ::csi::v1::ControllerGetVolumeResponse::VolumeStatus* out) const;

  DriverContext& ctx_;
};

}  // namespace cellar::csi
