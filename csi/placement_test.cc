// Local-first placement: which owner nodes a pod's claims have, and the JSON patch that
// prefers them while keeping whatever affinity the pod already had.
#include "csi/placement.h"

#include <map>

#include <gtest/gtest.h>

namespace cellar::csi {
namespace {

const std::string kDriver = "csi.cellar.dev";

// claim -> owner ("" for unbound / another driver, "!" for a failing lookup).
ClaimOwnerLookup Owners(std::map<std::string, std::string> owners) {
  return [owners](const std::string& claim) -> Result<std::optional<std::string>> {
    auto it = owners.find(claim);
    if (it == owners.end()) return NotFound("no claim " + claim);
    if (it->second == "!") return Status(Code::kUnavailable, "API server down");
    if (it->second.empty()) return std::optional<std::string>();
    return std::optional<std::string>(it->second);
  };
}

// A pod with these claims and an extra `spec` fragment (JSON members, may be empty).
YAML::Node Pod(const std::vector<std::string>& claims, const std::string& extra = "") {
  std::string volumes = R"({"name":"scratch","emptyDir":{}},)"
                        R"({"name":"inline","csi":{"driver":"csi.cellar.dev"}})";
  for (const auto& c : claims) {
    volumes += R"(,{"name":")" + c + R"(","persistentVolumeClaim":{"claimName":")" + c + "\"}}";
  }
  return YAML::Load(R"({"metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}],)" + extra +
                    (extra.empty() ? "" : ",") + R"("volumes":[)" + volumes + "]}}");
}

std::string Term(const std::string& node, int weight = 100) {
  return PreferenceTermJson({node, weight});
}

TEST(PlacementTest, ClaimsAreListedOnceAndOtherVolumesIgnored) {
  EXPECT_EQ(ClaimsOfPod(Pod({"a", "b", "a"})), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(ClaimsOfPod(Pod({})).empty());
  EXPECT_TRUE(ClaimsOfPod(YAML::Load("{}")).empty());
}

TEST(PlacementTest, PodWithoutAffinityGetsTheWholeTree) {
  YAML::Node pod = Pod({"data"});
  auto prefs = OwnerPreferences(pod, Owners({{"data", "node-a"}}));
  ASSERT_TRUE(prefs.ok()) << prefs.status().ToString();
  ASSERT_EQ(prefs->size(), 1u);
  EXPECT_EQ((*prefs)[0].node, "node-a");
  EXPECT_EQ((*prefs)[0].weight, 100);
  EXPECT_EQ(PreferOwnersPatch(pod, *prefs),
            R"([{"op":"add","path":"/spec/affinity","value":{"nodeAffinity":)"
            R"({"preferredDuringSchedulingIgnoredDuringExecution":[)" +
                Term("node-a") + "]}}}]");
  EXPECT_EQ(Term("node-a"),
            R"({"weight":100,"preference":{"matchExpressions":[{"key":)"
            R"("topology.csi.cellar.dev/node","operator":"In","values":["node-a"]}]}})");
}

TEST(PlacementTest, PodAffinityWithoutNodeAffinityKeepsIt) {
  YAML::Node pod = Pod({"data"}, R"("affinity":{"podAffinity":{}})");
  EXPECT_EQ(PreferOwnersPatch(pod, {{"node-a", 100}}),
            R"([{"op":"add","path":"/spec/affinity/nodeAffinity","value":)"
            R"({"preferredDuringSchedulingIgnoredDuringExecution":[)" +
                Term("node-a") + "]}}]");
}

TEST(PlacementTest, RequiredNodeAffinityIsKeptAndThePreferredListAdded) {
  YAML::Node pod = Pod({"data"}, R"("affinity":{"nodeAffinity":{)"
                                 R"("requiredDuringSchedulingIgnoredDuringExecution":)"
                                 R"({"nodeSelectorTerms":[]}}})");
  EXPECT_EQ(PreferOwnersPatch(pod, {{"node-a", 100}}),
            R"([{"op":"add","path":"/spec/affinity/nodeAffinity/)"
            R"(preferredDuringSchedulingIgnoredDuringExecution","value":[)" +
                Term("node-a") + "]}]");
}

TEST(PlacementTest, ExistingPreferredListIsAppendedTo) {
  YAML::Node pod = Pod({"data"}, R"("affinity":{"nodeAffinity":{)"
                                 R"("preferredDuringSchedulingIgnoredDuringExecution":[)"
                                 R"({"weight":5,"preference":{"matchExpressions":[)"
                                 R"({"key":"zone","operator":"In","values":["z1"]}]}}]}})");
  EXPECT_EQ(PreferOwnersPatch(pod, {{"node-a", 100}}),
            R"([{"op":"add","path":"/spec/affinity/nodeAffinity/)"
            R"(preferredDuringSchedulingIgnoredDuringExecution/-","value":)" +
                Term("node-a") + "}]");
}

TEST(PlacementTest, NullParentsAreReplaced) {
  YAML::Node pod = Pod({"data"}, R"("affinity":null)");
  EXPECT_EQ(PreferOwnersPatch(pod, {{"node-a", 100}})
                .rfind(R"([{"op":"add","path":"/spec/affinity","value":)", 0),
            0u);
}

TEST(PlacementTest, AnOwnerAlreadyPreferredIsNotAddedTwice) {
  YAML::Node pod = Pod({"data"}, R"("affinity":{"nodeAffinity":{)"
                                 R"("preferredDuringSchedulingIgnoredDuringExecution":[)" +
                                     Term("node-a", 7) + "]}}");
  EXPECT_EQ(PreferOwnersPatch(pod, {{"node-a", 100}}), "");
  EXPECT_NE(PreferOwnersPatch(pod, {{"node-a", 100}, {"node-b", 50}}).find("node-b"),
            std::string::npos);
}

