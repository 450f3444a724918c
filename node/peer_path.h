// The paths the node-to-node protocol names files by: relative to the volume's root,
// '/'-separated, no empty, "." or ".." component. Checked on both sides: the owner never
// opens outside the volume, and a reader never writes outside its replica.
#pragma once

#include <string>

#include "common/status.h"

namespace cellar::node {

// InvalidArgument "<what>: path \"...\" <why>" unless `path` is such a path.
Status CheckPeerPath(const std::string& path, const std::string& what);

}  // namespace cellar::node
