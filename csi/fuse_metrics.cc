#include "csi/fuse_metrics.h"

#include <limits>
#include <string>

#include "csi/metric_builders.h"

namespace cellar::csi {

using prometheus::MetricType;

std::vector<prometheus::MetricFamily> FuseFamilies(const mount::FuseStatsSnapshot& snap) {
  auto requests = NewFamily("cellar_fuse_requests_total",
                            "FUSE requests the daemon served, by opcode", MetricType::Counter);
  auto durations =
      NewFamily("cellar_fuse_request_duration_seconds",
                "Time the daemon took to serve a FUSE request, by opcode", MetricType::Histogram);
  for (uint32_t op = 0; op < mount::kOpcodeSlots; ++op) {
    const mount::OpcodeSnapshot& o = snap.opcodes[op];
    if (o.count == 0) continue;
    std::string name(mount::OpcodeName(op));
    if (name.empty()) name = "OP_" + std::to_string(op);
    AddSample(requests, {{"opcode", name}}, static_cast<double>(o.count));

    prometheus::ClientMetric m;
    m.label.push_back({"opcode", name});
    // Bucket counts are read one by one while requests run: their total may differ from
    // `count` by a few, so the +Inf bucket is made to agree with the buckets.
    uint64_t cumulative = 0;
    for (size_t b = 0; b < o.buckets.size(); ++b) {
      cumulative += o.buckets[b];
      double bound = b < mount::kLatencyBucketsUs.size()
                         ? static_cast<double>(mount::kLatencyBucketsUs[b]) / 1e6
                         : std::numeric_limits<double>::infinity();
      m.histogram.bucket.push_back({cumulative, bound});
    }
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = static_cast<double>(o.sum_ns) / 1e9;
    durations.metric.push_back(std::move(m));
  }
  auto opens = NewFamily("cellar_fuse_opens_total",
                         "Regular files opened through FUSE, by who serves their reads and "
                         "writes: the kernel (passthrough) or the daemon",
                         MetricType::Counter);
  AddSample(opens, {{"served", "passthrough"}}, static_cast<double>(snap.passthrough_opens));
  AddSample(opens, {{"served", "daemon"}}, static_cast<double>(snap.daemon_opens));
  return {std::move(requests), std::move(durations), std::move(opens)};
}

}  // namespace cellar::csi