TEST(PlacementTest, ClaimsOnTwoOwnersWeighByTheirCount) {
  YAML::Node pod = Pod({"a1", "b1", "a2", "a3"}, R"("affinity":{})");
  auto prefs = OwnerPreferences(
      pod, Owners({{"a1", "node-a"}, {"a2", "node-a"}, {"a3", "node-a"}, {"b1", "node-b"}}));
  ASSERT_TRUE(prefs.ok()) << prefs.status().ToString();
  ASSERT_EQ(prefs->size(), 2u);
  EXPECT_EQ((*prefs)[0].node, "node-a");
  EXPECT_EQ((*prefs)[0].weight, 100);
  EXPECT_EQ((*prefs)[1].node, "node-b");
  EXPECT_EQ((*prefs)[1].weight, 33);
  EXPECT_EQ(PreferOwnersPatch(pod, *prefs),
            R"([{"op":"add","path":"/spec/affinity/nodeAffinity","value":)"
            R"({"preferredDuringSchedulingIgnoredDuringExecution":[)" +
                Term("node-a") + "," + Term("node-b", 33) + "]}}]");
}

TEST(PlacementTest, EqualCountsWeighTheSameInNameOrder) {
  auto prefs = OwnerPreferences(Pod({"x", "y"}), Owners({{"x", "node-z"}, {"y", "node-b"}}));
  ASSERT_TRUE(prefs.ok());
  ASSERT_EQ(prefs->size(), 2u);
  EXPECT_EQ((*prefs)[0].node, "node-b");
  EXPECT_EQ((*prefs)[1].node, "node-z");
  EXPECT_EQ((*prefs)[1].weight, 100);
}

TEST(PlacementTest, UnboundAndForeignClaimsNeedNoPatch) {
  YAML::Node pod = Pod({"unbound", "nfs"});
  auto prefs = OwnerPreferences(pod, Owners({{"unbound", ""}, {"nfs", ""}}));
  ASSERT_TRUE(prefs.ok());
  EXPECT_TRUE(prefs->empty());
  EXPECT_EQ(PreferOwnersPatch(pod, *prefs), "");
}

TEST(PlacementTest, PodWithoutClaimsAsksNothing) {
  int calls = 0;
  auto prefs = OwnerPreferences(Pod({}), [&](const std::string&) {
    ++calls;
    return Result<std::optional<std::string>>(std::optional<std::string>());
  });
  ASSERT_TRUE(prefs.ok());
  EXPECT_TRUE(prefs->empty());
  EXPECT_EQ(calls, 0);
}

TEST(PlacementTest, AFailingLookupFailsTheWholePreferenceNamingTheClaim) {
  auto prefs = OwnerPreferences(Pod({"ok", "broken"}), Owners({{"ok", "node-a"}, {"broken", "!"}}));
  ASSERT_FALSE(prefs.ok());
  EXPECT_EQ(prefs.status().code(), Code::kUnavailable);
  EXPECT_NE(prefs.status().message().find("claim broken"), std::string::npos);
}

TEST(PlacementTest, BoundVolumeNeedsPhaseBound) {
  EXPECT_EQ(
      BoundVolumeOf(YAML::Load(R"({"spec":{"volumeName":"pv-1"},"status":{"phase":"Bound"}})")),
      std::optional<std::string>("pv-1"));
  EXPECT_EQ(BoundVolumeOf(YAML::Load(R"({"spec":{},"status":{"phase":"Pending"}})")), std::nullopt);
  EXPECT_EQ(
      BoundVolumeOf(YAML::Load(R"({"spec":{"volumeName":"pv-1"},"status":{"phase":"Lost"}})")),
      std::nullopt);
}

TEST(PlacementTest, OwnerComesOnlyFromThisDriversVolumes) {
  const std::string pv = R"({"spec":{"csi":{"driver":"DRIVER","volumeHandle":"vol-1",)"
                         R"("volumeAttributes":{"cellar.dev/owner-node":"node-a"}}}})";
  auto with = [&](const std::string& driver) {
    std::string text = pv;
    text.replace(text.find("DRIVER"), 6, driver);
    return YAML::Load(text);
  };
  EXPECT_EQ(OwnerNodeOf(with(kDriver), kDriver), std::optional<std::string>("node-a"));
  EXPECT_EQ(OwnerNodeOf(with("other.csi.cellar.dev"), kDriver), std::nullopt);
  EXPECT_EQ(OwnerNodeOf(YAML::Load(R"({"spec":{"nfs":{"server":"x"}}})"), kDriver), std::nullopt);
  EXPECT_EQ(OwnerNodeOf(YAML::Load(R"({"spec":{"csi":{"driver":"csi.cellar.dev"}}})"), kDriver),
            std::nullopt);
}

TEST(PlacementTest, JsonEscapesSurviveTheYamlParser) {
  // The API server writes JSON; yaml-cpp reads it as YAML 1.2 flow, which has the same
  // escapes. Names with quotes cannot exist in Kubernetes, but the uid and messages can.
  YAML::Node n = YAML::Load(R"({"a":"q\"b\\s\/t\u00e9\n","b":"x"})");
  EXPECT_EQ(n["a"].Scalar(), "q\"b\\s/t\xc3\xa9\n");
  EXPECT_EQ(n["b"].Scalar(), "x");
}

}  // namespace
}  // namespace cellar::csi
