// Controller service against a real `cellar node`: success paths, idempotent repeats,
// and every error code the spec assigns.
#include "tests/support/mount_options.h"
#include "tests/support/node_fixture.h"

namespace cellar::testing {
namespace {

using namespace csi::v1;
constexpr int64_t kMiB = 1 << 20;

using ControllerTest = NodeTest;

grpc::StatusCode CreateCode(NodeProcess& node, const CreateVolumeRequest& req,
                            CreateVolumeResponse* resp = nullptr, std::string* message = nullptr) {
  grpc::ClientContext ctx;
  CreateVolumeResponse local;
  grpc::Status st = node.controller().CreateVolume(&ctx, req, resp ? resp : &local);
  if (message) *message = st.error_message();
  return st.error_code();
}

TEST_P(ControllerTest, CreatePinsTopologyAndRecordsProvisionerParameters) {
  CreateVolumeResponse resp;
  ASSERT_EQ(CreateCode(*node_, ProvisionerCreate("pvc-1", 8 * kMiB, node_id()), &resp),
            grpc::StatusCode::OK);
  const Volume& v = resp.volume();
  EXPECT_EQ(v.capacity_bytes(), 8 * kMiB);
  ASSERT_EQ(v.accessible_topology_size(), 1);
  EXPECT_EQ(v.accessible_topology(0).segments().at(kTopologyKey), node_id());
  EXPECT_EQ(v.volume_context().at("csi.storage.k8s.io/pvc/name"), "data-pvc-1");
  EXPECT_EQ(v.volume_context().at("csi.storage.k8s.io/pv/name"), "pvc-1");
}

TEST_P(ControllerTest, CreateIsIdempotentOnTheName) {
  Volume first = MustCreate("pvc-1", 8 * kMiB);
  Volume again = MustCreate("pvc-1", 8 * kMiB);
  EXPECT_EQ(first.volume_id(), again.volume_id());
  EXPECT_EQ(AvailableCapacity(), 256 * kMiB - 8 * kMiB);
}

TEST_P(ControllerTest, SameNameIncompatibleIsAlreadyExists) {
  MustCreate("pvc-1", 8 * kMiB);
  std::string msg;
  EXPECT_EQ(CreateCode(*node_, ProvisionerCreate("pvc-1", 16 * kMiB, node_id()), nullptr, &msg),
            grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_NE(msg.find("pvc-1"), std::string::npos);
  auto other_params = ProvisionerCreate("pvc-1", 8 * kMiB, node_id());
  (*other_params.mutable_parameters())["csi.storage.k8s.io/pvc/name"] = "someone-else";
  EXPECT_EQ(CreateCode(*node_, other_params), grpc::StatusCode::ALREADY_EXISTS);
}

TEST_P(ControllerTest, BadArgumentsAreInvalidArgument) {
  auto no_name = ProvisionerCreate("", kMiB, node_id());
  EXPECT_EQ(CreateCode(*node_, no_name), grpc::StatusCode::INVALID_ARGUMENT);

  auto no_caps = ProvisionerCreate("a", kMiB, node_id());
  no_caps.clear_volume_capabilities();
  EXPECT_EQ(CreateCode(*node_, no_caps), grpc::StatusCode::INVALID_ARGUMENT);

  auto block = ProvisionerCreate("a", kMiB, node_id());
  block.mutable_volume_capabilities(0)->mutable_block();
  std::string msg;
  EXPECT_EQ(CreateCode(*node_, block, nullptr, &msg), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("block"), std::string::npos);

  auto multi = ProvisionerCreate("a", kMiB, node_id());
  *multi.mutable_volume_capabilities(0) =
      MountCapability(VolumeCapability::AccessMode::MULTI_NODE_MULTI_WRITER);
  EXPECT_EQ(CreateCode(*node_, multi), grpc::StatusCode::INVALID_ARGUMENT);

  auto source = ProvisionerCreate("a", kMiB, node_id());
  source.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id("snap-1");
  EXPECT_EQ(CreateCode(*node_, source), grpc::StatusCode::INVALID_ARGUMENT);

  auto unknown = ProvisionerCreate("a", kMiB, node_id());
  (*unknown.mutable_parameters())["replicas"] = "3";
  EXPECT_EQ(CreateCode(*node_, unknown, nullptr, &msg), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("replicas"), std::string::npos);
}

TEST_P(ControllerTest, CapacityLimitsAreOutOfRangeOrResourceExhausted) {
  auto tiny_limit = ProvisionerCreate("a", 0, node_id());
  tiny_limit.mutable_capacity_range()->set_limit_bytes(1000);
  EXPECT_EQ(CreateCode(*node_, tiny_limit), grpc::StatusCode::OUT_OF_RANGE);

  auto inverted = ProvisionerCreate("a", 8 * kMiB, node_id());
  inverted.mutable_capacity_range()->set_limit_bytes(4 * kMiB);
  EXPECT_EQ(CreateCode(*node_, inverted), grpc::StatusCode::OUT_OF_RANGE);

  std::string msg;
  EXPECT_EQ(CreateCode(*node_, ProvisionerCreate("huge", 512 * kMiB, node_id()), nullptr, &msg),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(msg.find("huge"), std::string::npos);
}

TEST_P(ControllerTest, RequisiteTopologyOfAnotherNodeIsResourceExhausted) {
  EXPECT_EQ(CreateCode(*node_, ProvisionerCreate("a", kMiB, "node-b")),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  auto preferred_only = ProvisionerCreate("b", kMiB, node_id());
  preferred_only.mutable_accessibility_requirements()->clear_requisite();
  EXPECT_EQ(CreateCode(*node_, preferred_only), grpc::StatusCode::OK);
}

TEST_P(ControllerTest, MaxVolumesIsResourceExhausted) {
  node_.reset();
  NodeSettings s;
  s.max_volumes = 2;
  StartNode(s);
  MustCreate("a", kMiB);
  MustCreate("b", kMiB);
  EXPECT_EQ(CreateCode(*node_, ProvisionerCreate("c", kMiB, node_id())),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST_P(ControllerTest, DeleteFreesCapacityAndIsIdempotent) {
  Volume v = MustCreate("a", 64 * kMiB);
  EXPECT_EQ(AvailableCapacity(), 192 * kMiB);
  EXPECT_TRUE(Delete(v.volume_id()).ok());
  EXPECT_EQ(AvailableCapacity(), 256 * kMiB);
  EXPECT_TRUE(Delete(v.volume_id()).ok());
  EXPECT_TRUE(Delete("not-a-cellar-id/../../etc").ok());
  EXPECT_EQ(Delete("").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_P(ControllerTest, DeleteOfPublishedVolumeIsFailedPrecondition) {
  Volume v = MustCreate("a", 8 * kMiB);
  std::string target = node_->TargetPath("pod-1", "pv-a").string();
  ASSERT_TRUE(Publish(KubeletPublish(v, target)).ok());
  grpc::Status st = Delete(v.volume_id());
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find(v.volume_id()), std::string::npos);
  ASSERT_TRUE(Unpublish(v.volume_id(), target).ok());
  EXPECT_TRUE(Delete(v.volume_id()).ok());
}

TEST_P(ControllerTest, ValidateVolumeCapabilities) {
  Volume v = MustCreate("a", 8 * kMiB);
  {
    grpc::ClientContext ctx;
    ValidateVolumeCapabilitiesRequest req;
    req.set_volume_id(v.volume_id());
    *req.add_volume_capabilities() = MountCapability();
    ValidateVolumeCapabilitiesResponse resp;
    ASSERT_TRUE(node_->controller().ValidateVolumeCapabilities(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.has_confirmed());
  }
  {
    grpc::ClientContext ctx;
    ValidateVolumeCapabilitiesRequest req;
    req.set_volume_id(v.volume_id());
    *req.add_volume_capabilities() =
        MountCapability(VolumeCapability::AccessMode::MULTI_NODE_READER_ONLY);
    ValidateVolumeCapabilitiesResponse resp;
    ASSERT_TRUE(node_->controller().ValidateVolumeCapabilities(&ctx, req, &resp).ok());
    EXPECT_FALSE(resp.has_confirmed());
    EXPECT_FALSE(resp.message().empty());
  }
  for (std::string id :
       {std::string("vol-00000000000000000000000000000000"), std::string("../x")}) {
    grpc::ClientContext ctx;
    ValidateVolumeCapabilitiesRequest req;
    req.set_volume_id(id);
    *req.add_volume_capabilities() = MountCapability();
    ValidateVolumeCapabilitiesResponse resp;
    EXPECT_EQ(node_->controller().ValidateVolumeCapabilities(&ctx, req, &resp).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    ValidateVolumeCapabilitiesRequest req;
    req.set_volume_id(v.volume_id());
    ValidateVolumeCapabilitiesResponse resp;
    EXPECT_EQ(node_->controller().ValidateVolumeCapabilities(&ctx, req, &resp).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
}

TEST_P(ControllerTest, ListVolumesPaginatesAndRejectsBadTokens) {
  std::set<std::string> created;
  for (int i = 0; i < 5; ++i) created.insert(MustCreate("v" + std::to_string(i), kMiB).volume_id());
  std::set<std::string> listed;
  std::string token;
  int pages = 0;
  do {
    grpc::ClientContext ctx;
    ListVolumesRequest req;
    req.set_max_entries(2);
    req.set_starting_token(token);
    ListVolumesResponse resp;
    ASSERT_TRUE(node_->controller().ListVolumes(&ctx, req, &resp).ok());
    EXPECT_LE(resp.entries_size(), 2);
    for (const auto& e : resp.entries()) {
      listed.insert(e.volume().volume_id());
      EXPECT_FALSE(e.status().volume_condition().abnormal());
    }
    token = resp.next_token();
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(listed, created);
  EXPECT_EQ(pages, 3);

  grpc::ClientContext ctx;
  ListVolumesRequest bad;
  bad.set_starting_token("page-2-please");
  ListVolumesResponse resp;
  EXPECT_EQ(node_->controller().ListVolumes(&ctx, bad, &resp).error_code(),
            grpc::StatusCode::ABORTED);
}

TEST_P(ControllerTest, GetCapacityIsPerTopologySegment) {
  EXPECT_EQ(AvailableCapacity(), 256 * kMiB);
  MustCreate("a", 100 * kMiB);
  EXPECT_EQ(AvailableCapacity(), 156 * kMiB);
  grpc::ClientContext ctx;
  GetCapacityRequest other;
  (*other.mutable_accessible_topology()->mutable_segments())[kTopologyKey] = "node-b";
  GetCapacityResponse resp;
  ASSERT_TRUE(node_->controller().GetCapacity(&ctx, other, &resp).ok());
  EXPECT_EQ(resp.available_capacity(), 0);
}

// The provisioner's strict requisite carries every topology key of the selected node;
// a node that fetches from peers has a second one (peers.csi.cellar.dev/<driver>).
TEST_P(ControllerTest, ExtraSegmentsBesideThisNodesStillDesignateIt) {
  auto req = ProvisionerCreate("pvc-1", 8 * kMiB, node_id());
  for (auto* t : {req.mutable_accessibility_requirements()->mutable_requisite(0),
                  req.mutable_accessibility_requirements()->mutable_preferred(0)}) {
    (*t->mutable_segments())["peers.csi.cellar.dev/csi.cellar.dev"] = "true";
  }
  EXPECT_EQ(CreateCode(*node_, req), grpc::StatusCode::OK);

  grpc::ClientContext ctx;
  GetCapacityRequest cap;
  *cap.mutable_accessible_topology() = req.accessibility_requirements().requisite(0);
  GetCapacityResponse resp;
  ASSERT_TRUE(node_->controller().GetCapacity(&ctx, cap, &resp).ok());
  EXPECT_EQ(resp.available_capacity(), 256 * kMiB - 8 * kMiB);
}

TEST_P(ControllerTest, NodesParameter) {
  auto owner = ProvisionerCreate("pvc-owner", 8 * kMiB, node_id());
  (*owner.mutable_parameters())["cellar.dev/nodes"] = "owner";
  CreateVolumeResponse resp;
  ASSERT_EQ(CreateCode(*node_, owner, &resp), grpc::StatusCode::OK);
  EXPECT_EQ(resp.volume().accessible_topology_size(), 1);
  EXPECT_EQ(resp.volume().volume_context().at("cellar.dev/nodes"), "owner");

  std::string msg;
  auto bad = ProvisionerCreate("pvc-bad", 8 * kMiB, node_id());
  (*bad.mutable_parameters())["cellar.dev/nodes"] = "everywhere";
  EXPECT_EQ(CreateCode(*node_, bad, nullptr, &msg), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("pvc-bad"), std::string::npos) << msg;
  EXPECT_NE(msg.find("everywhere"), std::string::npos) << msg;

  // This node does not serve peers (no --peer-listen): a volume other nodes may be
  // scheduled to would be unreadable there.
  auto peers = ProvisionerCreate("pvc-peers", 8 * kMiB, node_id());
  (*peers.mutable_parameters())["cellar.dev/nodes"] = "peers";
  EXPECT_EQ(CreateCode(*node_, peers, nullptr, &msg), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(msg.find("pvc-peers"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--peer-listen"), std::string::npos) << msg;
  EXPECT_EQ(AvailableCapacity(), 256 * kMiB - 8 * kMiB);
}

TEST_P(ControllerTest, HugePagesParameter) {
  auto huge = ProvisionerCreate("pvc-huge", 8 * kMiB, node_id());
  (*huge.mutable_parameters())["cellar.dev/huge-pages"] = "within_size";
  CreateVolumeResponse resp;
  ASSERT_EQ(CreateCode(*node_, huge, &resp), grpc::StatusCode::OK);
  EXPECT_EQ(resp.volume().volume_context().at("cellar.dev/huge-pages"), "within_size");
  std::filesystem::path arena = node_->state_dir() / "arenas" / resp.volume().volume_id();
  EXPECT_NE(SuperOptions(arena).find("huge=within_size"), std::string::npos) << SuperOptions(arena);

  std::string msg;
  auto bad = ProvisionerCreate("pvc-bad", 8 * kMiB, node_id());
  (*bad.mutable_parameters())["cellar.dev/huge-pages"] = "always";
  EXPECT_EQ(CreateCode(*node_, bad, nullptr, &msg), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(msg.find("pvc-bad"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"always\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("within_size"), std::string::npos) << msg;
  EXPECT_EQ(AvailableCapacity(), 256 * kMiB - 8 * kMiB);
}

// A bad StorageClass parameter must fail where the user sees it (CreateVolume, in the
// claim's events), not in GetCapacity, whose error only reaches the provisioner's log
// and leaves the pod Pending for "not enough free storage".
TEST_P(ControllerTest, GetCapacityLeavesParameterErrorsToCreateVolume) {
  grpc::ClientContext ctx;
  GetCapacityRequest req;
  (*req.mutable_parameters())["colour"] = "blue";
  GetCapacityResponse resp;
  ASSERT_TRUE(node_->controller().GetCapacity(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.available_capacity(), 256 * kMiB);

  grpc::ClientContext create_ctx;
  CreateVolumeRequest create;
  create.set_name("pvc-colour");
  create.mutable_capacity_range()->set_required_bytes(kMiB);
  *create.add_volume_capabilities() = MountCapability();
  (*create.mutable_parameters())["colour"] = "blue";
  CreateVolumeResponse created;
  grpc::Status st = node_->controller().CreateVolume(&create_ctx, create, &created);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("\"colour\""), std::string::npos) << st.error_message();
}

TEST_P(ControllerTest, CapabilitiesListWhatIsServed) {
  grpc::ClientContext ctx;
  ControllerGetCapabilitiesResponse resp;
  ASSERT_TRUE(node_->controller().ControllerGetCapabilities(&ctx, {}, &resp).ok());
  std::set<int> types;
  for (const auto& c : resp.capabilities()) types.insert(c.rpc().type());
  EXPECT_TRUE(types.count(ControllerServiceCapability::RPC::CREATE_DELETE_VOLUME));
  EXPECT_TRUE(types.count(ControllerServiceCapability::RPC::GET_CAPACITY));
  EXPECT_TRUE(types.count(ControllerServiceCapability::RPC::EXPAND_VOLUME));
  EXPECT_TRUE(types.count(ControllerServiceCapability::RPC::LIST_VOLUMES));
  EXPECT_TRUE(types.count(ControllerServiceCapability::RPC::GET_VOLUME));
  EXPECT_TRUE(types.count(ControllerServiceCapability::RPC::VOLUME_CONDITION));
  EXPECT_FALSE(types.count(ControllerServiceCapability::RPC::PUBLISH_UNPUBLISH_VOLUME));
}

TEST_P(ControllerTest, ExpandGrowsTheArena) {
  Volume v = MustCreate("a", 8 * kMiB);
  std::string target = node_->TargetPath("pod-1", "pv-a").string();
  ASSERT_TRUE(Publish(KubeletPublish(v, target)).ok());
  {
    grpc::ClientContext ctx;
    ControllerExpandVolumeRequest req;
    req.set_volume_id(v.volume_id());
    req.mutable_capacity_range()->set_required_bytes(32 * kMiB);
    ControllerExpandVolumeResponse resp;
    ASSERT_TRUE(node_->controller().ControllerExpandVolume(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.capacity_bytes(), 32 * kMiB);
    EXPECT_FALSE(resp.node_expansion_required());
  }
  NodeGetVolumeStatsResponse stats;
  ASSERT_TRUE(Stats(v.volume_id(), target, &stats).ok());
  EXPECT_EQ(stats.usage(0).total(), 32 * kMiB);
  {
    grpc::ClientContext ctx;
    ControllerExpandVolumeRequest req;
    req.set_volume_id(v.volume_id());
    req.mutable_capacity_range()->set_required_bytes(1024 * kMiB);
    ControllerExpandVolumeResponse resp;
    EXPECT_EQ(node_->controller().ControllerExpandVolume(&ctx, req, &resp).error_code(),
              grpc::StatusCode::OUT_OF_RANGE);
  }
  {
    grpc::ClientContext ctx;
    ControllerExpandVolumeRequest req;
    req.set_volume_id("vol-00000000000000000000000000000000");
    req.mutable_capacity_range()->set_required_bytes(kMiB);
    ControllerExpandVolumeResponse resp;
    EXPECT_EQ(node_->controller().ControllerExpandVolume(&ctx, req, &resp).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext ctx;
    ControllerExpandVolumeRequest req;
    req.set_volume_id(v.volume_id());
    ControllerExpandVolumeResponse resp;
    EXPECT_EQ(node_->controller().ControllerExpandVolume(&ctx, req, &resp).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  ASSERT_TRUE(Unpublish(v.volume_id(), target).ok());
}

TEST_P(ControllerTest, GetVolumeReportsPublicationAndCondition) {
  Volume v = MustCreate("a", 8 * kMiB);
  std::string target = node_->TargetPath("pod-1", "pv-a").string();
  ASSERT_TRUE(Publish(KubeletPublish(v, target)).ok());
  grpc::ClientContext ctx;
  ControllerGetVolumeRequest req;
  req.set_volume_id(v.volume_id());
  ControllerGetVolumeResponse resp;
  ASSERT_TRUE(node_->controller().ControllerGetVolume(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.volume().volume_id(), v.volume_id());
  ASSERT_EQ(resp.status().published_node_ids_size(), 1);
  EXPECT_EQ(resp.status().published_node_ids(0), node_id());
  EXPECT_FALSE(resp.status().volume_condition().abnormal());
  grpc::ClientContext ctx2;
  req.set_volume_id("vol-00000000000000000000000000000000");
  EXPECT_EQ(node_->controller().ControllerGetVolume(&ctx2, req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(Unpublish(v.volume_id(), target).ok());
}

TEST_P(ControllerTest, UnadvertisedRpcsAreUnimplemented) {
  grpc::ClientContext ctx;
  CreateSnapshotRequest req;
  req.set_name("s");
  req.set_source_volume_id("vol-00000000000000000000000000000000");
  CreateSnapshotResponse resp;
  EXPECT_EQ(node_->controller().CreateSnapshot(&ctx, req, &resp).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

CELLAR_INSTANTIATE_MODES(ControllerTest);

}  // namespace
}  // namespace cellar::testing
