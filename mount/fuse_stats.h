// FuseStats: what the serving threads count, for whoever wants to watch (the node's
// /metrics). The mount layer knows nothing of Prometheus; a reader copies the numbers
// out with Snapshot() at scrape time.
//
// The hot path is a few relaxed atomic adds on fixed slots chosen by opcode and bucket
// index: no lock, no allocation, no label lookup. Each counter is read on its own, so a
// snapshot taken while requests run may be a few requests apart between fields; every
// field only grows.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

namespace cellar::mount {

// Upper bounds of the latency buckets, in microseconds; the last bucket (+Inf) is
// implicit. Chosen around what was measured: a GETATTR is ~10 us, a 1 MiB daemon READ
// ~150 us, and anything past 100 ms is a stall worth seeing.
inline constexpr std::array<uint64_t, 12> kLatencyBucketsUs = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000, 100000, 1000000};
inline constexpr size_t kOpcodeSlots = 64;  // every opcode the session dispatches is below

struct OpcodeSnapshot {
  uint64_t count = 0;
  uint64_t sum_ns = 0;
  // Not cumulative: buckets[i] counts requests in (bound[i-1], bound[i]]; the last slot
  // those above every bound.
  std::array<uint64_t, kLatencyBucketsUs.size() + 1> buckets{};
};

struct FuseStatsSnapshot {
  std::array<OpcodeSnapshot, kOpcodeSlots> opcodes{};
  uint64_t passthrough_opens = 0;  // OPEN/CREATE answered with a backing file
  uint64_t daemon_opens = 0;       // regular files whose reads and writes the daemon serves
};

class FuseStats {
 public:
  // One request of `opcode` took `ns`. Opcodes beyond the table are not counted.
  void RecordRequest(uint32_t opcode, uint64_t ns) {
    if (opcode >= kOpcodeSlots) return;
    Slot& s = slots_[opcode];
    s.count.fetch_add(1, std::memory_order_relaxed);
    s.sum_ns.fetch_add(ns, std::memory_order_relaxed);
    s.buckets[BucketOf(ns)].fetch_add(1, std::memory_order_relaxed);
  }
  void RecordOpen(bool passthrough) {
    (passthrough ? passthrough_opens_ : daemon_opens_).fetch_add(1, std::memory_order_relaxed);
  }

  FuseStatsSnapshot Snapshot() const;

  // Index into OpcodeSnapshot::buckets for a latency: the first bound it does not exceed.
  static size_t BucketOf(uint64_t ns) {
    size_t i = 0;
    while (i < kLatencyBucketsUs.size() && ns > kLatencyBucketsUs[i] * 1000) ++i;
    return i;
  }

 private:
  struct Slot {
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_ns{0};
    std::array<std::atomic<uint64_t>, kLatencyBucketsUs.size() + 1> buckets{};
  };
  std::array<Slot, kOpcodeSlots> slots_{};
  std::atomic<uint64_t> passthrough_opens_{0};
  std::atomic<uint64_t> daemon_opens_{0};
};

// "LOOKUP", "READ", ... for the opcodes the session knows; empty for the others.
std::string_view OpcodeName(uint32_t opcode);

}  // namespace cellar::mount
