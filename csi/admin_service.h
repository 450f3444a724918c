// Cellar's Admin service (proto/cellar_admin.proto), served on the CSI socket beside
// the CSI services. The same socket rather than a second one: `cellar status` then
// finds a node wherever its CSI endpoint is (CSI_ENDPOINT in the container), nothing
// more needs mounting or securing, and a node that answers CSI answers status.
#pragma once

#include "cellar_admin.grpc.pb.h"
#include "csi/driver.h"
#include "csi/node_report.h"
#include "csi/node_service.h"

namespace cellar::csi {

class AdminService final : public cellar::admin::v1::Admin::Service {
 public:
  AdminService(const DriverContext& ctx, const NodeService& node, StartFacts start)
      : ctx_(ctx), node_(node), start_(std::move(start)) {}

  grpc::Status GetStatus(grpc::ServerContext*, const cellar::admin::v1::GetStatusRequest*,
                         cellar::admin::v1::NodeStatus* resp) override {
    *resp = GatherNodeStatus(ctx_, node_, start_);
    return grpc::Status::OK;
  }

 private:
  const DriverContext& ctx_;
  const NodeService& node_;
  const StartFacts start_;
};

}  // namespace cellar::csi
