// CSI Node service: publishing volumes to pods as bind mounts, stats, expansion, and
// inline ephemeral volumes (created at publish, freed at unpublish).
#pragma once

#include <map>
#include <mutex>
#include <optional>
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
  // until it is published again.
  void RepairPublications();

  // The volume's condition as seen at `path` (a publication's target path, or the
  // volume's own directory): the volume's health, then whether the mount at `path`
  // still shows it. Also what `cellar status` and /metrics report.
  PublicationCondition Condition(const store::Volume& v, const std::string& path) const;

 private:
  Status DoPublish(const ::csi::v1::NodePublishVolumeRequest& req);
  Status DoUnpublish(const ::csi::v1::NodeUnpublishVolumeRequest& req);
  // Resolves a volume handle: a Cellar id, or the kubelet's handle of an inline volume.
  Result<store::Volume> Resolve(const std::string& handle) const;
  Result<store::Volume> CreateEphemeral(const ::csi::v1::NodePublishVolumeRequest& req);
  Status CheckPublishedAt(const store::Volume& v, const std::string& path) const;

  // Reported abnormal, by target path, with the reason; see RepairPublications.
  void SetBroken(const std::string& target, std::string message);
  std::optional<std::string> Broken(const std::string& target) const;

  DriverContext& ctx_;
  mutable std::mutex broken_mu_;
  std::map<std::string, std::string> broken_;  // guarded by broken_mu_
};

}  // namespace cellar::csi
