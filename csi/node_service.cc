#include "csi/node_service.h"

#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "common/arena_mount.h"
#include "common/size.h"
#include "csi/handler_steps.h"
#include "csi/mounter.h"
#include "csi/replicas.h"
#include "csi/validation.h"

namespace cellar::csi {

using namespace ::csi::v1;

Result<store::Volume> NodeService::Resolve(const std::string& handle) const {
  if (store::IsVolumeId(handle)) return ctx_.store.Get(handle);
  if (IsEphemeralHandle(handle)) {
    auto v = ctx_.store.FindByName(handle);
    if (v && v->ephemeral) return *v;
  }
  return Error(Code::kNotFound, "volume \"{}\" does not exist", handle);
}

Result<store::Volume> NodeService::ResolveForPublish(const NodePublishVolumeRequest& req,
                                                     const std::string& what) {
  const std::string& handle = req.volume_id();
  auto local = Resolve(handle);
  if (local.ok() && !local->is_replica()) return local;
  if (!local.ok() && local.status().code() != Code::kNotFound) return local;
  std::map<std::string, std::string> context(req.volume_context().begin(),
                                             req.volume_context().end());
  std::optional<RemoteOwner> owner = RemoteOwnerOf(context, ctx_.config.node_id);
  if (local.ok()) {
    // Already published here: the kubelet retrying a publish it made gets it as it was.
    if (local->publications.count(req.target_path())) return local;
    owner = RemoteOwner{local->replica_of.node_id, local->replica_of.address};
  }
  if (!owner) return local;  // not held here, and no other node named
  return SyncReplica(ctx_, handle, *owner, what);
}

Result<store::Volume> NodeService::CreateEphemeral(const NodePublishVolumeRequest& req) {
  const std::string& handle = req.volume_id();
  std::string what = fmt::format("inline volume {}", handle);
  if (!IsEphemeralHandle(handle)) {
    return Error(Code::kInvalidArgument, "{}: handle has characters Cellar does not accept", what);
  }
  uint64_t size = kDefaultVolumeBytes;
  std::map<std::string, std::string> recorded;
  for (const auto& [key, value] : req.volume_context()) {
    if (key == "size") {
      auto parsed = ParseSize(value);
      if (!parsed.ok()) return parsed.status().WithContext(what + ": volume attribute \"size\"");
      size = *parsed;
    } else if (key == kHugePagesParameter) {
      recorded[key] = value;
      RETURN_IF_ERROR(ParseArenaPages(recorded, what).status());
    } else if (key.rfind("csi.storage.k8s.io/", 0) == 0) {
      if (key == kPodName || key == kPodNamespace) {
        recorded[key] = value;
      }
    } else {
      return Error(Code::kInvalidArgument,
                   "{}: unknown volume attribute \"{}\" (inline volumes take only \"size\" and "
                   "\"{}\")",
                   what, key, kHugePagesParameter);
    }
  }
  ::csi::v1::CapacityRange range;
  range.set_required_bytes(static_cast<int64_t>(std::min<uint64_t>(size, INT64_MAX)));
  ASSIGN_OR_RETURN(uint64_t capacity, CapacityFor(range, what));
  if (auto existing = ctx_.store.FindByName(handle)) return *existing;
  ASSIGN_OR_RETURN(store::Volume v, CreateAttached(ctx_, {handle, capacity, true, recorded}, what));
  spdlog::info("created inline volume {} for {} of {}", v.id, handle, FormatSize(capacity));
  return v;
}

grpc::Status NodeService::NodePublishVolume(grpc::ServerContext*,
                                            const NodePublishVolumeRequest* req,
                                            NodePublishVolumeResponse* resp) {
  return ToGrpc(DoNodePublishVolume(*req, resp));
}

grpc::Status NodeService::NodeUnpublishVolume(grpc::ServerContext*,
                                              const NodeUnpublishVolumeRequest* req,
                                              NodeUnpublishVolumeResponse* resp) {
  return ToGrpc(DoNodeUnpublishVolume(*req, resp));
}

grpc::Status NodeService::NodeGetVolumeStats(grpc::ServerContext*,
                                             const NodeGetVolumeStatsRequest* req,
                                             NodeGetVolumeStatsResponse* resp) {
  return ToGrpc(DoNodeGetVolumeStats(*req, resp));
}

grpc::Status NodeService::NodeExpandVolume(grpc::ServerContext*, const NodeExpandVolumeRequest* req,
                                           NodeExpandVolumeResponse* resp) {
  return ToGrpc(DoNodeExpandVolume(*req, resp));
}

grpc::Status NodeService::NodeGetCapabilities(grpc::ServerContext*,
                                              const NodeGetCapabilitiesRequest* req,
                                              NodeGetCapabilitiesResponse* resp) {
  return ToGrpc(DoNodeGetCapabilities(*req, resp));
}

grpc::Status NodeService::NodeGetInfo(grpc::ServerContext*, const NodeGetInfoRequest* req,
                                      NodeGetInfoResponse* resp) {
  return ToGrpc(DoNodeGetInfo(*req, resp));
}

Status NodeService::DoNodePublishVolume(const NodePublishVolumeRequest& req,
                                        NodePublishVolumeResponse*) {
  const std::string& handle = req.volume_id();
  RETURN_IF_ERROR(RequireVolumeId("NodePublishVolume", handle));
  std::string what = fmt::format("volume {}", handle);
  RETURN_IF_ERROR(CheckTargetPath(req.target_path(), what + ": target_path"));
  if (!req.has_volume_capability()) {
    return Error(Code::kInvalidArgument, "{}: volume_capability is missing", what);
  }
  // The spec's NodePublishVolume table: capabilities the volume does not support are
  // FAILED_PRECONDITION ("Exceeds capabilities"), not INVALID_ARGUMENT.
  RETURN_IF_ERROR(CheckCapability(req.volume_capability(), what, Code::kFailedPrecondition));

  auto eph = req.volume_context().find(kEphemeral);
  bool ephemeral = eph != req.volume_context().end() && eph->second == "true";

  LockSet::Guard guard(ctx_.volume_locks, ephemeral ? "name:" + handle : handle);
  store::Volume v;
  if (ephemeral) {
    ASSIGN_OR_RETURN(v, CreateEphemeral(req));
  } else {
    ASSIGN_OR_RETURN(v, ResolveForPublish(req, what));
  }

  const auto& mode = req.volume_capability().access_mode().mode();
  store::Publication pub;
  pub.target_path = req.target_path();
  // A replica is a copy: writes to it would reach no other node, so it is never writable.
  pub.readonly = req.readonly() || mode == VolumeCapability::AccessMode::SINGLE_NODE_READER_ONLY ||
                 v.is_replica();
  const auto& flags = req.volume_capability().mount().mount_flags();
  pub.mount_flags.assign(flags.begin(), flags.end());
  pub.access_mode = mode;
  if (auto it = req.volume_context().find(kPodName); it != req.volume_context().end()) {
    pub.pod_name = it->second;
  }
  if (auto it = req.volume_context().find(kPodNamespace); it != req.volume_context().end()) {
    pub.pod_namespace = it->second;
  }

  std::filesystem::path source = ctx_.source.Dir(v.id);
  ASSIGN_OR_RETURN(TargetInfo target, InspectTarget(pub.target_path, source));
  auto recorded = v.publications.find(pub.target_path);
  if (target.state == TargetState::kMountedSame) {
    if (recorded != v.publications.end() && recorded->second == pub) return Status::Ok();
    if (recorded == v.publications.end() && target.readonly == pub.readonly) {
      return ctx_.store.AddPublication(v.id, pub);  // mounted, but the record was lost
    }
    return Error(Code::kAlreadyExists,
                 "{}: already published at {} with different options (read-only {} vs {})", what,
                 pub.target_path, target.readonly, pub.readonly);
  }
  if (target.state == TargetState::kMountedOther) {
    return Error(Code::kAlreadyExists, "{}: target {} is already a mount point of something else",
                 what, pub.target_path);
  }
  if (target.state == TargetState::kBroken) {
    if (recorded == v.publications.end()) {
      return Error(Code::kAlreadyExists, "{}: target {} is a broken mount of something else", what,
                   pub.target_path);
    }
    RETURN_IF_ERROR(UnmountAndRemove(pub.target_path).WithContext(what));
  }
  if (target.state == TargetState::kNotMounted) {
    // The kubelet hands over an empty directory (or none). Binding over content would
    // hide it from the node; refuse instead of guessing.
    std::error_code ec;
    if (!std::filesystem::is_directory(pub.target_path, ec)) {
      return Error(Code::kFailedPrecondition, "{}: target {} exists and is not a directory", what,
                   pub.target_path);
    }
    if (!std::filesystem::is_empty(pub.target_path, ec)) {
      return Error(Code::kFailedPrecondition,
                   "{}: target {} is a non-empty directory; refusing to hide its content", what,
                   pub.target_path);
    }
  }
  // SINGLE_NODE_SINGLE_WRITER: one publication at a time, as the spec defines it.
  if (mode == VolumeCapability::AccessMode::SINGLE_NODE_SINGLE_WRITER) {
    for (const auto& [path, p] : v.publications) {
      if (path != pub.target_path) {
        return Error(Code::kFailedPrecondition,
                     "{}: SINGLE_NODE_SINGLE_WRITER and already published at {}", what, path);
      }
    }
  }
  return BindAndRecord(ctx_, v.id, source, pub, what);
}

Status NodeService::DoNodeUnpublishVolume(const NodeUnpublishVolumeRequest& req,
                                          NodeUnpublishVolumeResponse*) {
  const std::string& handle = req.volume_id();
  RETURN_IF_ERROR(RequireVolumeId("NodeUnpublishVolume", handle));
  std::string what = fmt::format("volume {}", handle);
  RETURN_IF_ERROR(CheckTargetPath(req.target_path(), what + ": target_path"));
  if (!store::IsVolumeId(handle) && !IsEphemeralHandle(handle)) {
    return Error(Code::kNotFound, "volume \"{}\" does not exist", handle);
  }
  bool is_id = store::IsVolumeId(handle);
  LockSet::Guard guard(ctx_.volume_locks, is_id ? handle : "name:" + handle);
  auto v = Resolve(handle);
  // Unpublish is idempotent: a volume that is gone (deleted, or an inline volume
  // already freed) has nothing left to unpublish. Its target is not touched: only
  // mounts that are provably ours are ever unmounted or removed.
  if (!v.ok()) return Status::Ok();
  bool recorded = v->publications.count(req.target_path()) > 0;
  if (!recorded) {
    ASSIGN_OR_RETURN(TargetInfo target, InspectTarget(req.target_path(), ctx_.source.Dir(v->id)));
    if (target.state != TargetState::kMountedSame) return Status::Ok();
  }
  RETURN_IF_ERROR(UnmountAndRemove(req.target_path()).WithContext(what));
  // Removing the record also clears the publication's health (see RepairPublications).
  RETURN_IF_ERROR(ctx_.store.RemovePublication(v->id, req.target_path()).WithContext(what));
  if (v->is_replica()) return FreeReplicaIfUnpublished(ctx_, *v, what);
  if (v->ephemeral) {
    auto now = ctx_.store.Get(v->id);
    if (now.ok() && now->publications.empty()) {
      RETURN_IF_ERROR(ctx_.source.Detach(v->id).WithContext(what));
      RETURN_IF_ERROR(ctx_.store.Delete(v->id).WithContext(what));
      spdlog::info("freed inline volume {} ({})", v->id, handle);
    }
  }
  return Status::Ok();
}

Status NodeService::CheckPublishedAt(const store::Volume& v, const std::string& path) const {
  if (v.publications.count(path)) return Status::Ok();
  std::filesystem::path p(path);
  if (p.lexically_normal() == ctx_.source.Dir(v.id).lexically_normal()) return Status::Ok();
  return Error(Code::kNotFound, "volume {}: {} is not a path where it is published", v.id, path);
}

Status NodeService::DoNodeGetVolumeStats(const NodeGetVolumeStatsRequest& req,
                                         NodeGetVolumeStatsResponse* resp) {
  const std::string& handle = req.volume_id();
  RETURN_IF_ERROR(RequireVolumeId("NodeGetVolumeStats", handle));
  if (req.volume_path().empty()) {
    return Error(Code::kInvalidArgument, "volume {}: volume_path is empty", handle);
  }
  ASSIGN_OR_RETURN(store::Volume v, Resolve(handle));
  RETURN_IF_ERROR(CheckPublishedAt(v, req.volume_path()));
  auto usage = ctx_.store.Usage(v.id);
  if (!usage.ok()) return usage.status().WithContext(fmt::format("volume {}", v.id));
  auto* bytes = resp->add_usage();
  bytes->set_unit(VolumeUsage::BYTES);
  bytes->set_total(static_cast<int64_t>(usage->total_bytes));
  bytes->set_used(static_cast<int64_t>(usage->used_bytes));
  bytes->set_available(static_cast<int64_t>(usage->available_bytes));
  auto* inodes = resp->add_usage();
  inodes->set_unit(VolumeUsage::INODES);
  inodes->set_total(static_cast<int64_t>(usage->total_inodes));
  inodes->set_used(static_cast<int64_t>(usage->used_inodes));
  inodes->set_available(static_cast<int64_t>(usage->available_inodes));

  PublicationCondition condition = Condition(v, req.volume_path());
  resp->mutable_volume_condition()->set_abnormal(condition.abnormal);
  resp->mutable_volume_condition()->set_message(condition.message);
  return Status::Ok();
}

PublicationCondition NodeService::Condition(const store::Volume& v, const std::string& path) const {
  store::VolumeHealth health = ctx_.store.Health(v.id);
  PublicationCondition out;
  auto pub = v.publications.find(path);
  if (pub != v.publications.end() && !pub->second.broken.empty()) {
    out.connection_lost = true;
    if (!health.abnormal) health = {true, pub->second.broken};
  }
  if (!health.abnormal && v.publications.count(path)) {
    auto target = InspectTarget(path, ctx_.source.Dir(v.id));
    if (!target.ok()) {
      health = {true, target.status().message()};
    } else if (target->state != TargetState::kMountedSame) {
      health = {true, target->state == TargetState::kBroken
                          ? target->detail
                          : fmt::format("{} no longer shows the volume", path)};
    }
  }
  out.abnormal = health.abnormal;
  out.message = health.abnormal ? health.message : "healthy";
  if (!health.abnormal && v.is_replica()) {
    out.message = fmt::format(
        "healthy: a read-only replica of node \"{}\"'s volume, fetched when it was published here",
        v.replica_of.node_id);
  }
  return out;
}

Status NodeService::DoNodeExpandVolume(const NodeExpandVolumeRequest& req,
                                       NodeExpandVolumeResponse* resp) {
  const std::string& handle = req.volume_id();
  RETURN_IF_ERROR(RequireVolumeId("NodeExpandVolume", handle));
  std::string what = fmt::format("volume {}", handle);
  if (req.volume_path().empty()) {
    return Error(Code::kInvalidArgument, "{}: volume_path is empty", what);
  }
  if (req.has_volume_capability()) RETURN_IF_ERROR(CheckCapability(req.volume_capability(), what));
  ASSIGN_OR_RETURN(store::Volume v, Resolve(handle));
  RETURN_IF_ERROR(CheckPublishedAt(v, req.volume_path()));
  uint64_t capacity = v.capacity_bytes;
  if (req.has_capacity_range()) {
    ASSIGN_OR_RETURN(uint64_t wanted, CapacityFor(req.capacity_range(), what));
    LockSet::Guard guard(ctx_.volume_locks, v.id);
    ASSIGN_OR_RETURN(store::Volume grown, ctx_.store.Resize(v.id, wanted));
    capacity = grown.capacity_bytes;
  }
  resp->set_capacity_bytes(static_cast<int64_t>(capacity));
  return Status::Ok();
}

Status NodeService::DoNodeGetCapabilities(const NodeGetCapabilitiesRequest&,
                                          NodeGetCapabilitiesResponse* resp) {
  for (auto type :
       {NodeServiceCapability::RPC::GET_VOLUME_STATS, NodeServiceCapability::RPC::EXPAND_VOLUME,
        NodeServiceCapability::RPC::VOLUME_CONDITION,
        NodeServiceCapability::RPC::SINGLE_NODE_MULTI_WRITER}) {
    resp->add_capabilities()->mutable_rpc()->set_type(type);
  }
  return Status::Ok();
}

Status NodeService::DoNodeGetInfo(const NodeGetInfoRequest&, NodeGetInfoResponse* resp) {
  resp->set_node_id(ctx_.config.node_id);
  resp->set_max_volumes_per_node(ctx_.config.max_volumes);
  for (auto& [key, value] :
       NodeSegments(ctx_.config.driver_name, ctx_.config.node_id, ctx_.remote != nullptr)) {
    (*resp->mutable_accessible_topology()->mutable_segments())[key] = value;
  }
  return Status::Ok();
}

void NodeService::RepairPublications() {
  for (const auto& v : ctx_.store.List()) {
    std::filesystem::path source = ctx_.source.Dir(v.id);
    for (const auto& [path, pub] : v.publications) {
      auto target = InspectTarget(path, source);
      if (!target.ok()) {
        spdlog::warn("volume {}: cannot inspect publication {}: {}", v.id, path,
                     target.status().ToString());
        continue;
      }
      // Absent: the kubelet removed the target, so the pod is gone; its unpublish
      // will clean the record. Mounted: nothing to repair.
      if (target->state == TargetState::kMountedSame || target->state == TargetState::kAbsent) {
        continue;
      }
      if (target->state == TargetState::kMountedOther) {
        spdlog::warn("volume {}: {} shows something else; left alone", v.id, path);
        continue;
      }
      if (target->state == TargetState::kBroken) {
        // Journaled with the publication, so a restart before the pod is recreated
        // still reports it; the unpublish that comes with the new pod clears it.
        std::string message = fmt::format(
            "the FUSE connection behind {} was lost (the daemon stopped and no fd holder kept "
            "it); containers started before see \"transport endpoint is not connected\" until "
            "the pod is recreated",
            path);
        spdlog::warn("{}", message);
        Status marked = ctx_.store.SetPublicationHealth(v.id, path, {true, std::move(message)});
        if (!marked.ok()) {
          spdlog::warn("volume {}: could not record that {} lost its connection: {}", v.id, path,
                       marked.ToString());
        }
      }
      Status st = UnmountAndRemove(path);
      if (st.ok()) st = BindMount(source, path, pub.readonly, pub.mount_flags);
      if (st.ok()) {
        spdlog::info("volume {}: re-published at {}", v.id, path);
      } else {
        spdlog::warn("volume {}: could not re-publish at {}: {}", v.id, path, st.ToString());
      }
    }
  }
}

}  // namespace cellar::csi
