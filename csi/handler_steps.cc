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

Result<store::Volume> CreateAttached(DriverContext& ctx, const store::VolumeSpec& spec,
                                     const std::string& what) {
  ASSIGN_OR_RETURN(store::Volume v, ctx.store.Create(spec));
  Status attached = ctx.source.Attach(v);
  if (!attached.ok()) {
    (void)ctx.store.Delete(v.id);
    return attached.WithContext(what);
  }
  return v;
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
