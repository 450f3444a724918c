#include "csi/replicas.h"

#include <spdlog/spdlog.h>

#include "common/size.h"
#include "csi/handler_steps.h"

namespace cellar::csi {

std::optional<RemoteOwner> RemoteOwnerOf(const std::map<std::string, std::string>& context,
                                         const std::string& self) {
  auto node = context.find(kOwnerNodeKey);
  if (node == context.end() || node->second.empty() || node->second == self) return std::nullopt;
  RemoteOwner owner{node->second, ""};
  if (auto peer = context.find(kOwnerPeerKey); peer != context.end()) owner.address = peer->second;
  return owner;
}

namespace {

Status CheckCanFetch(const DriverContext& ctx, const RemoteOwner& owner, const std::string& what) {
  if (ctx.remote == nullptr) {
    return Error(Code::kFailedPrecondition,
                 "{}: its data lives on node \"{}\" and this node cannot fetch it (cellar node was "
                 "started without --peer-tls-dir)",
                 what, owner.node_id);
  }
  if (owner.address.empty()) {
    return Error(Code::kFailedPrecondition,
                 "{}: its data lives on node \"{}\", which serves no other node (it was started "
                 "without --peer-listen when the volume was created)",
                 what, owner.node_id);
  }
  return Status::Ok();
}

}  // namespace

Result<store::Volume> SyncReplica(DriverContext& ctx, const std::string& id,
                                  const RemoteOwner& owner, const std::string& what) {
  RETURN_IF_ERROR(CheckCanFetch(ctx, owner, what));
  std::string from =
      fmt::format("{}: fetching from node \"{}\" ({})", what, owner.node_id, owner.address);
  // One Describe per publish: it sizes a new replica and lists what Sync fetches.
  auto info = ctx.remote->Describe(owner, id);
  if (!info.ok()) return info.status().WithContext(from);
  store::Volume v;
  bool created = false;
  if (auto existing = ctx.store.Get(id); existing.ok()) {
    v = *existing;
  } else {
    store::VolumeSpec spec{"replica:" + id, info->capacity_bytes, false, {}};
    ASSIGN_OR_RETURN(v, CreateAttachedReplica(ctx, spec, id, {owner.node_id, owner.address}, what));
    created = true;
  }
  auto report = ctx.remote->Sync(owner, id, *info, ctx.store.ArenaPath(id));
  if (!report.ok()) {
    if (created) {
      // Half a copy is no replica: give the memory back and let the kubelet retry.
      Status detached = ctx.source.Detach(id);
      Status deleted = ctx.store.Delete(id);
      if (!detached.ok() || !deleted.ok()) {
        spdlog::warn("{}: could not free the unfinished replica: {} / {}", what,
                     detached.ToString(), deleted.ToString());
      }
    }
    return report.status().WithContext(from);
  }
  spdlog::info(
      "{}: replica of node \"{}\" {}: {} files fetched ({}), {} unchanged, {} removed in "
      "{:.3f} s",
      what, owner.node_id, created ? "created" : "refreshed", report->files_fetched,
      FormatSize(report->bytes), report->files_kept, report->files_removed, report->seconds);
  return v;
}

Status FreeReplicaIfUnpublished(DriverContext& ctx, const store::Volume& v,
                                const std::string& what) {
  auto now = ctx.store.Get(v.id);
  if (!now.ok() || !now->is_replica() || !now->publications.empty()) return Status::Ok();
  RETURN_IF_ERROR(ctx.source.Detach(v.id).WithContext(what));
  RETURN_IF_ERROR(ctx.store.Delete(v.id).WithContext(what));
  spdlog::info("{}: freed the replica of node \"{}\" ({})", what, now->replica_of.node_id,
               FormatSize(now->capacity_bytes));
  return Status::Ok();
}

void FreeUnpublishedReplicas(DriverContext& ctx) {
  for (const store::Volume& v : ctx.store.List()) {
    if (!v.is_replica() || !v.publications.empty()) continue;
    Status st = FreeReplicaIfUnpublished(ctx, v, fmt::format("volume {}", v.id));
    if (!st.ok()) spdlog::warn("could not free an unpublished replica: {}", st.ToString());
  }
}

}  // namespace cellar::csi
