// Store: the node's volumes, their memory, and the metadata that survives restarts.
//
// Layout under the state directory:
//   journal/        crash-safe metadata (see journal.h)
//   arenas/<id>/    one tmpfs per volume, mounted with size=<capacity>: the kernel
//                   enforces the capacity for every writer, FUSE passthrough included
// Arenas live in the host's mount namespace, so they (and every byte in them) outlive
// the process; Open() re-adopts them.
//
// Thread-safe. mu_ guards the volume table and the capacity books and is held only
// for table work; mounts and journal writes happen outside it (journal_mu_ serialises
// the journal). Callers serialise operations on one volume (the CSI layer locks per
// volume), the store keeps the books right under concurrency.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/env.h"
#include "store/journal.h"
#include "store/volume.h"

namespace cellar::store {

struct StoreOptions {
  std::filesystem::path state_dir;
  uint64_t capacity_bytes = 0;  // sum of volume capacities the node may hand out
  uint32_t max_volumes = 1024;
  Env* env = nullptr;  // RealEnv() when null
};

struct VolumeSpec {
  std::string name;
  uint64_t capacity_bytes = 0;
  bool ephemeral = false;
  std::map<std::string, std::string> parameters;
};

struct CapacityInfo {
  uint64_t total_bytes = 0;
  uint64_t allocated_bytes = 0;
  uint64_t available_bytes = 0;
  uint32_t volumes = 0;
};

// The arena of a volume that was present in the journal but whose memory was gone at
// start (the node rebooted): the volume exists again, empty, and says so.
struct VolumeHealth {
  bool abnormal = false;
  std::string message;
};

class Store {
 public:
  // Recovers the journal, re-adopts or re-creates arenas, unmounts orphans.
  // Errors: InvalidArgument (options), DataLoss (damaged journal), or the errno of
  // the state directory / mount that failed.
  static Result<std::unique_ptr<Store>> Open(StoreOptions options);

  // AlreadyExists if the name is taken; ResourceExhausted when the capacity or the
  // volume count would exceed the node's limits; errno statuses from mount/journal.
  Result<Volume> Create(const VolumeSpec& spec);
  // A replica of another node's volume: it keeps the owner's id (the kubelet names it so)
  // and remembers the owner. As Create, and AlreadyExists when `id` is held already,
  // InvalidArgument when it is not a volume id.
  Result<Volume> CreateReplica(const VolumeSpec& spec, const std::string& id,
                               const ReplicaOf& owner);
  // NotFound for an unknown id. Unmounts the arena lazily: memory returns when the
  // last open file of the volume is closed.
  Status Delete(const std::string& id);
  // Grows (never shrinks) the arena to `capacity_bytes`. OutOfRange when the node
  // lacks the difference.
  Result<Volume> Resize(const std::string& id, uint64_t capacity_bytes);

  Result<Volume> Get(const std::string& id) const;
  std::optional<Volume> FindByName(const std::string& name) const;
  std::vector<Volume> List() const;  // sorted by id

  // Publication bookkeeping; the caller does the mounts. NotFound for an unknown id;
  // errno statuses from the journal (nothing changed then). AddPublication replacing a
  // record at the same target path keeps that record's health (see SetPublicationHealth):
  // only RemovePublication (an unpublish) clears it.
  Status AddPublication(const std::string& id, const Publication& publication);
  Status RemovePublication(const std::string& id, const std::string& target_path);
  // Records why the publication at `target_path` is abnormal (`health.abnormal`), or that
  // it is healthy again, in its journaled record (Publication::broken). OK without
  // effect when the volume or the publication is gone; errno statuses from the journal.
  Status SetPublicationHealth(const std::string& id, const std::string& target_path,
                              const VolumeHealth& health);
  // The publication's own health as recorded by SetPublicationHealth; healthy for an
  // unknown volume or publication.
  VolumeHealth PublicationHealth(const std::string& id, const std::string& target_path) const;

  CapacityInfo Capacity() const;
  Result<FsUsage> Usage(const std::string& id) const;
  VolumeHealth Health(const std::string& id) const;
  std::filesystem::path ArenaPath(const std::string& id) const;
  const std::filesystem::path& state_dir() const { return options_.state_dir; }

  // OK while the state directory and journal accept writes.
  Status Healthy() const;

 private:
  explicit Store(StoreOptions options) : options_(std::move(options)), env_(*options_.env) {}

  Status Recover();
  // Create and CreateReplica; an empty `id` makes a new one.
  Result<Volume> CreateVolume(const VolumeSpec& spec, const std::string& id,
                              const ReplicaOf& replica_of);
  Status Persist(const Volume& volume);  // journal a put
  // Journals `change` applied to a copy of the volume, then applies it to the table.
  // `change` returns false when there is nothing to do (nothing is journaled then).
  Status ChangeVolume(const std::string& id, const std::function<bool(Volume&)>& change);
  Status PersistDelete(const std::string& id);
  Status MaybeCompact();
  uint32_t NextFreeSlot() const;  // requires mu_

  StoreOptions options_;
  Env& env_;

  std::mutex journal_mu_;  // lock order: mu_ is never taken while holding journal_mu_
  std::unique_ptr<Journal> journal_;
  // Exactly what snapshot+log hold; the table below may lag it by in-flight changes.
  std::map<std::string, Volume> journaled_;

  mutable std::mutex mu_;
  std::map<std::string, Volume> volumes_;       // by id
  std::map<std::string, std::string> by_name_;  // name -> id, includes pending creates
  std::set<uint32_t> slots_;                    // in use, includes pending creates
  std::map<std::string, std::string> lost_;     // id -> why the arena came back empty
  uint64_t allocated_ = 0;                      // includes pending creates
};

}  // namespace cellar::store
