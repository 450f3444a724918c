#include "csi/mounter.h"

#include <sys/mount.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include "tests/support/needs_root.h"

namespace cellar::csi {
namespace {

namespace fs = std::filesystem;

class MounterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CELLAR_SKIP_UNLESS_ROOT("bind mounting");
    char tmpl[] = "/tmp/cellar-mounter-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ / "src");
    std::ofstream(dir_ / "src" / "f") << "x";
  }
  void TearDown() override {
    ::umount2((dir_ / "target").c_str(), MNT_DETACH);
    ::umount2((dir_ / "peer").c_str(), MNT_DETACH);
    ::umount2((dir_ / "shared").c_str(), MNT_DETACH);
    fs::remove_all(dir_);
  }
  fs::path dir_;
};

TEST_F(MounterTest, BindInspectUnmount) {
  fs::path target = dir_ / "pods" / "uid" / "target";
  EXPECT_EQ(InspectTarget(target, dir_ / "src")->state, TargetState::kAbsent);
  ASSERT_TRUE(BindMount(dir_ / "src", target, true, {"noexec"}).ok());
  auto info = InspectTarget(target, dir_ / "src");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, TargetState::kMountedSame);
  EXPECT_TRUE(info->readonly);
  EXPECT_EQ(InspectTarget(target, dir_)->state, TargetState::kMountedOther);
  EXPECT_NE(::access((target / "f").c_str(), W_OK), 0);
  EXPECT_EQ(errno, EROFS);
  ASSERT_TRUE(UnmountAndRemove(target).ok());
  EXPECT_FALSE(fs::exists(target));
  EXPECT_TRUE(UnmountAndRemove(target).ok());  // idempotent
}

// The per-mount options /proc/self/mountinfo lists for `path` ("rw,nosuid,..."), or "".
std::string MountOptions(const fs::path& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, found;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mount_point, options;
    fields >> id >> parent >> devno >> root >> mount_point >> options;
    if (mount_point == path.string()) found = "," + options + ",";
  }
  return found;
}

// The kubelet's directory is a shared mount; what a pod sees is the copy propagation
// makes of the bind. The flags of a publish must be on that copy, not only on the
// plugin's own mount (a remount after the bind changes only the latter).
TEST_F(MounterTest, FlagsReachPropagatedCopies) {
  fs::path shared = dir_ / "shared", peer = dir_ / "peer";
  fs::create_directories(shared);
  fs::create_directories(peer);
  ASSERT_EQ(::mount(shared.c_str(), shared.c_str(), nullptr, MS_BIND, nullptr), 0);
  ASSERT_EQ(::mount(nullptr, shared.c_str(), nullptr, MS_SHARED, nullptr), 0);
  // A bind of a shared mount is its peer: mounts below one appear below the other.
  ASSERT_EQ(::mount(shared.c_str(), peer.c_str(), nullptr, MS_BIND, nullptr), 0);

  ASSERT_TRUE(BindMount(dir_ / "src", shared / "t", false,
                        {"noexec", "nosuid", "nodev", "noatime", "nodiratime"})
                  .ok());
  ASSERT_TRUE(BindMount(dir_ / "src", shared / "r", true, {}).ok());
  std::string copy = MountOptions(peer / "t");
  for (const char* flag :
       {",rw,", ",noexec,", ",nosuid,", ",nodev,", ",noatime,", ",nodiratime,"}) {
    EXPECT_NE(copy.find(flag), std::string::npos) << flag << " missing in " << copy;
  }
  EXPECT_NE(MountOptions(peer / "r").find(",ro,"), std::string::npos) << MountOptions(peer / "r");
  EXPECT_NE(::access((peer / "r" / "f").c_str(), W_OK), 0);
  EXPECT_EQ(errno, EROFS);

  ASSERT_TRUE(UnmountAndRemove(shared / "t").ok());
  ASSERT_TRUE(UnmountAndRemove(shared / "r").ok());
  EXPECT_EQ(MountOptions(peer / "t"), "");  // the unmount propagates too
  ::umount2(peer.c_str(), MNT_DETACH);
  ::umount2(shared.c_str(), MNT_DETACH);
}

TEST_F(MounterTest, PlainDirectoryIsNotMounted) {
  fs::create_directories(dir_ / "plain");
  EXPECT_EQ(InspectTarget(dir_ / "plain", dir_ / "src")->state, TargetState::kNotMounted);
}

TEST(MountFlagsTest, OnlyKnownFlags) {
  EXPECT_TRUE(CheckMountFlags({"ro", "noexec", "noatime"}).ok());
  EXPECT_EQ(CheckMountFlags({"bind"}).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace cellar::csi
