// In-process tests of the CSI services: a Store over a FaultEnv and a test
// VolumeSource, the service methods called directly, so a failure can be injected in
// the middle of a call (a journal write, an attach) and the rollback checked.
// tests/csi/ keeps the process-level contract tests against a running `cellar node`.
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "csi/controller_service.h"
#include "csi/identity_service.h"
#include "csi/mounter.h"
#include "csi/node_service.h"
#include "csi/validation.h"
#include "store/fault_env.h"
#include "tests/support/needs_root.h"

namespace cellar::csi {
namespace {

namespace fs = std::filesystem;
using namespace ::csi::v1;
constexpr uint64_t kMiB = 1ull << 20;

::testing::AssertionResult HasSubstr(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" lacks \"" << part << "\"";
}

// The arena itself is what a publish binds (direct mode), as MakeArenaSource does; the
// seam is Attach, which a test can make fail.
class TestSource final : public VolumeSource {
 public:
  explicit TestSource(const store::Store& store) : store_(store) {}
  Status Attach(const store::Volume& v) override {
    if (fail_attach) return Error(Code::kUnavailable, "attach failed (injected)");
    attached.insert(v.id);
    return Status::Ok();
  }
  Status Detach(const std::string& id) override {
    attached.erase(id);
    return Status::Ok();
  }
  fs::path Dir(const std::string& id) const override { return store_.ArenaPath(id); }
  Status Healthy() const override { return Status::Ok(); }
  IoMode mode() const override { return IoMode::kDirect; }

  std::atomic<bool> fail_attach{false};
  std::set<std::string> attached;

 private:
  const store::Store& store_;
};

// An owner node: each listing has a serial and the content its one file "data" had then.
class TestRemote final : public RemoteVolumes {
 public:
  struct Listing final : RemoteListing {
    Listing(int serial, std::string data) : serial(serial), data(std::move(data)) {}
    const int serial;
    const std::string data;
  };
  Result<RemoteVolumeInfo> Describe(const RemoteOwner&, const std::string&) override {
    ++describes;
    return RemoteVolumeInfo{8 << 20, data.size(), 1, std::make_shared<Listing>(describes, data)};
  }
  Result<SyncReport> Sync(const RemoteOwner&, const std::string&, const RemoteVolumeInfo& described,
                          const fs::path& dir) override {
    const auto* listing = dynamic_cast<const Listing*>(described.listing.get());
    if (listing == nullptr) return Internal("not a TestRemote listing");
    synced.push_back(listing->serial);
    std::ofstream(dir / "data") << listing->data;
    return SyncReport{1, 0, 0, listing->data.size(), 0};
  }

