// `cellar status` output: the table for people and the JSON for scripts.
#include "csi/status_format.h"

#include <gtest/gtest.h>

namespace cellar::csi {
namespace {

cellar::admin::v1::NodeStatus Sample() {
  cellar::admin::v1::NodeStatus s;
  s.set_node_id("node-a");
  s.set_driver_name("csi.cellar.dev");
  s.set_version("0.1.0");
  s.set_io_mode("passthrough");
  s.set_capacity_bytes(256ull << 20);
  s.set_allocated_bytes(64ull << 20);
  s.set_available_bytes(192ull << 20);
  s.set_used_bytes(16ull << 20);
  s.set_healthy(true);
  s.set_started_unix(1'796'362'392);
  s.set_start_kind("fresh");
  auto* v = s.add_volumes();
  v->set_id("vol-0123456789abcdef0123456789abcdef");
  v->set_pvc_namespace("ml");
  v->set_pvc_name("data");
  v->set_capacity_bytes(64ull << 20);
  v->set_used_bytes(16ull << 20);
  v->set_used_inodes(2);
  v->set_condition("healthy");
  auto* p = v->add_publications();
  p->set_target_path("/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pv/mount");
  p->set_readonly(true);
  p->set_pod_namespace("ml");
  p->set_pod_name("train");
  p->set_abnormal(true);
  p->set_condition("transport endpoint is not connected");
  return s;
}

TEST(StatusFormatTest, TextShowsNodeVolumesAndPublications) {
  std::string text = FormatStatusText(Sample());
  EXPECT_NE(text.find("node node-a (csi.cellar.dev 0.1.0), io mode passthrough, healthy\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("started 2026-12-04T05:33:12Z (fresh)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("capacity 256.0 MiB, allocated 64.0 MiB, free 192.0 MiB, used 16.0 MiB by 1 "
                      "volume\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("vol-0123456789abcdef0123456789abcdef  ml/data"), std::string::npos) << text;
  EXPECT_NE(text.find("  published ro at /var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pv/"
                      "mount for pod ml/train: transport endpoint is not connected\n"),
            std::string::npos)
      << text;
}

TEST(StatusFormatTest, UnhealthyNodeSaysWhyAndUnknownPodsAreDashes) {
  auto s = Sample();
  s.set_healthy(false);
  s.set_health_message("FUSE mount /x does not answer");
  s.mutable_volumes(0)->mutable_publications(0)->clear_pod_name();
  std::string text = FormatStatusText(s);
  EXPECT_NE(text.find("UNHEALTHY: FUSE mount /x does not answer"), std::string::npos) << text;
  EXPECT_NE(text.find("for pod -:"), std::string::npos) << text;
}

TEST(StatusFormatTest, AReplicaNamesItsOwner) {
  auto s = Sample();
  s.mutable_volumes(0)->set_replica_of("node-b");
  std::string text = FormatStatusText(s);
  EXPECT_NE(text.find("(replica of node-b)"), std::string::npos) << text;
}

TEST(StatusFormatTest, JsonUsesTheProtoFieldNamesAndPrintsDefaults) {
  auto s = Sample();
  s.mutable_volumes(0)->set_ephemeral(false);
  auto json = FormatStatusJson(s);
  ASSERT_TRUE(json.ok());
  EXPECT_NE(json->find("\"node_id\": \"node-a\""), std::string::npos) << *json;
  EXPECT_NE(json->find("\"used_bytes\": \"16777216\""), std::string::npos) << *json;
  EXPECT_NE(json->find("\"ephemeral\": false"), std::string::npos) << *json;
  EXPECT_NE(json->find("\"pod_name\": \"train\""), std::string::npos) << *json;
}

}  // namespace
}  // namespace cellar::csi
