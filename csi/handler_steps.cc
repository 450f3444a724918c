#include "csi/handler_steps.h"

#include "csi/mounter.h"

namespace cellar::csi {

Status RequireVolumeId(std::string_view rpc, const std::string& id) {
  if (id.empty()) return Error(Code::kInvalidArgument, "{}: volume_id is empty", rpc);
  return Status::Ok();
}

Status RequireCellarId(const std::string& id) {
  if (store::IsVolumeId(id)) return Status::Ok();
  return Error(Code::kNotFound, "volume \"{}\" does not exist (not a Cellar volume id)", id);
}

Result<store::Volume> GetCellarVolume(const store::Store& store, const std::string& id) {
  RETURN_IF_ERROR(RequireCellarId(id));
  return store.Get(id);
}

Result<store::Volume> GetOwnedVolume(const store::Store& store, const std::string& id) {
  ASSIGN_OR_RETURN(store::Volume v, GetCellarVolume(store, id));
  if (v.is_replica()) {
    return Error(Code::kNotFound,
                 "volume {} is not held by this node (it holds a read-only replica of node "
                 "\"{}\"'s volume)",
                 id, v.replica_of.node_id);
  }
  return v;
}

namespace {

Result<store::Volume> Attached(DriverContext& ctx, Result<store::Volume> created,
                               const std::string& what) {
  ASSIGN_OR_RETURN(store::Volume v, std::move(created));
  Status attached = ctx.source.Attach(v);
  if (!attached.ok()) {
    (void)ctx.store.Delete(v.id);
    return attached.WithContext(what);
  }
  return v;
}

}  // namespace

Result<store::Volume> CreateAttached(DriverContext& ctx, const store::VolumeSpec& spec,
                                     const std::string& what) {
  return Attached(ctx, ctx.store.Create(spec), what);
}

Result<store::Volume> CreateAttachedReplica(DriverContext& ctx, const store::VolumeSpec& spec,
                                            const std::string& id, const store::ReplicaOf& owner,
                                            const std::string& what) {
  return Attached(ctx, ctx.store.CreateReplica(spec, id, owner), what);
}

Status BindAndRecord(DriverContext& ctx, const std::string& volume_id,
                     const std::filesystem::path& source, const store::Publication& pub,
                     const std::string& what) {
  RETURN_IF_ERROR(
      BindMount(source, pub.target_path, pub.readonly, pub.mount_flags).WithContext(what));
  Status st = ctx.store.AddPublication(volume_id, pub);
  if (!st.ok()) {
    (void)UnmountAndRemove(pub.target_path);
    return st.WithContext(what);
  }
  return Status::Ok();
}

}  // namespace cellar::csi
