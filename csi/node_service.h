// CSI Node service: publishing volumes to pods as bind mounts, stats, expansion, and
// inline ephemeral volumes (created at publish, freed at unpublish).
#pragma once

#include <string>

#include "csi.grpc.pb.h"
#include "csi/driver.h"

namespace cellar::csi {

// What NodeGetVolumeStats reports for one path of a volume.
struct PublicationCondition {
  bool abnormal = false;
  std::string message;  // "healthy", or why not
  // The FUSE connection behind this publication was lost (see RepairPublications).
  bool connection_lost = false;
};

class NodeService final : public ::csi::v1::Node::Service {
 public:
  explicit NodeService(DriverContext& ctx) : ctx_(ctx) {}

  grpc::Status NodePublishVolume(grpc::ServerContext*, const ::csi::v1::NodePublishVolumeRequest*,
                                 ::csi::v1::NodePublishVolumeResponse*) override;
  grpc::Status NodeUnpublishVolume(grpc::ServerContext*,
                                   const ::csi::v1::NodeUnpublishVolumeRequest*,
                                   ::csi::v1::NodeUnpublishVolumeResponse*) override;
  grpc::Status NodeGetVolumeStats(grpc::ServerContext*, const ::csi::v1::NodeGetVolumeStatsRequest*,
                                  ::csi::v1::NodeGetVolumeStatsResponse*) override;
  grpc::Status NodeExpandVolume(grpc::ServerContext*, const ::csi::v1::NodeExpandVolumeRequest*,
                                ::csi::v1::NodeExpandVolumeResponse*) override;
  grpc::Status NodeGetCapabilities(grpc::ServerContext*,
                                   const ::csi::v1::NodeGetCapabilitiesRequest*,
                                   ::csi::v1::NodeGetCapabilitiesResponse*) override;
  grpc::Status NodeGetInfo(grpc::ServerContext*, const ::csi::v1::NodeGetInfoRequest*,
                           ::csi::v1::NodeGetInfoResponse*) override;

  // At start: re-binds recorded publications whose mount is broken (the FUSE
  // connection was lost: the daemon and the fd holder both died), so that containers
  // started from now on see the volume. Containers already running keep their copy of
  // the dead mount, so such a publication is reported abnormal by NodeGetVolumeStats
  // until it is unpublished; the store journals that, so a restart still reports it.
  void RepairPublications();

  // The volume's condition as seen at `path` (a publication's target path, or the
  // volume's own directory): the volume's health, then the publication's recorded
  // health (Publication::broken), then whether the mount at `path` still shows it.
  // Also what `cellar status` and /metrics report.
  PublicationCondition Condition(const store::Volume& v, const std::string& path) const;

 private:
  // One per RPC; the RPC converts the Status with ToGrpc. Public RPCs above stay thin.
  Status DoNodePublishVolume(const ::csi::v1::NodePublishVolumeRequest& req,
                             ::csi::v1::NodePublishVolumeResponse* resp);
  Status DoNodeUnpublishVolume(const ::csi::v1::NodeUnpublishVolumeRequest& req,
                               ::csi::v1::NodeUnpublishVolumeResponse* resp);
  Status DoNodeGetVolumeStats(const ::csi::v1::NodeGetVolumeStatsRequest& req,
                              ::csi::v1::NodeGetVolumeStatsResponse* resp);
  Status DoNodeExpandVolume(const ::csi::v1::NodeExpandVolumeRequest& req,
                            ::csi::v1::NodeExpandVolumeResponse* resp);
  Status DoNodeGetCapabilities(const ::csi::v1::NodeGetCapabilitiesRequest& req,
                               ::csi::v1::NodeGetCapabilitiesResponse* resp);
  Status DoNodeGetInfo(const ::csi::v1::NodeGetInfoRequest& req,
                       ::csi::v1::NodeGetInfoResponse* resp);
  // Resolves a volume handle: a Cellar id, or the kubelet's handle of an inline volume.
  Result<store::Volume> Resolve(const std::string& handle) const;
  // Resolve, or for a volume held by another node its replica here, created or refreshed
  // from the owner the volume context names (csi/replicas.h).
  Result<store::Volume> ResolveForPublish(const ::csi::v1::NodePublishVolumeRequest& req,
                                          const std::string& what);
  Result<store::Volume> CreateEphemeral(const ::csi::v1::NodePublishVolumeRequest& req);
  Status CheckPublishedAt(const store::Volume& v, const std::string& path) const;

  // No state of its own: volumes, publications and their health live in the store.
  DriverContext& ctx_;
};

}  // namespace cellar::csi
