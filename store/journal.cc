#include "store/journal.h"

#include <array>
#include <cstring>

namespace cellar::store {

namespace fs = std::filesystem;

namespace {

constexpr char kSnapshotMagic[8] = {'C', 'E', 'L', 'S', 'N', 'P', '0', '1'};
constexpr size_t kRecordHeader = 4 + 4 + 8;
constexpr size_t kSnapshotHeader = sizeof(kSnapshotMagic) + 8 + 4;
constexpr uint32_t kMaxPayload = 64u << 20;

std::array<uint32_t, 256> MakeCrcTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

template <typename T>
void Put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(value));
}

template <typename T>
T Get(const char* p) {
  T value;
  std::memcpy(&value, p, sizeof(value));
  return value;
}

uint32_t RecordCrc(uint64_t seq, const char* payload, size_t size) {
  return Crc32(payload, size, Crc32(&seq, sizeof(seq)));
}

}  // namespace

uint32_t Crc32(const void* data, size_t size, uint32_t crc) {
  static const auto table = MakeCrcTable();
  const auto* p = static_cast<const unsigned char*>(data);
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

Result<std::unique_ptr<Journal>> Journal::Open(Env& env, const fs::path& dir,
                                               Recovered* recovered) {
  RETURN_IF_ERROR(env.CreateDirectories(dir));
  std::unique_ptr<Journal> journal(new Journal(env, dir));
  *recovered = Recovered{};

  uint64_t snapshot_seq = 0;
  auto snapshot = env.ReadFile(dir / "snapshot");
  if (snapshot.ok()) {
    const std::string& s = *snapshot;
    if (s.size() < kSnapshotHeader || std::memcmp(s.data(), kSnapshotMagic, 8) != 0) {
      return Error(Code::kDataLoss, "journal snapshot {} is damaged (bad header)",
                   (dir / "snapshot").string());
    }
    snapshot_seq = Get<uint64_t>(s.data() + 8);
    uint32_t crc = Get<uint32_t>(s.data() + 16);
    const char* body = s.data() + kSnapshotHeader;
    size_t body_size = s.size() - kSnapshotHeader;
    if (RecordCrc(snapshot_seq, body, body_size) != crc) {
      return Error(Code::kDataLoss, "journal snapshot {} is damaged (checksum mismatch)",
                   (dir / "snapshot").string());
    }
    recovered->snapshot.assign(body, body_size);
  } else if (snapshot.status().err() != ENOENT) {
    return snapshot.status();
  }
  journal->seq_ = snapshot_seq;

  fs::path log_path = dir / "log";
  std::string log;
  auto log_read = env.ReadFile(log_path);
  if (log_read.ok()) {
    log = std::move(*log_read);
  } else if (log_read.status().err() != ENOENT) {
    return log_read.status();
  }

  size_t pos = 0;
  while (pos + kRecordHeader <= log.size()) {
    uint32_t size = Get<uint32_t>(log.data() + pos);
    uint32_t crc = Get<uint32_t>(log.data() + pos + 4);
    uint64_t seq = Get<uint64_t>(log.data() + pos + 8);
    if (size > kMaxPayload || pos + kRecordHeader + size > log.size()) break;
    const char* payload = log.data() + pos + kRecordHeader;
    if (RecordCrc(seq, payload, size) != crc) break;
    if (seq > journal->seq_) {
      recovered->records.emplace_back(payload, size);
      journal->seq_ = seq;
      ++journal->log_records_;
    }
    pos += kRecordHeader + size;
  }

  ASSIGN_OR_RETURN(journal->log_, env.OpenForAppend(log_path));
  if (pos < log.size()) {
    recovered->dropped_tail_bytes = log.size() - pos;
    RETURN_IF_ERROR(env.Truncate(journal->log_.get(), pos));
    RETURN_IF_ERROR(env.Sync(journal->log_.get()));
  }
  journal->log_bytes_ = pos;
  return journal;
}

Status Journal::Append(const std::string& payload) {
  if (payload.size() > kMaxPayload) {
    return Error(Code::kInvalidArgument, "journal record of {} bytes is too large", payload.size());
  }
  uint64_t seq = seq_ + 1;
  std::string record;
  record.reserve(kRecordHeader + payload.size());
  Put<uint32_t>(record, static_cast<uint32_t>(payload.size()));
  Put<uint32_t>(record, RecordCrc(seq, payload.data(), payload.size()));
  Put<uint64_t>(record, seq);
  record += payload;
  Status st = env_.Append(log_.get(), record);
  if (st.ok()) st = env_.Sync(log_.get());
  if (!st.ok()) {
    // Cut a partial record so the next append does not land behind garbage.
    (void)env_.Truncate(log_.get(), log_bytes_);
    return st.WithContext(fmt::format("journal {}", dir_.string()));
  }
  seq_ = seq;
  ++log_records_;
  log_bytes_ += record.size();
  return Status::Ok();
}

Status Journal::Compact(const std::string& snapshot) {
  std::string data(kSnapshotMagic, sizeof(kSnapshotMagic));
  Put<uint64_t>(data, seq_);
  Put<uint32_t>(data, RecordCrc(seq_, snapshot.data(), snapshot.size()));
  data += snapshot;
  RETURN_IF_ERROR(env_.WriteFileAtomic(dir_ / "snapshot", data));
  // The snapshot now holds every record; emptying the log is an optimisation, and a
  // crash before it only leaves records that replay will skip by sequence number.
  RETURN_IF_ERROR(env_.Truncate(log_.get(), 0));
  RETURN_IF_ERROR(env_.Sync(log_.get()));
  log_records_ = 0;
  log_bytes_ = 0;
  return Status::Ok();
}

}  // namespace cellar::store
