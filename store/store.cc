#include "store/store.h"

#include <chrono>

#include <spdlog/spdlog.h>

#include "common/size.h"
#include "store/volume_codec.h"

namespace cellar::store {

namespace fs = std::filesystem;

namespace {

// Rewrite the snapshot once the log holds this many records, so recovery stays fast.
constexpr uint64_t kCompactAfterRecords = 512;

// The recorded page choice. A value CreateVolume never accepted (a hand-edited journal)
// falls back to 4 KiB pages: the volume must come back either way.
ArenaPages PagesOf(const Volume& v) {
  auto pages = ParseArenaPages(v.parameters, "volume " + v.id);
  if (pages.ok()) return *pages;
  spdlog::warn("{}; mounting its arena with 4 KiB pages", pages.status().message());
  return ArenaPages::kSmall;
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(StoreOptions options) {
  if (options.state_dir.empty() || !options.state_dir.is_absolute()) {
    return Error(Code::kInvalidArgument, "state dir \"{}\" must be an absolute path",
                 options.state_dir.string());
  }
  if (options.capacity_bytes == 0) return InvalidArgument("node capacity must be above 0");
  if (options.max_volumes == 0 || options.max_volumes > kMaxSlot) {
    return Error(Code::kInvalidArgument, "max volumes must be within 1..{}", kMaxSlot);
  }
  if (options.env == nullptr) options.env = &RealEnv();
  std::unique_ptr<Store> store(new Store(std::move(options)));
  RETURN_IF_ERROR(store->Recover());
  return store;
}

Status Store::Recover() {
  const fs::path& dir = options_.state_dir;
  RETURN_IF_ERROR(env_.CreateDirectories(dir / "arenas")
                      .WithContext(fmt::format("state dir {}", dir.string())));

  Recovered recovered;
  ASSIGN_OR_RETURN(journal_, Journal::Open(env_, dir / "journal", &recovered));
  if (recovered.dropped_tail_bytes > 0) {
    spdlog::warn("journal: cut a torn tail of {} bytes (an interrupted, unacknowledged write)",
                 recovered.dropped_tail_bytes);
  }
  if (!recovered.snapshot.empty()) {
    ASSIGN_OR_RETURN(volumes_, DecodeSnapshot(recovered.snapshot));
  }
  for (const auto& text : recovered.records) {
    ASSIGN_OR_RETURN(JournalRecord record, DecodeRecord(text));
    if (record.op == JournalRecord::Op::kPut) {
      volumes_[record.volume.id] = std::move(record.volume);
    } else {
      volumes_.erase(record.volume.id);
    }
  }

  for (auto& [id, v] : volumes_) {
    by_name_[v.name] = id;
    slots_.insert(v.slot);
    allocated_ += v.capacity_bytes;
    fs::path arena = ArenaPath(id);
    ASSIGN_OR_RETURN(bool mounted, env_.IsTmpfsMount(arena));
    if (mounted) {
      // A resize may have been journaled but not applied before a crash.
      RETURN_IF_ERROR(env_.ResizeTmpfs(arena, v.capacity_bytes));
      continue;
    }
    // The journal is on disk, the arena was in memory: the node rebooted. The volume
    // must still exist for the pods and PVs that name it, so it comes back empty.
    RETURN_IF_ERROR(env_.CreateDirectories(arena));
    RETURN_IF_ERROR(env_.MountTmpfs(arena, v.capacity_bytes, PagesOf(v)));
    lost_[id] = "the volume's memory was lost (node restarted?); it was re-created empty";
    spdlog::warn("volume {} ({}): arena was gone; re-created empty", id, v.name);
  }

  // Arenas without a journal entry come from a create that crashed before it was
  // journaled (never acknowledged) or a delete that crashed after: both are garbage.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir / "arenas", ec)) {
    std::string id = entry.path().filename().string();
    if (volumes_.count(id)) continue;
    spdlog::info("removing orphan arena {}", entry.path().string());
    RETURN_IF_ERROR(env_.Unmount(entry.path()));
    RETURN_IF_ERROR(env_.RemoveDirectory(entry.path()));
  }
  if (ec) return Status::FromErrno(ec.value(), "list arenas");

  if (allocated_ > options_.capacity_bytes) {
    spdlog::warn("volumes hold {} but --capacity is {}: no new volume fits until some are deleted",
                 FormatSize(allocated_), FormatSize(options_.capacity_bytes));
  }
  // Start every run with a compact journal.
  journaled_ = volumes_;
  return journal_->Compact(EncodeSnapshot(journaled_));
}

fs::path Store::ArenaPath(const std::string& id) const {
  return options_.state_dir / "arenas" / id;
}

uint32_t Store::NextFreeSlot() const {
  uint32_t slot = 1;
  for (uint32_t used : slots_) {
    if (used != slot) break;
    ++slot;
  }
  return slot;
}

Result<Volume> Store::Create(const VolumeSpec& spec) {
  return CreateVolume(spec, "", {});
}

Result<Volume> Store::CreateReplica(const VolumeSpec& spec, const std::string& id,
                                    const ReplicaOf& owner) {
  if (!IsVolumeId(id)) {
    return Error(Code::kInvalidArgument, "volume \"{}\": \"{}\" is not a volume id", spec.name, id);
  }
  if (owner.node_id.empty()) return InvalidArgument("replica " + id + ": owner node is empty");
  return CreateVolume(spec, id, owner);
}

Result<Volume> Store::CreateVolume(const VolumeSpec& spec, const std::string& id,
                                   const ReplicaOf& replica_of) {
  if (spec.name.empty()) return InvalidArgument("volume name is empty");
  if (spec.capacity_bytes == 0) return InvalidArgument("volume capacity is 0");
  ASSIGN_OR_RETURN(ArenaPages pages,
                   ParseArenaPages(spec.parameters, fmt::format("volume \"{}\"", spec.name)));
  Volume v;
  {
    std::lock_guard lock(mu_);
    if (by_name_.count(spec.name)) {
      return Error(Code::kAlreadyExists, "volume name \"{}\" is taken", spec.name);
    }
    if (!id.empty() && volumes_.count(id)) {
      return Error(Code::kAlreadyExists, "volume {} already exists", id);
    }
    if (slots_.size() >= options_.max_volumes) {
      return Error(Code::kResourceExhausted,
                   "volume \"{}\": this node already holds its maximum of {} volumes", spec.name,
                   options_.max_volumes);
    }
    uint64_t available = options_.capacity_bytes - std::min(allocated_, options_.capacity_bytes);
    if (spec.capacity_bytes > available) {
      return Error(Code::kResourceExhausted,
                   "volume \"{}\": {} requested but this node has {} of {} free", spec.name,
                   FormatSize(spec.capacity_bytes), FormatSize(available),
                   FormatSize(options_.capacity_bytes));
    }
    v.id = id.empty() ? NewVolumeId() : id;
    v.name = spec.name;
    v.replica_of = replica_of;
    v.slot = NextFreeSlot();
    v.capacity_bytes = spec.capacity_bytes;
    v.ephemeral = spec.ephemeral;
    v.parameters = spec.parameters;
    v.created_unix = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    // Reserve before the slow part so concurrent creates cannot oversubscribe.
    by_name_[v.name] = v.id;
    slots_.insert(v.slot);
    allocated_ += v.capacity_bytes;
  }

  fs::path arena = ArenaPath(v.id);
  Status st = env_.CreateDirectories(arena);
  if (st.ok()) st = env_.MountTmpfs(arena, v.capacity_bytes, pages);
  if (st.ok()) {
    st = Persist(v);
    if (!st.ok()) (void)env_.Unmount(arena);
  }
  std::lock_guard lock(mu_);
  if (!st.ok()) {
    (void)env_.RemoveDirectory(arena);
    by_name_.erase(v.name);
    slots_.erase(v.slot);
    allocated_ -= v.capacity_bytes;
    return st.WithContext(fmt::format("create volume \"{}\"", spec.name));
  }
  volumes_[v.id] = v;
  return v;
}

Status Store::Delete(const std::string& id) {
  Volume v;
  {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(id);
    if (it == volumes_.end()) return Error(Code::kNotFound, "volume {} does not exist", id);
    v = it->second;
  }
  // Journal first: a crash after this point leaves an orphan arena that Open() removes.
  RETURN_IF_ERROR(PersistDelete(id).WithContext(fmt::format("delete volume {}", id)));
  {
    std::lock_guard lock(mu_);
    volumes_.erase(id);
    by_name_.erase(v.name);
    slots_.erase(v.slot);
    allocated_ -= v.capacity_bytes;
    lost_.erase(id);
  }
  fs::path arena = ArenaPath(id);
  Status st = env_.Unmount(arena);
  if (st.ok()) st = env_.RemoveDirectory(arena);
  if (!st.ok())
    spdlog::warn("volume {}: deleted, but cleaning its arena failed: {}", id, st.ToString());
  return Status::Ok();
}

Result<Volume> Store::Resize(const std::string& id, uint64_t capacity_bytes) {
  Volume v;
  uint64_t grow = 0;
  {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(id);
    if (it == volumes_.end()) return Error(Code::kNotFound, "volume {} does not exist", id);
    if (capacity_bytes <= it->second.capacity_bytes) return it->second;
    grow = capacity_bytes - it->second.capacity_bytes;
    uint64_t available = options_.capacity_bytes - std::min(allocated_, options_.capacity_bytes);
    if (grow > available) {
      return Error(Code::kOutOfRange,
                   "volume {}: growing to {} needs {} more but this node has {} free", id,
                   FormatSize(capacity_bytes), FormatSize(grow), FormatSize(available));
    }
    allocated_ += grow;
    v = it->second;
  }
  v.capacity_bytes = capacity_bytes;
  // Remount first: if the journal write then fails, the arena is larger than recorded,
  // which recovery corrects; the opposite order could promise space that is not there.
  Status st = env_.ResizeTmpfs(ArenaPath(id), capacity_bytes);
  if (st.ok()) st = Persist(v);
  std::lock_guard lock(mu_);
  if (!st.ok()) {
    allocated_ -= grow;
    return st.WithContext(fmt::format("resize volume {}", id));
  }
  volumes_[id].capacity_bytes = capacity_bytes;
  return volumes_[id];
}

Result<Volume> Store::Get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = volumes_.find(id);
  if (it == volumes_.end()) return Error(Code::kNotFound, "volume {} does not exist", id);
  return it->second;
}

std::optional<Volume> Store::FindByName(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return std::nullopt;
  auto vit = volumes_.find(it->second);
  if (vit == volumes_.end()) return std::nullopt;  // a create still in flight
  return vit->second;
}

std::vector<Volume> Store::List() const {
  std::lock_guard lock(mu_);
  std::vector<Volume> out;
  out.reserve(volumes_.size());
  for (const auto& [id, v] : volumes_) out.push_back(v);
  return out;
}

Status Store::ChangeVolume(const std::string& id, const std::function<bool(Volume&)>& change) {
  Volume v;
  {
    std::lock_guard lock(mu_);
    auto it = volumes_.find(id);
    if (it == volumes_.end()) return Error(Code::kNotFound, "volume {} does not exist", id);
    v = it->second;
  }
  if (!change(v)) return Status::Ok();
  RETURN_IF_ERROR(Persist(v));
  std::lock_guard lock(mu_);
  auto it = volumes_.find(id);
  if (it != volumes_.end()) change(it->second);
  return Status::Ok();
}

Status Store::AddPublication(const std::string& id, const Publication& publication) {
  return ChangeVolume(id, [&](Volume& v) {
    Publication& slot = v.publications[publication.target_path];
    std::string broken = std::move(slot.broken);
    slot = publication;
    slot.broken = std::move(broken);
    return true;
  });
}

Status Store::RemovePublication(const std::string& id, const std::string& target_path) {
  return ChangeVolume(id, [&](Volume& v) { return v.publications.erase(target_path) > 0; });
}

Status Store::SetPublicationHealth(const std::string& id, const std::string& target_path,
                                   const VolumeHealth& health) {
  std::string broken = health.abnormal ? health.message : std::string();
  Status st = ChangeVolume(id, [&](Volume& v) {
    auto it = v.publications.find(target_path);
    if (it == v.publications.end() || it->second.broken == broken) return false;
    it->second.broken = broken;
    return true;
  });
  return st.code() == Code::kNotFound ? Status::Ok() : st;
}

VolumeHealth Store::PublicationHealth(const std::string& id, const std::string& target_path) const {
  std::lock_guard lock(mu_);
  auto it = volumes_.find(id);
  if (it == volumes_.end()) return {};
  auto pub = it->second.publications.find(target_path);
  if (pub == it->second.publications.end() || pub->second.broken.empty()) return {};
  return {true, pub->second.broken};
}

CapacityInfo Store::Capacity() const {
  std::lock_guard lock(mu_);
  CapacityInfo c;
  c.total_bytes = options_.capacity_bytes;
  c.allocated_bytes = allocated_;
  c.available_bytes = options_.capacity_bytes - std::min(allocated_, options_.capacity_bytes);
  c.volumes = static_cast<uint32_t>(volumes_.size());
  return c;
}

Result<FsUsage> Store::Usage(const std::string& id) const {
  RETURN_IF_ERROR(Get(id).status());
  return env_.StatFs(ArenaPath(id));
}

VolumeHealth Store::Health(const std::string& id) const {
  {
    std::lock_guard lock(mu_);
    auto it = lost_.find(id);
    if (it != lost_.end()) return {true, it->second};
    if (!volumes_.count(id)) return {true, "volume does not exist"};
  }
  auto mounted = env_.IsTmpfsMount(ArenaPath(id));
  if (!mounted.ok()) return {true, mounted.status().message()};
  if (!*mounted) return {true, "the volume's memory arena is not mounted"};
  return {};
}

Status Store::Healthy() const {
  auto usage = env_.StatFs(options_.state_dir / "journal");
  if (!usage.ok()) return usage.status().WithContext("store unusable");
  if (usage->available_bytes == 0) {
    return Error(Code::kUnavailable, "store unusable: the state dir {} is full",
                 options_.state_dir.string());
  }
  return Status::Ok();
}

Status Store::Persist(const Volume& volume) {
  std::lock_guard lock(journal_mu_);
  RETURN_IF_ERROR(journal_->Append(EncodeRecord({JournalRecord::Op::kPut, volume})));
  journaled_[volume.id] = volume;
  return MaybeCompact();
}

Status Store::PersistDelete(const std::string& id) {
  std::lock_guard lock(journal_mu_);
  JournalRecord record{JournalRecord::Op::kDelete, {}};
  record.volume.id = id;
  RETURN_IF_ERROR(journal_->Append(EncodeRecord(record)));
  journaled_.erase(id);
  return MaybeCompact();
}

Status Store::MaybeCompact() {
  if (journal_->log_records() < kCompactAfterRecords) return Status::Ok();
  // A compaction failure is not the caller's failure: its record is durable in the log.
  Status st = journal_->Compact(EncodeSnapshot(journaled_));
  if (!st.ok()) spdlog::warn("journal compaction failed (will retry): {}", st.ToString());
  return Status::Ok();
}

}  // namespace cellar::store
