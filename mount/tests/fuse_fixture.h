// Test fixture: two size-limited tmpfs arenas (mounted the way the store mounts them:
// size=<capacity>,inode32), a FuseServer on a temporary mountpoint with both attached,
// and clean-up of every mount even when a test fails. Parameterized on passthrough.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "mount/fuse_server.h"

namespace cellar::mount::testing {

inline constexpr uint32_t kSlotA = 1;
inline constexpr uint32_t kSlotB = 2;

// Mounts/unmounts a tmpfs arena; unmounts on destruction.
class Arena {
 public:
  Arena(std::filesystem::path dir, uint64_t size_bytes);
  ~Arena();
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

class FuseFixture : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override;
  void TearDown() override;

  bool passthrough() const { return GetParam(); }
  // Bytes per arena; tests that need more override before SetUp via this hook.
  virtual uint64_t ArenaSize() const { return 64ULL << 20; }
  // O_PATH fds the server's inode table may hold (0: its default).
  virtual size_t MaxInodeFds() const { return 0; }

  // Starts (again) a FuseServer on mnt_ with both arenas attached.
  void StartServer();
  void StopServer();

  std::filesystem::path root_;   // temp dir holding everything
  std::filesystem::path mnt_;    // the FUSE mountpoint
  std::filesystem::path vol_a_;  // mnt_/vol-a
  std::filesystem::path vol_b_;  // mnt_/vol-b
  std::unique_ptr<Arena> arena_a_;
  std::unique_ptr<Arena> arena_b_;
  std::unique_ptr<FuseServer> server_;
};

// Name for INSTANTIATE_TEST_SUITE_P.
inline std::string ModeName(const ::testing::TestParamInfo<bool>& info) {
  return info.param ? "Passthrough" : "Fallback";
}

// Runs `fn` in a forked child with the given uid/gid (fsuid follows); returns the
// child's exit code (the errno it reports, 0 on success).
int RunAs(uint32_t uid, uint32_t gid, const std::function<int()>& fn);
// The same with supplementary groups, as a pod with an fsGroup runs.
int RunAsWithGroups(uint32_t uid, uint32_t gid, const std::vector<gid_t>& groups,
                    const std::function<int()>& fn);

// Whole-file helpers; EXPECT-style failures are the caller's business.
std::string ReadFile(const std::filesystem::path& path);
void WriteFile(const std::filesystem::path& path, const std::string& data);

}  // namespace cellar::mount::testing
