// Replicas: read-only local copies of volumes held by other nodes.
//
// NodePublishVolume on a node that does not hold a volume (its volume context names
// another owner node) creates a replica with the volume's id, fetched from the owner
// through RemoteVolumes; every later publish refreshes it, and the last unpublish on this
// node frees it. A replica is always published read-only: the owner's node stays the one
// writer node of the volume.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "common/status.h"
#include "csi/driver.h"
#include "csi/remote_volumes.h"
#include "store/volume.h"

namespace cellar::csi {

// The owner named by a volume context (kOwnerNodeKey, kOwnerPeerKey); nullopt when it
// names none (volumes created before Cellar recorded owners) or names `self`.
std::optional<RemoteOwner> RemoteOwnerOf(const std::map<std::string, std::string>& context,
                                         const std::string& self);

// The replica of volume `id`: created from `owner` and fetched when this node has none,
// refreshed from the owner when it has one. A replica created here and not fetched whole
// is freed again, so a failed publish leaves neither a volume nor memory behind.
// Errors (with `what` as context): FailedPrecondition when this node cannot fetch (no
// peer credentials) or the owner serves no peers; the owner's NotFound; Unavailable when
// the owner cannot be reached or the transfer broke; the store's ResourceExhausted.
Result<store::Volume> SyncReplica(DriverContext& ctx, const std::string& id,
                                  const RemoteOwner& owner, const std::string& what);

// Frees the replica `v` when nothing publishes it any more; OK otherwise.
Status FreeReplicaIfUnpublished(DriverContext& ctx, const store::Volume& v,
                                const std::string& what);

// At start: frees every replica nothing publishes (a publish that was fetching when the
// process died leaves one, half-filled). Failures are logged; the next start retries.
void FreeUnpublishedReplicas(DriverContext& ctx);

}  // namespace cellar::csi
