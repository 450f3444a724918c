#include "csi/topology.h"

namespace cellar::csi {

std::string PeersTopologyKey(const std::string& driver_name) {
  return kPeersKeyPrefix + driver_name;
}

Result<VolumeNodes> ParseVolumeNodes(const std::map<std::string, std::string>& parameters,
                                     const std::string& what) {
  auto it = parameters.find(kNodesParameter);
  if (it == parameters.end() || it->second == "owner") return VolumeNodes::kOwner;
  if (it->second == "peers") return VolumeNodes::kPeers;
  return Error(Code::kInvalidArgument,
               "{}: StorageClass parameter {}=\"{}\" is neither \"owner\" (only the node "
               "holding the data mounts it) nor \"peers\" (other nodes mount read-only "
               "replicas)",
               what, kNodesParameter, it->second);
}

std::map<std::string, std::string> NodeSegments(const std::string& driver_name,
                                                const std::string& node_id, bool fetches) {
  std::map<std::string, std::string> segments{{kTopologyKey, node_id}};
  if (fetches) segments[PeersTopologyKey(driver_name)] = kPeersValue;
  return segments;
}

void FillVolumeTopology(const std::string& driver_name, const std::string& owner, VolumeNodes nodes,
                        google::protobuf::RepeatedPtrField<::csi::v1::Topology>* out) {
  (*out->Add()->mutable_segments())[kTopologyKey] = owner;
  if (nodes != VolumeNodes::kPeers) return;
  auto& peers = *out->Add()->mutable_segments();
  peers[PeersTopologyKey(driver_name)] = kPeersValue;
  peers[kOsLabel] = "linux";
}

bool DesignatesNode(const ::csi::v1::Topology& topology, const std::string& node_id) {
  auto it = topology.segments().find(kTopologyKey);
  return it != topology.segments().end() && it->second == node_id;
}

}  // namespace cellar::csi
