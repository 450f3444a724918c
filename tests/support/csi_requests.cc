#include "tests/support/csi_requests.h"

namespace cellar::testing {

using namespace csi::v1;

VolumeCapability MountCapability(VolumeCapability::AccessMode::Mode mode) {
  VolumeCapability cap;
  cap.mutable_mount();
  cap.mutable_access_mode()->set_mode(mode);
  return cap;
}

CreateVolumeRequest ProvisionerCreate(const std::string& name, int64_t bytes,
                                      const std::string& node_id) {
  CreateVolumeRequest req;
  req.set_name(name);
  req.mutable_capacity_range()->set_required_bytes(bytes);
  *req.add_volume_capabilities() = MountCapability();
  auto& params = *req.mutable_parameters();
  params["csi.storage.k8s.io/pvc/name"] = "data-" + name;
  params["csi.storage.k8s.io/pvc/namespace"] = "pipelines";
  params["csi.storage.k8s.io/pv/name"] = name;
  Topology topology;
  (*topology.mutable_segments())[kTopologyKey] = node_id;
  *req.mutable_accessibility_requirements()->add_requisite() = topology;
  *req.mutable_accessibility_requirements()->add_preferred() = topology;
  return req;
}

NodePublishVolumeRequest KubeletPublish(const Volume& volume, const std::string& target,
                                        bool readonly) {
  NodePublishVolumeRequest req;
  req.set_volume_id(volume.volume_id());
  req.set_target_path(target);
  req.set_readonly(readonly);
  *req.mutable_volume_capability() = MountCapability();
  *req.mutable_volume_context() = volume.volume_context();
  auto& ctx = *req.mutable_volume_context();
  ctx["csi.storage.k8s.io/pod.name"] = "step-1";
  ctx["csi.storage.k8s.io/pod.namespace"] = "pipelines";
  ctx["csi.storage.k8s.io/pod.uid"] = "uid-1";
  ctx["csi.storage.k8s.io/serviceAccount.name"] = "default";
  ctx["csi.storage.k8s.io/ephemeral"] = "false";
  return req;
}

}  // namespace cellar::testing
