// The node plugin process: opens the store, makes volumes reachable, serves the CSI
// services on one unix socket until SIGTERM/SIGINT or a successor's hand-over
// (node/handover.h).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "common/status.h"
#include "csi/io_mode.h"
#include "node/peering.h"

namespace cellar::node {

struct NodeOptions {
  std::string endpoint;  // unix:///path/csi.sock
  std::string node_id;
  std::filesystem::path state_dir;
  uint64_t capacity_bytes = 0;
  uint32_t max_volumes = 1024;
  std::string driver_name;
  csi::IoMode io_mode = csi::IoMode::kAuto;  // how pods' I/O is served (csi/io_mode.h)
  // The fd holder's socket; empty: none (a crash then breaks the pods' mounts).
  std::filesystem::path fd_holder;
  // Where a successor asks this process to hand over; empty: <state_dir>/handover.sock.
  std::filesystem::path handover_socket;
  // After handing over: exit (true), or idle until SIGTERM (a container that must not
  // exit, or its restart would take the node back).
  bool exit_after_handover = true;
  // Where /metrics is served ("HOST:PORT", ":PORT"); empty: nowhere.
  std::string metrics_address;
  // Cross-node reads: serving this node's volumes and fetching other nodes' (peering.h).
  PeerOptions peer;
};

// Runs until a termination signal; returns the reason it could not start otherwise.
Status RunNode(const NodeOptions& options);

}  // namespace cellar::node
