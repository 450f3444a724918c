// Builders for the requests the external-provisioner and the kubelet send, so tests
// read as the sequence of calls rather than as protobuf plumbing.
#pragma once

#include <cstdint>
#include <string>

#include "csi.pb.h"

namespace cellar::testing {

inline constexpr const char* kTopologyKey = "topology.csi.cellar.dev/node";

csi::v1::VolumeCapability MountCapability(
    csi::v1::VolumeCapability::AccessMode::Mode mode =
        csi::v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER);

// What csi-provisioner sends with --extra-create-metadata and strict topology: the
// selected node as requisite and preferred topology, the PVC/PV parameters.
csi::v1::CreateVolumeRequest ProvisionerCreate(const std::string& name, int64_t bytes,
                                               const std::string& node_id);

csi::v1::NodePublishVolumeRequest KubeletPublish(const csi::v1::Volume& volume,
                                                 const std::string& target, bool readonly = false);

}  // namespace cellar::testing
