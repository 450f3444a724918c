// Runs mount/tests/real_tools.sh (cp -a, tar, numpy/pandas in a pod-like mount
// namespace) against the demo daemon, in both I/O modes.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include "tests/support/needs_root.h"

namespace {

class RealToolsTest : public ::testing::TestWithParam<bool> {};

TEST_P(RealToolsTest, CpTarNumpyPandas) {
  CELLAR_SKIP_UNLESS_ROOT("the demo daemon and pod namespaces");
  std::string cmd = std::string(CELLAR_MOUNT_TESTS_DIR) + "/real_tools.sh " +
                    CELLAR_FUSE_MOUNT_BIN + (GetParam() ? "" : " --no-passthrough");
  int rc = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(rc));
  EXPECT_EQ(WEXITSTATUS(rc), 0) << cmd;
}

INSTANTIATE_TEST_SUITE_P(Modes, RealToolsTest, ::testing::Bool(),
                         [](const auto& info) { return info.param ? "Passthrough" : "Fallback"; });

}  // namespace
