// The io mode a node serves volumes in, as users see it: reported in the volume context,
// and (the point of issue 20) whether a pod's mmap maps the arena's own pages or makes
// the kernel keep a second copy. Measures the machine's page cache, hence RUN_SERIAL.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/support/node_fixture.h"

namespace cellar::testing {
namespace {

using namespace csi::v1;
namespace fs = std::filesystem;
constexpr int64_t kMiB = 1 << 20;

uint64_t MeminfoBytes(const std::string& field) {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream ss(line.substr(field.size() + 1));
      uint64_t kib = 0;
      ss >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

// Page cache that is not tmpfs: a FUSE file's own copy shows up here, tmpfs pages do not.
int64_t NonShmemCache() {
  return static_cast<int64_t>(MeminfoBytes("Cached")) - static_cast<int64_t>(MeminfoBytes("Shmem"));
}

std::string ExpectedName(Mode mode) {
  switch (mode) {
    case Mode::kPassthrough: return "passthrough";
    case Mode::kFallback: return "fuse";
    case Mode::kDirect: return "direct";
    case Mode::kAuto: return "passthrough";  // this kernel (>= 6.9) grants it
  }
  return "";
}

class IoModeTest : public NodeTest {};

TEST_P(IoModeTest, VolumeContextAndLogReportTheMode) {
  Volume v = MustCreate("pvc-mode", 8 * kMiB);
  EXPECT_EQ(v.volume_context().at("cellar.dev/io-mode"), ExpectedName(GetParam()));
  EXPECT_NE(node_->Log().find("io mode " + ExpectedName(GetParam())), std::string::npos)
      << node_->Log();
}

TEST_P(IoModeTest, MmapSharesTheArenaPagesUnlessTheDaemonServesIo) {
  constexpr int64_t kSize = 128 * kMiB;  // the node has 256 MiB
  Volume v = MustCreate("pvc-mmap", kSize + 16 * kMiB);
  fs::path target = node_->TargetPath("a1-pod", "pvc-mmap");
  ASSERT_TRUE(Publish(KubeletPublish(v, target)).ok());
  std::string out;
  ASSERT_EQ(RunInPod("dd if=/dev/urandom of=" + (target / "blob").string() +
                         " bs=1M count=128 status=none",
                     &out),
            0)
      << out;

  ::sync();
  const int64_t cache_before = NonShmemCache();
  int fd = ::open((target / "blob").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  void* map = ::mmap(nullptr, kSize, PROT_READ, MAP_SHARED, fd, 0);
  ASSERT_NE(map, MAP_FAILED);
  uint64_t sum = 0;
  for (int64_t off = 0; off < kSize; off += 4096) sum += static_cast<const uint8_t*>(map)[off];
  const int64_t grown = NonShmemCache() - cache_before;
  ::munmap(map, kSize);
  ::close(fd);
  EXPECT_NE(sum, 0u);

  if (GetParam() == Mode::kFallback) {
    // The problem issue 20 is about: the daemon-served mount caches a second copy.
    EXPECT_GT(grown, kSize / 2) << "grown " << grown / kMiB << " MiB";
  } else {
    EXPECT_LT(grown, 24 * kMiB) << "grown " << grown / kMiB << " MiB";
  }
  ASSERT_TRUE(Unpublish(v.volume_id(), target.string()).ok());
}

// A kernel that grants passthrough to a process that may not use it: the node plugin in
// a user namespace (no CAP_SYS_ADMIN in the initial one) is refused backing files. The
// node must notice at start and pick direct, not serve every byte through the daemon.
NodeSettings InUserNamespace(Mode mode) {
  NodeSettings settings;
  settings.mode = mode;
  settings.launcher = {"/usr/bin/unshare", "--user", "--map-root-user", "--mount", "--propagation",
                       "private",          "--"};
  return settings;
}

TEST(IoModeProbeTest, AutoPicksDirectWhenBackingFilesAreRefused) {
  CELLAR_SKIP_UNLESS_ROOT("a cellar node");
  NodeProcess node(InUserNamespace(Mode::kAuto));
  std::string log;
  ASSERT_TRUE(node.Start(&log)) << log;
  grpc::ClientContext ctx;
  CreateVolumeResponse resp;
  ASSERT_TRUE(node.controller()
                  .CreateVolume(&ctx, ProvisionerCreate("pvc-probe", 8 * kMiB, "node-a"), &resp)
                  .ok());
  EXPECT_EQ(resp.volume().volume_context().at("cellar.dev/io-mode"), "direct");
  EXPECT_NE(node.Log().find("refuses this process backing files"), std::string::npos) << node.Log();
  EXPECT_NE(node.Log().find("io mode direct (auto"), std::string::npos) << node.Log();
}

TEST(IoModeProbeTest, ForcedPassthroughFailsAtStartWhenBackingFilesAreRefused) {
  CELLAR_SKIP_UNLESS_ROOT("a cellar node");
  NodeProcess node(InUserNamespace(Mode::kPassthrough));
  std::string log;
  ASSERT_FALSE(node.Start(&log));
  EXPECT_GT(node.exit_status(), 0);
  EXPECT_NE(log.find("io mode passthrough forced, but FUSE passthrough is not usable"),
            std::string::npos)
      << log;
}

INSTANTIATE_TEST_SUITE_P(Modes, IoModeTest,
                         ::testing::Values(Mode::kPassthrough, Mode::kFallback, Mode::kDirect,
                                           Mode::kAuto),
                         [](const auto& info) { return ModeName(info.param); });

}  // namespace
}  // namespace cellar::testing
