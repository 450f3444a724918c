// What the node holds, gathered in one place for its two readers: `cellar status`
// (the Admin service) and /metrics. The report is the admin API's own message, so the
// two can never disagree about what a field means.
#pragma once

#include <cstdint>
#include <string>

#include "cellar_admin.pb.h"
#include "csi/driver.h"
#include "csi/node_service.h"

namespace cellar::csi {

// Facts fixed at start, which the store and the source do not know.
struct StartFacts {
  int64_t started_unix = 0;
  std::string kind;  // fresh, takeover or handover (see cellar_admin.proto)
};

// Reads the store's books, every volume's usage and every publication's condition
// (as NodeGetVolumeStats would report it). A volume whose usage cannot be read is
// reported with zero use and its condition says why.
cellar::admin::v1::NodeStatus GatherNodeStatus(const DriverContext& ctx, const NodeService& node,
                                               const StartFacts& start);

}  // namespace cellar::csi
