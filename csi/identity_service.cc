#include "csi/identity_service.h"

#include <spdlog/spdlog.h>

#include "csi/local_client.h"

namespace cellar::csi {

using namespace ::csi::v1;

grpc::Status IdentityService::GetPluginInfo(grpc::ServerContext*, const GetPluginInfoRequest* req,
                                            GetPluginInfoResponse* resp) {
  return ToGrpc(DoGetPluginInfo(*req, resp));
}

grpc::Status IdentityService::GetPluginCapabilities(grpc::ServerContext*,
                                                    const GetPluginCapabilitiesRequest* req,
                                                    GetPluginCapabilitiesResponse* resp) {
  return ToGrpc(DoGetPluginCapabilities(*req, resp));
}

grpc::Status IdentityService::Probe(grpc::ServerContext*, const ProbeRequest* req,
                                    ProbeResponse* resp) {
  return ToGrpc(DoProbe(*req, resp));
}

Status IdentityService::DoGetPluginInfo(const GetPluginInfoRequest&, GetPluginInfoResponse* resp) {
  resp->set_name(ctx_.config.driver_name);
  resp->set_vendor_version(ctx_.config.version);
  // Which process answers: in a rollout both plugin pods serve one socket, and the new
  // pod's registrar must not register the driver before its own daemon took over.
  if (std::string host = HostName(); !host.empty()) {
    (*resp->mutable_manifest())[kHostManifestKey] = host;
  }
  return Status::Ok();
}

Status IdentityService::DoGetPluginCapabilities(const GetPluginCapabilitiesRequest&,
                                                GetPluginCapabilitiesResponse* resp) {
  resp->add_capabilities()->mutable_service()->set_type(
      PluginCapability::Service::CONTROLLER_SERVICE);
  resp->add_capabilities()->mutable_service()->set_type(
      PluginCapability::Service::VOLUME_ACCESSIBILITY_CONSTRAINTS);
  resp->add_capabilities()->mutable_volume_expansion()->set_type(
      PluginCapability::VolumeExpansion::ONLINE);
  return Status::Ok();
}

Status IdentityService::DoProbe(const ProbeRequest&, ProbeResponse* resp) {
  Status st = ctx_.store.Healthy();
  if (st.ok()) st = ctx_.source.Healthy();
  if (!st.ok()) {
    // Not ready is an answer (ready=false), not an RPC error; the reason goes to the log.
    spdlog::warn("Probe: not ready: {}", st.message());
    resp->mutable_ready()->set_value(false);
    return Status::Ok();
  }
  resp->mutable_ready()->set_value(true);
  return Status::Ok();
}

}  // namespace cellar::csi
