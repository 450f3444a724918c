// Where a Cellar volume may be mounted, in CSI topology: the segments NodeGetInfo
// reports, the accessible topology CreateVolume answers (which the external-provisioner
// turns into the PV's node affinity) and the StorageClass parameter that widens it.
#pragma once

#include <map>
#include <string>

#include "common/status.h"
#include "csi.pb.h"

namespace cellar::csi {

// Every node: topology.csi.cellar.dev/node=<node id>.
inline constexpr const char* kTopologyKey = "topology.csi.cellar.dev/node";
// A node that fetches volumes from other nodes also reports
// peers.csi.cellar.dev/<driver name>=true, which the kubelet copies into a node label.
// Per driver name, so two Cellar deployments on one node never report one key with
// different values (the kubelet refuses such a registration).
inline constexpr const char* kPeersKeyPrefix = "peers.csi.cellar.dev/";
inline constexpr const char* kPeersValue = "true";
// A label the kubelet puts on every Linux node, and that no NodeGetInfo reports.
inline constexpr const char* kOsLabel = "kubernetes.io/os";

// StorageClass parameter: which nodes may mount a volume.
//   owner (default)  only the node whose memory holds it;
//   peers            also any node that fetches from peers (a read-only replica).
inline constexpr const char* kNodesParameter = "cellar.dev/nodes";
enum class VolumeNodes { kOwner, kPeers };

std::string PeersTopologyKey(const std::string& driver_name);

// kNodesParameter's value (absent means kOwner); InvalidArgument names `what`.
Result<VolumeNodes> ParseVolumeNodes(const std::map<std::string, std::string>& parameters,
                                     const std::string& what);

// NodeGetInfo's segments.
std::map<std::string, std::string> NodeSegments(const std::string& driver_name,
                                                const std::string& node_id, bool fetches);

// CreateVolume's accessible topology for a volume held by `owner`. Topologies are
// OR'ed. The first names the owner. With kPeers a second one admits any node carrying
// the peers label AND kubernetes.io/os=linux: real nodes have both labels, but the
// external-provisioner (--node-deployment) decides which node's instance deletes a PV by
// matching the PV's affinity against that node's NodeGetInfo segments alone, where the
// second term never matches. So only the owner's controller ever deletes the volume;
// a peer answering "not found, deleted" would drop the PV while the owner keeps the memory.
void FillVolumeTopology(const std::string& driver_name, const std::string& owner, VolumeNodes nodes,
                        google::protobuf::RepeatedPtrField<::csi::v1::Topology>* out);

// Whether `topology` designates `node_id` (its node segment; other segments, such as the
// peers one in a strict requisite, do not change which node it is).
bool DesignatesNode(const ::csi::v1::Topology& topology, const std::string& node_id);

}  // namespace cellar::csi
