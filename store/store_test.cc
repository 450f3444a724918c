#include "store/store.h"

#include <sys/mount.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "store/fault_env.h"
#include "tests/support/mount_options.h"
#include "tests/support/needs_root.h"

namespace cellar::store {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kMiB = 1ull << 20;

// Real arenas: these tests mount tmpfs, so they run as root (as the node plugin does).
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CELLAR_SKIP_UNLESS_ROOT("mounting tmpfs arenas");
    char tmpl[] = "/tmp/cellar-store-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_ / "arenas", ec)) {
      ::umount2(e.path().c_str(), MNT_DETACH);
    }
    fs::remove_all(dir_);
  }

  void Open(uint64_t capacity = 64 * kMiB, uint32_t max_volumes = 16, Env* env = nullptr) {
    store_.reset();
    auto s = Store::Open({dir_, capacity, max_volumes, env});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }

  Volume MustCreate(const std::string& name, uint64_t size) {
    auto v = store_->Create({name, size, false, {}});
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? *v : Volume{};
  }

  fs::path dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, CreateMountsASizedArena) {
  Open();
  Volume v = MustCreate("pvc-a", 8 * kMiB);
  EXPECT_TRUE(IsVolumeId(v.id));
  EXPECT_EQ(v.slot, 1u);
  auto usage = store_->Usage(v.id);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->total_bytes, 8 * kMiB);
  EXPECT_EQ(store_->Capacity().available_bytes, 56 * kMiB);
}

TEST_F(StoreTest, ArenaEnforcesCapacityWithEnospc) {
  Open();
  Volume v = MustCreate("pvc-a", 1 * kMiB);
  std::string chunk(64 * 1024, 'x');
  FILE* f = fopen((store_->ArenaPath(v.id) / "big").c_str(), "w");
  ASSERT_NE(f, nullptr);
  size_t written = 0;
  int err = 0;
  for (int i = 0; i < 64; ++i) {
    if (fwrite(chunk.data(), 1, chunk.size(), f) != chunk.size() || fflush(f) != 0) {
      err = errno;
      break;
    }
    written += chunk.size();
  }
  fclose(f);
  EXPECT_EQ(err, ENOSPC);
  EXPECT_LE(written, 1 * kMiB);
}

TEST_F(StoreTest, NameTakenIsAlreadyExists) {
  Open();
  MustCreate("pvc-a", kMiB);
  auto again = store_->Create({"pvc-a", kMiB, false, {}});
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists);
}

TEST_F(StoreTest, CapacityAndCountLimitsAreResourceExhausted) {
  Open(4 * kMiB, 2);
  MustCreate("a", 3 * kMiB);
  auto too_big = store_->Create({"b", 2 * kMiB, false, {}});
  EXPECT_EQ(too_big.status().code(), Code::kResourceExhausted);
  EXPECT_NE(too_big.status().message().find("free"), std::string::npos);
  MustCreate("b", kMiB);
  auto too_many = store_->Create({"c", 4096, false, {}});
  EXPECT_EQ(too_many.status().code(), Code::kResourceExhausted);
}

TEST_F(StoreTest, DeleteReturnsCapacityAndUnmounts) {
  Open();
  Volume v = MustCreate("a", 32 * kMiB);
  fs::path arena = store_->ArenaPath(v.id);
  ASSERT_TRUE(store_->Delete(v.id).ok());
  EXPECT_FALSE(fs::exists(arena));
  EXPECT_EQ(store_->Capacity().available_bytes, 64 * kMiB);
  EXPECT_EQ(store_->Delete(v.id).code(), Code::kNotFound);
  EXPECT_FALSE(store_->FindByName("a").has_value());
}

TEST_F(StoreTest, ResizeGrowsArenaAndRefusesBeyondNode) {
  Open();
  Volume v = MustCreate("a", 8 * kMiB);
  auto grown = store_->Resize(v.id, 16 * kMiB);
  ASSERT_TRUE(grown.ok());
  EXPECT_EQ(store_->Usage(v.id)->total_bytes, 16 * kMiB);
  auto same = store_->Resize(v.id, 4 * kMiB);  // never shrinks
  EXPECT_EQ(same->capacity_bytes, 16 * kMiB);
  EXPECT_EQ(store_->Resize(v.id, 128 * kMiB).status().code(), Code::kOutOfRange);
}

