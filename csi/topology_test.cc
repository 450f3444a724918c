#include "csi/topology.h"

#include <gtest/gtest.h>

namespace cellar::csi {
namespace {

TEST(TopologyTest, NodeSegmentsNameThePeersKeyPerDriverOnlyWhenTheNodeFetches) {
  EXPECT_EQ(NodeSegments("a.b.csi", "n1", false),
            (std::map<std::string, std::string>{{kTopologyKey, "n1"}}));
  EXPECT_EQ(NodeSegments("a.b.csi", "n1", true),
            (std::map<std::string, std::string>{{kTopologyKey, "n1"},
                                                {"peers.csi.cellar.dev/a.b.csi", "true"}}));
}

TEST(TopologyTest, OwnerVolumesHaveOneTermPeerVolumesASecondThatNoSegmentSetMatches) {
  google::protobuf::RepeatedPtrField<::csi::v1::Topology> owner, peers;
  FillVolumeTopology("d", "n1", VolumeNodes::kOwner, &owner);
  ASSERT_EQ(owner.size(), 1);
  EXPECT_TRUE(DesignatesNode(owner[0], "n1"));

  FillVolumeTopology("d", "n1", VolumeNodes::kPeers, &peers);
  ASSERT_EQ(peers.size(), 2);
  EXPECT_TRUE(DesignatesNode(peers[0], "n1"));
  // The second term needs a label no NodeGetInfo reports (see the header).
  const auto& second = peers[1].segments();
  EXPECT_EQ(second.at("peers.csi.cellar.dev/d"), "true");
  EXPECT_EQ(second.at(kOsLabel), "linux");
  for (bool fetches : {false, true}) {
    EXPECT_FALSE(NodeSegments("d", "n2", fetches).contains(kOsLabel));
  }
}

TEST(TopologyTest, ParseVolumeNodes) {
  EXPECT_EQ(*ParseVolumeNodes({}, "v"), VolumeNodes::kOwner);
  EXPECT_EQ(*ParseVolumeNodes({{kNodesParameter, "owner"}}, "v"), VolumeNodes::kOwner);
  EXPECT_EQ(*ParseVolumeNodes({{kNodesParameter, "peers"}}, "v"), VolumeNodes::kPeers);
  auto bad = ParseVolumeNodes({{kNodesParameter, "all"}}, "volume \"x\"");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("volume \"x\""), std::string::npos);
  EXPECT_NE(bad.status().message().find("\"all\""), std::string::npos);
}

TEST(TopologyTest, ANodeIsDesignatedByItsNodeSegmentWhateverElseTheTopologyHolds) {
  ::csi::v1::Topology t;
  (*t.mutable_segments())[kTopologyKey] = "n1";
  (*t.mutable_segments())[PeersTopologyKey("d")] = "true";
  EXPECT_TRUE(DesignatesNode(t, "n1"));
  EXPECT_FALSE(DesignatesNode(t, "n2"));
  t.mutable_segments()->erase(kTopologyKey);
  EXPECT_FALSE(DesignatesNode(t, "n1"));
}

}  // namespace
}  // namespace cellar::csi
