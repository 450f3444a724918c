// Identity service against a real `cellar node`.
#include "tests/support/node_fixture.h"

namespace cellar::testing {
namespace {

using namespace csi::v1;

using IdentityTest = NodeTest;

TEST_P(IdentityTest, PluginInfoNamesTheDriverAndVersion) {
  grpc::ClientContext ctx;
  GetPluginInfoResponse resp;
  ASSERT_TRUE(node_->identity().GetPluginInfo(&ctx, {}, &resp).ok());
  EXPECT_EQ(resp.name(), "csi.cellar.dev");
  EXPECT_FALSE(resp.vendor_version().empty());
}

TEST_P(IdentityTest, CapabilitiesAreControllerTopologyAndOnlineExpansion) {
  grpc::ClientContext ctx;
  GetPluginCapabilitiesResponse resp;
  ASSERT_TRUE(node_->identity().GetPluginCapabilities(&ctx, {}, &resp).ok());
  bool controller = false, topology = false, online = false;
  for (const auto& c : resp.capabilities()) {
    if (c.has_service()) {
      controller |= c.service().type() == PluginCapability::Service::CONTROLLER_SERVICE;
      topology |= c.service().type() == PluginCapability::Service::VOLUME_ACCESSIBILITY_CONSTRAINTS;
    }
    if (c.has_volume_expansion()) {
      online |= c.volume_expansion().type() == PluginCapability::VolumeExpansion::ONLINE;
    }
  }
  EXPECT_TRUE(controller && topology && online);
}

TEST_P(IdentityTest, ProbeIsReady) {
  for (int i = 0; i < 2; ++i) {
    grpc::ClientContext ctx;
    ProbeResponse resp;
    ASSERT_TRUE(node_->identity().Probe(&ctx, {}, &resp).ok());
    EXPECT_TRUE(resp.ready().value());
  }
}

TEST_P(IdentityTest, DriverNameFollowsTheFlag) {
  node_.reset();
  NodeSettings s;
  s.extra_args = {"--driver-name", "vineyardd-sample.vineyard-system.csi.cellar.dev"};
  StartNode(s);
  grpc::ClientContext ctx;
  GetPluginInfoResponse resp;
  ASSERT_TRUE(node_->identity().GetPluginInfo(&ctx, {}, &resp).ok());
  EXPECT_EQ(resp.name(), "vineyardd-sample.vineyard-system.csi.cellar.dev");
}

CELLAR_INSTANTIATE_MODES(IdentityTest);

}  // namespace
}  // namespace cellar::testing
