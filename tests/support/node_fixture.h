// NodeTest: a fresh `cellar node` per test, in each serving mode.
#pragma once

#include <gtest/gtest.h>

#include "tests/support/csi_requests.h"
#include "tests/support/needs_root.h"
#include "tests/support/node_process.h"

namespace cellar::testing {

class NodeTest : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    CELLAR_SKIP_UNLESS_ROOT("a cellar node");
    StartNode({});
  }

  void StartNode(NodeSettings settings) {
    settings.mode = GetParam();
    node_ = std::make_unique<NodeProcess>(settings);
    std::string log;
    ASSERT_TRUE(node_->Start(&log)) << "cellar node did not become ready:\n" << log;
  }

  csi::v1::Volume MustCreate(const std::string& name, int64_t bytes) {
    grpc::ClientContext ctx;
    csi::v1::CreateVolumeResponse resp;
    grpc::Status st =
        node_->controller().CreateVolume(&ctx, ProvisionerCreate(name, bytes, node_id()), &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.volume();
  }

  grpc::Status Publish(const csi::v1::NodePublishVolumeRequest& req) {
    grpc::ClientContext ctx;
    csi::v1::NodePublishVolumeResponse resp;
    return node_->node().NodePublishVolume(&ctx, req, &resp);
  }

  grpc::Status Unpublish(const std::string& volume_id, const std::string& target) {
    grpc::ClientContext ctx;
    csi::v1::NodeUnpublishVolumeRequest req;
    req.set_volume_id(volume_id);
    req.set_target_path(target);
    csi::v1::NodeUnpublishVolumeResponse resp;
    return node_->node().NodeUnpublishVolume(&ctx, req, &resp);
  }

  grpc::Status Delete(const std::string& volume_id) {
    grpc::ClientContext ctx;
    csi::v1::DeleteVolumeRequest req;
    req.set_volume_id(volume_id);
    csi::v1::DeleteVolumeResponse resp;
    return node_->controller().DeleteVolume(&ctx, req, &resp);
  }

  grpc::Status Stats(const std::string& volume_id, const std::string& path,
                     csi::v1::NodeGetVolumeStatsResponse* resp) {
    grpc::ClientContext ctx;
    csi::v1::NodeGetVolumeStatsRequest req;
    req.set_volume_id(volume_id);
    req.set_volume_path(path);
    return node_->node().NodeGetVolumeStats(&ctx, req, resp);
  }

  int64_t AvailableCapacity() {
    grpc::ClientContext ctx;
    csi::v1::GetCapacityRequest req;
    (*req.mutable_accessible_topology()->mutable_segments())[kTopologyKey] = node_id();
    csi::v1::GetCapacityResponse resp;
    EXPECT_TRUE(node_->controller().GetCapacity(&ctx, req, &resp).ok());
    return resp.available_capacity();
  }

  const std::string& node_id() const { return node_->settings().node_id; }

  std::unique_ptr<NodeProcess> node_;
};

#define CELLAR_INSTANTIATE_MODES(suite)                                                            \
  INSTANTIATE_TEST_SUITE_P(                                                                        \
      Modes, suite,                                                                                \
      ::testing::Values(::cellar::testing::Mode::kPassthrough, ::cellar::testing::Mode::kFallback, \
                        ::cellar::testing::Mode::kDirect),                                         \
      [](const auto& info) { return ::cellar::testing::ModeName(info.param); })

}  // namespace cellar::testing
