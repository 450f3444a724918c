// FuseStats: which bucket a latency lands in (Prometheus "le" semantics), what a
// snapshot carries, and the opcode names the metrics are labelled with.
#include "mount/fuse_stats.h"

#include <gtest/gtest.h>

#include "mount/fuse_kernel.h"

namespace cellar::mount {
namespace {

TEST(FuseStatsTest, ALatencyOnABoundGoesIntoThatBucket) {
  EXPECT_EQ(FuseStats::BucketOf(0), 0u);
  EXPECT_EQ(FuseStats::BucketOf(5'000), 0u);                                    // le 5 us
  EXPECT_EQ(FuseStats::BucketOf(5'001), 1u);                                    // le 10 us
  EXPECT_EQ(FuseStats::BucketOf(1'000'000'000), kLatencyBucketsUs.size() - 1);  // le 1 s
  EXPECT_EQ(FuseStats::BucketOf(1'000'000'001), kLatencyBucketsUs.size());      // +Inf
}

TEST(FuseStatsTest, SnapshotCountsRequestsByOpcodeAndOpensByKind) {
  FuseStats stats;
  stats.RecordRequest(FUSE_READ, 3'000);
  stats.RecordRequest(FUSE_READ, 200'000);
  stats.RecordRequest(FUSE_GETATTR, 1'000);
  stats.RecordRequest(kOpcodeSlots + 5, 1'000);  // beyond the table: ignored, no crash
  stats.RecordOpen(true);
  stats.RecordOpen(true);
  stats.RecordOpen(false);
  FuseStatsSnapshot snap = stats.Snapshot();
  EXPECT_EQ(snap.opcodes[FUSE_READ].count, 2u);
  EXPECT_EQ(snap.opcodes[FUSE_READ].sum_ns, 203'000u);
  EXPECT_EQ(snap.opcodes[FUSE_READ].buckets[0], 1u);
  EXPECT_EQ(snap.opcodes[FUSE_READ].buckets[FuseStats::BucketOf(200'000)], 1u);
  EXPECT_EQ(snap.opcodes[FUSE_GETATTR].count, 1u);
  EXPECT_EQ(snap.opcodes[FUSE_WRITE].count, 0u);
  EXPECT_EQ(snap.passthrough_opens, 2u);
  EXPECT_EQ(snap.daemon_opens, 1u);
}

TEST(FuseStatsTest, OpcodesHaveTheirProtocolNames) {
  EXPECT_EQ(OpcodeName(FUSE_LOOKUP), "LOOKUP");
  EXPECT_EQ(OpcodeName(FUSE_READDIRPLUS), "READDIRPLUS");
  EXPECT_EQ(OpcodeName(kernel::kOpStatx), "STATX");
  EXPECT_EQ(OpcodeName(63), "");
}

}  // namespace
}  // namespace cellar::mount
