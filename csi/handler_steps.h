// Steps the CSI handlers share: the volume-id prologue, and the multi-step changes
// that undo their earlier steps when a later one fails. Each returns the spec's code
// and a message naming the volume; the handlers convert with ToGrpc at the edge.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/status.h"
#include "csi/driver.h"
#include "store/store.h"
#include "store/volume.h"

namespace cellar::csi {

// InvalidArgument "<rpc>: volume_id is empty" for an empty id.
Status RequireVolumeId(std::string_view rpc, const std::string& id);

// NotFound "volume \"<id>\" does not exist (not a Cellar volume id)" unless `id` is one
// the store could have generated.
Status RequireCellarId(const std::string& id);

// RequireCellarId, then the store's volume (NotFound when unknown).
Result<store::Volume> GetCellarVolume(const store::Store& store, const std::string& id);

// GetCellarVolume, but NotFound for a replica of another node's volume too: the
// controller's RPCs belong to the owner's controller.
Result<store::Volume> GetOwnedVolume(const store::Store& store, const std::string& id);

// Creates the volume in the store and attaches it to the volume source. When the
// attach fails the volume is deleted again, so the node's books are as before.
// Errors: Store::Create's (journal, mount, capacity), or the attach's with `what` as
// context.
Result<store::Volume> CreateAttached(DriverContext& ctx, const store::VolumeSpec& spec,
                                     const std::string& what);
// The same for a replica of another node's volume (Store::CreateReplica).
Result<store::Volume> CreateAttachedReplica(DriverContext& ctx, const store::VolumeSpec& spec,
                                            const std::string& id, const store::ReplicaOf& owner,
                                            const std::string& what);

// Binds `source` onto the publication's target and records the publication. When the
// record cannot be journaled the bind is undone (unmounted, target removed), so no
// mount is left that the store does not know. Errors carry `what` as context.
Status BindAndRecord(DriverContext& ctx, const std::string& volume_id,
                     const std::filesystem::path& source, const store::Publication& pub,
                     const std::string& what);

}  // namespace cellar::csi
