// How `cellar status` prints a node's report: a table for people, or JSON for scripts
// (protobuf's JSON mapping of cellar_admin.proto's NodeStatus, field names as in the
// proto; 64-bit numbers are strings there, as that mapping requires).
#pragma once

#include <string>

#include "cellar_admin.pb.h"
#include "common/status.h"

namespace cellar::csi {

std::string FormatStatusText(const cellar::admin::v1::NodeStatus& status);

// Internal when protobuf cannot print the message (it always can; a value, not a throw).
Result<std::string> FormatStatusJson(const cellar::admin::v1::NodeStatus& status);

}  // namespace cellar::csi
