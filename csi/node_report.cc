#include "csi/node_report.h"

#include "csi/validation.h"

namespace cellar::csi {

namespace admin = cellar::admin::v1;

namespace {

std::string ParameterOr(const store::Volume& v, const char* key) {
  auto it = v.parameters.find(key);
  return it == v.parameters.end() ? std::string() : it->second;
}

void FillVolume(const DriverContext& ctx, const NodeService& node, const store::Volume& v,
                admin::VolumeStatus* out) {
  out->set_id(v.id);
  out->set_name(v.name);
  out->set_pvc_namespace(ParameterOr(v, kPvcNamespace));
  out->set_pvc_name(ParameterOr(v, kPvcName));
  out->set_capacity_bytes(v.capacity_bytes);
  out->set_ephemeral(v.ephemeral);
  out->set_replica_of(v.replica_of.node_id);
  out->set_created_unix(v.created_unix);
  store::VolumeHealth health = ctx.store.Health(v.id);
  auto usage = ctx.store.Usage(v.id);
  if (usage.ok()) {
    out->set_used_bytes(usage->used_bytes);
    out->set_used_inodes(usage->used_inodes);
  } else if (!health.abnormal) {
    health = {true, "usage unreadable: " + usage.status().message()};
  }
  out->set_abnormal(health.abnormal);
  out->set_condition(health.abnormal ? health.message : "healthy");
  for (const auto& [path, pub] : v.publications) {
    admin::PublicationStatus* p = out->add_publications();
    p->set_target_path(path);
    p->set_readonly(pub.readonly);
    p->set_pod_namespace(pub.pod_namespace);
    p->set_pod_name(pub.pod_name);
    PublicationCondition condition = node.Condition(v, path);
    p->set_abnormal(condition.abnormal);
    p->set_condition(condition.message);
    p->set_connection_lost(condition.connection_lost);
  }
}

}  // namespace

admin::NodeStatus GatherNodeStatus(const DriverContext& ctx, const NodeService& node,
                                   const StartFacts& start) {
  admin::NodeStatus out;
  out.set_node_id(ctx.config.node_id);
  out.set_driver_name(ctx.config.driver_name);
  out.set_version(ctx.config.version);
  out.set_io_mode(std::string(IoModeName(ctx.source.mode())));
  store::CapacityInfo cap = ctx.store.Capacity();
  out.set_capacity_bytes(cap.total_bytes);
  out.set_allocated_bytes(cap.allocated_bytes);
  out.set_available_bytes(cap.available_bytes);
  Status health = ctx.store.Healthy();
  if (health.ok()) health = ctx.source.Healthy();
  out.set_healthy(health.ok());
  out.set_health_message(health.ok() ? "ready" : health.message());
  out.set_started_unix(start.started_unix);
  out.set_start_kind(start.kind);
  uint64_t used = 0;
  for (const store::Volume& v : ctx.store.List()) {
    admin::VolumeStatus* vs = out.add_volumes();
    FillVolume(ctx, node, v, vs);
    used += vs->used_bytes();
  }
  out.set_used_bytes(used);
  return out;
}

}  // namespace cellar::csi