  std::string data = "v1";
  int describes = 0;
  std::vector<int> synced;  // the serial of each Sync's listing
};

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CELLAR_SKIP_UNLESS_ROOT("mounting arenas and bind mounts");
    char tmpl[] = "/tmp/cellar-svc-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ / "pods");
    Open();
  }
  void TearDown() override {
    if (dir_.empty()) return;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_ / "pods", ec)) {
      (void)UnmountAndRemove(e.path());
    }
    Close();
    for (const auto& e : fs::directory_iterator(dir_ / "state" / "arenas", ec)) {
      ::umount2(e.path().c_str(), MNT_DETACH);
    }
    fs::remove_all(dir_, ec);
  }

  // Opens the store (again) and services over it, as a daemon start does.
  void Open() {
    Close();
    auto s = store::Store::Open({dir_ / "state", 64 * kMiB, 16, &env_});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    source_ = std::make_unique<TestSource>(*store_);
    DriverConfig config;
    config.node_id = "node-1";
    ctx_.reset(new DriverContext{config, *store_, *source_, {}});
    controller_ = std::make_unique<ControllerService>(*ctx_);
    node_ = std::make_unique<NodeService>(*ctx_);
  }
  void Close() {
    node_.reset();
    controller_.reset();
    ctx_.reset();
    source_.reset();
    store_.reset();
  }

  static VolumeCapability MountCapability() {
    VolumeCapability cap;
    cap.mutable_mount();
    cap.mutable_access_mode()->set_mode(VolumeCapability::AccessMode::SINGLE_NODE_MULTI_WRITER);
    return cap;
  }

  grpc::Status Create(const std::string& name, CreateVolumeResponse* resp) {
    CreateVolumeRequest req;
    req.set_name(name);
    req.mutable_capacity_range()->set_required_bytes(8 * kMiB);
    *req.add_volume_capabilities() = MountCapability();
    return controller_->CreateVolume(nullptr, &req, resp);
  }
  std::string MustCreate(const std::string& name) {
    CreateVolumeResponse resp;
    grpc::Status st = Create(name, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.volume().volume_id();
  }

  NodePublishVolumeRequest PublishRequest(const std::string& handle, const fs::path& target) {
    NodePublishVolumeRequest req;
    req.set_volume_id(handle);
    req.set_target_path(target.string());
    *req.mutable_volume_capability() = MountCapability();
    return req;
  }
  grpc::Status Publish(const NodePublishVolumeRequest& req) {
    NodePublishVolumeResponse resp;
    return node_->NodePublishVolume(nullptr, &req, &resp);
  }
  grpc::Status Unpublish(const std::string& handle, const fs::path& target) {
    NodeUnpublishVolumeRequest req;
    req.set_volume_id(handle);
    req.set_target_path(target.string());
    NodeUnpublishVolumeResponse resp;
    return node_->NodeUnpublishVolume(nullptr, &req, &resp);
  }
  VolumeCondition Stats(const std::string& id, const fs::path& path) {
    NodeGetVolumeStatsRequest req;
    req.set_volume_id(id);
    req.set_volume_path(path.string());
    NodeGetVolumeStatsResponse resp;
    grpc::Status st = node_->NodeGetVolumeStats(nullptr, &req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.volume_condition();
  }

  bool Mounted(const fs::path& path) {
    auto m = IsMountPoint(path);
    return m.ok() && *m;
  }
  bool ArenasLeft() {
    std::error_code ec;
    return !fs::is_empty(dir_ / "state" / "arenas", ec);
  }

  fs::path dir_;
  store::FaultEnv env_{store::RealEnv()};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<TestSource> source_;
  std::unique_ptr<DriverContext> ctx_;
  std::unique_ptr<ControllerService> controller_;
  std::unique_ptr<NodeService> node_;
};

TEST_F(ServiceTest, CreateVolumeJournalWriteFailsLeavesNothing) {
  env_.TearNextAppend(0);
  CreateVolumeResponse resp;
  grpc::Status st = Create("pvc-a", &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(HasSubstr(st.error_message(), "create volume \"pvc-a\""));
  EXPECT_TRUE(HasSubstr(st.error_message(), "append (injected)"));
  EXPECT_TRUE(store_->List().empty());
  EXPECT_TRUE(source_->attached.empty());
  EXPECT_FALSE(ArenasLeft());
  EXPECT_EQ(store_->Capacity().allocated_bytes, 0u);
  // The provisioner retries; the retry succeeds and survives a restart.
  std::string id = MustCreate("pvc-a");
  Open();
  EXPECT_TRUE(store_->Get(id).ok());
}

TEST_F(ServiceTest, CreateVolumeAttachFailsRollsBack) {
  source_->fail_attach = true;
  CreateVolumeResponse resp;
  grpc::Status st = Create("pvc-a", &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(st.error_message(), "volume \"pvc-a\": attach failed (injected)");
  EXPECT_TRUE(store_->List().empty());
  EXPECT_FALSE(ArenasLeft());
  EXPECT_EQ(store_->Capacity().allocated_bytes, 0u);
  Open();  // the rollback is journaled too
  EXPECT_TRUE(store_->List().empty());
}

TEST_F(ServiceTest, PublishJournalWriteFailsUndoesTheBind) {
  std::string id = MustCreate("pvc-a");
  fs::path target = dir_ / "pods" / "pod-1";
  env_.TearNextAppend(0);
  grpc::Status st = Publish(PublishRequest(id, target));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(HasSubstr(st.error_message(), "volume " + id + ": "));
  EXPECT_TRUE(HasSubstr(st.error_message(), "append (injected)"));
  EXPECT_TRUE(store_->Get(id)->publications.empty());
  EXPECT_FALSE(Mounted(target));
  EXPECT_FALSE(fs::exists(target));
  // The kubelet's retry publishes.
  ASSERT_TRUE(Publish(PublishRequest(id, target)).ok());
  EXPECT_TRUE(Mounted(target));
  EXPECT_EQ(store_->Get(id)->publications.count(target.string()), 1u);
}

// The owner is asked once per publish of a replica: the first sizes and fills it, each
// later one refreshes it from the owner's files of that moment.
TEST_F(ServiceTest, EachReplicaPublishDescribesTheOwnerOnce) {
  TestRemote remote;
  ctx_->remote = &remote;
  const std::string id = "vol-0123456789abcdef0123456789abcdef";
  auto request = [&](const char* pod) {
    auto req = PublishRequest(id, dir_ / "pods" / pod);
    (*req.mutable_volume_context())[kOwnerNodeKey] = "node-2";
    (*req.mutable_volume_context())[kOwnerPeerKey] = "10.0.0.2:7443";
    return req;
  };
  auto read = [](const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  ASSERT_TRUE(Publish(request("pod-1")).ok());
  EXPECT_EQ(remote.describes, 1);
  EXPECT_EQ(remote.synced, std::vector<int>{1});
  ASSERT_TRUE(store_->Get(id).ok());
  EXPECT_EQ(store_->Get(id)->capacity_bytes, 8 * kMiB);
  EXPECT_EQ(read(dir_ / "pods" / "pod-1" / "data"), "v1");

  remote.data = "v2";
  ASSERT_TRUE(Publish(request("pod-2")).ok());
  EXPECT_EQ(remote.describes, 2);
  EXPECT_EQ(remote.synced, (std::vector<int>{1, 2}));
  EXPECT_EQ(read(dir_ / "pods" / "pod-2" / "data"), "v2");

  ASSERT_TRUE(Unpublish(id, dir_ / "pods" / "pod-1").ok());
  ASSERT_TRUE(Unpublish(id, dir_ / "pods" / "pod-2").ok());
  EXPECT_FALSE(store_->Get(id).ok());  // freed with its last publication
}

TEST_F(ServiceTest, InlinePublishAttachFailsLeavesNoVolumeNoMount) {
  fs::path target = dir_ / "pods" / "pod-1";
  auto req = PublishRequest("csi-0123abcd", target);
  (*req.mutable_volume_context())[kEphemeral] = "true";
  (*req.mutable_volume_context())["size"] = "8Mi";
  source_->fail_attach = true;
  grpc::Status st = Publish(req);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(st.error_message(), "inline volume csi-0123abcd: attach failed (injected)");
  EXPECT_FALSE(store_->FindByName("csi-0123abcd").has_value());
  EXPECT_TRUE(store_->List().empty());
  EXPECT_FALSE(ArenasLeft());
  EXPECT_FALSE(fs::exists(target));
  source_->fail_attach = false;
  ASSERT_TRUE(Publish(req).ok());
  EXPECT_TRUE(Mounted(target));
  ASSERT_TRUE(Unpublish("csi-0123abcd", target).ok());
  EXPECT_TRUE(store_->List().empty());  // freed with its last publication
}

TEST_F(ServiceTest, InlinePublishJournalFailsAtCreateLeavesNothing) {
  fs::path target = dir_ / "pods" / "pod-1";
  auto req = PublishRequest("csi-0123abcd", target);
  (*req.mutable_volume_context())[kEphemeral] = "true";
  (*req.mutable_volume_context())["size"] = "8Mi";
  env_.TearNextAppend(0);
  grpc::Status st = Publish(req);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(HasSubstr(st.error_message(), "create volume \"csi-0123abcd\""));
  EXPECT_TRUE(store_->List().empty());
  EXPECT_TRUE(source_->attached.empty());
  EXPECT_FALSE(ArenasLeft());
  EXPECT_FALSE(fs::exists(target));
}

// A FUSE mount whose connection is gone (no daemon, no fd holder), as a publication
// looks after the node plugin died with nobody keeping its /dev/fuse fd.
void MountDeadFuse(const fs::path& target) {
  ASSERT_EQ(::umount2(target.c_str(), MNT_DETACH), 0) << std::strerror(errno);
  int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  std::string opts = fmt::format("fd={},rootmode=40000,user_id=0,group_id=0", fd);
  int rc = ::mount("cellar-test", target.c_str(), "fuse", MS_NOSUID | MS_NODEV, opts.c_str());
  int err = errno;
  ::close(fd);
  ASSERT_EQ(rc, 0) << std::strerror(err);
}

TEST_F(ServiceTest, LostConnectionIsReportedAcrossRestartsUntilUnpublished) {
  std::string id = MustCreate("pvc-a");
  fs::path target = dir_ / "pods" / "pod-1";
  ASSERT_TRUE(Publish(PublishRequest(id, target)).ok());
  EXPECT_FALSE(Stats(id, target).abnormal());

  MountDeadFuse(target);
  Open();  // the daemon restarts
  node_->RepairPublications();
  EXPECT_TRUE(Mounted(target));  // re-bound for containers started from now on
  std::string lost = fmt::format(
      "the FUSE connection behind {} was lost (the daemon stopped and no fd holder kept it); "
      "containers started before see \"transport endpoint is not connected\" until the pod is "
      "recreated",
      target.string());
  VolumeCondition c = Stats(id, target);
  EXPECT_TRUE(c.abnormal());
  EXPECT_EQ(c.message(), lost);
  auto v = store_->Get(id);
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(node_->Condition(*v, target.string()).connection_lost);
  // The volume itself is fine; only this publication's containers are cut off.
  EXPECT_FALSE(Stats(id, store_->ArenaPath(id)).abnormal());

  Open();  // restarted again: the mount is fine now, the condition is not forgotten
  node_->RepairPublications();
  c = Stats(id, target);
  EXPECT_TRUE(c.abnormal());
  EXPECT_EQ(c.message(), lost);
  // A retried publish of the same target keeps it (the old containers are still cut off).
  ASSERT_TRUE(Publish(PublishRequest(id, target)).ok());
  EXPECT_EQ(Stats(id, target).message(), lost);

  // The pod is recreated: unpublish, publish again; healthy, and stays so after a restart.
  ASSERT_TRUE(Unpublish(id, target).ok());
  ASSERT_TRUE(Publish(PublishRequest(id, target)).ok());
  EXPECT_FALSE(Stats(id, target).abnormal());
  EXPECT_EQ(Stats(id, target).message(), "healthy");
  Open();
  EXPECT_FALSE(Stats(id, target).abnormal());
}

TEST_F(ServiceTest, VolumeIdPrologueMessages) {
  ControllerGetVolumeRequest get;
  ControllerGetVolumeResponse get_resp;
  grpc::Status st = controller_->ControllerGetVolume(nullptr, &get, &get_resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "ControllerGetVolume: volume_id is empty");
  get.set_volume_id("pvc-a");
  st = controller_->ControllerGetVolume(nullptr, &get, &get_resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "volume \"pvc-a\" does not exist (not a Cellar volume id)");
  get.set_volume_id("vol-00000000000000000000000000000000");
  st = controller_->ControllerGetVolume(nullptr, &get, &get_resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(st.error_message(), "volume vol-00000000000000000000000000000000 does not exist");

  DeleteVolumeRequest del;
  DeleteVolumeResponse del_resp;
  st = controller_->DeleteVolume(nullptr, &del, &del_resp);
  EXPECT_EQ(st.error_message(), "DeleteVolume: volume_id is empty");
  del.set_volume_id("pvc-a");
  EXPECT_TRUE(controller_->DeleteVolume(nullptr, &del, &del_resp).ok());  // idempotent

  NodeUnpublishVolumeRequest unpub;
  NodeUnpublishVolumeResponse unpub_resp;
  st = node_->NodeUnpublishVolume(nullptr, &unpub, &unpub_resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(st.error_message(), "NodeUnpublishVolume: volume_id is empty");

  ProbeRequest probe;
  ProbeResponse probe_resp;
  IdentityService identity(*ctx_);
  ASSERT_TRUE(identity.Probe(nullptr, &probe, &probe_resp).ok());
  EXPECT_TRUE(probe_resp.ready().value());
}

}  // namespace
}  // namespace cellar::csi