TEST_F(StoreTest, EverythingSurvivesReopenWithData) {
  Open();
  Volume a = MustCreate("a", 8 * kMiB);
  Volume b = MustCreate("b", 4 * kMiB);
  ASSERT_TRUE(store_->Resize(b.id, 6 * kMiB).ok());
  ASSERT_TRUE(store_->AddPublication(a.id, {"/t/1", true, {"noexec"}, 1, "", "", ""}).ok());
  { std::ofstream(store_->ArenaPath(a.id) / "file") << "payload"; }
  store_.reset();  // the process goes; arenas stay mounted

  Open();
  auto list = store_->List();
  ASSERT_EQ(list.size(), 2u);
  auto ra = store_->Get(a.id);
  ASSERT_TRUE(ra.ok());
  EXPECT_EQ(ra->publications.at("/t/1").mount_flags, std::vector<std::string>{"noexec"});
  EXPECT_EQ(store_->Get(b.id)->capacity_bytes, 6 * kMiB);
  std::string content;
  std::ifstream(store_->ArenaPath(a.id) / "file") >> content;
  EXPECT_EQ(content, "payload");
  EXPECT_FALSE(store_->Health(a.id).abnormal);
  EXPECT_EQ(store_->Capacity().allocated_bytes, 14 * kMiB);
}

// A replica of another node's volume keeps the owner's id and remembers the owner
// across a restart; ids are still checked and never reused.
TEST_F(StoreTest, ReplicaKeepsTheGivenIdAndOwner) {
  Open();
  const std::string id = "vol-00112233445566778899aabbccddeeff";
  const ReplicaOf owner{"node-a", "10.0.0.1:7443"};
  VolumeSpec spec{"replica:" + id, 4 * kMiB, false, {}};
  auto r = store_->CreateReplica(spec, id, owner);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->id, id);
  EXPECT_TRUE(r->is_replica());
  spec.name = "another name";
  EXPECT_EQ(store_->CreateReplica(spec, id, owner).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(store_->CreateReplica(spec, "vol-../../etc", owner).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(store_->CreateReplica(spec, id, {}).status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(MustCreate("owned", kMiB).is_replica());

  Open();
  auto back = store_->Get(id);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->replica_of, (ReplicaOf{"node-a", "10.0.0.1:7443"}));
  EXPECT_EQ(store_->Capacity().allocated_bytes, 5 * kMiB);
}

TEST_F(StoreTest, LostArenaComesBackEmptyAndAbnormal) {
  Open();
  Volume a = MustCreate("a", 8 * kMiB);
  fs::path arena = store_->ArenaPath(a.id);
  store_.reset();
  ASSERT_EQ(::umount2(arena.c_str(), MNT_DETACH), 0);  // what a reboot does to memory
  Open();
  VolumeHealth h = store_->Health(a.id);
  EXPECT_TRUE(h.abnormal);
  EXPECT_NE(h.message.find("lost"), std::string::npos);
  EXPECT_EQ(store_->Usage(a.id)->total_bytes, 8 * kMiB);
}

// cellar.dev/huge-pages is the volume's own: its arena is mounted with it at create,
// keeps it across a restart, and gets it again when a reboot took the memory.
TEST_F(StoreTest, HugePagesParameterMountsTheArenaWithIt) {
  using ::cellar::testing::SuperOptions;
  Open();
  auto huge = store_->Create({"huge", 8 * kMiB, false, {{kHugePagesParameter, "within_size"}}});
  ASSERT_TRUE(huge.ok()) << huge.status().ToString();
  Volume small = MustCreate("small", 8 * kMiB);
  fs::path arena = store_->ArenaPath(huge->id);
  EXPECT_NE(SuperOptions(arena).find("huge=within_size"), std::string::npos);
  EXPECT_EQ(SuperOptions(store_->ArenaPath(small.id)).find("huge="), std::string::npos);

  auto bad = store_->Create({"bad", 8 * kMiB, false, {{kHugePagesParameter, "always"}}});
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->Capacity().volumes, 2u);  // nothing reserved for it

  ASSERT_TRUE(store_->Resize(huge->id, 16 * kMiB).ok());
  EXPECT_NE(SuperOptions(arena).find("huge=within_size"), std::string::npos);
  store_.reset();
  ASSERT_EQ(::umount2(arena.c_str(), MNT_DETACH), 0);  // what a reboot does to memory
  Open();
  EXPECT_EQ(store_->Get(huge->id)->parameters.at(kHugePagesParameter), "within_size");
  EXPECT_TRUE(store_->Health(huge->id).abnormal);
  EXPECT_NE(SuperOptions(arena).find("huge=within_size"), std::string::npos);
  EXPECT_NE(SuperOptions(arena).find("size=16384k"), std::string::npos);
}

TEST_F(StoreTest, OrphanArenaIsRemovedAtOpen) {
  Open();
  fs::path orphan = dir_ / "arenas" / "vol-00000000000000000000000000000000";
  ASSERT_TRUE(RealEnv().CreateDirectories(orphan).ok());
  ASSERT_TRUE(RealEnv().MountTmpfs(orphan, kMiB, ArenaPages::kSmall).ok());
  Open();
  EXPECT_FALSE(fs::exists(orphan));
}

