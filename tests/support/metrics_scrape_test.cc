// SampleValue reads the text format as prometheus-cpp writes it.
#include "tests/support/metrics_scrape.h"

#include <gtest/gtest.h>

namespace cellar::testing {
namespace {

constexpr const char* kText =
    "# HELP cellar_fuse_requests_total FUSE requests\n"
    "# TYPE cellar_fuse_requests_total counter\n"
    "cellar_fuse_requests_total{opcode=\"READ\"} 16\n"
    "cellar_fuse_requests_total{opcode=\"WRITE\"} 32\n"
    "cellar_fuse_requests_total_extra 7\n"
    "cellar_node_capacity_bytes 268435456\n"
    "cellar_volume_used_bytes{volume_id=\"vol-1\",pvc_namespace=\"ns\",pvc_name=\"\"} 4096\n";

TEST(MetricsScrapeTest, FindsSamplesByNameAndLabelSubset) {
  EXPECT_EQ(SampleValue(kText, "cellar_fuse_requests_total", {{"opcode", "WRITE"}}), 32);
  EXPECT_EQ(SampleValue(kText, "cellar_node_capacity_bytes"), 268435456);
  EXPECT_EQ(SampleValue(kText, "cellar_volume_used_bytes", {{"pvc_namespace", "ns"}}), 4096);
  EXPECT_EQ(SampleValue(kText, "cellar_volume_used_bytes", {{"pvc_name", ""}}), 4096);
}

TEST(MetricsScrapeTest, MissingSamplesAndLongerNamesAreNotMatches) {
  EXPECT_EQ(SampleValue(kText, "cellar_fuse_requests_total", {{"opcode", "LOOKUP"}}), std::nullopt);
  EXPECT_EQ(SampleValue(kText, "cellar_fuse_requests"), std::nullopt);
  EXPECT_EQ(SampleValue(kText, "cellar_fuse_requests_total_extra"), 7);
}

}  // namespace
}  // namespace cellar::testing
