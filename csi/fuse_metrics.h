// /metrics for the FUSE layer: reads mount::FuseStats at scrape time, so the serving
// threads only ever touch their relaxed atomics.
//   cellar_fuse_requests_total{opcode}            counter
//   cellar_fuse_request_duration_seconds{opcode}  histogram
//   cellar_fuse_opens_total{served="passthrough"|"daemon"}  regular-file opens
#pragma once

#include <vector>

#include <prometheus/collectable.h>

#include "mount/fuse_stats.h"

namespace cellar::csi {

// Families for a snapshot; opcodes never seen are left out.
std::vector<prometheus::MetricFamily> FuseFamilies(const mount::FuseStatsSnapshot& snap);

class FuseMetrics final : public prometheus::Collectable {
 public:
  explicit FuseMetrics(const mount::FuseStats& stats) : stats_(stats) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    return FuseFamilies(stats_.Snapshot());
  }

 private:
  const mount::FuseStats& stats_;
};

}  // namespace cellar::csi
