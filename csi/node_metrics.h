// /metrics for what the node holds, read at scrape time from the same report as
// `cellar status` (node_report.h):
//   cellar_node_capacity_bytes, _allocated_bytes, _free_bytes (capacity not yet handed
//   out to volumes), _used_bytes (memory the volumes' files take), cellar_node_volumes,
//   cellar_node_healthy (what Probe answers), cellar_node_start_time_seconds and
//   cellar_node_info{version,io_mode,start_kind}. A restart shows as a new start time
//   (count them with changes()); start_kind says whether this process took a live FUSE
//   connection over (takeover, handover) or mounted afresh.
//   cellar_volume_capacity_bytes, _used_bytes, _files, _publications, _abnormal
//   {volume_id,pvc_namespace,pvc_name}.
//   cellar_publications_abnormal and cellar_publications_connection_lost: publications
//   whose condition is abnormal, and those among them whose FUSE connection was lost.
#pragma once

#include <vector>

#include <prometheus/collectable.h>

#include "cellar_admin.pb.h"
#include "csi/node_report.h"

namespace cellar::csi {

std::vector<prometheus::MetricFamily> NodeFamilies(const cellar::admin::v1::NodeStatus& status);

class NodeMetrics final : public prometheus::Collectable {
 public:
  NodeMetrics(const DriverContext& ctx, const NodeService& node, StartFacts start)
      : ctx_(ctx), node_(node), start_(std::move(start)) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    return NodeFamilies(GatherNodeStatus(ctx_, node_, start_));
  }

 private:
  const DriverContext& ctx_;
  const NodeService& node_;
  const StartFacts start_;
};

}  // namespace cellar::csi
