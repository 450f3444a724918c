#include "csi/controller_service.h"

#include <spdlog/spdlog.h>

#include "common/size.h"
#include "csi/handler_steps.h"
#include "csi/validation.h"
#include "store/volume.h"

namespace cellar::csi {

using namespace ::csi::v1;

namespace {

// Fills the volume condition of a status message from the store's view.
template <typename StatusMessage>
void FillCondition(const store::Store& s, const std::string& id, StatusMessage* out) {
  store::VolumeHealth h = s.Health(id);
  out->mutable_volume_condition()->set_abnormal(h.abnormal);
  out->mutable_volume_condition()->set_message(h.abnormal ? h.message : "healthy");
}

}  // namespace

Status ControllerService::CheckTopology(const TopologyRequirement& req,
                                        const std::string& what) const {
  if (req.requisite().empty()) return Status::Ok();  // preferred alone is a wish
  for (const auto& t : req.requisite()) {
    if (DesignatesNode(t, ctx_.config.node_id)) return Status::Ok();
  }
  return Error(Code::kResourceExhausted,
               "{}: the requisite topology excludes node \"{}\"; a Cellar volume can only be "
               "created in the memory of the node that serves the request",
               what, ctx_.config.node_id);
}

void ControllerService::FillVolume(const store::Volume& v, ::csi::v1::Volume* out) const {
  out->set_volume_id(v.id);
  out->set_capacity_bytes(static_cast<int64_t>(v.capacity_bytes));
  // Checked when the volume was created; a journal from before the parameter existed
  // has no value, which is kOwner.
  auto nodes = ParseVolumeNodes(v.parameters, v.id);
  FillVolumeTopology(ctx_.config.driver_name, ctx_.config.node_id,
                     nodes.ok() ? *nodes : VolumeNodes::kOwner, out->mutable_accessible_topology());
  for (const auto& [k, val] : v.parameters) (*out->mutable_volume_context())[k] = val;
  // CSI has no field for how a node serves I/O, and NodeGetInfo's topology must stay
  // the node name; the volume context is where users (kubectl get pv -o yaml) see it.
  (*out->mutable_volume_context())[kIoModeKey] = std::string(IoModeName(ctx_.config.io_mode));
  (*out->mutable_volume_context())[kOwnerNodeKey] = ctx_.config.node_id;
  if (!ctx_.config.peer_address.empty()) {
    (*out->mutable_volume_context())[kOwnerPeerKey] = ctx_.config.peer_address;
  }
}

void ControllerService::FillStatus(const store::Volume& v,
                                   ControllerGetVolumeResponse::VolumeStatus* out) const {
  if (!v.publications.empty()) out->add_published_node_ids(ctx_.config.node_id);
  FillCondition(ctx_.store, v.id, out);
}

grpc::Status ControllerService::CreateVolume(grpc::ServerContext*, const CreateVolumeRequest* req,
                                             CreateVolumeResponse* resp) {
  return ToGrpc(DoCreateVolume(*req, resp));
}

grpc::Status ControllerService::DeleteVolume(grpc::ServerContext*, const DeleteVolumeRequest* req,
                                             DeleteVolumeResponse* resp) {
  return ToGrpc(DoDeleteVolume(*req, resp));
}

grpc::Status ControllerService::ValidateVolumeCapabilities(
    grpc::ServerContext*, const ValidateVolumeCapabilitiesRequest* req,
    ValidateVolumeCapabilitiesResponse* resp) {
  return ToGrpc(DoValidateVolumeCapabilities(*req, resp));
}

grpc::Status ControllerService::ListVolumes(grpc::ServerContext*, const ListVolumesRequest* req,
                                            ListVolumesResponse* resp) {
  return ToGrpc(DoListVolumes(*req, resp));
}

grpc::Status ControllerService::GetCapacity(grpc::ServerContext*, const GetCapacityRequest* req,
                                            GetCapacityResponse* resp) {
  return ToGrpc(DoGetCapacity(*req, resp));
}

grpc::Status ControllerService::ControllerGetCapabilities(
    grpc::ServerContext*, const ControllerGetCapabilitiesRequest* req,
    ControllerGetCapabilitiesResponse* resp) {
  return ToGrpc(DoControllerGetCapabilities(*req, resp));
}

grpc::Status ControllerService::ControllerExpandVolume(grpc::ServerContext*,
                                                       const ControllerExpandVolumeRequest* req,
                                                       ControllerExpandVolumeResponse* resp) {
  return ToGrpc(DoControllerExpandVolume(*req, resp));
}

grpc::Status ControllerService::ControllerGetVolume(grpc::ServerContext*,
                                                    const ControllerGetVolumeRequest* req,
                                                    ControllerGetVolumeResponse* resp) {
  return ToGrpc(DoControllerGetVolume(*req, resp));
}

Status ControllerService::DoCreateVolume(const CreateVolumeRequest& req,
                                         CreateVolumeResponse* resp) {
  if (req.name().empty()) return InvalidArgument("CreateVolume: name is empty");
  std::string what = fmt::format("volume \"{}\"", req.name());
  RETURN_IF_ERROR(CheckCapabilities(req.volume_capabilities(), what));
  if (req.has_volume_content_source()) {
    return Error(Code::kInvalidArgument,
                 "{}: content sources (snapshots, clones) are not supported", what);
  }
  if (!req.mutable_parameters().empty()) {
    return Error(Code::kInvalidArgument, "{}: mutable_parameters are not supported", what);
  }
  ASSIGN_OR_RETURN(auto recorded, CheckParameters(req.parameters(), what));
  ASSIGN_OR_RETURN(uint64_t capacity, CapacityFor(req.capacity_range(), what));
  RETURN_IF_ERROR(CheckTopology(req.accessibility_requirements(), what));
  ASSIGN_OR_RETURN(VolumeNodes nodes, ParseVolumeNodes(recorded, what));
  if (nodes == VolumeNodes::kPeers && ctx_.config.peer_address.empty()) {
    // Other nodes could be chosen for its pods, and none could fetch the data.
    return Error(Code::kFailedPrecondition,
                 "{}: the StorageClass asks for {}=peers, but node \"{}\" does not serve "
                 "its volumes to peers (start `cellar node` with --peer-listen and "
                 "--peer-tls-dir)",
                 what, kNodesParameter, ctx_.config.node_id);
  }

  LockSet::Guard guard(ctx_.volume_locks, "name:" + req.name());
  if (auto existing = ctx_.store.FindByName(req.name())) {
    if (existing->ephemeral) {
      return Error(Code::kAlreadyExists, "{}: the name belongs to an inline ephemeral volume",
                   what);
    }
    if (!CapacityFits(existing->capacity_bytes, req.capacity_range())) {
      return Error(Code::kAlreadyExists,
                   "{}: exists as {} with {}, which the requested range does not allow", what,
                   existing->id, FormatSize(existing->capacity_bytes));
    }
    if (existing->parameters != recorded) {
      return Error(Code::kAlreadyExists, "{}: exists as {} with different parameters", what,
                   existing->id);
    }
    FillVolume(*existing, resp->mutable_volume());
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(store::Volume v,
                   CreateAttached(ctx_, {req.name(), capacity, false, std::move(recorded)}, what));
  spdlog::info("created volume {} \"{}\" of {}", v.id, v.name, FormatSize(v.capacity_bytes));
  FillVolume(v, resp->mutable_volume());
  return Status::Ok();
}

Status ControllerService::DoDeleteVolume(const DeleteVolumeRequest& req, DeleteVolumeResponse*) {
  const std::string& id = req.volume_id();
  RETURN_IF_ERROR(RequireVolumeId("DeleteVolume", id));
  // The spec makes deletion idempotent: a volume that does not exist is deleted.
  if (!store::IsVolumeId(id)) return Status::Ok();
  LockSet::Guard guard(ctx_.volume_locks, id);
  auto v = ctx_.store.Get(id);
  if (!v.ok()) return Status::Ok();
  if (v->is_replica()) {
    // Answering OK would let the PV go while the owner still holds the memory.
    return Error(Code::kFailedPrecondition,
                 "volume {}: this node holds only a read-only replica; the volume belongs to "
                 "node \"{}\", whose controller deletes it",
                 id, v->replica_of.node_id);
  }
  if (!v->publications.empty()) {
    return Error(Code::kFailedPrecondition, "volume {}: still published at {} (unpublish it first)",
                 id, v->publications.begin()->first);
  }
  RETURN_IF_ERROR(ctx_.source.Detach(id).WithContext(fmt::format("volume {}", id)));
  RETURN_IF_ERROR(ctx_.store.Delete(id));
  spdlog::info("deleted volume {} \"{}\", {} returned", id, v->name, FormatSize(v->capacity_bytes));
  return Status::Ok();
}

Status ControllerService::DoValidateVolumeCapabilities(const ValidateVolumeCapabilitiesRequest& req,
                                                       ValidateVolumeCapabilitiesResponse* resp) {
  const std::string& id = req.volume_id();
  RETURN_IF_ERROR(RequireVolumeId("ValidateVolumeCapabilities", id));
  if (req.volume_capabilities().empty()) {
    return Error(Code::kInvalidArgument, "volume {}: volume_capabilities is empty", id);
  }
  ASSIGN_OR_RETURN(store::Volume v, GetOwnedVolume(ctx_.store, id));
  std::string what = fmt::format("volume {}", id);
  Status st = CheckCapabilities(req.volume_capabilities(), what);
  if (st.ok()) {
    auto recorded = CheckParameters(req.parameters(), what);
    st = recorded.status();
    if (st.ok() && !req.parameters().empty() && *recorded != v.parameters) {
      st = Error(Code::kInvalidArgument, "{}: parameters differ from those it was created with",
                 what);
    }
  }
  if (!st.ok()) {
    resp->set_message(st.message());  // unconfirmed, with the reason
    return Status::Ok();
  }
  auto* confirmed = resp->mutable_confirmed();
  *confirmed->mutable_volume_capabilities() = req.volume_capabilities();
  *confirmed->mutable_volume_context() = req.volume_context();
  *confirmed->mutable_parameters() = req.parameters();
  return Status::Ok();
}

Status ControllerService::DoListVolumes(const ListVolumesRequest& req, ListVolumesResponse* resp) {
  if (req.max_entries() < 0) {
    return InvalidArgument("ListVolumes: max_entries must not be negative");
  }
  // The token is the id to resume from. Resuming at the first id >= token keeps paging
  // correct when volumes are deleted between pages.
  const std::string& token = req.starting_token();
  if (!token.empty() && !store::IsVolumeId(token)) {
    return Error(Code::kAborted, "ListVolumes: starting_token \"{}\" is not valid", token);
  }
  auto volumes = ctx_.store.List();
  size_t limit = req.max_entries() > 0 ? static_cast<size_t>(req.max_entries()) : volumes.size();
  std::erase_if(volumes, [](const store::Volume& v) { return v.is_replica(); });  // not ours
  for (const auto& v : volumes) {
    if (!token.empty() && v.id < token) continue;
    if (static_cast<size_t>(resp->entries_size()) == limit) {
      resp->set_next_token(v.id);
      break;
    }
    auto* entry = resp->add_entries();
    FillVolume(v, entry->mutable_volume());
    if (!v.publications.empty())
      entry->mutable_status()->add_published_node_ids(ctx_.config.node_id);
    FillCondition(ctx_.store, v.id, entry->mutable_status());
  }
  return Status::Ok();
}

Status ControllerService::DoGetCapacity(const GetCapacityRequest& req, GetCapacityResponse* resp) {
  if (req.has_accessible_topology() &&
      !DesignatesNode(req.accessible_topology(), ctx_.config.node_id)) {
    resp->set_available_capacity(0);  // another node's segment: not ours to give
    return Status::Ok();
  }
  for (const auto& cap : req.volume_capabilities()) {
    if (!CheckCapability(cap, "GetCapacity").ok()) {
      resp->set_available_capacity(0);
      return Status::Ok();
    }
  }
  // StorageClass parameters are not checked here but in CreateVolume. An error here
  // reaches nobody: the provisioner only logs it and publishes no CSIStorageCapacity,
  // so the scheduler reports "did not have enough free storage" for a node that has
  // plenty. Answering with the node's capacity lets the claim reach CreateVolume, whose
  // INVALID_ARGUMENT naming the parameter lands in the claim's events.
  store::CapacityInfo c = ctx_.store.Capacity();
  resp->set_available_capacity(static_cast<int64_t>(c.available_bytes));
  resp->mutable_maximum_volume_size()->set_value(static_cast<int64_t>(c.available_bytes));
  resp->mutable_minimum_volume_size()->set_value(static_cast<int64_t>(kMinVolumeBytes));
  return Status::Ok();
}

Status ControllerService::DoControllerGetCapabilities(const ControllerGetCapabilitiesRequest&,
                                                      ControllerGetCapabilitiesResponse* resp) {
  for (auto type : {ControllerServiceCapability::RPC::CREATE_DELETE_VOLUME,
                    ControllerServiceCapability::RPC::GET_CAPACITY,
                    ControllerServiceCapability::RPC::LIST_VOLUMES,
                    ControllerServiceCapability::RPC::LIST_VOLUMES_PUBLISHED_NODES,
                    ControllerServiceCapability::RPC::EXPAND_VOLUME,
                    ControllerServiceCapability::RPC::GET_VOLUME,
                    ControllerServiceCapability::RPC::VOLUME_CONDITION,
                    ControllerServiceCapability::RPC::SINGLE_NODE_MULTI_WRITER}) {
    resp->add_capabilities()->mutable_rpc()->set_type(type);
  }
  return Status::Ok();
}

Status ControllerService::DoControllerExpandVolume(const ControllerExpandVolumeRequest& req,
                                                   ControllerExpandVolumeResponse* resp) {
  const std::string& id = req.volume_id();
  RETURN_IF_ERROR(RequireVolumeId("ControllerExpandVolume", id));
  std::string what = fmt::format("volume {}", id);
  if (!req.has_capacity_range()) {
    return Error(Code::kInvalidArgument, "{}: capacity_range is missing", what);
  }
  if (req.has_volume_capability()) RETURN_IF_ERROR(CheckCapability(req.volume_capability(), what));
  RETURN_IF_ERROR(RequireCellarId(id));
  ASSIGN_OR_RETURN(uint64_t capacity, CapacityFor(req.capacity_range(), what));
  LockSet::Guard guard(ctx_.volume_locks, id);
  ASSIGN_OR_RETURN(store::Volume v, ctx_.store.Resize(id, capacity));
  resp->set_capacity_bytes(static_cast<int64_t>(v.capacity_bytes));
  // The arena was resized here, on the node; nothing is left for NodeExpandVolume.
  resp->set_node_expansion_required(false);
  return Status::Ok();
}

Status ControllerService::DoControllerGetVolume(const ControllerGetVolumeRequest& req,
                                                ControllerGetVolumeResponse* resp) {
  const std::string& id = req.volume_id();
  RETURN_IF_ERROR(RequireVolumeId("ControllerGetVolume", id));
  ASSIGN_OR_RETURN(store::Volume v, GetOwnedVolume(ctx_.store, id));
  FillVolume(v, resp->mutable_volume());
  FillStatus(v, resp->mutable_status());
  return Status::Ok();
}

}  // namespace cellar::csi
