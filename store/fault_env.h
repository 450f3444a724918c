// FaultEnv: wraps the real Env and injects failures, for crash and ENOSPC tests.
#pragma once

#include <atomic>
#include <string>

#include "store/env.h"

namespace cellar::store {

class FaultEnv : public Env {
 public:
  explicit FaultEnv(Env& base) : base_(base) {}

  // The next Append writes only `bytes` of its data and then fails, as a crash or a
  // full disk in the middle of a write would.
  void TearNextAppend(size_t bytes) { tear_at_ = static_cast<long>(bytes); }
  void FailSyncs(bool fail) { fail_sync_ = fail; }
  void FailMounts(bool fail) { fail_mount_ = fail; }

  Result<std::string> ReadFile(const std::filesystem::path& p) override {
    return base_.ReadFile(p);
  }
  Status WriteFileAtomic(const std::filesystem::path& p, std::string_view d) override {
    return base_.WriteFileAtomic(p, d);
  }
  Result<UniqueFd> OpenForAppend(const std::filesystem::path& p) override {
    return base_.OpenForAppend(p);
  }
  Status Append(int fd, std::string_view data) override {
    long tear = tear_at_.exchange(-1);
    if (tear >= 0) {
      (void)base_.Append(fd, data.substr(0, static_cast<size_t>(tear)));
      return Status::FromErrno(ENOSPC, "append (injected)");
    }
    return base_.Append(fd, data);
  }
  Status Sync(int fd) override {
    if (fail_sync_) return Status::FromErrno(EIO, "fdatasync (injected)");
    return base_.Sync(fd);
  }
  Status Truncate(int fd, uint64_t size) override { return base_.Truncate(fd, size); }
  Status CreateDirectories(const std::filesystem::path& p) override {
    return base_.CreateDirectories(p);
  }
  Status RemoveDirectory(const std::filesystem::path& p) override {
    return base_.RemoveDirectory(p);
  }
  Status MountTmpfs(const std::filesystem::path& p, uint64_t s, ArenaPages pages) override {
    if (fail_mount_) return Status::FromErrno(ENOMEM, "mount (injected)");
    return base_.MountTmpfs(p, s, pages);
  }
  Status ResizeTmpfs(const std::filesystem::path& p, uint64_t s) override {
    return base_.ResizeTmpfs(p, s);
  }
  Status Unmount(const std::filesystem::path& p) override { return base_.Unmount(p); }
  Result<bool> IsTmpfsMount(const std::filesystem::path& p) override {
    return base_.IsTmpfsMount(p);
  }
  Result<FsUsage> StatFs(const std::filesystem::path& p) override { return base_.StatFs(p); }

 private:
  Env& base_;
  std::atomic<long> tear_at_{-1};
  std::atomic<bool> fail_sync_{false};
  std::atomic<bool> fail_mount_{false};
};

}  // namespace cellar::store
