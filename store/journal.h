// Journal: the store's crash-safe metadata log.
//
// Two files in one directory:
//   snapshot  the whole state at sequence S, replaced atomically (temp, fsync, rename,
//             fsync dir);
//   log       records appended after S, each framed as
//             [u32 payload length][u32 crc32 of seq+payload][u64 seq][payload]
//             and fdatasync'ed before Append returns.
// Recovery (Open) loads the snapshot, replays the log records whose seq is above S, and
// cuts the log at the first torn or corrupt record, which can only be the tail of an
// append that a crash interrupted (its caller never saw success). Compact() writes a
// new snapshot and empties the log; a crash between the two is harmless because
// replay skips records the snapshot already holds.
//
// The journal stores opaque payloads; the Store decides what they mean.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "store/env.h"

namespace cellar::store {

struct Recovered {
  std::string snapshot;              // empty when there was none
  std::vector<std::string> records;  // to apply, in order, on top of the snapshot
  uint64_t dropped_tail_bytes = 0;   // torn tail cut from the log
};

class Journal {
 public:
  // Creates the directory if needed. DataLoss when the snapshot is damaged (it is
  // never written in place, so that means the disk lost it).
  static Result<std::unique_ptr<Journal>> Open(Env& env, const std::filesystem::path& dir,
                                               Recovered* recovered);

  // Durable when it returns OK. On error nothing is acknowledged; the record may or
  // may not survive a crash, and recovery treats either outcome as consistent.
  Status Append(const std::string& payload);

  // Replaces snapshot+log with `snapshot` (the full state after every record so far).
  Status Compact(const std::string& snapshot);

  // Records appended since the last compaction.
  uint64_t log_records() const { return log_records_; }
  uint64_t log_bytes() const { return log_bytes_; }

 private:
  Journal(Env& env, std::filesystem::path dir) : env_(env), dir_(std::move(dir)) {}

  Env& env_;
  std::filesystem::path dir_;
  UniqueFd log_;
  uint64_t seq_ = 0;
  uint64_t log_records_ = 0;
  uint64_t log_bytes_ = 0;
};

uint32_t Crc32(const void* data, size_t size, uint32_t crc = 0);

}  // namespace cellar::store
