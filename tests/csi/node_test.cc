// Node service against a real `cellar node`: publish/unpublish as bind mounts at
// kubelet-shaped paths, stats, expansion, inline ephemeral volumes.
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "tests/support/mount_options.h"
#include "tests/support/node_fixture.h"

namespace cellar::testing {
namespace {

using namespace csi::v1;
namespace fs = std::filesystem;
constexpr int64_t kMiB = 1 << 20;

using NodeServiceTest = NodeTest;

TEST_P(NodeServiceTest, InfoReportsTopologyAndLimits) {
  grpc::ClientContext ctx;
  NodeGetInfoResponse resp;
  ASSERT_TRUE(node_->node().NodeGetInfo(&ctx, {}, &resp).ok());
  EXPECT_EQ(resp.node_id(), node_id());
  EXPECT_EQ(resp.max_volumes_per_node(), 16);
  EXPECT_EQ(resp.accessible_topology().segments().at(kTopologyKey), node_id());
}

TEST_P(NodeServiceTest, CapabilitiesWithoutStage) {
  grpc::ClientContext ctx;
  NodeGetCapabilitiesResponse resp;
  ASSERT_TRUE(node_->node().NodeGetCapabilities(&ctx, {}, &resp).ok());
  std::set<int> types;
  for (const auto& c : resp.capabilities()) types.insert(c.rpc().type());
  EXPECT_EQ(types, (std::set<int>{NodeServiceCapability::RPC::GET_VOLUME_STATS,
                                  NodeServiceCapability::RPC::EXPAND_VOLUME,
                                  NodeServiceCapability::RPC::VOLUME_CONDITION,
                                  NodeServiceCapability::RPC::SINGLE_NODE_MULTI_WRITER}));
  grpc::ClientContext ctx2;
  NodeStageVolumeRequest stage;
  NodeStageVolumeResponse sresp;
  EXPECT_EQ(node_->node().NodeStageVolume(&ctx2, stage, &sresp).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

TEST_P(NodeServiceTest, PublishIsIdempotentAndConflictsAreAlreadyExists) {
  Volume v = MustCreate("a", 8 * kMiB);
  fs::path target = node_->TargetPath("pod-1", "pv-a");
  ASSERT_TRUE(Publish(KubeletPublish(v, target)).ok());
  EXPECT_TRUE(fs::is_directory(target));
  { std::ofstream(target / "hello") << "world"; }
  EXPECT_TRUE(Publish(KubeletPublish(v, target)).ok());
  grpc::Status st = Publish(KubeletPublish(v, target, /*readonly=*/true));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_NE(st.error_message().find(v.volume_id()), std::string::npos);

  Volume other = MustCreate("b", 8 * kMiB);
  EXPECT_EQ(Publish(KubeletPublish(other, target)).error_code(), grpc::StatusCode::ALREADY_EXISTS);

  // A second pod of the same node shares the volume (SINGLE_NODE_MULTI_WRITER).
  fs::path second = node_->TargetPath("pod-2", "pv-a");
  ASSERT_TRUE(Publish(KubeletPublish(v, second)).ok());
  std::string word;
  std::ifstream(second / "hello") >> word;
  EXPECT_EQ(word, "world");

  ASSERT_TRUE(Unpublish(v.volume_id(), target).ok());
  ASSERT_TRUE(Unpublish(v.volume_id(), second).ok());
  EXPECT_FALSE(fs::exists(target));
  EXPECT_TRUE(Unpublish(v.volume_id(), target).ok());  // idempotent
}

TEST_P(NodeServiceTest, PublishArgumentErrors) {
  Volume v = MustCreate("a", 8 * kMiB);
  fs::path target = node_->TargetPath("pod-1", "pv-a");
  auto no_id = KubeletPublish(v, target);
  no_id.clear_volume_id();
  EXPECT_EQ(Publish(no_id).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto no_target = KubeletPublish(v, "");
  EXPECT_EQ(Publish(no_target).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto relative = KubeletPublish(v, "pods/x/mount");
  EXPECT_EQ(Publish(relative).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto no_cap = KubeletPublish(v, target);
  no_cap.clear_volume_capability();
  EXPECT_EQ(Publish(no_cap).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // A capability the volume does not support is the spec's "Exceeds capabilities",
  // FAILED_PRECONDITION for NodePublishVolume; a malformed one is INVALID_ARGUMENT.
  auto block = KubeletPublish(v, target);
  block.mutable_volume_capability()->mutable_block();
  EXPECT_EQ(Publish(block).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  auto multi_node = KubeletPublish(v, target);
  multi_node.mutable_volume_capability()->mutable_access_mode()->set_mode(
      VolumeCapability::AccessMode::MULTI_NODE_MULTI_WRITER);
  EXPECT_EQ(Publish(multi_node).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  auto ext4 = KubeletPublish(v, target);
  ext4.mutable_volume_capability()->mutable_mount()->set_fs_type("ext4");
  EXPECT_EQ(Publish(ext4).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  auto no_mode = KubeletPublish(v, target);
  no_mode.mutable_volume_capability()->clear_access_mode();
  EXPECT_EQ(Publish(no_mode).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  auto no_type = KubeletPublish(v, target);
  no_type.mutable_volume_capability()->clear_access_type();
  EXPECT_EQ(Publish(no_type).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  Volume fake;
  fake.set_volume_id("vol-00000000000000000000000000000000");
  EXPECT_EQ(Publish(KubeletPublish(fake, target)).error_code(), grpc::StatusCode::NOT_FOUND);
  fake.set_volume_id("../../etc");
  EXPECT_EQ(Publish(KubeletPublish(fake, target)).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_FALSE(fs::exists(target));
  EXPECT_EQ(Unpublish("", target).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Unpublish(v.volume_id(), "").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_P(NodeServiceTest, ReadOnlyPublishRefusesWritesWithErofs) {
  Volume v = MustCreate("a", 8 * kMiB);
  fs::path writer = node_->TargetPath("pod-w", "pv-a");
  fs::path reader = node_->TargetPath("pod-r", "pv-a");
  ASSERT_TRUE(Publish(KubeletPublish(v, writer)).ok());
  ASSERT_TRUE(Publish(KubeletPublish(v, reader, /*readonly=*/true)).ok());
  { std::ofstream(writer / "data") << "42"; }
  std::string out;
  EXPECT_EQ(RunInPod("cat " + (reader / "data").string(), &out), 0);
  EXPECT_EQ(out, "42");
  out.clear();
  EXPECT_NE(RunInPod("echo x > " + (reader / "new").string(), &out), 0);
  EXPECT_NE(out.find("Read-only file system"), std::string::npos) << out;
  ASSERT_TRUE(Unpublish(v.volume_id(), writer).ok());
  ASSERT_TRUE(Unpublish(v.volume_id(), reader).ok());
}

TEST_P(NodeServiceTest, StatsReflectUseAndRejectForeignPaths) {
  Volume v = MustCreate("a", 16 * kMiB);
  fs::path target = node_->TargetPath("pod-1", "pv-a");
  ASSERT_TRUE(Publish(KubeletPublish(v, target)).ok());
  ASSERT_EQ(RunInPod("dd if=/dev/urandom of=" + (target / "f").string() +
                     " bs=1M count=4 status=none && mkdir " + (target / "d").string()),
            0);
  NodeGetVolumeStatsResponse stats;
  ASSERT_TRUE(Stats(v.volume_id(), target, &stats).ok());
  ASSERT_EQ(stats.usage_size(), 2);
  EXPECT_EQ(stats.usage(0).unit(), VolumeUsage::BYTES);
  EXPECT_EQ(stats.usage(0).total(), 16 * kMiB);
  EXPECT_GE(stats.usage(0).used(), 4 * kMiB);
  EXPECT_LE(stats.usage(0).available(), 12 * kMiB);
  EXPECT_EQ(stats.usage(1).unit(), VolumeUsage::INODES);
  EXPECT_GE(stats.usage(1).used(), 3);
  EXPECT_FALSE(stats.volume_condition().abnormal());

  NodeGetVolumeStatsResponse none;
  EXPECT_EQ(Stats(v.volume_id(), "/etc", &none).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Stats("vol-00000000000000000000000000000000", target, &none).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Stats(v.volume_id(), "", &none).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(Unpublish(v.volume_id(), target).ok());
}

TEST_P(NodeServiceTest, NodeExpandGrowsWhenAsked) {
  Volume v = MustCreate("a", 8 * kMiB);
  fs::path target = node_->TargetPath("pod-1", "pv-a");
  ASSERT_TRUE(Publish(KubeletPublish(v, target)).ok());
  grpc::ClientContext ctx;
  NodeExpandVolumeRequest req;
  req.set_volume_id(v.volume_id());
  req.set_volume_path(target);
  req.mutable_capacity_range()->set_required_bytes(12 * kMiB);
  NodeExpandVolumeResponse resp;
  ASSERT_TRUE(node_->node().NodeExpandVolume(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.capacity_bytes(), 12 * kMiB);
  grpc::ClientContext ctx2;
  req.set_volume_path("/somewhere/else");
  EXPECT_EQ(node_->node().NodeExpandVolume(&ctx2, req, &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(Unpublish(v.volume_id(), target).ok());
}

// What the kubelet sends for a CSI inline volume of a pod.
NodePublishVolumeRequest InlinePublish(const std::string& handle, const fs::path& target,
                                       const std::string& size) {
  NodePublishVolumeRequest req;
  req.set_volume_id(handle);
  req.set_target_path(target);
  *req.mutable_volume_capability() = MountCapability();
  auto& ctx = *req.mutable_volume_context();
  ctx["csi.storage.k8s.io/ephemeral"] = "true";
  ctx["size"] = size;
  return req;
}

TEST_P(NodeServiceTest, InlineEphemeralVolumeLivesFromPublishToUnpublish) {
  fs::path target = node_->TargetPath("pod-e", "inline");
  auto req = InlinePublish("csi-0123456789abcdef0123456789abcdef", target, "24Mi");
  auto& ctx = *req.mutable_volume_context();
  ctx["csi.storage.k8s.io/pod.name"] = "inline-pod";
  ASSERT_TRUE(Publish(req).ok());
  EXPECT_TRUE(Publish(req).ok());  // idempotent
  EXPECT_EQ(AvailableCapacity(), 256 * kMiB - 24 * kMiB);
  NodeGetVolumeStatsResponse stats;
  ASSERT_TRUE(Stats(req.volume_id(), target, &stats).ok());
  EXPECT_EQ(stats.usage(0).total(), 24 * kMiB);
  ASSERT_TRUE(Unpublish(req.volume_id(), target).ok());
  EXPECT_EQ(AvailableCapacity(), 256 * kMiB);
  EXPECT_TRUE(Unpublish(req.volume_id(), target).ok());

  ctx["size"] = "lots";
  grpc::Status st = Publish(req);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("size"), std::string::npos);
  ctx["size"] = "8Mi";
  ctx["color"] = "blue";
  EXPECT_EQ(Publish(req).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ctx.erase("color");
  ctx["cellar.dev/huge-pages"] = "sometimes";
  st = Publish(req);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find(req.volume_id()), std::string::npos) << st.error_message();
  EXPECT_EQ(AvailableCapacity(), 256 * kMiB);
}

// An inline volume may ask for huge pages too (cellar.dev/huge-pages, as a class does).
TEST_P(NodeServiceTest, InlineVolumeTakesHugePages) {
  fs::path target = node_->TargetPath("pod-h", "inline");
  auto req = InlinePublish("csi-00112233445566778899aabbccddeeff", target, "8Mi");
  (*req.mutable_volume_context())["cellar.dev/huge-pages"] = "within_size";
  ASSERT_TRUE(Publish(req).ok());
  bool found = false;
  for (const auto& arena : fs::directory_iterator(node_->state_dir() / "arenas")) {
    found = found || SuperOptions(arena.path()).find("huge=within_size") != std::string::npos;
  }
  EXPECT_TRUE(found) << "no arena mounted with huge=within_size";
  ASSERT_TRUE(Unpublish(req.volume_id(), target).ok());
}

TEST_P(NodeServiceTest, NeverTouchesMountsOrDirectoriesThatAreNotItsOwn) {
  Volume v = MustCreate("a", 8 * kMiB);
  // Someone else's mount at a path the request names.
  fs::path foreign = node_->root() / "foreign";
  fs::create_directories(foreign);
  ASSERT_EQ(::system(("mount -t tmpfs -o size=1m foreign-test " + foreign.string()).c_str()), 0);
  { std::ofstream(foreign / "keep") << "mine"; }
  EXPECT_TRUE(Unpublish(v.volume_id(), foreign.string()).ok());
  EXPECT_TRUE(Unpublish("vol-00000000000000000000000000000000", foreign.string()).ok());
  EXPECT_TRUE(Unpublish("csi-unknown-inline", foreign.string()).ok());
  EXPECT_TRUE(fs::exists(foreign / "keep")) << "a foreign mount was unmounted";

  // A non-empty directory is not bound over.
  fs::path full = node_->root() / "full";
  fs::create_directories(full);
  { std::ofstream(full / "data") << "precious"; }
  grpc::Status st = Publish(KubeletPublish(v, full));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("non-empty"), std::string::npos);
  EXPECT_TRUE(fs::exists(full / "data"));
  ::umount2(foreign.c_str(), MNT_DETACH);
}

CELLAR_INSTANTIATE_MODES(NodeServiceTest);

}  // namespace
}  // namespace cellar::testing
