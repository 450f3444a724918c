#include "csi/mounter.h"

#include <sys/mount.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

namespace cellar::csi {
namespace {

namespace fs = std::filesystem;

class MounterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cellar-mounter-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ / "src");
    std::ofstream(dir_ / "src" / "f") << "x";
  }
  void TearDown() override {
    ::umount2((dir_ / "target").c_str(), MNT_DETACH);
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
