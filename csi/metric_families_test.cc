// The families /metrics is made of, serialized by prometheus-cpp exactly as the node
// serves them; and the --metrics-address syntax.
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include "csi/call_metrics.h"
#include "csi/fuse_metrics.h"
#include "csi/metrics_server.h"
#include "csi/node_metrics.h"
#include "mount/fuse_kernel.h"

namespace cellar::csi {
namespace {

std::string Text(const std::vector<prometheus::MetricFamily>& families) {
  return prometheus::TextSerializer().Serialize(families);
}

bool Has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(FuseFamiliesTest, CountsHistogramsAndOpensByKind) {
  mount::FuseStats stats;
  stats.RecordRequest(FUSE_WRITE, 80'000);     // 80 us
  stats.RecordRequest(FUSE_WRITE, 2'000'000);  // 2 ms
  stats.RecordOpen(false);
  std::string text = Text(FuseFamilies(stats.Snapshot()));
  EXPECT_TRUE(Has(text, "cellar_fuse_requests_total{opcode=\"WRITE\"} 2")) << text;
  const std::string bucket = "cellar_fuse_request_duration_seconds_bucket{opcode=\"WRITE\",le=";
  EXPECT_TRUE(Has(text, bucket + "\"5e-05\"} 0")) << text;
  EXPECT_TRUE(Has(text, bucket + "\"0.0001\"} 1")) << text;
  EXPECT_TRUE(Has(text, bucket + "\"+Inf\"} 2")) << text;
  EXPECT_TRUE(Has(text, "cellar_fuse_request_duration_seconds_count{opcode=\"WRITE\"} 2")) << text;
  EXPECT_TRUE(Has(text, "cellar_fuse_opens_total{served=\"daemon\"} 1")) << text;
  EXPECT_TRUE(Has(text, "cellar_fuse_opens_total{served=\"passthrough\"} 0")) << text;
  EXPECT_EQ(text.find("opcode=\"READ\""), std::string::npos) << "opcodes never seen are left out";
}

TEST(NodeFamiliesTest, NodeAndVolumeGaugesWithPvcLabels) {
  cellar::admin::v1::NodeStatus s;
  s.set_capacity_bytes(1024);
  s.set_allocated_bytes(512);
  s.set_available_bytes(512);
  s.set_used_bytes(100);
  s.set_healthy(true);
  s.set_io_mode("passthrough");
  s.set_start_kind("takeover");
  s.set_version("0.1.0");
  auto* v = s.add_volumes();
  v->set_id("vol-1");
  v->set_pvc_namespace("ml");
  v->set_pvc_name("data");
  v->set_capacity_bytes(512);
  v->set_used_bytes(100);
  v->set_used_inodes(3);
  auto* p = v->add_publications();
  p->set_abnormal(true);
  p->set_connection_lost(true);
  std::string text = Text(NodeFamilies(s));
  EXPECT_TRUE(Has(text, "cellar_node_capacity_bytes 1024")) << text;
  EXPECT_TRUE(Has(text, "cellar_node_free_bytes 512")) << text;
  EXPECT_TRUE(Has(text, "cellar_node_used_bytes 100")) << text;
  EXPECT_TRUE(Has(text, "cellar_node_volumes 1")) << text;
  EXPECT_TRUE(Has(text,
                  "cellar_node_info{version=\"0.1.0\",io_mode=\"passthrough\","
                  "start_kind=\"takeover\"} 1"))
      << text;
  EXPECT_TRUE(Has(text,
                  "cellar_volume_used_bytes{volume_id=\"vol-1\",pvc_namespace=\"ml\","
                  "pvc_name=\"data\"} 100"))
      << text;
  EXPECT_TRUE(Has(text,
                  "cellar_volume_files{volume_id=\"vol-1\",pvc_namespace=\"ml\","
                  "pvc_name=\"data\"} 3"))
      << text;
  EXPECT_TRUE(Has(text, "cellar_publications_connection_lost 1")) << text;
  EXPECT_TRUE(Has(text, "cellar_publications_abnormal 1")) << text;
}

TEST(CallMetricsTest, CallsByMethodAndCodeName) {
  CallMetrics metrics;
  metrics.Record("CreateVolume", grpc::StatusCode::OK, 0.002);
  metrics.Record("CreateVolume", grpc::StatusCode::RESOURCE_EXHAUSTED, 0.001);
  metrics.Record("CreateVolume", grpc::StatusCode::OK, 0.003);
  std::string text = Text(metrics.registry()->Collect());
  EXPECT_TRUE(Has(text, "cellar_csi_calls_total{code=\"OK\",method=\"CreateVolume\"} 2")) << text;
  EXPECT_TRUE(
      Has(text, "cellar_csi_calls_total{code=\"RESOURCE_EXHAUSTED\",method=\"CreateVolume\"} 1"))
      << text;
  EXPECT_TRUE(Has(text, "cellar_csi_call_duration_seconds_count{method=\"CreateVolume\"} 3"))
      << text;
}

TEST(MetricsAddressTest, HostPortAndBarePortsAreAcceptedOthersNamed) {
  EXPECT_EQ(*ParseMetricsAddress(":9808"), "9808");
  EXPECT_EQ(*ParseMetricsAddress("9808"), "9808");
  EXPECT_EQ(*ParseMetricsAddress("127.0.0.1:0"), "127.0.0.1:0");
  EXPECT_EQ(*ParseMetricsAddress("[::1]:9808"), "[::1]:9808");
  for (const char* bad : {"", ":", "host:", ":70000", ":98x", "http://h:1", "h:1/metrics"}) {
    auto r = ParseMetricsAddress(bad);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find(std::string("\"") + bad + "\""), std::string::npos)
        << r.status().message();
  }
}

}  // namespace
}  // namespace cellar::csi
