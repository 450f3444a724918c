// DriverContext: what the three CSI services share. No data of its own beyond
// configuration: volumes live in the store, bytes in the arenas.
#pragma once

#include <cstdint>
#include <string>

#include <grpcpp/grpcpp.h>

#include "common/status.h"
#include "csi/io_mode.h"
#include "csi/lock_set.h"
#include "csi/remote_volumes.h"
#include "csi/topology.h"
#include "csi/volume_source.h"
#include "store/store.h"

namespace cellar::csi {

inline constexpr const char* kDefaultDriverName = "csi.cellar.dev";

struct DriverConfig {
  std::string driver_name = kDefaultDriverName;
  std::string version;
  std::string node_id;
  uint32_t max_volumes = 1024;
  IoMode io_mode = IoMode::kPassthrough;  // as chosen at start; reported in volume contexts
  // host:port where other nodes fetch this node's volumes (--peer-advertise); empty when
  // this node does not serve them. Written into every volume context it creates.
  std::string peer_address;
};

// Volume context keys naming the node that holds a volume's data, so that a node
// publishing it elsewhere knows where to fetch it from.
inline constexpr const char* kOwnerNodeKey = "cellar.dev/owner-node";
inline constexpr const char* kOwnerPeerKey = "cellar.dev/owner-peer";

struct DriverContext {
  DriverConfig config;
  store::Store& store;
  VolumeSource& source;
  LockSet volume_locks;  // keyed by volume id, and by "name:" + name for CreateVolume
  // Fetches volumes held by other nodes; null when this node has no peer credentials.
  RemoteVolumes* remote = nullptr;
};

inline grpc::Status ToGrpc(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), status.message());
}

}  // namespace cellar::csi
