// The fd holder process (`cellar fd-holder`): keeps the FUSE connection's files that
// `cellar node` gives it, so that pods' mounts outlive a crash of the node process. It
// serves the protocol described in mount/fd_holder.h, whose client FuseServer uses.
#pragma once

#include <filesystem>

#include "common/status.h"

namespace cellar::node {

// Serves the holder socket until SIGTERM or SIGINT. Errors if the socket cannot be
// made (a live holder already serves it, the path is not a socket...).
Status RunFdHolder(const std::filesystem::path& socket);

}  // namespace cellar::node
