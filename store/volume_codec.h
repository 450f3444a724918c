// Encoding of volumes and journal records as YAML text (readable with any YAML tool
// when debugging a node: the journal is the one place a volume's metadata lives).
#pragma once

#include <map>
#include <string>

#include "common/status.h"
#include "store/volume.h"

namespace cellar::store {

struct JournalRecord {
  enum class Op { kPut, kDelete } op = Op::kPut;
  Volume volume;  // whole volume for kPut; only id for kDelete
};

std::string EncodeRecord(const JournalRecord& record);
Result<JournalRecord> DecodeRecord(const std::string& text);

std::string EncodeSnapshot(const std::map<std::string, Volume>& volumes);
Result<std::map<std::string, Volume>> DecodeSnapshot(const std::string& text);

}  // namespace cellar::store
