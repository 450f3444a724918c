#include "store/volume_codec.h"

#include <random>

#include <yaml-cpp/yaml.h>

namespace cellar::store {

bool IsVolumeId(std::string_view id) {
  if (id.size() != 36 || id.substr(0, 4) != "vol-") return false;
  for (char c : id.substr(4)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string NewVolumeId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("vol-{:016x}{:016x}", rng(), rng());
}

namespace {

YAML::Node EncodeVolume(const Volume& v) {
  YAML::Node n;
  n["id"] = v.id;
  n["name"] = v.name;
  n["slot"] = v.slot;
  n["capacity"] = v.capacity_bytes;
  n["ephemeral"] = v.ephemeral;
  n["created"] = v.created_unix;
  if (v.is_replica()) {
    n["replica_of"]["node"] = v.replica_of.node_id;
    n["replica_of"]["address"] = v.replica_of.address;
  }
  n["parameters"] = YAML::Node(YAML::NodeType::Map);
  for (const auto& [k, val] : v.parameters) n["parameters"][k] = val;
  n["publications"] = YAML::Node(YAML::NodeType::Sequence);
  for (const auto& [target, p] : v.publications) {
    YAML::Node pn;
    pn["target"] = p.target_path;
    pn["readonly"] = p.readonly;
    pn["access_mode"] = p.access_mode;
    pn["flags"] = YAML::Node(YAML::NodeType::Sequence);
    for (const auto& f : p.mount_flags) pn["flags"].push_back(f);
    if (!p.pod_name.empty()) {
      pn["pod_namespace"] = p.pod_namespace;
      pn["pod_name"] = p.pod_name;
    }
    if (!p.broken.empty()) pn["broken"] = p.broken;
    n["publications"].push_back(pn);
  }
  return n;
}

Volume DecodeVolume(const YAML::Node& n) {
  Volume v;
  v.id = n["id"].as<std::string>();
  v.name = n["name"].as<std::string>();
  v.slot = n["slot"].as<uint32_t>();
  v.capacity_bytes = n["capacity"].as<uint64_t>();
  v.ephemeral = n["ephemeral"].as<bool>();
  v.created_unix = n["created"].as<int64_t>();
  if (n["replica_of"]) {  // absent in records of owned volumes and in older journals
    v.replica_of.node_id = n["replica_of"]["node"].as<std::string>();
    v.replica_of.address = n["replica_of"]["address"].as<std::string>("");
  }
  for (const auto& kv : n["parameters"]) {
    v.parameters[kv.first.as<std::string>()] = kv.second.as<std::string>();
  }
  for (const auto& pn : n["publications"]) {
    Publication p;
    p.target_path = pn["target"].as<std::string>();
    p.readonly = pn["readonly"].as<bool>();
    p.access_mode = pn["access_mode"].as<int>();
    for (const auto& f : pn["flags"]) p.mount_flags.push_back(f.as<std::string>());
    if (pn["pod_name"]) {
      p.pod_namespace = pn["pod_namespace"].as<std::string>("");
      p.pod_name = pn["pod_name"].as<std::string>();
    }
    if (pn["broken"]) p.broken = pn["broken"].as<std::string>();
    v.publications[p.target_path] = p;
  }
  return v;
}

std::string Emit(const YAML::Node& node) {
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

}  // namespace

std::string EncodeRecord(const JournalRecord& record) {
  YAML::Node n;
  if (record.op == JournalRecord::Op::kPut) {
    n["op"] = "put";
    n["volume"] = EncodeVolume(record.volume);
  } else {
    n["op"] = "delete";
    n["id"] = record.volume.id;
  }
  return Emit(n);
}

Result<JournalRecord> DecodeRecord(const std::string& text) {
  try {
    YAML::Node n = YAML::Load(text);
    JournalRecord r;
    std::string op = n["op"].as<std::string>();
    if (op == "put") {
      r.op = JournalRecord::Op::kPut;
      r.volume = DecodeVolume(n["volume"]);
    } else if (op == "delete") {
      r.op = JournalRecord::Op::kDelete;
      r.volume.id = n["id"].as<std::string>();
    } else {
      return Error(Code::kDataLoss, "journal record has unknown op \"{}\"", op);
    }
    if (!IsVolumeId(r.volume.id)) {
      return Error(Code::kDataLoss, "journal record names a malformed volume id \"{}\"",
                   r.volume.id);
    }
    return r;
  } catch (const YAML::Exception& e) {
    return Error(Code::kDataLoss, "journal record is not valid: {}", e.what());
  }
}

std::string EncodeSnapshot(const std::map<std::string, Volume>& volumes) {
  YAML::Node n;
  n["version"] = 1;
  n["volumes"] = YAML::Node(YAML::NodeType::Sequence);
  for (const auto& [id, v] : volumes) n["volumes"].push_back(EncodeVolume(v));
  YAML::Emitter out;
  out << n;
  return out.c_str();
}

Result<std::map<std::string, Volume>> DecodeSnapshot(const std::string& text) {
  try {
    YAML::Node n = YAML::Load(text);
    if (n["version"].as<int>() != 1) {
      return Error(Code::kDataLoss, "journal snapshot has version {}, this cellar reads 1",
                   n["version"].as<int>());
    }
    std::map<std::string, Volume> volumes;
    for (const auto& vn : n["volumes"]) {
      Volume v = DecodeVolume(vn);
      if (!IsVolumeId(v.id)) {
        return Error(Code::kDataLoss, "journal snapshot names a malformed volume id \"{}\"", v.id);
      }
      volumes[v.id] = std::move(v);
    }
    return volumes;
  } catch (const YAML::Exception& e) {
    return Error(Code::kDataLoss, "journal snapshot is not valid: {}", e.what());
  }
}

}  // namespace cellar::store