TEST_F(StoreTest, FailedJournalWriteRollsBackCreate) {
  FaultEnv env(RealEnv());
  Open(64 * kMiB, 16, &env);
  env.FailSyncs(true);
  auto v = store_->Create({"a", kMiB, false, {}});
  EXPECT_EQ(v.status().err(), EIO);
  env.FailSyncs(false);
  EXPECT_EQ(store_->Capacity().allocated_bytes, 0u);
  EXPECT_TRUE(store_->List().empty());
  MustCreate("a", kMiB);  // the name is free again
}

TEST_F(StoreTest, FailedMountRollsBackCreate) {
  FaultEnv env(RealEnv());
  Open(64 * kMiB, 16, &env);
  env.FailMounts(true);
  auto v = store_->Create({"a", kMiB, false, {}});
  EXPECT_EQ(v.status().code(), Code::kResourceExhausted);
  env.FailMounts(false);
  EXPECT_EQ(store_->Capacity().allocated_bytes, 0u);
  Open(64 * kMiB, 16, &env);
  EXPECT_TRUE(store_->List().empty());
}

TEST_F(StoreTest, PublicationHealthIsJournaledUntilUnpublished) {
  FaultEnv env(RealEnv());
  Open(64 * kMiB, 16, &env);
  Volume v = MustCreate("a", kMiB);
  ASSERT_TRUE(store_->AddPublication(v.id, {"/t/1", false, {}, 1, "", "", ""}).ok());
  EXPECT_FALSE(store_->PublicationHealth(v.id, "/t/1").abnormal);
  ASSERT_TRUE(store_->SetPublicationHealth(v.id, "/t/1", {true, "connection lost"}).ok());
  Open(64 * kMiB, 16, &env);
  VolumeHealth h = store_->PublicationHealth(v.id, "/t/1");
  EXPECT_TRUE(h.abnormal);
  EXPECT_EQ(h.message, "connection lost");
  EXPECT_EQ(store_->Get(v.id)->publications.at("/t/1").broken, "connection lost");
  // The volume's own health is another matter.
  EXPECT_FALSE(store_->Health(v.id).abnormal);
  // Replacing the record (a re-publish over it) keeps its health.
  ASSERT_TRUE(store_->AddPublication(v.id, {"/t/1", true, {}, 1, "", "", ""}).ok());
  EXPECT_TRUE(store_->PublicationHealth(v.id, "/t/1").abnormal);
  // Gone volumes and publications have no health to keep.
  EXPECT_TRUE(store_->SetPublicationHealth(v.id, "/t/2", {true, "x"}).ok());
  EXPECT_TRUE(
      store_->SetPublicationHealth("vol-00000000000000000000000000000000", "/t/1", {true, "x"})
          .ok());
  EXPECT_FALSE(store_->PublicationHealth(v.id, "/t/2").abnormal);
  // A failed journal write changes nothing.
  env.FailSyncs(true);
  EXPECT_EQ(store_->SetPublicationHealth(v.id, "/t/1", {}).err(), EIO);
  env.FailSyncs(false);
  EXPECT_TRUE(store_->PublicationHealth(v.id, "/t/1").abnormal);
  // The unpublish clears it, for good.
  ASSERT_TRUE(store_->RemovePublication(v.id, "/t/1").ok());
  ASSERT_TRUE(store_->AddPublication(v.id, {"/t/1", false, {}, 1, "", "", ""}).ok());
  EXPECT_FALSE(store_->PublicationHealth(v.id, "/t/1").abnormal);
  Open(64 * kMiB, 16, &env);
  EXPECT_FALSE(store_->PublicationHealth(v.id, "/t/1").abnormal);
}

TEST_F(StoreTest, ManyChangesCompactAndReplay) {
  Open(1024 * kMiB, 1024);
  std::vector<std::string> kept;
  for (int i = 0; i < 300; ++i) {
    Volume v = MustCreate("v" + std::to_string(i), kMiB);
    ASSERT_TRUE(
        store_->AddPublication(v.id, {"/t/" + std::to_string(i), false, {}, 1, "", "", ""}).ok());
    if (i % 3 == 0) {
      ASSERT_TRUE(store_->RemovePublication(v.id, "/t/" + std::to_string(i)).ok());
      ASSERT_TRUE(store_->Delete(v.id).ok());
    } else {
      kept.push_back(v.id);
    }
  }
  Open(1024 * kMiB, 1024);
  auto list = store_->List();
  ASSERT_EQ(list.size(), kept.size());
  for (const auto& v : list) EXPECT_EQ(v.publications.size(), 1u);
}

TEST_F(StoreTest, SlotsAreReused) {
  Open();
  Volume a = MustCreate("a", kMiB);
  Volume b = MustCreate("b", kMiB);
  ASSERT_TRUE(store_->Delete(a.id).ok());
  Volume c = MustCreate("c", kMiB);
  EXPECT_EQ(c.slot, a.slot);
  EXPECT_NE(c.slot, b.slot);
}

TEST_F(StoreTest, RelativeStateDirIsRejected) {
  auto s = Store::Open({"relative/dir", kMiB, 1, nullptr});
  EXPECT_EQ(s.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace cellar::store
