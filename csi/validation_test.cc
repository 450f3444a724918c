#include "csi/validation.h"

#include <gtest/gtest.h>

namespace cellar::csi {
namespace {

using ::csi::v1::CapacityRange;
using ::csi::v1::VolumeCapability;

VolumeCapability MountCap(VolumeCapability::AccessMode::Mode mode) {
  VolumeCapability cap;
  cap.mutable_mount();
  cap.mutable_access_mode()->set_mode(mode);
  return cap;
}

TEST(CapabilityTest, NodeLocalModesAreAccepted) {
  EXPECT_TRUE(
      CheckCapability(MountCap(VolumeCapability::AccessMode::SINGLE_NODE_WRITER), "v").ok());
  EXPECT_TRUE(
      CheckCapability(MountCap(VolumeCapability::AccessMode::SINGLE_NODE_MULTI_WRITER), "v").ok());
}

TEST(CapabilityTest, MultiNodeBlockAndUnknownAreInvalid) {
  EXPECT_EQ(
      CheckCapability(MountCap(VolumeCapability::AccessMode::MULTI_NODE_MULTI_WRITER), "v").code(),
      Code::kInvalidArgument);
  VolumeCapability block;
  block.mutable_block();
  block.mutable_access_mode()->set_mode(VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  Status st = CheckCapability(block, "volume x");
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("volume x"), std::string::npos);
  EXPECT_EQ(CheckCapability(MountCap(VolumeCapability::AccessMode::UNKNOWN), "v").code(),
            Code::kInvalidArgument);
  VolumeCapability fs = MountCap(VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  fs.mutable_mount()->set_fs_type("ext4");
  EXPECT_EQ(CheckCapability(fs, "v").code(), Code::kInvalidArgument);
  VolumeCapability flags = MountCap(VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  flags.mutable_mount()->add_mount_flags("suid-root-please");
  EXPECT_EQ(CheckCapability(flags, "v").code(), Code::kInvalidArgument);
}

// NodePublishVolume passes FailedPrecondition for what the volume does not support
// (the spec's "Exceeds capabilities"); missing fields stay InvalidArgument.
TEST(CapabilityTest, UnsupportedTakesTheCallersCodeMalformedDoesNot) {
  const Code fp = Code::kFailedPrecondition;
  EXPECT_EQ(CheckCapability(MountCap(VolumeCapability::AccessMode::MULTI_NODE_READER_ONLY), "v", fp)
                .code(),
            fp);
  VolumeCapability block;
  block.mutable_block();
  block.mutable_access_mode()->set_mode(VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  EXPECT_EQ(CheckCapability(block, "v", fp).code(), fp);
  VolumeCapability fs = MountCap(VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  fs.mutable_mount()->set_fs_type("xfs");
  EXPECT_EQ(CheckCapability(fs, "v", fp).code(), fp);
  VolumeCapability group = MountCap(VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  group.mutable_mount()->set_volume_mount_group("1000");
  EXPECT_EQ(CheckCapability(group, "v", fp).code(), fp);
  VolumeCapability flags = MountCap(VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  flags.mutable_mount()->add_mount_flags("dax");
  Status st = CheckCapability(flags, "volume y", fp);
  EXPECT_EQ(st.code(), fp);
  EXPECT_NE(st.message().find("volume y"), std::string::npos);
  EXPECT_NE(st.message().find("dax"), std::string::npos);

  EXPECT_EQ(CheckCapability(MountCap(VolumeCapability::AccessMode::UNKNOWN), "v", fp).code(),
            Code::kInvalidArgument);
  VolumeCapability no_type;
  no_type.mutable_access_mode()->set_mode(VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  EXPECT_EQ(CheckCapability(no_type, "v", fp).code(), Code::kInvalidArgument);
  // Missing an access mode is malformed even when the access type is also unsupported.
  VolumeCapability block_no_mode;
  block_no_mode.mutable_block();
  EXPECT_EQ(CheckCapability(block_no_mode, "v", fp).code(), Code::kInvalidArgument);
  VolumeCapability bad_mode = MountCap(VolumeCapability::AccessMode::SINGLE_NODE_WRITER);
  bad_mode.mutable_access_mode()->set_mode(static_cast<VolumeCapability::AccessMode::Mode>(99));
  EXPECT_EQ(CheckCapability(bad_mode, "v", fp).code(), Code::kInvalidArgument);
}

TEST(CapacityTest, RoundsAndBounds) {
  CapacityRange r;
  r.set_required_bytes(100);
  EXPECT_EQ(*CapacityFor(r, "v"), kMinVolumeBytes);
  r.set_required_bytes((8 << 20) + 1);
  EXPECT_EQ(*CapacityFor(r, "v"), (8u << 20) + 4096);
  CapacityRange empty;
  EXPECT_EQ(*CapacityFor(empty, "v"), kDefaultVolumeBytes);
  CapacityRange limit_only;
  limit_only.set_limit_bytes(16 << 20);
  EXPECT_EQ(*CapacityFor(limit_only, "v"), 16u << 20);
}

TEST(CapacityTest, ImpossibleRangesAreOutOfRange) {
  CapacityRange r;
  r.set_required_bytes(10 << 20);
  r.set_limit_bytes(5 << 20);
  EXPECT_EQ(CapacityFor(r, "v").status().code(), Code::kOutOfRange);
  CapacityRange tiny;
  tiny.set_limit_bytes(100);
  EXPECT_EQ(CapacityFor(tiny, "v").status().code(), Code::kOutOfRange);
  CapacityRange negative;
  negative.set_required_bytes(-1);
  EXPECT_EQ(CapacityFor(negative, "v").status().code(), Code::kOutOfRange);
}

TEST(ParametersTest, ProvisionerMetadataIsRecordedOthersRejected) {
  google::protobuf::Map<std::string, std::string> params;
  params[kPvcName] = "data";
  params[kPvcNamespace] = "team";
  params["csi.storage.k8s.io/other"] = "x";
  auto recorded = CheckParameters(params, "v");
  ASSERT_TRUE(recorded.ok());
  EXPECT_EQ(recorded->size(), 2u);
  params["speed"] = "fast";
  auto bad = CheckParameters(params, "volume v");
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("speed"), std::string::npos);
}

TEST(TargetPathTest, RejectsRelativeRootAndDotDot) {
  EXPECT_TRUE(CheckTargetPath("/var/lib/kubelet/pods/x/mount", "t").ok());
  EXPECT_FALSE(CheckTargetPath("", "t").ok());
  EXPECT_FALSE(CheckTargetPath("relative", "t").ok());
  EXPECT_FALSE(CheckTargetPath("/", "t").ok());
  EXPECT_FALSE(CheckTargetPath("/a/../etc", "t").ok());
}

}  // namespace
}  // namespace cellar::csi
